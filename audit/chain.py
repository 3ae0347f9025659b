"""The hash chain over the trail: every transition record and audit event of a campaign carries
its place in the campaign's trail (``chain_seq``, 1, 2, 3, ...), the hash of the row before it
(``prev_hash``) and its own hash (``row_hash``). Editing, deleting or reordering a row breaks every
hash after it, which ``verify`` (``jingong audit verify``) names; the head (the last hash) is
published, so a rewrite of the whole tail after the head was published is caught too.

    row_hash = SHA-256( "jingong-chain-v1\\n" + prev_hash + "\\n" + canonical(row) )   (hex)

``prev_hash`` of the first row is 64 zeros. ``canonical(row)`` is the UTF-8 JSON of an object
holding ``"table"`` (``transition_log`` or ``auditevent``), ``"chain_seq"`` and the row's fields
listed in ``FIELDS`` (instants as UTC ISO 8601 with microseconds), keys sorted, no spaces,
non-ASCII kept. The row's database id is not hashed (it is checked to grow with the chain).

One appender at a time per campaign: appending moves the campaign's ``chain_head`` row, whose row
lock (a conditional UPDATE, or ``SELECT ... FOR UPDATE`` then UPDATE) is held until the
transaction ends (PostgreSQL; the SQLite writer is single anyway), so concurrent transitions queue
on it and the chain stays linear.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session
from sqlmodel import select as select_model

from audit.models import ChainHead

GENESIS = "0" * 64
DOMAIN = b"jingong-chain-v1\n"
#: the hashed fields of each chained table (besides "table" and "chain_seq")
FIELDS: dict[str, tuple[str, ...]] = {
    "transition_log": ("campaign_id", "nomination_id", "event", "from_state", "to_state", "version", "actor",
                       "reason", "at", "received_at", "data"),
    "auditevent": ("campaign_id", "at", "actor", "action", "subject", "reason", "data"),
}
_HEAD = ChainHead.__table__  # type: ignore[attr-defined]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return value


def canonical(table: str, seq: int, row: Mapping[str, Any]) -> bytes:
    content = {name: _plain(row.get(name)) for name in FIELDS[table]}
    content["table"] = table
    content["chain_seq"] = seq
    return json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def row_hash(prev_hash: str, table: str, seq: int, row: Mapping[str, Any]) -> str:
    return hashlib.sha256(DOMAIN + prev_hash.encode() + b"\n" + canonical(table, seq, row)).hexdigest()


def key_of(campaign_id: int | None) -> int:
    return campaign_id or 0


def _link(rows: Sequence[dict[str, Any]], table: str, seq: int, prev: str) -> str:
    for row in rows:
        seq += 1
        row["chain_seq"], row["prev_hash"] = seq, prev
        row["row_hash"] = prev = row_hash(prev, table, seq, row)
    return prev


#: the head this process last wrote, per database and campaign: the next append tries it first
#: with one conditional UPDATE; when another writer moved the head meanwhile (or a transaction
#: rolled back) the UPDATE matches nothing and the locked read below runs instead
_last_head: dict[tuple[str, int], tuple[int, str]] = {}


def append(session: Session, campaign_id: int | None, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """Give ``rows`` (about to be inserted into ``table``, in this order) their places on the
    campaign's chain: sets ``chain_seq``, ``prev_hash`` and ``row_hash`` in each dict and moves the
    head, locking it until the caller's transaction ends."""
    if not rows:
        return
    key = key_of(campaign_id)
    conn = session.connection()
    cache_key = (conn.engine.url.render_as_string(), key)
    guess = _last_head.get(cache_key)
    if guess is not None:
        last = _link(rows, table, *guess)
        moved = conn.execute(update(_HEAD).where(_HEAD.c.campaign_key == key, _HEAD.c.seq == guess[0],
                                                 _HEAD.c.head_hash == guess[1])
                             .values(seq=guess[0] + len(rows), head_hash=last))
        if moved.rowcount == 1:
            _last_head[cache_key] = (guess[0] + len(rows), last)
            return
    locked = conn.execute(select(_HEAD.c.seq, _HEAD.c.head_hash).where(_HEAD.c.campaign_key == key)
                          .with_for_update()).first()
    if locked is None:
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(insert(_HEAD).values(campaign_key=key, seq=0, head_hash=GENESIS).on_conflict_do_nothing())
        locked = conn.execute(select(_HEAD.c.seq, _HEAD.c.head_hash).where(_HEAD.c.campaign_key == key)
                              .with_for_update()).first()
        assert locked is not None
    seq, prev = int(locked[0]), str(locked[1])
    last = _link(rows, table, seq, prev)
    conn.execute(update(_HEAD).where(_HEAD.c.campaign_key == key).values(seq=seq + len(rows), head_hash=last))
    _last_head[cache_key] = (seq + len(rows), last)


