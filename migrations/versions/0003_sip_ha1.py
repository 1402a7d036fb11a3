"""Agents' SIP credentials as digest hashes, not passwords; one agent per SIP username.

The registrar needs only H(username:realm:password) per algorithm (RFC 7616
§3.4.2; SHA-256 and MD5 for RFC 8760), so that is what is kept: a JSON
object of algorithm name to hash in ``sip_ha1``. The plain ``sip_password``
column is dropped (nothing was ever served from it).

Revision ID: 0003_sip_ha1
Revises: 0002_journal_batch_function
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_sip_ha1"
down_revision: str | None = "0002_journal_batch_function"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:  # SQLite: the table is copied
        batch.add_column(sa.Column("sip_ha1", sa.JSON(), nullable=True))
        batch.drop_column("sip_password")
        batch.create_unique_constraint("uq_agents_sip_username", ["sip_username"])


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_constraint("uq_agents_sip_username", type_="unique")
        batch.drop_column("sip_ha1")
        batch.add_column(sa.Column("sip_password", sa.Text(), nullable=True))
