"""The SQL shared by the relational adapters (SQLite now, PostgreSQL later).

Statements use named parameters (``:name``) and only what SQLite 3.35+ and
PostgreSQL both understand (``ON CONFLICT``, ``RETURNING``); a driver with
another parameter style converts them with :func:`pyformat`. Times in the
outbox are seconds since the epoch (REAL / DOUBLE PRECISION) so that leases
and retry times compare as numbers.
"""

from __future__ import annotations

import re

from attrs import frozen

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
    # 2: inventory: locations, stock per (sku, location), reservations, the movement ledger
    (
        """CREATE TABLE locations (
            id TEXT PRIMARY KEY,
            document TEXT NOT NULL,
            priority INTEGER NOT NULL
        )""",
        """CREATE TABLE stock (
            sku TEXT NOT NULL,
            location TEXT NOT NULL REFERENCES locations (id),
            on_hand INTEGER NOT NULL CHECK (on_hand >= 0),
            reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
            backorder_limit INTEGER,
            PRIMARY KEY (sku, location)
        )""",
        """CREATE TABLE reservations (
            order_id TEXT NOT NULL,
            line_id TEXT NOT NULL,
            sku TEXT NOT NULL,
            location TEXT NOT NULL,
            quantity INTEGER NOT NULL CHECK (quantity > 0),
            expires_at DOUBLE PRECISION,
            shipment_id TEXT,
            PRIMARY KEY (order_id, line_id, sku, location)
        )""",
        "CREATE INDEX reservations_by_stock ON reservations (sku, location, expires_at)",
        """CREATE TABLE movements (
            seq INTEGER PRIMARY KEY,
            sku TEXT NOT NULL,
            location TEXT NOT NULL,
            kind TEXT NOT NULL,
            quantity INTEGER NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            reason TEXT NOT NULL,
            order_id TEXT,
            line_id TEXT
        )""",
        "CREATE INDEX movements_by_stock ON movements (sku, location, seq)",
    ),
    # 3: payments, one JSON document each, found by order or by gateway authorization
    (
        """CREATE TABLE payments (
            id TEXT PRIMARY KEY,
            version INTEGER NOT NULL,
            order_id TEXT NOT NULL,
            state TEXT NOT NULL,
            authorization_id TEXT UNIQUE,
            created_at TEXT NOT NULL,
            document TEXT NOT NULL
        )""",
        "CREATE INDEX payments_by_order ON payments (order_id, created_at, id)",
    ),
    # 4: shipments, one JSON document each, found by order, state or tracking number
    (
        """CREATE TABLE shipments (
            id TEXT PRIMARY KEY,
            version INTEGER NOT NULL,
            order_id TEXT NOT NULL,
            state TEXT NOT NULL,
            tracking_number TEXT UNIQUE,
            created_at TEXT NOT NULL,
            document TEXT NOT NULL
        )""",
        "CREATE INDEX shipments_by_order ON shipments (order_id, created_at, id)",
        "CREATE INDEX shipments_by_state ON shipments (state, created_at, id)",
    ),
    # 5: return requests and customer inquiries, one JSON document each, by order or state
    tuple(
        statement
        for table in ("returns", "inquiries")
        for statement in (
            f"""CREATE TABLE {table} (
            id TEXT PRIMARY KEY,
            version INTEGER NOT NULL,
            order_id TEXT NOT NULL,
            state TEXT NOT NULL,
            created_at TEXT NOT NULL,
            document TEXT NOT NULL
        )""",
            f"CREATE INDEX {table}_by_order ON {table} (order_id, created_at, id)",
            f"CREATE INDEX {table}_by_state ON {table} (state, created_at, id)",
        )
    ),
    # 6: the head of each order's queue of undelivered events, found by index (claims)
    (
        "CREATE INDEX outbox_pending_by_aggregate ON outbox (aggregate_id, seq) "
        "WHERE dispatched_at IS NULL",
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
WHERE (CAST(:state AS TEXT) IS NULL OR state = :state)
  AND (CAST(:customer_id AS TEXT) IS NULL OR customer_id = :customer_id)
ORDER BY placed_at, id LIMIT :limit OFFSET :offset
"""

INSERT_PAYMENT = """
INSERT INTO payments (id, version, order_id, state, authorization_id, created_at, document)
VALUES (:id, :version, :order_id, :state, :authorization_id, :created_at, :document)
"""
UPDATE_PAYMENT = """
UPDATE payments SET version = :version, state = :state, authorization_id = :authorization_id,
                    document = :document
WHERE id = :id AND version = :expected
"""
SELECT_PAYMENT = "SELECT version, document FROM payments WHERE id = :id"
PAYMENT_EXISTS = "SELECT 1 FROM payments WHERE id = :id"
PAYMENTS_OF_ORDER = """
SELECT version, document FROM payments WHERE order_id = :order_id ORDER BY created_at, id
"""
PAYMENT_BY_AUTHORIZATION = """
SELECT version, document FROM payments WHERE authorization_id = :authorization_id
"""

INSERT_SHIPMENT = """
INSERT INTO shipments (id, version, order_id, state, tracking_number, created_at, document)
VALUES (:id, :version, :order_id, :state, :tracking_number, :created_at, :document)
"""
UPDATE_SHIPMENT = """
UPDATE shipments SET version = :version, state = :state, tracking_number = :tracking_number,
                     document = :document
WHERE id = :id AND version = :expected
"""
SELECT_SHIPMENT = "SELECT version, document FROM shipments WHERE id = :id"
SHIPMENT_EXISTS = "SELECT 1 FROM shipments WHERE id = :id"
SHIPMENTS_OF_ORDER = """
SELECT version, document FROM shipments WHERE order_id = :order_id ORDER BY created_at, id
"""
SHIPMENT_BY_TRACKING = """
SELECT version, document FROM shipments WHERE tracking_number = :tracking_number
"""
LIST_SHIPMENTS = """
SELECT version, document FROM shipments WHERE (CAST(:state AS TEXT) IS NULL OR state = :state)
ORDER BY created_at, id LIMIT :limit OFFSET :offset
"""


@frozen
class DocumentStatements:
    """The statements of a plain document table (returns, inquiries): rows of id, version,
    order id, state, creation time and the JSON document."""

    insert: str
    update: str
    select: str
    exists: str
    of_order: str
    list: str


def document_statements(table: str) -> DocumentStatements:
    """The statements of document table ``table`` (a name orderkit chose, never input)."""
    return DocumentStatements(
        insert=f"""INSERT INTO {table} (id, version, order_id, state, created_at, document)
VALUES (:id, :version, :order_id, :state, :created_at, :document)""",
        update=f"""UPDATE {table} SET version = :version, state = :state, document = :document
WHERE id = :id AND version = :expected""",
        select=f"SELECT version, document FROM {table} WHERE id = :id",
        exists=f"SELECT 1 FROM {table} WHERE id = :id",
        of_order=f"""SELECT version, document FROM {table} WHERE order_id = :order_id
ORDER BY created_at, id""",
        list=f"""SELECT version, document FROM {table}
WHERE (CAST(:state AS TEXT) IS NULL OR state = :state)
ORDER BY created_at, id LIMIT :limit OFFSET :offset""",
    )


RETURNS = document_statements("returns")
INQUIRIES = document_statements("inquiries")

HISTORY = "SELECT seq, payload FROM outbox WHERE aggregate_id = :aggregate_id ORDER BY seq"

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


# -- inventory ---------------------------------------------------------------------------
# ``stock.reserved`` counts every reservation row, expired or not; expired rows are purged
# (and the counter lowered) in the same transaction before any check, and reads compute
# availability from active rows only, so an expired reservation never blocks a sale.

UPSERT_LOCATION = """
INSERT INTO locations (id, document, priority) VALUES (:id, :document, :priority)
ON CONFLICT (id) DO UPDATE SET document = excluded.document, priority = excluded.priority
"""
LIST_LOCATIONS = "SELECT document FROM locations ORDER BY priority, id"
LOCATION_EXISTS = "SELECT 1 FROM locations WHERE id = :location"
ADD_STOCK = """
INSERT INTO stock (sku, location, on_hand, reserved, backorder_limit)
VALUES (:sku, :location, :quantity, 0, 0)
ON CONFLICT (sku, location) DO UPDATE SET on_hand = stock.on_hand + excluded.on_hand
"""
ENSURE_STOCK = """
INSERT INTO stock (sku, location, on_hand, reserved, backorder_limit)
VALUES (:sku, :location, 0, 0, 0) ON CONFLICT (sku, location) DO NOTHING
"""
EXPIRED_OF_STOCK = """
SELECT order_id, line_id, quantity FROM reservations
WHERE sku = :sku AND location = :location AND shipment_id IS NULL
  AND expires_at IS NOT NULL AND expires_at <= :now
"""
EXPIRED_ALL = """
SELECT sku, location, order_id, line_id, quantity FROM reservations
WHERE shipment_id IS NULL AND expires_at IS NOT NULL AND expires_at <= :now
"""
TAKE_RESERVED = """
UPDATE stock SET reserved = reserved - :quantity WHERE sku = :sku AND location = :location
"""
DELETE_RESERVATION = """
DELETE FROM reservations
WHERE order_id = :order_id AND line_id = :line_id AND sku = :sku AND location = :location
"""
DROP_RESERVATION = """
DELETE FROM reservations
WHERE order_id = :order_id AND line_id = :line_id AND sku = :sku AND location = :location
RETURNING quantity
"""
RESERVE_IF_AVAILABLE = """
UPDATE stock SET reserved = reserved + :quantity
WHERE sku = :sku AND location = :location
  AND (backorder_limit IS NULL OR on_hand + backorder_limit - reserved >= :quantity)
"""
UPSERT_RESERVATION = """
INSERT INTO reservations (order_id, line_id, sku, location, quantity, expires_at)
VALUES (:order_id, :line_id, :sku, :location, :quantity, :expires_at)
ON CONFLICT (order_id, line_id, sku, location)
DO UPDATE SET quantity = reservations.quantity + excluded.quantity,
              expires_at = CASE WHEN reservations.shipment_id IS NULL
                                THEN excluded.expires_at END
"""
ADJUST_IF_POSSIBLE = """
UPDATE stock SET on_hand = on_hand + :delta
WHERE sku = :sku AND location = :location AND on_hand + :delta >= 0
  AND (backorder_limit IS NULL OR on_hand + :delta + backorder_limit >= reserved)
"""
SET_BACKORDER_IF_POSSIBLE = """
UPDATE stock SET backorder_limit = :limit
WHERE sku = :sku AND location = :location
  AND (CAST(:limit AS INTEGER) IS NULL OR on_hand + :limit >= reserved)
"""
SELECT_STOCK = """
SELECT on_hand, reserved, backorder_limit FROM stock WHERE sku = :sku AND location = :location
"""
ORDER_RESERVATIONS = """
SELECT sku, location, line_id, quantity, expires_at, shipment_id FROM reservations
WHERE order_id = :order_id AND (CAST(:line_id AS TEXT) IS NULL OR line_id = :line_id)
ORDER BY sku, location, line_id
"""
KEEP_RESERVATIONS = """
UPDATE reservations SET expires_at = NULL
WHERE order_id = :order_id AND shipment_id IS NULL
  AND expires_at IS NOT NULL AND expires_at > :now
"""
ALLOCATE_RESERVATION = """
UPDATE reservations SET shipment_id = :shipment_id, expires_at = NULL
WHERE order_id = :order_id AND line_id = :line_id AND sku = :sku AND location = :location
"""
SHIP_STOCK = """
UPDATE stock SET on_hand = on_hand - :quantity, reserved = reserved - :quantity
WHERE sku = :sku AND location = :location AND on_hand >= :quantity
"""
INSERT_MOVEMENT = """
INSERT INTO movements (sku, location, kind, quantity, at, reason, order_id, line_id)
VALUES (:sku, :location, :kind, :quantity, :at, :reason, :order_id, :line_id)
"""
SELECT_MOVEMENTS = """
SELECT sku, location, kind, quantity, at, reason, order_id, line_id FROM movements
WHERE sku = :sku AND location = :location ORDER BY seq
"""
STOCK_LEVELS = """
SELECT s.sku, s.location, s.on_hand, s.backorder_limit,
       COALESCE((SELECT SUM(r.quantity) FROM reservations r
                 WHERE r.sku = s.sku AND r.location = s.location
                   AND (r.shipment_id IS NOT NULL OR r.expires_at IS NULL
                        OR r.expires_at > :now)), 0)
FROM stock s WHERE s.sku = :sku ORDER BY s.location
"""
STOCK_RESERVATIONS = """
SELECT order_id, line_id, quantity, expires_at, shipment_id FROM reservations
WHERE sku = :sku AND location = :location ORDER BY order_id, line_id
"""
