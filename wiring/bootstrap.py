"""Wiring done once per process (CLI, web app, workers): plug side effects into the one door
for state changes. Each package that reacts to transitions adds its installer here."""

from __future__ import annotations

from collections.abc import Callable

_done = False


def bootstrap() -> None:
    global _done
    if _done:
        return
    _done = True
    for install in _installers():
        install()


def _installers() -> list[Callable[[], None]]:
    installers: list[Callable[[], None]] = []
    # notifications: queue the applicant's mail in the same transaction as the change
    from notifications.transition_mail import install as install_notifications

    installers.append(install_notifications)
    # voting: freeze the tally inside the voting close step
    from voting.service import install as install_voting

    installers.append(install_voting)
    return installers
