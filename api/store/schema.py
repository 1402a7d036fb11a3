"""The tables of the durable store, as SQLAlchemy Core metadata.

The migrations in ``migrations/`` create exactly these tables (a test compares
the two); this module is what the queries are written against. Times are epoch
seconds in a DOUBLE, like the core's ``at``. JSON columns are plain JSON, not
JSONB, so an event's ``data`` comes back with its keys in the order they were
written and a replayed message is the one first sent.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
)

# Deterministic constraint names, so a later migration can drop what it names.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# On SQLite an INTEGER PRIMARY KEY is the rowid itself: no second b-tree to keep.
RowId = BigInteger().with_variant(Integer(), "sqlite")

events = Table(
    "events",
    metadata,
    Column("seq", RowId, primary_key=True, autoincrement=False),  # the core's global seq
    Column("at", Double, nullable=False),
    Column("type", Text, nullable=False),  # cti.wire.EVENT_TYPES
    Column("entity", Text, nullable=False),  # cti.wire.ENTITIES
    Column("entity_id", Text, nullable=False),
    Column("from_state", Text),
    Column("to_state", Text, nullable=False),
    Column("data", JSON, nullable=False),  # cti.wire.event_data
    # seq last: "the latest event of this call" is one step down the index
    Index(None, "entity", "entity_id", "seq"),
    Index(None, "at"),  # reports over a time range (migration 0004)
)

contacts = Table(
    "contacts",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("call_id", Text, nullable=False),
    Column("leg", Integer, nullable=False),  # 1, then one more per transfer
    Column("queue_id", Text, nullable=False),
    Column("customer_id", Text),
    Column("ani", Text, nullable=False),
    Column("dnis", Text, nullable=False),
    Column("data", JSON, nullable=False),
    Column("arrived_at", Double, nullable=False),  # when this leg began
    Column("enqueued_at", Double),
    Column("answered_at", Double),
    Column("agent_id", Text),
    Column("ended_at", Double),
    Column("outcome", Text),  # acd.states.Outcome values, "transferred", "interrupted"
    Column("ended_reason", Text),
    Column("disposition", Text),
    Column("resolved", Boolean),
    Column("wrap_up_ended_at", Double),
    UniqueConstraint("call_id", "leg"),
    Index(None, "customer_id", "arrived_at"),
    Index(None, "arrived_at"),
)
# Only the live legs: it stays small however long the history grows.
Index(
    "ix_contacts_live",
    contacts.c.call_id,
    sqlite_where=contacts.c.ended_at.is_(None),
    postgresql_where=contacts.c.ended_at.is_(None),
)

queues = Table(
    "queues",
    metadata,
    Column("id", Text, primary_key=True),
    Column("config", JSON, nullable=False),
    Column("updated_at", Double, nullable=False),
)

agents = Table(
    "agents",
    metadata,
    Column("id", Text, primary_key=True),
    Column("config", JSON, nullable=False),
    Column("name", Text, nullable=False),
    Column("sip_username", Text, unique=True),  # the digest username of their phone
    Column("sip_ha1", JSON),  # {"SHA-256": H(user:realm:password), "MD5": ...}, never a password
    Column("updated_at", Double, nullable=False),
)

settings = Table(
    "settings",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", JSON, nullable=False),
)

customers = Table(
    "customers",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("email", Text),
    Column("attributes", JSON, nullable=False),
    Column("dedicated_agent_id", Text),
    Column("created_at", Double, nullable=False),
)

phone_numbers = Table(
    "phone_numbers",
    metadata,
    Column("number", Text, primary_key=True),
    Column(
        "customer_id",
        Text,
        ForeignKey("customers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Index(None, "customer_id"),
)

CASE_STATUSES = ("open", "pending", "closed")

cases = Table(
    "cases",
    metadata,
    Column("id", Text, primary_key=True),
    Column(
        "customer_id",
        Text,
        ForeignKey("customers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("subject", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("notes", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    CheckConstraint("status IN ('open', 'pending', 'closed')", name="status"),
    Index(None, "customer_id", "updated_at"),
)

# Callers' messages (ivr.messages): the audio is a file, the row says whose and where.
voicemails = Table(
    "voicemails",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),  # newest last
    Column("mailbox", Text, nullable=False),
    Column("call_id", Text, nullable=False),
    Column("ani", Text, nullable=False),
    Column("dnis", Text, nullable=False),
    Column("language", Text),
    Column("data", JSON, nullable=False),  # what the IVR collected
    Column("path", Text, nullable=False, unique=True),  # relative to the voicemail directory
    Column("seconds", Double, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("heard_at", Double),  # None: nobody has marked it heard
    Index(None, "mailbox", "id"),
)
