"""HTML form posts to validated values (the same rules as the JSON API)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from nominations.service import REQUIRED_FIELDS, SELF_FIELDS, UNIT_FIELDS, FormInvalid, Problem
from web.schemas import NominationFields

FIELD_LABELS: dict[str, str] = {
    **REQUIRED_FIELDS, **UNIT_FIELDS, **SELF_FIELDS,
    "honours": "已获荣誉", "priority_conditions": "优先推荐条件", "unit_seal_confirmed": "已加盖推荐单位公章",
}
TEXT_FIELDS = [f for f in NominationFields.model_fields if f not in {"priority_conditions", "unit_seal_confirmed"}]


def nomination_changes(form: FormData) -> dict[str, Any]:
    """The form's fields as changes to a draft: an empty box clears the field."""
    raw: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        if name in form:
            value = form.get(name)
            text = value.strip() if isinstance(value, str) else ""
            raw[name] = text or None
    raw["priority_conditions"] = [v for v in form.getlist("priority_conditions") if isinstance(v, str) and v]
    raw["unit_seal_confirmed"] = form.get("unit_seal_confirmed") in {"on", "1", "true"}
    try:
        return NominationFields.model_validate(raw).changes()
    except ValidationError as exc:
        problems: dict[str, Problem] = {}
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            label = FIELD_LABELS.get(field, field)
            limit = (err.get("ctx") or {}).get("max_length")
            why = f"不得超过{limit}字" if err["type"] == "string_too_long" and limit else _zh(err["type"])
            problems.setdefault(field, Problem(field, f"{field}: {err['msg']}", f"“{label}”填写有误：{why}"))
        raise FormInvalid(list(problems.values())) from None


def field_errors(exc: Exception) -> dict[str, str]:
    """Each field's message of a refused form (the page shows it next to the field), in form order."""
    return {p.field: p.message_zh for p in getattr(exc, "problems", [])}


def _zh(kind: str) -> str:
    return {
        "string_too_long": "内容过长",
        "date_from_datetime_parsing": "日期格式应为 年-月-日",
        "date_parsing": "日期格式应为 年-月-日",
        "date_from_datetime_inexact": "日期格式应为 年-月-日",
        "int_parsing": "请填写整数",
        "less_than_equal": "数值过大",
        "greater_than_equal": "数值过小",
        "enum": "请从选项中选择",
        "value_error": "含有不允许的字符",
    }.get(kind, "格式不正确")
