"""Scheduled work: ``tick()`` applies every due step of the calendar, in calendar order, each in
its own transaction, and marks it done. Running it late, twice, or from several processes at
once is harmless: a step is done once, a close moves only what is still to move.

What a close does, per stage (the README, "The calendar runs itself"):
- nomination: drafts are frozen (the clock guard already refuses them); nothing moves.
- screening: the shortlist must hold min..max and nothing may be left unscreened, else the step
  does not advance and the committee is alerted; then the rest of ``screened`` → not_shortlisted.
- voting: the tally is frozen (``on_stage_close`` listeners), every shortlisted → voted.
- review: exactly the configured counts per track, else alert; the rest of ``voted`` → not_selected.
- notice: every vetted (no open objection) → publicized; those on hold wait for the ruling.
- commendation: every publicized → commended.
Decisions held until announced (screening, review) are released when their stage closes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from audit import service as audit
from campaigns import service as campaigns
from campaigns.models import Campaign, Stage
from config.campaign import StageName
from core import clock
from core.actor import Actor
from core.errors import GuardFailed
from nominations.models import Nomination
from nominations.states import State
from notifications import announce, notices
from notifications.context import TRACK_LABELS_ZH
from stages import service as stages
from stages.models import ScheduledStep, StepKind
from storage.db import is_sqlite, unit_of_work
from workflow import guards, queries
from workflow import service as workflow
from workflow.machine import Event

log = logging.getLogger(__name__)

#: a step that runs more than this after its instant is recorded as late in the audit trail
LATE_AFTER = timedelta(seconds=60)
#: a step refused by a rule is tried again after this long (and at every start)
RETRY_AFTER = timedelta(minutes=10)

StageListener = Callable[[Session, Campaign, Stage], None]
_close_listeners: dict[str, list[StageListener]] = {}
_open_listeners: dict[str, list[StageListener]] = {}
TickListener = Callable[[Engine, int, datetime], object]
_tick_listeners: list[TickListener] = []


def on_tick(fn: TickListener) -> TickListener:
    """Register work for every tick, per campaign, after its due steps (e.g. publishing the trail's
    head once a day); it opens its own transaction, and should read before it writes."""
    if fn not in _tick_listeners:
        _tick_listeners.append(fn)
    return fn


def on_stage_close(stage: StageName | str) -> Callable[[StageListener], StageListener]:
    """Register work to run inside a stage's close step (e.g. freezing the vote tally)."""

    def register(fn: StageListener) -> StageListener:
        listeners = _close_listeners.setdefault(str(stage), [])
        if fn not in listeners:
            listeners.append(fn)
        return fn

    return register


def on_stage_open(stage: StageName | str) -> Callable[[StageListener], StageListener]:
    def register(fn: StageListener) -> StageListener:
        listeners = _open_listeners.setdefault(str(stage), [])
        if fn not in listeners:
            listeners.append(fn)
        return fn

    return register


@dataclass(frozen=True)
class StepResult:
    campaign: str
    key: str
    stage: str
    kind: StepKind
    due_at: datetime
    ran_at: datetime
    done: bool
    late_seconds: float
    summary: str
    #: why a blocked step was refused, in Chinese (for the committee's pages)
    problem_zh: str | None = None


class StepBlocked(Exception):
    """A rule refuses the step for now; it is retried later."""

    def __init__(self, message: str, *, message_zh: str | None = None) -> None:
        super().__init__(message)
        self.message_zh = message_zh


