"""Reservation throughput: orderkit's stores against raw sqlite3 conditional updates.

    python benchmarks/inventory.py [--quick]      # or: nox -s bench

Each reservation is one transaction holding 1 unit for a new order line, either on
one hot SKU or spread over 10,000 SKUs. The raw baseline does, per reservation,
``BEGIN IMMEDIATE``; the conditional ``UPDATE stock SET reserved = reserved + 1
WHERE ... AND on_hand - reserved >= 1`` with the row count checked; one
reservation insert; ``COMMIT``. Medians of several rounds; ratios printed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone

from orderkit.adapters.memory import MemoryStore
from orderkit.adapters.sqlite import SqliteStore
from orderkit.domain.inventory import Location, StockPick
from orderkit.domain.stock_changes import AddLocation, Receive, Reserve
from orderkit.ports import Store

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def _skus(count: int, spread: bool) -> list[str]:
    return [f"SKU-{n % 10_000:05d}" if spread else "HOT" for n in range(count)]


def _stock(store: Store, skus: set[str], units: int) -> None:
    with store() as uow:
        uow.stock.stage(AddLocation(Location("main", "Main")))
        for sku in sorted(skus):
            uow.stock.stage(Receive(sku, "main", units, NOW))
        uow.commit()


def orderkit_rate(make: Callable[[str], Store], count: int, spread: bool) -> float:
    with tempfile.TemporaryDirectory() as folder:
        store = make(folder)
        skus = _skus(count, spread)
        _stock(store, set(skus), count)
        changes = [
            Reserve(f"o{n}", (StockPick("L1", sku, "main", 1),), None, NOW)
            for n, sku in enumerate(skus)
        ]
        started = time.perf_counter()
        for change in changes:
            with store() as uow:
                uow.stock.stage(change)
                uow.commit()
        elapsed = time.perf_counter() - started
        store.close()
        return count / elapsed


def raw_rate(count: int, spread: bool) -> float:
    import sqlite3

    with tempfile.TemporaryDirectory() as folder:
        conn = sqlite3.connect(f"{folder}/raw.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(
            "CREATE TABLE stock (sku TEXT, location TEXT, on_hand INTEGER, "
            "reserved INTEGER, PRIMARY KEY (sku, location))"
        )
        conn.execute(
            "CREATE TABLE reservations (order_id TEXT, line_id TEXT, sku TEXT, "
            "location TEXT, quantity INTEGER, expires_at REAL, "
            "PRIMARY KEY (order_id, line_id, sku, location))"
        )
        skus = _skus(count, spread)
        conn.executemany(
            "INSERT INTO stock VALUES (?, 'main', ?, 0)",
            [(sku, count) for sku in sorted(set(skus))],
        )
        started = time.perf_counter()
        for n, sku in enumerate(skus):
            conn.execute("BEGIN IMMEDIATE")
            cursor = conn.execute(
                "UPDATE stock SET reserved = reserved + 1 "
                "WHERE sku = ? AND location = 'main' AND on_hand - reserved >= 1",
                (sku,),
            )
            if cursor.rowcount != 1:
                raise RuntimeError("out of stock")
            conn.execute(
                "INSERT INTO reservations VALUES (?, 'L1', ?, 'main', 1, NULL)", (f"o{n}", sku)
            )
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        conn.close()
        return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts for a smoke run")
    args = parser.parse_args()
    count, rounds = (1_000, 3) if args.quick else (10_000, 5)
    print(f"reservations per second, one transaction each ({count:,} x {rounds} rounds)")
    for spread, label in ((False, "one hot SKU"), (True, "spread over 10,000 SKUs")):
        raw = statistics.median(raw_rate(count, spread) for _ in range(rounds))
        memory = statistics.median(
            orderkit_rate(lambda _: MemoryStore(), count, spread) for _ in range(rounds)
        )
        sqlite = statistics.median(
            orderkit_rate(lambda folder: SqliteStore(f"{folder}/shop.db"), count, spread)
            for _ in range(rounds)
        )
        print(f"  {label}")
        print(f"    raw sqlite3        {raw:10,.0f} /s")
        print(f"    orderkit SQLite    {sqlite:10,.0f} /s  (ratio {sqlite / raw:.3f} of raw)")
        print(f"    orderkit memory    {memory:10,.0f} /s  (ratio {memory / raw:.3f} of raw)")


if __name__ == "__main__":
    main()
