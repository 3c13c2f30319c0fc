"""orderkit benchmarks: ratios against hand-written baselines run in the same process.

    python benchmarks/run.py            # or: nox -s bench
    python benchmarks/run.py --quick    # smaller counts, for a smoke run

Reports (medians of several rounds):

1. place + acknowledge of a 3-line order in memory, orders/s, against a
   hand-written baseline (dict transition table, dict storage, the same steps:
   validate, total, store, transition, promise date, notification);
2. durable placement on SQLite (one transaction per order, dispatch left to
   workers) against raw ``sqlite3`` doing the same inserts in the same process;
3. one lifecycle transition: transitions' shared machine vs a dict lookup;
4. bytes per stored order in the memory store, measured with tracemalloc.

Nothing here is asserted: these are measurements, not tests.
"""

from __future__ import annotations

import argparse
import gc
import json
import sqlite3
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orderkit as ok
from orderkit.adapters.memory import ManualClock, MemoryNotifier, SequentialIds

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
# The order benchmarks compare order handling with baselines that keep no stock;
# benchmarks/inventory.py measures reservations.
ORDERS_ONLY = ok.ShopSettings(track_stock=False)


def command(number: int) -> ok.PlaceOrder:
    return ok.PlaceOrder(
        customer=ok.Customer(f"c{number % 97}", "Ann Example", "ann@example.com"),
        shipping_address=ok.Address("Ann Example", "1 Main St", "Berlin", "10115", "DE"),
        lines=[
            ok.LineItem("L1", "MUG-01", "Mug", 2, ok.Money("12.50", "EUR")),
            ok.LineItem(
                "L2", "TEE-M", "T-shirt", 1, ok.Money("24.00", "EUR"), tax=ok.Money("4.56", "EUR")
            ),
            ok.LineItem(
                "L3", "PEN-05", "Pen", 1, ok.Money("39.00", "EUR"), discount=ok.Money("3.90", "EUR")
            ),
        ],
        payment_token="tok_bench",
        shipping_charge=ok.Money("4.90", "EUR"),
    )


def orderkit_place_ack(count: int) -> float:
    shop = ok.Shop.open(
        "memory://",
        clock=ManualClock(START),
        ids=SequentialIds(),
        notifier=MemoryNotifier(),
        settings=ORDERS_ONLY,
    )
    commands = [command(n) for n in range(count)]
    started = time.perf_counter()
    for cmd in commands:
        order = shop.orders.place(cmd)
        shop.orders.acknowledge(order.id)
    return time.perf_counter() - started


BASELINE_GRAPH = {("placed", "acknowledge"): "acknowledged"}


def _business_days(day: Any, count: int) -> Any:
    while count:
        day += timedelta(days=1)
        if day.weekday() < 5:
            count -= 1
    return day


def baseline_place_ack(count: int) -> float:
    """The same steps written by hand with dicts: the floor orderkit is compared to."""
    store: dict[str, dict[str, Any]] = {}
    sent: list[tuple[str, str, str]] = []
    raw = [
        [
            ("L1", "MUG-01", 2, Decimal("12.50"), Decimal(0), Decimal(0)),
            ("L2", "TEE-M", 1, Decimal("24.00"), Decimal(0), Decimal("4.56")),
            ("L3", "PEN-05", 1, Decimal("39.00"), Decimal("3.90"), Decimal(0)),
        ]
        for _ in range(count)
    ]
    started = time.perf_counter()
    for number, lines in enumerate(raw):
        if not lines or len({line[0] for line in lines}) != len(lines):
            raise ValueError("bad lines")
        total = Decimal("4.90")
        for _, _, quantity, price, discount, tax in lines:
            if quantity <= 0:
                raise ValueError("bad quantity")
            total += price * quantity - discount + tax
        order_id = f"order-{number:06d}"
        store[order_id] = {
            "id": order_id,
            "state": "placed",
            "lines": lines,
            "total": total,
            "placed_at": START,
            "version": 1,
        }
        order = dict(store[order_id])
        order["state"] = BASELINE_GRAPH[(order["state"], "acknowledge")]
        ship = _business_days(START.date(), 1)
        order["promised"] = _business_days(ship, 3)
        order["version"] += 1
        store[order_id] = order
        sent.append((order_id, "ann@example.com", f"order {order_id} total {total}"))
    return time.perf_counter() - started


def median_rate(run: Callable[[int], float], count: int, rounds: int) -> float:
    rates = []
    for _ in range(rounds):
        gc.collect()
        rates.append(count / run(count))
    return statistics.median(rates)