def tick(engine: Engine, *, now: datetime | None = None, actor: Actor | None = None,
         retry_blocked: bool = False) -> list[StepResult]:
    """Apply every due step of every campaign, in calendar order. Returns what ran.
    ``retry_blocked``: a step refused earlier is tried now, not after its RETRY_AFTER (a person
    asked: ``jingong tick``, the dashboard's 立即重试)."""
    actor = actor or Actor.system("scheduler")
    with unit_of_work(engine, readonly=True) as session:
        campaign_ids = [c for c in session.exec(select(Campaign.id)) if c is not None]
    results: list[StepResult] = []
    for campaign_id in campaign_ids:
        while True:
            result = _run_next(engine, campaign_id, now or clock.now(), actor, retry_blocked)
            if result is None:
                break
            results.append(result)
            if not result.done:
                break  # a blocked step holds back the later ones: calendar order is kept
        with unit_of_work(engine) as session:
            expire_returned(session, campaign_id, now or clock.now(), actor)
        for listener in _tick_listeners:
            listener(engine, campaign_id, now or clock.now())
    return results


#: why the scheduler rejects a nomination sent back for changes that was not resubmitted in time
OVERDUE_REASON = "逾期未补正：补正截止时间已过，未重新提交"


def expire_returned(session: Session, campaign_id: int, now: datetime, actor: Actor) -> int:
    """Nominations sent back for changes (退回补正) whose due instant has passed without a
    resubmission are rejected, with that reason (mailed and audited like every change)."""
    overdue = [i for i in session.exec(select(Nomination.id).where(
        Nomination.campaign_id == campaign_id, Nomination.state == State.RETURNED.value,
        col(Nomination.extension_until) <= now).order_by(col(Nomination.id))) if i is not None]
    if overdue:
        workflow.transition_many(session, overdue, Event.REJECT, actor=actor, reason=OVERDUE_REASON)
    return len(overdue)


def _run_next(engine: Engine, campaign_id: int, now: datetime, actor: Actor,
              retry_blocked: bool = False) -> StepResult | None:
    with unit_of_work(engine) as session:
        campaign = _lock_campaign(session, engine, campaign_id)
        if campaign is None:
            return None  # another instance is ticking this campaign right now
        return run_one(session, campaign, now, actor, retry_blocked=retry_blocked)


def run_due(session: Session, campaign: Campaign, actor: Actor, *, retry_blocked: bool = True) -> list[StepResult]:
    """Every due step of ``campaign`` in this transaction, in calendar order, up to the first
    that is blocked (which is recorded on its row)."""
    if session.get_bind().dialect.name != "sqlite":  # wait for a ticker of another instance to finish; then go alone
        session.exec(select(Campaign).where(Campaign.id == campaign.id).with_for_update(key_share=True)).first()
    results: list[StepResult] = []
    while (result := run_one(session, campaign, clock.now(), actor, retry_blocked=retry_blocked)) is not None:
        results.append(result)
        if not result.done:
            break
    return results


def close_now(session: Session, campaign_id: int, name: StageName | str, *, actor: Actor,
              reason: str | None) -> list[StepResult]:
    """Close a stage by hand now, and run its close in the same transaction. A close a rule
    refuses raises GuardFailed and changes nothing, the calendar included."""
    stages.close_stage(session, campaign_id, name, actor=actor, reason=reason)
    campaign = campaigns.get_campaign_by_id(session, campaign_id)
    results = run_due(session, campaign, actor)
    if results and not results[-1].done:  # raising rolls the unit of work back: nothing changed
        problem = results[-1].summary.removeprefix("blocked: ")
        raise GuardFailed(f"{name} cannot close now: {problem}",
                          message_zh=f"该阶段现在不能结束：{results[-1].problem_zh or problem}")
    return results


