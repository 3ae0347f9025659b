"""Wiring done once per process (CLI, web app, scheduler, simulator): the lower packages expose
hooks, and the listeners of the higher ones are registered here, at the top, so that no package
imports one above it."""

from __future__ import annotations

from sqlmodel import Session

from audit import service as audit
from campaigns import service as campaigns
from campaigns.models import Campaign, Stage
from config.campaign import StageName
from core.actor import Actor
from nominations import public
from nominations import service as nominations
from nominations.models import Nomination
from nominations.states import State
from notifications import transition_mail, unit_mail
from stages import jobs
from voting import publication, tally, windows
from wiring import ledger
from workflow import hooks
from workflow.models import TransitionRecord


def bootstrap() -> None:
    """Register every listener; each registration is idempotent, so calling it again (another app
    in the same process, a test that removed a listener) restores the wiring, never doubles it."""
    # notifications: the applicant's mail, queued in the same transaction as the state change
    transition_mail.install()
    # the nominating unit's contact: its own mail with the unit link
    unit_mail.install()
    install_voting()
    install_ledger()
    hooks.on_transition(enter_registry_at_commendation)


def enter_registry_at_commendation(session: Session, nomination: Nomination, record: TransitionRecord) -> None:
    """The commended enter the registry of earlier editions, in the commendation's transaction."""
    if record.to_state == State.COMMENDED.value:
        nominations.enter_registry(session, nomination)


def install_voting() -> None:
    """Freeze the vote tally inside the voting close step; drop the cached voting window and
    candidate list when voting opens or the calendar changes (voting sits below stages)."""
    jobs.on_stage_close(StageName.VOTING)(tally.freeze)
    jobs.on_stage_close(StageName.VOTING)(publication.publish_at_close)  # after the freeze
    jobs.on_stage_open(StageName.VOTING)(windows.clear_caches_at_open)
    jobs.on_stage_open(StageName.VOTING)(number_candidates_at_open)
    campaigns.on_calendar_changed(windows.clear_caches)


def number_candidates_at_open(session: Session, campaign: Campaign, stage: Stage) -> None:
    """Voting opens: the candidates' 编号 are stored, in the open step's transaction, and logged."""
    count = public.assign_numbers(session, campaign)
    if count:
        audit.record(session, actor=Actor.system("scheduler"), action="ballot_numbers_assigned",
                     subject=f"campaign:{campaign.id}", campaign_id=campaign.id,
                     data={"count": count, "highest": nominations.highest_ballot_number(session, campaign.id or 0)})


def install_ledger() -> None:
    """Publish the trail's head at every stage close (in the close step) and once a day (at a tick)."""
    for stage in StageName:
        jobs.on_stage_close(stage)(ledger.publish_at_close)
    jobs.on_tick(ledger.publish_daily)
