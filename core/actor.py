"""Who did it: recorded with every change."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ActorKind(StrEnum):
    USER = "user"  # a committee member
    APPLICANT = "applicant"  # the nominee or nominating unit, through their link
    PUBLIC = "public"  # somebody on the public pages (an objection)
    SYSTEM = "system"  # the scheduler, the simulator, the CLI without a user


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    name: str
    user_id: int | None = None
    role: str | None = None

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.name}"

    @classmethod
    def system(cls, name: str = "scheduler") -> Actor:
        return cls(ActorKind.SYSTEM, name)

    @classmethod
    def applicant(cls, name: str = "applicant") -> Actor:
        return cls(ActorKind.APPLICANT, name)
