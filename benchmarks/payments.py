"""Payment benchmarks: the cost orderkit adds around a gateway, as ratios in one process.

    python benchmarks/payments.py            # or: nox -s bench
    python benchmarks/payments.py --quick

Reports (medians of several rounds):

1. paid placement on SQLite (authorize with the in-memory gateway, then one
   transaction holding the order, the payment and their two outbox events)
   against raw ``sqlite3`` making the same gateway call and the same inserts;
2. a capture recorded on SQLite (gateway call plus the payment's update and its
   outbox event) against raw ``sqlite3`` doing the same.

The gateway is the same :class:`MemoryGateway` on both sides, so the ratio is
orderkit's own overhead. Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable

from run import START, command

import orderkit as ok
from orderkit.adapters.memory import ManualClock, SequentialIds
from orderkit.adapters.memory_gateway import MemoryGateway

SETTINGS = ok.ShopSettings(dispatch="worker", track_stock=False, capture="manual")


def orderkit_paid_placement(count: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        gateway = MemoryGateway(seed=1)
        with ok.Shop.open(
            f"{folder}/shop.db",
            settings=SETTINGS,
            clock=ManualClock(START),
            ids=SequentialIds(),
            gateway=gateway,
        ) as shop:
            commands = [command(n) for n in range(count)]
            started = time.perf_counter()
            for cmd in commands:
                shop.orders.place(cmd)
            return time.perf_counter() - started


def _raw_schema(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE orders (id TEXT PRIMARY KEY, version INTEGER, state TEXT, "
        "customer_id TEXT, placed_at TEXT, idempotency_key TEXT UNIQUE, document TEXT)"
    )
    conn.execute(
        "CREATE TABLE payments (id TEXT PRIMARY KEY, version INTEGER, order_id TEXT, "
        "state TEXT, authorization_id TEXT UNIQUE, created_at TEXT, document TEXT)"
    )
    conn.execute("CREATE INDEX p1 ON payments (order_id, created_at, id)")
    conn.execute(
        "CREATE TABLE outbox (seq INTEGER PRIMARY KEY, aggregate_id TEXT, "
        "event_type TEXT, payload TEXT, created_at REAL, available_at REAL)"
    )


def _event(conn: sqlite3.Connection, order_id: str, kind: str, payload: dict[str, str]) -> None:
    conn.execute(
        "INSERT INTO outbox (aggregate_id, event_type, payload, created_at, available_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (order_id, kind, json.dumps(payload), START.timestamp(), START.timestamp()),
    )


def raw_paid_placement(count: int) -> float:
    """Authorize, then one BEGIN IMMEDIATE transaction: the order row, the payment row and
    two outbox rows, documents built with json.dumps."""
    with tempfile.TemporaryDirectory() as folder:
        gateway = MemoryGateway(seed=1)
        conn = sqlite3.connect(f"{folder}/raw.db", isolation_level=None)
        _raw_schema(conn)
        docs = [ok.serialization._TRUSTED.unstructure(command(n)) for n in range(count)]
        total = ok.Money("106.46", "EUR")
        started = time.perf_counter()
        for number, doc in enumerate(docs):
            order_id, payment_id = f"order-{number:06d}", f"payment-{number:06d}"
            auth = gateway.authorize(total, "tok_bench", idempotency_key=f"place:{order_id}")
            placed_at = START.isoformat()
            payment = {"id": payment_id, "order_id": order_id, "amount": str(total.amount)}
            payment["authorization_id"] = auth.id
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO orders VALUES (?, 1, 'placed', ?, ?, NULL, ?)",
                (order_id, doc["customer"]["id"], placed_at, json.dumps(doc)),
            )
            conn.execute(
                "INSERT INTO payments VALUES (?, 1, ?, 'authorized', ?, ?, ?)",
                (payment_id, order_id, auth.id, placed_at, json.dumps(payment)),
            )
            _event(conn, order_id, "OrderPlaced", {"order_id": order_id})
            _event(conn, order_id, "PaymentAuthorized", {"order_id": order_id, "auth": auth.id})
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        conn.close()
        return elapsed


def orderkit_capture(count: int) -> float:
    with (
        tempfile.TemporaryDirectory() as folder,
        ok.Shop.open(
            f"{folder}/shop.db",
            settings=SETTINGS,
            clock=ManualClock(START),
            ids=SequentialIds(),
            gateway=MemoryGateway(seed=2),
        ) as shop,
    ):
        order_ids = [shop.orders.place(command(n)).id for n in range(count)]
        started = time.perf_counter()
        for order_id in order_ids:
            shop.payments.capture(order_id, reference="all")
        return time.perf_counter() - started


def raw_capture(count: int) -> float:
    """Capture at the gateway, then one transaction: read the payment document, update it
    with a version check, and add one outbox row."""
    with tempfile.TemporaryDirectory() as folder:
        gateway = MemoryGateway(seed=2)
        conn = sqlite3.connect(f"{folder}/raw.db", isolation_level=None)
        _raw_schema(conn)
        total = ok.Money("106.46", "EUR")
        for number in range(count):
            auth = gateway.authorize(total, "tok_bench", idempotency_key=f"a{number}")
            doc = json.dumps({"id": f"payment-{number:06d}", "captures": []})
            conn.execute(
                "INSERT INTO payments VALUES (?, 1, ?, 'authorized', ?, ?, ?)",
                (f"payment-{number:06d}", f"order-{number:06d}", auth.id, "t", doc),
            )
        rows = conn.execute("SELECT id, order_id, authorization_id FROM payments").fetchall()
        started = time.perf_counter()
        for payment_id, order_id, auth_id in rows:
            capture = gateway.capture(auth_id, total, idempotency_key=f"{payment_id}:capture")
            conn.execute("BEGIN IMMEDIATE")
            version, document = conn.execute(
                "SELECT version, document FROM payments WHERE id = ?", (payment_id,)
            ).fetchone()
            payment = json.loads(document)
            payment["captures"].append({"id": capture.id, "amount": str(capture.amount.amount)})
            conn.execute(
                "UPDATE payments SET version = ?, state = 'captured', document = ? "
                "WHERE id = ? AND version = ?",
                (version + 1, json.dumps(payment), payment_id, version),
            )
            _event(conn, order_id, "PaymentCaptured", {"order_id": order_id, "id": capture.id})
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        conn.close()
        return elapsed


def median_rate(run: Callable[[int], float], count: int, rounds: int) -> float:
    return count / statistics.median(run(count) for _ in range(rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts for a smoke run")
    args = parser.parse_args()
    count, rounds = (300, 3) if args.quick else (3_000, 5)
    for title, ours, raw in (
        ("paid placement on SQLite", orderkit_paid_placement, raw_paid_placement),
        ("capture recorded on SQLite", orderkit_capture, raw_capture),
    ):
        mine, base = median_rate(ours, count, rounds), median_rate(raw, count, rounds)
        print(f"{title} ({count} x {rounds}, same MemoryGateway calls on both sides)")
        print(f"  orderkit  {mine:10,.0f} /s")
        print(f"  raw       {base:10,.0f} /s (sqlite3, same statements)")
        print(f"  ratio     {mine / base:10.3f} of raw")


if __name__ == "__main__":
    main()
