"""A Redis that stops answering is reported once in a while, not at every request."""

from __future__ import annotations

import logging

import pytest

from storage import public_version


def test_a_failing_store_is_reported_once_per_interval(caplog: pytest.LogCaptureFixture,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter([1000.0, 1001.0, 1029.9, 1030.0])
    monkeypatch.setattr(public_version.time, "monotonic", lambda: next(ticks))
    monkeypatch.setattr(public_version, "_warned_at", {})
    with caplog.at_level(logging.WARNING, logger=public_version.log.name):
        for _ in range(4):
            public_version._warn("redis down: %s", ConnectionError("refused"))
    assert [r.getMessage() for r in caplog.records] == ["redis down: refused", "redis down: refused"]
