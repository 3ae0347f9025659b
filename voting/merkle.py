"""The Merkle tree over the published vote list (the algorithm ``tools/verify_tally.py`` and the
transparency page repeat, written out in the README):

    leaf(row)   = SHA-256( 0x00 || the row's line in the file, UTF-8, without its newline )
    node(l, r)  = SHA-256( 0x01 || l || r )
    empty list  : root = SHA-256( "" )

The tree is built level by level: pairs of neighbours are joined with ``node``; a last node without
a partner goes up unchanged. (This is the tree of RFC 6962.) An inclusion proof of row ``i`` is the
list of partners met on the way up, each with its side: ``L`` (the partner is on the left) or ``R``.

Built streaming: the leaf hashes go to a file, each level is read back to write the next, so a
million rows take a few tens of megabytes of disk and a few kilobytes of memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

LEAF, NODE = b"\x00", b"\x01"
SIZE = 32


def leaf(line: bytes) -> bytes:
    return hashlib.sha256(LEAF + line).digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE + left + right).digest()


def _next_level(source: Path, count: int, target: Path) -> int:
    with source.open("rb") as src, target.open("wb") as out:
        for _ in range(count // 2):
            pair = src.read(2 * SIZE)
            out.write(node(pair[:SIZE], pair[SIZE:]))
        if count % 2:
            out.write(src.read(SIZE))
    return (count + 1) // 2


def build(leaves: Iterable[bytes], folder: Path) -> tuple[bytes, int]:
    """Write every level of the tree over ``leaves`` (leaf hashes, in order) to ``folder``
    (``level-0.bin`` the leaves, up to the root). Returns (root, number of leaves)."""
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    with (folder / "level-0.bin").open("wb") as out:
        for digest in leaves:
            out.write(digest)
            count += 1
    if count == 0:
        return hashlib.sha256(b"").digest(), 0
    level, width = 0, count
    while width > 1:
        width = _next_level(folder / f"level-{level}.bin", width, folder / f"level-{level + 1}.bin")
        level += 1
    return (folder / f"level-{level}.bin").read_bytes()[:SIZE], count


def proof(folder: Path, count: int, index: int) -> list[tuple[str, str]]:
    """The partners of leaf ``index`` from the bottom up, as (side, hex)."""
    if not 0 <= index < count:
        raise IndexError(index)
    path: list[tuple[str, str]] = []
    level, width = 0, count
    while width > 1:
        partner = index ^ 1
        if partner < width:
            with (folder / f"level-{level}.bin").open("rb") as f:
                f.seek(partner * SIZE)
                path.append(("L" if partner < index else "R", f.read(SIZE).hex()))
        index, width, level = index // 2, (width + 1) // 2, level + 1
    return path


def leaf_at(folder: Path, index: int) -> bytes:
    with (folder / "level-0.bin").open("rb") as f:
        f.seek(index * SIZE)
        return f.read(SIZE)


def root_from(line: bytes, path: list[tuple[str, str]]) -> bytes:
    digest = leaf(line)
    for side, partner in path:
        other = bytes.fromhex(partner)
        digest = node(other, digest) if side == "L" else node(digest, other)
    return digest
