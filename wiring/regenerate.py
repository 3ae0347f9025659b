"""Developer tool: regenerate the initial migration from the models while nothing is deployed.

    python -m wiring.regenerate
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command

from storage.db import make_engine
from storage.migrate import MIGRATIONS, alembic_config
from wiring.tables import metadata


def main() -> None:
    for old in (MIGRATIONS / "versions").glob("0001_*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'gen.db'}")
        command.revision(alembic_config(engine, metadata), message="initial schema", autogenerate=True, rev_id="0001")
    for new in (MIGRATIONS / "versions").glob("0001_*.py"):
        new.write_text("\n".join(line.rstrip() for line in new.read_text().splitlines()) + "\n")


if __name__ == "__main__":
    main()