def run_one(session: Session, campaign: Campaign, now: datetime, actor: Actor, *,
            retry_blocked: bool = False) -> StepResult | None:
    """The next due step of ``campaign``, applied in a savepoint of this transaction."""
    step = session.exec(
        select(ScheduledStep)
        .where(ScheduledStep.campaign_id == campaign.id, col(ScheduledStep.done_at).is_(None),
               col(ScheduledStep.due_at) <= now)
        .order_by(col(ScheduledStep.due_at), col(ScheduledStep.id))
        .limit(1)
    ).first()
    if step is None or (step.retry_at is not None and step.retry_at > now and not retry_blocked):
        return None
    late = max(0.0, (now - step.due_at).total_seconds())
    step.attempts += 1
    try:
        with session.begin_nested():
            summary = _apply(session, campaign, step, now, actor)
    except (StepBlocked, GuardFailed) as exc:
        # shown to the office (dashboard, `jingong stages`): in Chinese where the rule says it
        step.last_error = getattr(exc, "message_zh", None) or str(exc)
        step.retry_at = now + RETRY_AFTER
        session.add(step)
        _alert(session, campaign, step, getattr(exc, "message_zh", None) or str(exc))
        return StepResult(campaign.slug, step.key, step.stage, StepKind(step.kind), step.due_at, now, False,
                          late, f"blocked: {exc}", getattr(exc, "message_zh", None))
    step.done_at, step.late_seconds, step.last_error, step.retry_at = now, late, None, None
    session.add(step)
    if late >= LATE_AFTER.total_seconds():
        audit.record(session, actor=actor, action="step_ran_late", subject=step.key, campaign_id=campaign.id,
                     reason=f"比预定时间晚{_duration_zh(late)}执行（服务曾停止或繁忙）",
                     data={"due_at": step.due_at.isoformat(), "ran_at": now.isoformat(), "late_seconds": late})
    return StepResult(campaign.slug, step.key, step.stage, StepKind(step.kind), step.due_at, now, True, late,
                      summary)


def _lock_campaign(session: Session, engine: Engine, campaign_id: int) -> Campaign | None:
    """One ticker per campaign at a time. PostgreSQL: row lock, SKIP LOCKED (others move on);
    SQLite: BEGIN IMMEDIATE already serialises writers."""
    query = select(Campaign).where(Campaign.id == campaign_id)
    if not is_sqlite(engine):
        # FOR NO KEY UPDATE: a mutex among tickers that does not block the rows other transactions
        # insert with a foreign key to the campaign (their FOR KEY SHARE); FOR UPDATE did, and a
        # ticker waiting for the trail's chain head deadlocked with a submission holding it
        query = query.with_for_update(skip_locked=True, key_share=True)
    return session.exec(query).first()


def _apply(session: Session, campaign: Campaign, step: ScheduledStep, now: datetime, actor: Actor) -> str:
    stage = campaigns.get_stage(session, campaign.id or 0, step.stage)
    kind = StepKind(step.kind)
    if kind is StepKind.REMINDER:
        return _remind(session, campaign, stage, step.param or 0)
    if kind is StepKind.OPEN:
        if stage.opened_at is None:
            stage.opened_at = now
            session.add(stage)
        for listener in _open_listeners.get(stage.name, []):
            listener(session, campaign, stage)
        if stage.name in {StageName.VOTING, StageName.NOTICE}:
            notices.queue_stage_notice(session, campaign.id or 0, stage.name, "opened")
        audit.record(session, actor=actor, action="stage_opened", subject=stage.name, campaign_id=campaign.id)
        return f"{stage.name} opened"
    summary, summary_zh = _close(session, campaign, stage, actor)
    if stage.closed_at is None:
        stage.closed_at = now
        session.add(stage)
    if stage.name in {s.value for s in campaigns.spec_of(campaign).rules.hold_decisions_until_announced}:
        announce.announce_stage(session, campaign.id or 0, stage.name, actor)
    audit.record(session, actor=actor, action="stage_closed", subject=stage.name, campaign_id=campaign.id,
                 reason=summary_zh, data={"summary": summary})
    return f"{stage.name} closed: {summary}"


