"""PostgreSQL: one function that writes a whole journal batch, so a batch is one round trip.

The journal's writer spent most of its time on round trips (BEGIN, one
statement per kind of row, COMMIT: six or seven per batch, each one a wake-up
of the event loop and a few system calls). ``acd_write_batch`` takes the
batch as four JSON arrays and applies the very statements the portable writer
(``api.store.batches.write_records``) runs, in the same order, as one
statement: atomic without BEGIN and COMMIT, and idempotent like them.

- ``events``: ``[seq, at, type, entity, entity_id, from_state, to_state, data]``
- ``legs``: ``[call_id, leg, queue_id, customer_id, ani, dnis, data, arrived_at,
  enqueued_at, answered_at, agent_id]``
- ``changes``: ``{"c": call_id, "l": leg, "v": {column: value}}``, one per leg,
  ``v`` only with the columns it sets (among the eight a leg's life changes)
- ``wraps``: ``{"c": call_id, "a": agent_id, "l": leg or null, "d": disposition,
  "r": resolved, "t": at}``, one per (call, agent, leg): null is the agent's
  latest leg of the call

SQLite has no such function and needs none (its writer is in-process).

Revision ID: 0002_journal_batch_function
Revises: 0001_initial
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002_journal_batch_function"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE OR REPLACE FUNCTION acd_write_batch(events json, legs json, changes json, wraps json)
RETURNS void LANGUAGE plpgsql AS $body$
BEGIN
    INSERT INTO events (seq, at, type, entity, entity_id, from_state, to_state, data)
    SELECT (e->>0)::bigint, (e->>1)::float8, e->>2, e->>3, e->>4, e->>5, e->>6, e->7
    FROM json_array_elements(events) AS e
    ON CONFLICT (seq) DO NOTHING;

    INSERT INTO contacts (call_id, leg, queue_id, customer_id, ani, dnis, data,
                          arrived_at, enqueued_at, answered_at, agent_id)
    SELECT l->>0, (l->>1)::int, l->>2, l->>3, l->>4, l->>5, l->6,
           (l->>7)::float8, (l->>8)::float8, (l->>9)::float8, l->>10
    FROM json_array_elements(legs) AS l
    ON CONFLICT (call_id, leg) DO NOTHING;

    UPDATE contacts AS c SET
        customer_id = CASE WHEN u.v ? 'customer_id' THEN u.v->>'customer_id' ELSE c.customer_id END,
        queue_id = CASE WHEN u.v ? 'queue_id' THEN u.v->>'queue_id' ELSE c.queue_id END,
        enqueued_at = CASE WHEN u.v ? 'enqueued_at'
                           THEN (u.v->>'enqueued_at')::float8 ELSE c.enqueued_at END,
        answered_at = CASE WHEN u.v ? 'answered_at'
                           THEN (u.v->>'answered_at')::float8 ELSE c.answered_at END,
        agent_id = CASE WHEN u.v ? 'agent_id' THEN u.v->>'agent_id' ELSE c.agent_id END,
        ended_at = CASE WHEN u.v ? 'ended_at' THEN (u.v->>'ended_at')::float8 ELSE c.ended_at END,
        outcome = CASE WHEN u.v ? 'outcome' THEN u.v->>'outcome' ELSE c.outcome END,
        ended_reason = CASE WHEN u.v ? 'ended_reason'
                            THEN u.v->>'ended_reason' ELSE c.ended_reason END
    FROM (SELECT x->>'c' AS call_id, (x->>'l')::int AS leg, (x->'v')::jsonb AS v
          FROM json_array_elements(changes) AS x) AS u
    WHERE c.call_id = u.call_id AND c.leg = u.leg;

    UPDATE contacts AS c SET
        disposition = w->>'d', resolved = (w->>'r')::boolean, wrap_up_ended_at = (w->>'t')::float8
    FROM json_array_elements(wraps) AS w
    WHERE c.call_id = w->>'c' AND c.agent_id = w->>'a'
      AND c.leg = COALESCE((w->>'l')::int,
                           (SELECT max(o.leg) FROM contacts AS o
                            WHERE o.call_id = w->>'c' AND o.agent_id = w->>'a'));
END
$body$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS acd_write_batch(json, json, json, json)")
