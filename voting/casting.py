"""Casting a vote: an admitted Ballot written as its row, the voter's place for the day and the live
counter in one transaction, or on PostgreSQL (one vote per candidate a day) as one statement."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import select

from config.settings import Settings
from core.errors import Conflict, GuardFailed, JingongError
from storage.db import is_sqlite, unit_of_work
from voting.ballots import Ballot, Receipt, admit, cap_reached
from voting.models import Vote, VoteCounter, VoterDay
from voting.monitor import minute_of

#: PostgreSQL, one vote per candidate per day: the whole vote as one statement (one round trip).
#: ``prior`` refuses a repeat; ``d`` takes one of the day's candidate places (the ON CONFLICT ...
#: WHERE re-checks the cap on the latest row, so racing votes cannot pass it); ``w`` writes the row
#: only if a place was taken; ``k`` counts it only if the row was written. Written once with named
#: parameters (psycopg); the vote lane runs the same text numbered for asyncpg.
PG_VOTE = """
WITH prior AS (
    SELECT 1 FROM vote WHERE nomination_id = %(n)s AND voter_id = %(v)s AND day = %(day)s AND slot = 1
), d AS (
    INSERT INTO voter_day (voter_id, day, candidates)
    SELECT %(v)s, %(day)s, 1 WHERE NOT EXISTS (SELECT 1 FROM prior)
    ON CONFLICT (voter_id, day) DO UPDATE SET candidates = voter_day.candidates + 1
    WHERE voter_day.candidates < %(cap)s
    RETURNING candidates
), w AS (
    INSERT INTO vote (campaign_id, nomination_id, voter_id, day, slot, cast_at, minute, ip_hash, net_hash, valid,
                      receipt_hash)
    SELECT %(c)s, %(n)s, %(v)s, %(day)s, 1, %(cast_at)s, %(minute)s, %(ip)s, %(net)s, true, %(receipt)s
    WHERE EXISTS (SELECT 1 FROM d)
    ON CONFLICT (nomination_id, voter_id, day, slot) DO NOTHING
    RETURNING id
), k AS (
    INSERT INTO vote_counter (nomination_id, campaign_id, votes)
    SELECT %(n)s, %(c)s, 1 WHERE EXISTS (SELECT 1 FROM w)
    ON CONFLICT (nomination_id) DO UPDATE SET votes = vote_counter.votes + 1
    RETURNING votes
)
SELECT EXISTS (SELECT 1 FROM prior), (SELECT candidates FROM d), (SELECT id FROM w), (SELECT votes FROM k)
"""
#: PostgreSQL, a round of a batch (every voter once, one cap): ``PG_VOTE`` for many ballots as one
#: statement, one round trip and one commit for all of them (the vote lane's group commit). Each
#: ballot's answer is the one ``PG_VOTE`` gives: ``prior`` refuses a repeat; ``d`` takes the day's
#: places (the ON CONFLICT ... WHERE re-checks the cap on the latest row); ``w`` writes the rows
#: that took a place; ``k`` adds them to the counters, one row per candidate. Rows are taken in
#: the order of voters, then candidates, so concurrent batches lock them in the same order.
PG_BATCH_COLUMNS = ("n", "v", "c", "day", "cast_at", "minute", "ip", "net", "receipt")
PG_BATCH_VOTE = """
WITH b AS (
    SELECT * FROM unnest(%(n)s::int[], %(v)s::int[], %(c)s::int[], %(day)s::text[], %(cast_at)s::timestamptz[],
                         %(minute)s::bigint[], %(ip)s::text[], %(net)s::text[], %(receipt)s::text[])
                  AS b(n, v, c, day, cast_at, minute, ip, net, receipt)
), prior AS (
    SELECT b.v FROM b JOIN vote ON vote.nomination_id = b.n AND vote.voter_id = b.v AND vote.day = b.day
                                   AND vote.slot = 1
), d AS (
    INSERT INTO voter_day (voter_id, day, candidates)
    SELECT b.v, b.day, 1 FROM b WHERE b.v NOT IN (SELECT v FROM prior) ORDER BY b.v
    ON CONFLICT (voter_id, day) DO UPDATE SET candidates = voter_day.candidates + 1
    WHERE voter_day.candidates < %(cap)s
    RETURNING voter_id, candidates
), w AS (
    INSERT INTO vote (campaign_id, nomination_id, voter_id, day, slot, cast_at, minute, ip_hash, net_hash, valid,
                      receipt_hash)
    SELECT b.c, b.n, b.v, b.day, 1, b.cast_at, b.minute, b.ip, b.net, true, b.receipt FROM b JOIN d ON d.voter_id = b.v
    ORDER BY b.n, b.v
    ON CONFLICT (nomination_id, voter_id, day, slot) DO NOTHING
    RETURNING id, voter_id
), k AS (
    INSERT INTO vote_counter (nomination_id, campaign_id, votes)
    SELECT b.n, min(b.c), count(*) FROM w JOIN b ON b.v = w.voter_id GROUP BY b.n ORDER BY b.n
    ON CONFLICT (nomination_id) DO UPDATE SET votes = vote_counter.votes + excluded.votes
    RETURNING nomination_id, votes
)
SELECT b.v, EXISTS (SELECT 1 FROM prior WHERE prior.v = b.v), d.candidates, w.id, k.votes
FROM b LEFT JOIN d ON d.voter_id = b.v LEFT JOIN w ON w.voter_id = b.v LEFT JOIN k ON k.nomination_id = b.n
"""
#: a racing duplicate took a day's place but wrote no row: give the place back
PG_RETURN_PLACE = "UPDATE voter_day SET candidates = candidates - 1 WHERE voter_id = %(v)s AND day = %(day)s"


def numbered(sql: str, names: Sequence[str]) -> str:
    """``sql`` with each ``%(name)s`` replaced by ``$i``, i the name's place in ``names`` (asyncpg)."""
    return re.sub(r"%\((\w+)\)s", lambda m: f"${names.index(m.group(1)) + 1}", sql)


