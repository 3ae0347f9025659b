"""Vote receipts: a short random code given to the voter with an accepted vote, tied to no identity.
Only its hash is stored, and that hash is public (the published vote list carries it), so that a
voter can find their row from the code alone:

    receipt_hash = SHA-256( "jingong-receipt-v1\\n" + the code in upper case, without spaces or dashes )  (hex)

The code has 12 characters of Crockford base 32 (60 random bits): guessing one that exists is
hopeless, and one found tells only a vote's candidate, day and status, never who cast it.
"""

from __future__ import annotations

import hashlib
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
LENGTH = 12
DOMAIN = b"jingong-receipt-v1\n"


def new_code() -> str:
    """A fresh code, shown as XXXX-XXXX-XXXX."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalise(code: str) -> str | None:
    """The code as hashed, or None if it cannot be one (lenient: spaces, dashes, lower case, O for 0)."""
    cleaned = code.strip().upper().replace("-", "").replace(" ", "").replace("O", "0").replace("I", "1") \
        .replace("L", "1")
    if len(cleaned) != LENGTH or any(ch not in ALPHABET for ch in cleaned):
        return None
    return cleaned


def public_hash(code: str) -> str | None:
    cleaned = normalise(code)
    return None if cleaned is None else hashlib.sha256(DOMAIN + cleaned.encode()).hexdigest()