def transition_cost(rounds: int) -> tuple[float, float]:
    lifecycle = ok.ORDER_LIFECYCLE.build()

    class Thing:
        __slots__ = ("id", "state")

        def __init__(self) -> None:
            self.id = "x"
            self.state = "placed"

    things = [Thing() for _ in range(rounds)]
    started = time.perf_counter()
    for thing in things:
        lifecycle.fire(thing, "acknowledge")
    machine = (time.perf_counter() - started) / rounds
    table = {("placed", "acknowledge"): "acknowledged"}
    things = [Thing() for _ in range(rounds)]
    started = time.perf_counter()
    for thing in things:
        key = (thing.state, "acknowledge")
        if key not in table:
            raise ValueError(key)
        thing.state = table[key]
    plain = (time.perf_counter() - started) / rounds
    return machine, plain


def bytes_per_order(count: int) -> float:
    shop = ok.Shop.open(
        "memory://", clock=ManualClock(START), ids=SequentialIds(), settings=ORDERS_ONLY
    )
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for number in range(count):
        # a fresh command each time, so that nothing is shared between stored orders
        shop.orders.place(command(number))
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / count


def orderkit_place_sqlite(count: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        settings = ok.ShopSettings(dispatch="worker", track_stock=False)
        with ok.Shop.open(
            f"{folder}/shop.db", settings=settings, clock=ManualClock(START), ids=SequentialIds()
        ) as shop:
            commands = [command(n) for n in range(count)]
            started = time.perf_counter()
            for cmd in commands:
                shop.orders.place(cmd)
            return time.perf_counter() - started


def raw_place_sqlite(count: int) -> float:
    """Raw sqlite3: per order one BEGIN IMMEDIATE transaction with the same two inserts
    (the order row with a JSON document, one outbox row), documents built with json.dumps."""
    with tempfile.TemporaryDirectory() as folder:
        conn = sqlite3.connect(f"{folder}/raw.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(
            "CREATE TABLE orders (id TEXT PRIMARY KEY, version INTEGER, state TEXT, "
            "customer_id TEXT, placed_at TEXT, idempotency_key TEXT UNIQUE, "
            "document TEXT)"
        )
        conn.execute("CREATE INDEX o1 ON orders (state, placed_at, id)")
        conn.execute("CREATE INDEX o2 ON orders (customer_id, placed_at, id)")
        conn.execute("CREATE INDEX o3 ON orders (placed_at, id)")
        conn.execute(
            "CREATE TABLE outbox (seq INTEGER PRIMARY KEY, aggregate_id TEXT, "
            "event_type TEXT, payload TEXT, created_at REAL, available_at REAL)"
        )
        docs = [ok.serialization._TRUSTED.unstructure(command(n)) for n in range(count)]
        started = time.perf_counter()
        for number, doc in enumerate(docs):
            order_id = f"order-{number:06d}"
            doc["id"], doc["state"], doc["version"] = order_id, "placed", 1
            placed_at = START.isoformat()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO orders VALUES (?, 1, 'placed', ?, ?, NULL, ?)",
                (order_id, doc["customer"]["id"], placed_at, json.dumps(doc)),
            )
            conn.execute(
                "INSERT INTO outbox (aggregate_id, event_type, payload, created_at, "
                "available_at) VALUES (?, 'OrderPlaced', ?, ?, ?)",
                (
                    order_id,
                    json.dumps({"order_id": order_id, "occurred_at": placed_at}),
                    START.timestamp(),
                    START.timestamp(),
                ),
            )
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        conn.close()
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts for a smoke run")
    args = parser.parse_args()
    count, rounds, stored = (500, 3, 5_000) if args.quick else (5_000, 5, 100_000)

    ours = median_rate(orderkit_place_ack, count, rounds)
    base = median_rate(baseline_place_ack, count, rounds)
    print(f"place + acknowledge, 3-line order, in memory ({count} orders x {rounds} rounds)")
    print(f"  orderkit  {ours:10,.0f} orders/s")
    print(f"  baseline  {base:10,.0f} orders/s (hand-written dicts)")
    print(f"  ratio     {ours / base:10.3f} of the baseline")

    durable = median_rate(orderkit_place_sqlite, count, rounds)
    raw = median_rate(raw_place_sqlite, count, rounds)
    print(f"durable placement on SQLite, one transaction per order ({count} x {rounds})")
    print(f"  orderkit  {durable:10,.0f} orders/s")
    print(f"  raw       {raw:10,.0f} orders/s (sqlite3, same inserts)")
    print(f"  ratio     {durable / raw:10.3f} of raw (goal: 0.5)")

    machine, plain = transition_cost(50_000)
    print("one lifecycle transition")
    print(f"  transitions shared machine  {machine * 1e6:6.2f} us")
    print(f"  dict table                  {plain * 1e6:6.2f} us  (ratio {machine / plain:.1f}x)")

    per_order = bytes_per_order(stored)
    print(
        f"memory store: {per_order:,.0f} bytes per stored 3-line order "
        f"(tracemalloc, {stored:,} orders)"
    )


if __name__ == "__main__":
    main()