@functools.cache
def _statements(dialect: str, per_day_cap: int) -> tuple[Any, Any, Any]:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    vote_table = Vote.__table__  # type: ignore[attr-defined]
    day_table = VoterDay.__table__  # type: ignore[attr-defined]
    counter_table = VoteCounter.__table__  # type: ignore[attr-defined]
    add_vote = (insert(vote_table).on_conflict_do_nothing(index_elements=["nomination_id", "voter_id", "day", "slot"])
                .returning(vote_table.c.id))
    day_insert = insert(day_table)
    count_day = day_insert.on_conflict_do_update(
        index_elements=["voter_id", "day"], set_={"candidates": day_table.c.candidates + 1},
        where=day_table.c.candidates < per_day_cap,
    ).returning(day_table.c.candidates)
    counter_insert = insert(counter_table)
    count_vote = counter_insert.on_conflict_do_update(
        index_elements=["nomination_id"], set_={"votes": counter_table.c.votes + 1},
    ).returning(counter_table.c.votes)
    return add_vote, count_day, count_vote


def one_statement(ballot: Ballot, engine: Engine) -> bool:
    """Whether the ballot is written by the one-statement PostgreSQL vote."""
    return engine.dialect.name == "postgresql" and ballot.window.per_candidate_per_day == 1


def cast_vote(engine: Engine, campaign_id: int, nomination_id: int, voter_id: int, ip: str,
              settings: Settings | None = None) -> Receipt:
    """One vote: checked against the clock, the limits and the day's rules, written as a row with
    the live counter in one transaction. (On PostgreSQL the web service casts through the vote
    lane, ``voting.lane``, which writes the same statement from the event loop.)"""
    return write(engine, admit(engine, campaign_id, nomination_id, voter_id, ip, settings))


def write(engine: Engine, ballot: Ballot) -> Receipt:
    """Write an admitted ballot: the row, the day's place and the counter, or the refusal."""
    if one_statement(ballot, engine):
        return _cast_pg(engine, ballot)
    with unit_of_work(engine) as session:
        return _write_rows(session.connection(), ballot)


def write_together(engine: Engine, batch: Sequence[Ballot]) -> list[Receipt | JingongError]:
    """Write several admitted ballots in one transaction, one commit (group commit): each ballot in
    a savepoint of its own, so a refused one leaves nothing and the others stand; they are judged in
    order, so two ballots of one voter are judged as if one came after the other. The caller holds
    the database's writer turn (SQLite) and answers no ballot before this returns: if it raises,
    nothing was written."""
    outcomes: list[Receipt | JingongError] = []
    with engine.connect() as conn, conn.begin():
        if is_sqlite(engine) and all(b.window.per_candidate_per_day == 1 for b in batch):
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                return [_sqlite_one(cursor, ballot, _sqlite_instant(engine)) for ballot in batch]
            finally:
                cursor.close()
        for ballot in batch:
            savepoint = conn.begin_nested()
            try:
                outcomes.append(_write_rows(conn, ballot))
            except (Conflict, GuardFailed) as refusal:
                savepoint.rollback()
                outcomes.append(refusal)
            else:
                savepoint.commit()
    return outcomes


#: SQLite, one vote per candidate per day: the statements of ``_write_rows`` (``_statements``) as
#: the driver's own SQL, so the group writer's thread pays no SQLAlchemy execution per statement
#: (about two thirds of the writer's time per vote). tests/voting/test_group.py checks that both
#: write the same rows.
SQLITE_ADD_VOTE = ("INSERT INTO vote (campaign_id, nomination_id, voter_id, day, slot, cast_at, minute, ip_hash, "
                   "net_hash, valid, receipt_hash) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, 1, ?) "
                   "ON CONFLICT (nomination_id, voter_id, day, slot) DO NOTHING RETURNING id")
