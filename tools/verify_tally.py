#!/usr/bin/env python3
"""Recount the published vote list of the 津工精匠 selection and check a receipt, with nothing but
Python's standard library (3.8 or newer).

    python3 verify_tally.py votes.csv                      # totals per candidate, SHA-256, Merkle root
    python3 verify_tally.py votes.csv --receipt ABCD-EFGH-JKMN
    python3 verify_tally.py --proof proof.json --root <published root>   # a proof from /api/transparency/proof

The algorithm (the same as the service's ``voting/merkle.py`` and ``voting/receipts.py``):
- file: UTF-8 lines ``receipt_hash,candidate,day,status`` after one header line; status ``valid`` or
  ``invalid:<category>``; a candidate's total is the number of its ``valid`` rows;
- SHA-256 of the whole file as downloaded;
- leaf = SHA-256(0x00 || line without its newline); node = SHA-256(0x01 || left || right);
  level by level, a last node without a partner goes up unchanged; no rows: SHA-256("");
- receipt_hash = SHA-256("jingong-receipt-v1\\n" + code upper-cased without "-" or spaces), hex;
- a proof is a list of [side, hex]: "L" the partner is on the left, "R" on the right.
Exit code 0 when everything asked for checks out, 1 otherwise.
"""

import argparse
import hashlib
import json
import sys
from collections import Counter

HEADER = "receipt_hash,candidate,day,status"


def leaf(line):
    return hashlib.sha256(b"\x00" + line).digest()


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def receipt_hash(code):
    cleaned = code.strip().upper().replace("-", "").replace(" ", "").replace("O", "0").replace("I", "1")
    return hashlib.sha256(b"jingong-receipt-v1\n" + cleaned.replace("L", "1").encode()).hexdigest()


def root_of(leaves):
    """Bounded memory: a stack of at most log2(n) perfect subtrees, joined right to left at the end."""
    stack = []  # (height, hash)
    count = 0
    for digest in leaves:
        count += 1
        height = 0
        while stack and stack[-1][0] == height:
            digest = node(stack.pop()[1], digest)
            height += 1
        stack.append((height, digest))
    if not stack:
        return hashlib.sha256(b"").digest(), 0
    digest = stack.pop()[1]
    while stack:
        digest = node(stack.pop()[1], digest)
    return digest, count


def root_from_proof(line, path):
    digest = leaf(line)
    for side, partner in path:
        other = bytes.fromhex(partner)
        digest = node(other, digest) if side == "L" else node(digest, other)
    return digest


def scan(path, wanted):
    sha = hashlib.sha256()
    totals, invalid = Counter(), Counter()
    found = []

    def leaves():
        with open(path, "rb") as f:
            header = f.readline()
            sha.update(header)
            if header.rstrip(b"\n").decode() != HEADER:
                raise SystemExit(f"not a published vote list: header {header!r}")
            for number, raw in enumerate(f, start=2):
                sha.update(raw)
                line = raw.rstrip(b"\n")
                receipt, candidate, day, status = line.decode().split(",")
                if status == "valid":
                    totals[int(candidate)] += 1
                elif status.startswith("invalid:"):
                    invalid[status[8:]] += 1
                else:
                    raise SystemExit(f"line {number}: unknown status {status!r}")
                if wanted and receipt == wanted:
                    found.append((number, line.decode()))
                yield leaf(line)

    root, count = root_of(leaves())
    return sha.hexdigest(), root.hex(), count, totals, invalid, found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", help="votes.csv as downloaded")
    parser.add_argument("--receipt", help="your receipt code: find your row")
    parser.add_argument("--proof", help="a proof (JSON from /api/transparency/proof?receipt_hash=...)")
    parser.add_argument("--root", help="the published Merkle root to compare with")
    parser.add_argument("--sha256", help="the published SHA-256 of the file to compare with")
    args = parser.parse_args(argv)
    ok = True
    if args.proof:
        with open(args.proof, encoding="utf-8") as f:
            proof = json.load(f)
        root = root_from_proof(proof["row"].encode(), proof["path"]).hex()
        expected = args.root or proof["merkle_root"]
        good = root == expected
        if args.receipt:
            good = good and proof["row"].split(",")[0] == receipt_hash(args.receipt)
        print(f"proof: row {proof['row']} -> root {root} {'MATCHES' if good else 'DOES NOT MATCH'} {expected}")
        ok = ok and good
    if args.file:
        wanted = receipt_hash(args.receipt) if args.receipt else None
        sha, root, count, totals, invalid, found = scan(args.file, wanted)
        print(f"rows: {count}  valid: {sum(totals.values())}  invalid: {sum(invalid.values())} {dict(invalid)}")
        print(f"sha256: {sha}")
        print(f"merkle_root: {root}")
        for candidate in sorted(totals, key=lambda c: (-totals[c], c)):
            print(f"candidate {candidate}: {totals[candidate]}")
        for name, mine, published in (("sha256", sha, args.sha256), ("merkle_root", root, args.root)):
            if published:
                same = mine == published.lower()
                print(f"{name} {'MATCHES' if same else 'DOES NOT MATCH'} the published {published}")
                ok = ok and same
        if wanted:
            if found:
                for number, line in found:
                    print(f"your receipt: line {number}: {line}")
            else:
                print(f"your receipt ({wanted}) is not in the file")
                ok = False
    if not args.file and not args.proof:
        parser.error("give the file, a proof, or both")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
