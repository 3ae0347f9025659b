"""The vote monitor: suspicious patterns become flags, never dropped votes. Holds the minute buckets
votes and new voters are counted in, the scan over the campaign's thresholds, and the flags found."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from audit import service as audit
from campaigns import service as campaigns
from core import clock
from core.actor import Actor
from voting.models import FlagKind, Vote, VoteFlag, VoterIdentity


def minute_of(instant: datetime) -> int:
    """Minutes since the epoch: the bucket a vote or a new voter is counted in."""
    return int(instant.timestamp() // 60)


def minute_local(minute: int, zone: str) -> datetime:
    return datetime.fromtimestamp(minute * 60, ZoneInfo(zone))


def scan_flags(session: Session, campaign_id: int) -> int:
    """Record every minute in which one address, one network, or the crowd of new voters went
    over the campaign's thresholds. Idempotent; returns how many new flags were written."""
    campaign = campaigns.get_campaign_by_id(session, campaign_id)
    rules = campaigns.spec_of(campaign).voting
    found: list[tuple[FlagKind, str, int, int, int]] = []
    for kind, column, threshold in ((FlagKind.IP_BURST, Vote.ip_hash, rules.flag_votes_per_address_minute),
                                    (FlagKind.NETWORK_BURST, Vote.net_hash, rules.flag_votes_per_network_minute)):
        rows = session.execute(select(column, Vote.minute, func.count()).where(Vote.campaign_id == campaign_id)
                               .group_by(col(column), col(Vote.minute)).having(func.count() > threshold)).all()
        found += [(kind, key, minute, count, threshold) for key, minute, count in rows]
    threshold = rules.flag_new_voters_per_minute
    rows = session.execute(select(VoterIdentity.created_minute, func.count())
                           .where(VoterIdentity.campaign_id == campaign_id)
                           .group_by(col(VoterIdentity.created_minute)).having(func.count() > threshold)).all()
    found += [(FlagKind.FRESH_IDENTITIES, "*", minute, count, threshold) for minute, count in rows]
    existing = {(f.kind, f.key, f.minute) for f in session.exec(select(VoteFlag).where(
        VoteFlag.campaign_id == campaign_id))}
    now = clock.now()
    fresh = [{"campaign_id": campaign_id, "kind": kind.value, "key": key, "minute": minute, "count": count,
             "threshold": limit, "created_at": now}
            for kind, key, minute, count, limit in found if (kind, key, minute) not in existing]
    new = 0
    if fresh:
        # two scans at once (two members opening the flags) find the same minutes: the second
        # insert of a flag does nothing instead of failing on the unique key
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        table = VoteFlag.__table__  # type: ignore[attr-defined]
        new = len(session.execute(insert(table).values(fresh).on_conflict_do_nothing(
            index_elements=["campaign_id", "kind", "key", "minute"]).returning(table.c.id)).all())
    if new:
        audit.record(session, actor=Actor.system("vote-monitor"), action="votes_flagged", subject="voting",
                     campaign_id=campaign_id, data={"new_flags": new})
    return new


def list_flags(session: Session, campaign_id: int) -> list[VoteFlag]:
    return list(session.exec(select(VoteFlag).where(VoteFlag.campaign_id == campaign_id)
                             .order_by(col(VoteFlag.minute).desc())))
