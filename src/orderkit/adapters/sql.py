"""The SQL shared by the relational adapters (SQLite now, PostgreSQL later).

Statements use named parameters (``:name``) and only what SQLite 3.35+ and
PostgreSQL both understand (``ON CONFLICT``, ``RETURNING``); a driver with
another parameter style converts them with :func:`pyformat`. Times in the
outbox are seconds since the epoch (REAL / DOUBLE PRECISION) so that leases
and retry times compare as numbers.
"""

from __future__ import annotations

import re

SCHEMA_TABLE = "orderkit_schema"

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: orders, their idempotency keys, the outbox, per-handler processing, dead letters
    (
        f"CREATE TABLE {SCHEMA_TABLE} (version INTEGER NOT NULL)",
        """CREATE TABLE orders (
            id TEXT PRIMARY KEY,
            version INTEGER NOT NULL,
            state TEXT NOT NULL,
            customer_id TEXT NOT NULL,
            placed_at TEXT NOT NULL,
            idempotency_key TEXT UNIQUE,
            document TEXT NOT NULL
        )""",
        "CREATE INDEX orders_by_state ON orders (state, placed_at, id)",
        "CREATE INDEX orders_by_customer ON orders (customer_id, placed_at, id)",
        "CREATE INDEX orders_by_placed_at ON orders (placed_at, id)",
        """CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY,
            aggregate_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            available_at DOUBLE PRECISION NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            lease_owner TEXT,
            lease_until DOUBLE PRECISION,
            dispatched_at DOUBLE PRECISION
        )""",
        "CREATE INDEX outbox_pending ON outbox (seq) WHERE dispatched_at IS NULL",
        "CREATE INDEX outbox_by_aggregate ON outbox (aggregate_id, seq)",
        """CREATE TABLE processed_events (
            handler TEXT NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (handler, seq)
        )""",
        """CREATE TABLE dead_letters (
            handler TEXT NOT NULL,
            seq INTEGER NOT NULL,
            error TEXT NOT NULL,
            failed_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (handler, seq)
        )""",
    ),
)
"""Ordered migrations; migration ``n`` (1-based) brings the schema to version ``n``."""

INSERT_ORDER = """
INSERT INTO orders (id, version, state, customer_id, placed_at, idempotency_key, document)
VALUES (:id, :version, :state, :customer_id, :placed_at, :idempotency_key, :document)
"""
UPDATE_ORDER = """
UPDATE orders SET version = :version, state = :state, document = :document
WHERE id = :id AND version = :expected
"""
SELECT_ORDER = "SELECT version, document FROM orders WHERE id = :id"
SELECT_ORDER_BY_KEY = "SELECT version, document FROM orders WHERE idempotency_key = :key"
ORDER_EXISTS = "SELECT 1 FROM orders WHERE id = :id"
LIST_ORDERS = """
SELECT version, document FROM orders
WHERE (:state IS NULL OR state = :state) AND (:customer_id IS NULL OR customer_id = :customer_id)
ORDER BY placed_at, id LIMIT :limit OFFSET :offset
"""

INSERT_EVENT = """
INSERT INTO outbox (aggregate_id, event_type, payload, created_at, available_at)
VALUES (:aggregate_id, :event_type, :payload, :now, :now)
"""
CLAIM_EVENTS = """
SELECT seq, aggregate_id, payload, attempts FROM outbox o
WHERE o.dispatched_at IS NULL
  AND o.available_at <= :now
  AND (o.lease_until IS NULL OR o.lease_until <= :now)
  AND NOT EXISTS (
    SELECT 1 FROM outbox p
    WHERE p.aggregate_id = o.aggregate_id AND p.seq < o.seq AND p.dispatched_at IS NULL
      AND (p.available_at > :now OR (p.lease_until IS NOT NULL AND p.lease_until > :now))
  )
ORDER BY seq LIMIT :limit
"""
LEASE_EVENT = "UPDATE outbox SET lease_owner = :worker, lease_until = :until WHERE seq = :seq"
RELEASE_EVENT = """
UPDATE outbox SET lease_owner = NULL, lease_until = NULL
WHERE seq = :seq AND lease_owner = :worker
"""
FINISH_EVENT = """
UPDATE outbox SET dispatched_at = :now, lease_owner = NULL, lease_until = NULL
WHERE seq = :seq AND lease_owner = :worker
"""
RENEW_LEASE = """
UPDATE outbox SET lease_until = :until
WHERE seq = :seq AND lease_owner = :worker AND dispatched_at IS NULL
"""
SET_ASIDE_EVENT = """
UPDATE outbox SET attempts = attempts + 1, available_at = :until,
                  lease_owner = NULL, lease_until = NULL
WHERE seq = :seq
"""
POSTPONE_EVENT = """
UPDATE outbox SET attempts = attempts + 1, available_at = :until,
                  lease_owner = NULL, lease_until = NULL
WHERE seq = :seq AND lease_owner = :worker
"""
IS_PROCESSED = "SELECT 1 FROM processed_events WHERE handler = :handler AND seq = :seq"
MARK_PROCESSED = """
INSERT INTO processed_events (handler, seq) VALUES (:handler, :seq)
ON CONFLICT (handler, seq) DO NOTHING
"""
UPSERT_DEAD_LETTER = """
INSERT INTO dead_letters (handler, seq, error, failed_at) VALUES (:handler, :seq, :error, :at)
ON CONFLICT (handler, seq) DO UPDATE SET error = excluded.error, failed_at = excluded.failed_at
"""
LIST_DEAD_LETTERS = """
SELECT d.handler, d.seq, o.payload, d.error, d.failed_at
FROM dead_letters d JOIN outbox o ON o.seq = d.seq ORDER BY d.seq, d.handler
"""
DELETE_DEAD_LETTER = "DELETE FROM dead_letters WHERE handler = :handler AND seq = :seq"
COUNT_PENDING = "SELECT COUNT(*) FROM outbox WHERE dispatched_at IS NULL"

_NAMED = re.compile(r"(?<!:):([a-z_]+)")


def pyformat(statement: str) -> str:
    """Rewrite ``:name`` parameters as ``%(name)s`` for pyformat drivers (psycopg)."""
    return _NAMED.sub(r"%(\1)s", statement)
