"""Every package's tables in one metadata: what Alembic compares and migrates, and what
``storage.migrate`` is handed (storage itself knows no domain table)."""

from __future__ import annotations

from sqlmodel import SQLModel

import accounts.models  # noqa: F401
import audit.models  # noqa: F401
import campaigns.decisions  # noqa: F401
import campaigns.models  # noqa: F401
import nominations.models  # noqa: F401
import notifications.models  # noqa: F401
import objections.models  # noqa: F401
import stages.models  # noqa: F401
import voting.models  # noqa: F401
import workflow.models  # noqa: F401

metadata = SQLModel.metadata