@dataclass(frozen=True)
class Head:
    campaign_key: int
    seq: int
    hash: str


def head(session: Session, campaign_id: int | None) -> Head:
    row = session.get(ChainHead, key_of(campaign_id))
    return Head(key_of(campaign_id), row.seq, row.head_hash) if row else Head(key_of(campaign_id), 0, GENESIS)


@dataclass(frozen=True)
class Break:
    """The first row of a campaign's chain that does not match."""

    campaign_key: int
    table: str
    row_id: int | None
    seq: int | None
    problem: str

    def __str__(self) -> str:
        where = f"{self.table} id {self.row_id}" if self.row_id is not None else self.table
        at = f" (campaign {self.campaign_key}, chain_seq {self.seq})" if self.seq is not None else \
            f" (campaign {self.campaign_key})"
        return f"{where}{at}: {self.problem}"


@dataclass(frozen=True)
class Checked:
    rows: int
    heads: list[Head]
    breaks: list[Break]


def _rows(session: Session, table: Table, key: int | None) -> Iterator[tuple[int, int, str, dict[str, Any]]]:
    """(campaign key, seq, table, row) in chain order, streamed; unchained rows first (seq -1)."""
    campaign_key = func.coalesce(table.c.campaign_id, 0)
    query = select(table, campaign_key.label("k"))
    if key is not None:
        query = query.where(campaign_key == key)
    query = query.order_by(campaign_key, func.coalesce(table.c.chain_seq, -1), table.c.id)
    for row in session.execute(query.execution_options(yield_per=2000)).mappings():
        seq = row["chain_seq"]
        yield int(row["k"]), -1 if seq is None else int(seq), table.name, dict(row)


def verify(session: Session, tables: Sequence[Table], *, campaign_id: int | None = None) -> Checked:
    """Recompute every chain (or one campaign's) from the rows; one ``Break`` per broken chain (its
    first bad row), none when the trail is whole. Streams the rows: bounded memory."""
    key = None if campaign_id is None else key_of(campaign_id)
    streams = [_rows(session, table, key) for table in tables]
    heads = {h.campaign_key: Head(h.campaign_key, h.seq, h.head_hash) for h in session.exec(select_model(ChainHead))
             if key is None or h.campaign_key == key}
    breaks: dict[int, Break] = {}
    state: dict[int, tuple[int, str, dict[str, int]]] = {}  # key -> (last seq, last hash, last id per table)
    count = 0
    for k, seq, table, row in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
        count += 1
        if k in breaks:
            continue
        last, prev, ids = state.get(k, (0, GENESIS, {}))
        problem = _check(row, table, seq, last, prev, ids.get(table))
        if problem:
            breaks[k] = Break(k, table, row["id"], None if seq < 0 else seq, problem)
            continue
        state[k] = (seq, row["row_hash"], {**ids, table: row["id"]})
    for k in sorted(set(heads) | set(state)):
        if k in breaks:
            continue
        last, prev, _ = state.get(k, (0, GENESIS, {}))
        published = heads.get(k)
        if published is None:
            breaks[k] = Break(k, "chain_head", None, None, "rows on the chain but no chain head")
        elif (published.seq, published.hash) != (last, prev):
            breaks[k] = Break(k, "chain_head", None, published.seq,
                              f"the chain ends at chain_seq {last} but its head says {published.seq} "
                              f"({published.hash[:12]}…): rows at the end were removed or the head was edited")
    return Checked(count, sorted(heads.values(), key=lambda h: h.campaign_key),
                   [breaks[k] for k in sorted(breaks)])


def _check(row: Mapping[str, Any], table: str, seq: int, last: int, prev: str, last_id: int | None) -> str | None:
    if seq < 0:
        return "not on the chain (no chain_seq)"
    if seq != last + 1:
        if seq > last + 1:
            return f"expected chain_seq {last + 1} next: the row(s) before it are missing"
        return f"chain_seq {seq} comes twice"
    if row["prev_hash"] != prev:
        return "prev_hash is not the hash of the row before it"
    if last_id is not None and row["id"] <= last_id:
        return f"out of order: its id is below {table} id {last_id}, which comes earlier on the chain"
    if row["row_hash"] != row_hash(prev, table, seq, row):
        return "row_hash does not match the row's content (edited)"
    return None
