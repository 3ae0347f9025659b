"""The voting's three rate limits: per address, per voter, per address asking for codes
(``core.limits.RateLimiter``), shared by every app instance through Redis when REDIS_URL is set."""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import Settings, get_settings
from core.limits import RateLimiter


@dataclass
class Limiters:
    address: RateLimiter
    voter: RateLimiter
    codes: RateLimiter


_limiters: dict[tuple[int, int, str | None], Limiters] = {}


def limiters(settings: Settings | None = None) -> Limiters:
    settings = settings or get_settings()
    key = (settings.vote_rate_per_address_minute, settings.vote_rate_per_voter_minute, settings.redis_url)
    url = settings.redis_url
    found = _limiters.get(key)
    if found is None:
        found = _limiters[key] = Limiters(
            address=RateLimiter(settings.vote_rate_per_address_minute, what="requests from this address",
                                what_zh="来自此网络地址的请求", storage_url=url, scope="vote-address"),
            voter=RateLimiter(settings.vote_rate_per_voter_minute, what="votes from this voter", what_zh="投票",
                              storage_url=url, scope="vote-voter"),
            codes=RateLimiter(max(1, settings.vote_rate_per_address_minute // 4) if key[0] else 0,
                              what="code requests from this address", what_zh="获取验证码",
                              storage_url=url, scope="vote-codes"),
        )
    return found


def reset_limits() -> None:
    for found in _limiters.values():
        for limiter in (found.address, found.voter, found.codes):
            limiter.reset()
