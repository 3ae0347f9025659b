"""Shared fixtures: a database (SQLite and PostgreSQL), the campaign, the clock.

PostgreSQL: one scratch database per test process, migrated with Alembic, emptied between tests.
Where the server is unreachable the PostgreSQL half of the suite is skipped, except under
``JINGONG_REQUIRE_POSTGRES=1`` (CI), where it fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, create_engine, text

from accounts.throttle import reset_throttles
from campaigns.models import Campaign
from config.campaign import CampaignSpec, load_campaign
from core.clock import ManualClock, use_clock
from stages import service as stages
from storage.db import UnitOfWork, make_engine, unit_of_work
from storage.migrate import create_all, upgrade
from wiring.tables import metadata

SHANGHAI = ZoneInfo("Asia/Shanghai")
PG_ADMIN_URL = os.environ.get("JINGONG_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def beijing(*args: int) -> datetime:
    """An instant given in Beijing wall-clock time."""
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


def _pg_available() -> str | None:
    try:
        eng = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with eng.connect() as conn:
            conn.execute(text("select 1"))
        eng.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not here"
        return str(exc).splitlines()[0]


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A scratch PostgreSQL database for this test process, migrated to head."""
    problem = _pg_available()
    if problem:
        if os.environ.get("JINGONG_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL required but unreachable: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    name = f"jingong_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(url)
    upgrade(engine, metadata)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_pg(engine: Engine) -> None:
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'jingong.db'}")
    create_all(engine, metadata)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    _truncate_pg(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Both databases: tests using this run twice."""
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    return request.getfixturevalue(name)


@pytest.fixture(autouse=True)
def _fresh_login_throttles() -> Iterator[None]:
    """Per-address login counts and stand-in locks live in the process: none leak between tests."""
    reset_throttles()
    yield
    reset_throttles()


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    """Time stands still at 2021-05-01 10:00 Beijing (nomination stage open) until moved."""
    manual = ManualClock(beijing(2021, 5, 1, 10, 0))
    with use_clock(manual):
        yield manual


@pytest.fixture
def spec() -> CampaignSpec:
    return load_campaign()


@pytest.fixture
def uow(engine: Engine) -> Callable[[], AbstractContextManager[UnitOfWork]]:
    return lambda: unit_of_work(engine)


@pytest.fixture
def campaign(engine: Engine, spec: CampaignSpec, clock: ManualClock) -> Campaign:
    with unit_of_work(engine) as session:
        return stages.load_campaign(session, spec)


@pytest.fixture
def mail_listener() -> Iterator[None]:
    """The transition mails queued, as wiring.bootstrap does in every process (removed after)."""
    from notifications import transition_mail, unit_mail
    from workflow import hooks

    installed = transition_mail.queue_transition_mail in hooks._listeners
    unit_installed = unit_mail.queue_unit_mail in hooks._listeners
    transition_mail.install()
    unit_mail.install()
    yield
    if not installed:
        transition_mail.uninstall()
    if not unit_installed:
        unit_mail.uninstall()
