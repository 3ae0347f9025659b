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
    from notifications.service import install as install_notifications

    installers.append(install_notifications)
    installers.append(install_voting)
    return installers


def install_voting() -> None:
    """voting: freeze the tally inside the voting close step; drop the cached voting window and
    candidate list when voting opens or the calendar changes. Wired here because voting sits below
    stages and may not import it."""
    from campaigns import service as campaigns
    from config.campaign import StageName
    from stages import jobs
    from voting import tally, windows

    jobs.on_stage_close(StageName.VOTING)(tally.freeze)
    jobs.on_stage_open(StageName.VOTING)(windows.clear_caches_at_open)
    campaigns.on_calendar_changed(windows.clear_caches)
