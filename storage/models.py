"""Imports every package's tables so that metadata (and Alembic) sees them all."""

from __future__ import annotations

from sqlmodel import SQLModel

import accounts.models  # noqa: F401
import audit.models  # noqa: F401
import campaigns.models  # noqa: F401
import nominations.models  # noqa: F401
import notifications.models  # noqa: F401
import objections.models  # noqa: F401
import stages.models  # noqa: F401
import voting.models  # noqa: F401
import workflow.models  # noqa: F401

metadata = SQLModel.metadata
