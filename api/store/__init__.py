"""The durable store: the event journal, contact legs, configuration, customers, cases, messages.

- ``database``: ``Database``, one async engine per URL (SQLite WAL + FULL sync, or a
  small PostgreSQL pool with short timeouts), ``ping`` for /readyz.
- ``migrate``: ``upgrade(url)`` runs the Alembic migrations in ``migrations/``.
- ``schema``: the tables.
- ``journal``: ``EventJournal``, group commit of the event stream, spooling through outages.
- ``contacts``: the pure fold from events to contact legs.
- ``spool``: journal records and the spool file; ``batches``: writing a batch.
- ``configuration``: saved queues, agents and settings.
- ``directory``: customers, phone numbers, cases, screen pops.
- ``voicemails``: callers' messages (the rows; the audio is in files).
"""