def _close(session: Session, campaign: Campaign, stage: Stage, actor: Actor) -> tuple[str, str]:
    """Run the stage's close; what it did, for the log (English) and the audit trail (Chinese)."""
    cid = campaign.id or 0
    name = StageName(stage.name)
    for listener in _close_listeners.get(stage.name, []):
        listener(session, campaign, stage)
    if name is StageName.NOMINATION:
        drafts = queries.count_in_state(session, cid, State.DRAFT)
        submitted = queries.count_in_state(session, cid, State.SUBMITTED)
        return f"{drafts} draft(s) frozen, {submitted} submitted", f"未提交的草稿{drafts}件已冻结，已提交{submitted}件"
    if name is StageName.SCREENING:
        unscreened = (queries.count_in_state(session, cid, State.SUBMITTED)
                      + queries.count_in_state(session, cid, State.RETURNED))
        if unscreened:
            raise StepBlocked(f"{unscreened} nomination(s) still submitted and not screened; screen or reject them",
                              message_zh=f"尚有{unscreened}件申报未完成初审，请先审核通过或退回")
        count = guards.check_shortlist(session, cid)
        moved = workflow.move_all(session, cid, State.SCREENED, Event.PASS_OVER, actor=actor)
        return f"shortlist of {count}; {moved} not shortlisted", f"初步候选人{count}名，未入选{moved}名"
    if name is StageName.VOTING:
        moved = workflow.move_all(session, cid, State.SHORTLISTED, Event.RECORD_VOTES, actor=actor)
        return f"tally frozen; {moved} candidate(s) voted", f"计票已冻结，{moved}名候选人完成投票"
    if name is StageName.REVIEW:
        counts = guards.check_review(session, cid)
        moved = workflow.move_all(session, cid, State.VOTED, Event.NOT_SELECT, actor=actor)
        named = ", ".join(f"{n} {track.value}" for track, n in counts.items())
        named_zh = "，".join(f"{TRACK_LABELS_ZH.get(track.value, track.value)}{n}名" for track, n in counts.items())
        return f"formal candidates: {named}; {moved} not selected", f"正式候选人：{named_zh}；未入选{moved}名"
    if name is StageName.NOTICE:
        moved = workflow.move_all(session, cid, State.VETTED, Event.PUBLICIZE, actor=actor)
        held = queries.count_in_state(session, cid, State.ON_HOLD)
        return (f"{moved} publicized; {held} on hold awaiting a ruling",
                f"公示无异议{moved}名；{held}名因异议待核查")
    if name is StageName.COMMENDATION:
        moved = workflow.move_all(session, cid, State.PUBLICIZED, Event.COMMEND, actor=actor)
        return f"{moved} commended", f"命名表彰{moved}名"
    return "nothing to move", "无需变更"


def _remind(session: Session, campaign: Campaign, stage: Stage, days: int) -> str:
    if not campaigns.is_open(stage):
        return f"reminder {days}d skipped: nomination closed"
    drafts = session.exec(
        select(Nomination).where(Nomination.campaign_id == campaign.id, Nomination.state == State.DRAFT.value)
        .order_by(col(Nomination.id))
    ).all()
    queued = sum(1 for n in drafts if notices.queue_reminder(session, n, days) is not None)
    return f"reminder {days}d: {len(drafts)} draft(s), {queued} mail(s) queued"


def _alert(session: Session, campaign: Campaign, step: ScheduledStep, problem: str) -> None:
    audit.record(session, actor=Actor.system("scheduler"), action="alert", subject=step.key,
                 campaign_id=campaign.id, reason=problem)
    stage_title = campaigns.get_stage(session, campaign.id or 0, step.stage).title
    notices.queue_committee_alert(
        session, campaign.id or 0, f"【需处理】{stage_title}阶段未能按时结束",
        f"调度器未能完成“{step.key}”：{problem}\n请处理后系统将自动重试。",
        key=f"alert:{step.key}:{problem}",
    )


def _duration_zh(seconds: float) -> str:
    """A lateness as people say it: 2天15小时0分, 3分12秒, 0.250秒."""
    if seconds < 1:
        return f"{seconds:.3f}秒"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days or hours:
        return (f"{days}天" if days else "") + f"{hours}小时{minutes}分"
    return f"{minutes}分{secs}秒" if minutes else f"{secs}秒"
