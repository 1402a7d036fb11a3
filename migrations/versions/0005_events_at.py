"""An index on the event log's time, for reports over a time range.

A report reads the events of a range (``api.store.reports``); without this
index that is a scan of the whole log. Events come in time order (``at`` is
the engine's clock), so each insert lands at the right edge of the index: a
small cost on the write path.

Revision ID: 0005_events_at
Revises: 0004_voicemail
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005_events_at"
down_revision: str | None = "0004_voicemail"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_events_at", "events", ["at"])


def downgrade() -> None:
    op.drop_index("ix_events_at", table_name="events")
