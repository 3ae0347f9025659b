"""The per-process wiring: calling it again restores what was removed and doubles nothing."""

from __future__ import annotations

from notifications import transition_mail, unit_mail
from stages import jobs
from wiring import bootstrap
from workflow import hooks


def test_bootstrap_again_restores_a_removed_listener_without_doubling() -> None:
    bootstrap.bootstrap()
    before = list(hooks._listeners)
    close_before = {stage: list(fns) for stage, fns in jobs._close_listeners.items()}
    transition_mail.uninstall()  # as a test fixture's teardown may do after the app wired itself
    assert transition_mail.queue_transition_mail not in hooks._listeners
    bootstrap.bootstrap()  # a later app in the same process
    assert transition_mail.queue_transition_mail in hooks._listeners
    assert unit_mail.queue_unit_mail in hooks._listeners
    assert sorted(map(id, hooks._listeners)) == sorted(map(id, before))  # each once
    assert {stage: list(fns) for stage, fns in jobs._close_listeners.items()} == close_before
