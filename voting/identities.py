"""Who a voter is: the canonical address they verify, their client address hashed with the secret
pepper, and the signed token that carries their voter id from one request to the next."""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import re

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

from config.secrets import pepper
from config.settings import Settings, get_settings
from core.errors import NotAuthenticated, ValidationFailed
from nominations.service import EMAIL_RE
from voting.models import IdentityKind

#: a mainland mobile number (landlines receive no SMS codes)
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")


class NotVerified(NotAuthenticated):
    """No valid voter token: the page asks the voter to verify."""


@functools.lru_cache(maxsize=65536)
def address_hashes(ip: str, key: bytes) -> tuple[str, str]:
    """The hashed address and hashed network of a client (a crowd repeats its addresses)."""
    address = hmac.new(key, f"ip:{ip}".encode(), hashlib.sha256).hexdigest()[:40]
    network = hmac.new(key, f"net:{network_of(ip)}".encode(), hashlib.sha256).hexdigest()[:40]
    return address, network


def network_of(ip: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) an address belongs to; the text itself when it is no address."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def normalise(kind: IdentityKind | str, address: str) -> tuple[IdentityKind, str]:
    """The canonical form of an email address or a mainland mobile number, or ValidationFailed."""
    try:
        kind = IdentityKind(kind)
    except ValueError:
        raise ValidationFailed(f"kind must be 'email' or 'phone', not {kind!r}",
                               message_zh="请选择邮箱或手机号验证") from None
    text = (address or "").strip()
    if kind is IdentityKind.EMAIL:
        text = text.lower()
        if not EMAIL_RE.match(text) or len(text) > 254:
            raise ValidationFailed(f"{address!r} is not an email address", message_zh="请填写正确的邮箱地址")
        return kind, text
    digits = re.sub(r"[\s-]", "", text)
    digits = digits.removeprefix("+86").removeprefix("0086")
    if not PHONE_RE.match(digits):
        raise ValidationFailed(f"{address!r} is not a mainland mobile number (11 digits, starting with 1)",
                               message_zh="请填写正确的11位手机号码")
    return kind, digits


def _signer(settings: Settings | None = None) -> TimestampSigner:
    return _signer_for(pepper(settings))


@functools.lru_cache(maxsize=8)
def _signer_for(key: bytes) -> TimestampSigner:
    return TimestampSigner(key, salt="jingong-voter")


def issue_token(campaign_id: int, voter_id: int, settings: Settings | None = None) -> str:
    return _signer(settings).sign(f"{campaign_id}.{voter_id}").decode("ascii")


def voter_of_token(token: str | None, campaign_id: int, settings: Settings | None = None) -> int:
    """The voter id a signed token carries, or NotVerified telling the voter to verify again."""
    settings = settings or get_settings()
    if not token:
        raise NotVerified("verify an email address or phone number first", message_zh="请先验证邮箱或手机号")
    try:
        value = _signer(settings).unsign(token, max_age=settings.voter_session_seconds).decode("ascii")
    except SignatureExpired:
        raise NotVerified("the voter session expired; verify again", message_zh="验证已过期，请重新验证") from None
    except BadSignature:
        raise NotVerified("the voter token is not valid; verify again", message_zh="验证信息无效，请重新验证") from None
    cid, _, vid = value.partition(".")
    if int(cid) != campaign_id:
        raise NotVerified("the voter token belongs to another campaign", message_zh="验证信息无效，请重新验证")
    return int(vid)