SQLITE_TAKE_PLACE = ("INSERT INTO voter_day (voter_id, day, candidates) VALUES (?, ?, 1) ON CONFLICT (voter_id, day) "
                     "DO UPDATE SET candidates = voter_day.candidates + 1 WHERE voter_day.candidates < ? "
                     "RETURNING candidates")
SQLITE_COUNT = ("INSERT INTO vote_counter (nomination_id, campaign_id, votes) VALUES (?, ?, 1) "
                "ON CONFLICT (nomination_id) DO UPDATE SET votes = vote_counter.votes + 1 RETURNING votes")


@functools.cache
def _sqlite_instant_for(dialect: Any) -> Any:
    return Vote.__table__.c.cast_at.type.bind_processor(dialect)  # type: ignore[attr-defined]


def _sqlite_instant(engine: Engine) -> Any:
    """How the vote's instant is stored (the column type's own conversion)."""
    return _sqlite_instant_for(engine.dialect)


def _sqlite_one(cursor: Any, ballot: Ballot, instant: Any) -> Receipt | JingongError:
    """One ballot in its savepoint: the row, the day's place, the counter; or the refusal, undone."""
    win = ballot.window
    cursor.execute("SAVEPOINT ballot")
    vote_id = cursor.execute(SQLITE_ADD_VOTE, (
        ballot.campaign_id, ballot.nomination_id, ballot.voter_id, ballot.day, instant(ballot.cast_at),
        minute_of(ballot.cast_at), ballot.ip_hash, ballot.net_hash, ballot.receipt_hash)).fetchone()
    refusal: JingongError | None = ballot.already() if vote_id is None else None
    used: Any = None
    if refusal is None:
        used = cursor.execute(SQLITE_TAKE_PLACE, (ballot.voter_id, ballot.day, win.candidates_per_day)).fetchone()
        refusal = cap_reached(win) if used is None else None
    if refusal is not None:
        cursor.execute("ROLLBACK TO ballot")
        cursor.execute("RELEASE ballot")
        return refusal
    votes = cursor.execute(SQLITE_COUNT, (ballot.nomination_id, ballot.campaign_id)).fetchone()[0]
    cursor.execute("RELEASE ballot")
    return Receipt(int(vote_id[0]), ballot.nomination_id, ballot.day, win.candidates_per_day - int(used[0]),
                   int(votes) if win.show_counts else None, ballot.receipt_code)


def _write_rows(conn: Connection, ballot: Ballot) -> Receipt:
    """The ballot's row, its day's place and its counter, in the caller's transaction; raises the
    refusal (the caller rolls back what was written)."""
    win, day = ballot.window, ballot.day
    campaign_id, nomination_id, voter_id = ballot.campaign_id, ballot.nomination_id, ballot.voter_id
    row = {"campaign_id": campaign_id, "nomination_id": nomination_id, "voter_id": voter_id, "day": day,
           "cast_at": ballot.cast_at, "minute": minute_of(ballot.cast_at), "ip_hash": ballot.ip_hash,
           "net_hash": ballot.net_hash, "receipt_hash": ballot.receipt_hash}
    add_vote, count_day, count_vote = _statements(conn.dialect.name, win.candidates_per_day)
    slot = 1
    if win.per_candidate_per_day > 1:
        slot = 1 + conn.execute(select(func.count()).select_from(Vote).where(
            Vote.nomination_id == nomination_id, Vote.voter_id == voter_id, Vote.day == day)).scalar_one()
    if slot > win.per_candidate_per_day:
        raise ballot.already()
    vote_id = conn.execute(add_vote, {**row, "slot": slot, "valid": True}).scalar()
    if vote_id is None:
        raise ballot.already()
    if slot == 1:  # a new candidate for the day takes one of the voter's places
        used = conn.execute(count_day, {"voter_id": voter_id, "day": day, "candidates": 1}).scalar()
        if used is None:
            raise cap_reached(win)
    else:
        used = conn.execute(select(VoterDay.candidates).where(
            VoterDay.voter_id == voter_id, VoterDay.day == day)).scalar_one()
    votes = conn.execute(count_vote, {"nomination_id": nomination_id, "campaign_id": campaign_id,
                                      "votes": 1}).scalar()
    return Receipt(vote_id, nomination_id, day, win.candidates_per_day - (used or 0),
                   votes if win.show_counts else None, ballot.receipt_code)


def _cast_pg(engine: Engine, ballot: Ballot) -> Receipt:
    params = ballot.params()
    with engine.connect() as conn:
        prior, used, vote_id, votes = conn.exec_driver_sql(PG_VOTE, params).one()
        receipt = ballot.outcome(prior, used, vote_id, votes)
        if receipt is None:
            conn.exec_driver_sql(PG_RETURN_PLACE, params)
        conn.commit()
    if receipt is None:
        raise ballot.already()
    return receipt
