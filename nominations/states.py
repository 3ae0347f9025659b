"""The states of a nomination (the vocabulary of its state column; ``workflow.machine`` says how
they move)."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    #: sent back for changes (退回补正): the applicant edits and resubmits by a due instant
    RETURNED = "returned"
    SCREENED = "screened"
    SHORTLISTED = "shortlisted"
    VOTED = "voted"
    VETTED = "vetted"
    ON_HOLD = "on_hold"
    PUBLICIZED = "publicized"
    COMMENDED = "commended"
    # exits
    WITHDRAWN = "withdrawn"
    REJECTED = "rejected"
    NOT_SHORTLISTED = "not_shortlisted"
    NOT_SELECTED = "not_selected"
    DISQUALIFIED = "disqualified"


FINAL_STATES = frozenset(
    {
        State.COMMENDED,
        State.WITHDRAWN,
        State.REJECTED,
        State.NOT_SHORTLISTED,
        State.NOT_SELECTED,
        State.DISQUALIFIED,
    }
)

STATE_LABELS_ZH: dict[State, str] = {
    State.DRAFT: "草稿（未提交）",
    State.SUBMITTED: "已提交",
    State.RETURNED: "退回补正中",
    State.SCREENED: "已通过资格审核",
    State.SHORTLISTED: "初步候选人",
    State.VOTED: "已完成投票评选",
    State.VETTED: "正式候选人",
    State.ON_HOLD: "异议核查中",
    State.PUBLICIZED: "公示无异议",
    State.COMMENDED: "已命名表彰",
    State.WITHDRAWN: "已撤回",
    State.REJECTED: "未通过资格审核",
    State.NOT_SHORTLISTED: "未入选初步候选人",
    State.NOT_SELECTED: "未入选正式候选人",
    State.DISQUALIFIED: "已取消资格",
}
