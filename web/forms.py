"""HTML form posts to validated values (the same rules as the JSON API)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from core.errors import ValidationFailed
from nominations.service import REQUIRED_FIELDS, SELF_FIELDS, UNIT_FIELDS
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
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        label = FIELD_LABELS.get(field, field)
        raise ValidationFailed(f"{field}: {err['msg']}", message_zh=f"“{label}”填写有误：{_zh(err['type'])}") from None


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
