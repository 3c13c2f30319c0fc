"""PostgreSQL benchmarks: ratios against raw psycopg run in the same process.

    python benchmarks/postgres.py [--quick] [--url postgresql://...]   # or: nox -s bench

1. Durable placement, one transaction per order (dispatch left to workers), against raw
   psycopg doing the same statements on one connection: the advisory lock on the order,
   the order row with its JSON document, the outbox row, NOTIFY, COMMIT.
2. Dispatch throughput: 1, 2 and 4 worker processes draining the same backlog of events
   to a handler that writes one row per event (claims, leases, processed marks and
   finishing included).

Each run uses a fresh schema, dropped afterwards. Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import quote

import psycopg

import orderkit as ok
from orderkit.adapters.memory import ManualClock, SequentialIds

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from run import command

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def fresh(url: str) -> tuple[str, str]:
    schema = "okb_" + uuid.uuid4().hex[:10]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in url else "?"
    return schema, f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


def drop(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def orderkit_place(url: str, count: int) -> float:
    settings = ok.ShopSettings(dispatch="worker", track_stock=False)
    with ok.Shop.open(
        url, settings=settings, clock=ManualClock(START), ids=SequentialIds()
    ) as shop:
        commands = [command(n) for n in range(count)]
        started = time.perf_counter()
        for cmd in commands:
            shop.orders.place(cmd)
        return time.perf_counter() - started


def raw_place(url: str, count: int) -> float:
    """Raw psycopg on one connection: the statements orderkit's commit runs for a placement."""
    with ok.Shop.open(url, settings=ok.ShopSettings(track_stock=False)):
        pass  # the same tables (made by orderkit's migrations), then raw statements only
    docs = [ok.serialization._TRUSTED.unstructure(command(n)) for n in range(count)]
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        for number, doc in enumerate(docs):
            order_id = f"raw-{number:06d}"
            doc["id"], doc["state"], doc["version"] = order_id, "placed", 1
            placed_at = START.isoformat()
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (order_id,))
                conn.execute("SELECT pg_notify('orderkit_outbox', '')")
                conn.execute(
                    "INSERT INTO orders (id, version, state, customer_id, placed_at, "
                    "idempotency_key, document) VALUES (%s, 1, 'placed', %s, %s, NULL, %s)",
                    (order_id, doc["customer"]["id"], placed_at, json.dumps(doc)),
                )
                conn.execute(
                    "INSERT INTO outbox (aggregate_id, event_type, payload, created_at, "
                    "available_at) VALUES (%s, 'OrderPlaced', %s, %s, %s)",
                    (
                        order_id,
                        json.dumps({"order_id": order_id, "occurred_at": placed_at}),
                        START.timestamp(),
                        START.timestamp(),
                    ),
                )
        return time.perf_counter() - started


def drain(url: str) -> None:
    """Body of a worker process: deliver until nothing is pending, then exit."""
    conn = psycopg.connect(url, autocommit=True)

    def handler(event: ok.OrderEvent) -> None:
        conn.execute("INSERT INTO bench_effects (order_id) VALUES (%s)", (event.order_id,))

    with ok.Shop.open(url, settings=ok.ShopSettings(dispatch="worker", track_stock=False)) as shop:
        shop.subscribe(ok.OrderPlaced, handler, name="bench.effect")
        while shop.events.pending():
            if not shop.events.run_pending(batch=50).delivered:
                time.sleep(0.01)


def workers_throughput(url: str, events: int, workers: int) -> float:
    schema, scoped = fresh(url)
    try:
        orderkit_place(scoped, events)
        with psycopg.connect(scoped, autocommit=True) as conn:
            conn.execute("CREATE TABLE bench_effects (order_id TEXT NOT NULL)")
        started = time.perf_counter()
        processes = [
            subprocess.Popen([sys.executable, __file__, "--drain", scoped]) for _ in range(workers)
        ]
        for process in processes:
            process.wait()
        elapsed = time.perf_counter() - started
        with psycopg.connect(scoped) as conn:
            row = conn.execute("SELECT COUNT(DISTINCT order_id) FROM bench_effects").fetchone()
        if row is None or row[0] != events:
            raise RuntimeError(f"the workers delivered {row} of {events} events")
        return events / elapsed
    finally:
        drop(url, schema)


def median_rate(run: object, url: str, count: int, rounds: int) -> float:
    rates = []
    for _ in range(rounds):
        schema, scoped = fresh(url)
        try:
            rates.append(count / run(scoped, count))  # type: ignore[operator]
        finally:
            drop(url, schema)
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts for a smoke run")
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--drain", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drain:
        drain(args.drain)
        return
    count, rounds, events = (300, 3, 1_000) if args.quick else (2_000, 5, 4_000)

    ours = median_rate(orderkit_place, args.url, count, rounds)
    raw = median_rate(raw_place, args.url, count, rounds)
    print(f"durable placement on PostgreSQL, one transaction per order ({count} x {rounds})")
    print(f"  orderkit  {ours:10,.0f} orders/s")
    print(f"  raw       {raw:10,.0f} orders/s (psycopg, same statements, one connection)")
    print(f"  ratio     {ours / raw:10.3f} of raw")

    print(f"dispatch throughput, {events:,} events to a handler writing one row each")
    single = None
    for workers in (1, 2, 4):
        rate = workers_throughput(args.url, events, workers)
        single = single or rate
        print(f"  {workers} worker(s)  {rate:8,.0f} events/s  ({rate / single:.2f}x one worker)")


if __name__ == "__main__":
    main()
