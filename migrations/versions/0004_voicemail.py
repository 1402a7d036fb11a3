"""Callers' messages left in the IVR's voicemail: one row per message, the audio in a file.

Revision ID: 0004_voicemail
Revises: 0003_sip_ha1
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_voicemail"
down_revision: str | None = "0003_sip_ha1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# INTEGER PRIMARY KEY is SQLite's rowid itself.
RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "voicemails",
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("mailbox", sa.Text(), nullable=False),
        sa.Column("call_id", sa.Text(), nullable=False),
        sa.Column("ani", sa.Text(), nullable=False),
        sa.Column("dnis", sa.Text(), nullable=False),
        sa.Column("language", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("seconds", sa.Double(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("heard_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_voicemails"),
        sa.UniqueConstraint("path", name="uq_voicemails_path"),
    )
    op.create_index("ix_voicemails_mailbox_id", "voicemails", ["mailbox", "id"])


def downgrade() -> None:
    op.drop_index("ix_voicemails_mailbox_id", table_name="voicemails")
    op.drop_table("voicemails")
