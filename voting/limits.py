"""The voting's three rate limits, kept in the process (one app instance): per address, per voter,
per address asking for codes (``core.limits.RateLimiter``)."""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import Settings, get_settings
from core.limits import RateLimiter


@dataclass
class Limiters:
    address: RateLimiter
    voter: RateLimiter
    codes: RateLimiter


_limiters: dict[tuple[int, int], Limiters] = {}


def limiters(settings: Settings | None = None) -> Limiters:
    settings = settings or get_settings()
    key = (settings.vote_rate_per_address_minute, settings.vote_rate_per_voter_minute)
    found = _limiters.get(key)
    if found is None:
        found = _limiters[key] = Limiters(
            address=RateLimiter(settings.vote_rate_per_address_minute, what="requests from this address",
                                what_zh="来自此网络地址的请求"),
            voter=RateLimiter(settings.vote_rate_per_voter_minute, what="votes from this voter", what_zh="投票"),
            codes=RateLimiter(max(1, settings.vote_rate_per_address_minute // 4) if key[0] else 0,
                              what="code requests from this address", what_zh="获取验证码"),
        )
    return found


def reset_limits() -> None:
    for found in _limiters.values():
        for limiter in (found.address, found.voter, found.codes):
            limiter.reset()
