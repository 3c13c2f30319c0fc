"""Many workers on many processes, one PostgreSQL: every event once per handler, in order.

4 producer processes carry orders through the whole lifecycle (placement to delivery)
while 8 dispatch workers deliver the outbox to the shop's handlers and two recording
handlers; one worker is SIGKILLed midway. Afterwards every committed event has been
delivered to each recording handler exactly once (re-deliveries after the kill are
de-duplicated by the handler, and counted), in commit order per order, nothing is left
pending and nothing is dead. ``ORDERKIT_PG_SCALE_ORDERS`` sets the number of orders
(default 80; ``nox -s postgres`` runs 10,000).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

import children
import orderkit as ok
from pg_scale_worker import SETTINGS, SKUS, TABLES

WORKER = str(Path(__file__).with_name("pg_scale_worker.py"))
ORDERS = int(os.environ.get("ORDERKIT_PG_SCALE_ORDERS", "80"))
PRODUCERS = 4
DISPATCHERS = 8
TIMEOUT = float(os.environ.get("ORDERKIT_PG_SCALE_TIMEOUT", "600"))

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _spawn(*args: str) -> subprocess.Popen[str]:
    return children.spawn(WORKER, *args)


def _count(conn: psycopg.Connection, query: str) -> int:
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def test_8_workers_and_4_producers_deliver_every_event_once_in_order(
    pg_url: str, tmp_path: Path
) -> None:
    with ok.Shop.open(pg_url, settings=SETTINGS) as shop:
        shop.inventory.add_location(ok.Location("main", "Main"))
        for sku in SKUS:
            shop.inventory.receive(sku, location="main", quantity=2 * ORDERS)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(TABLES)
    done = tmp_path / "done"
    started = time.perf_counter()
    workers = [_spawn("dispatch", pg_url, f"w{n}", str(done)) for n in range(DISPATCHERS)]
    per_producer = ORDERS // PRODUCERS
    producers = [_spawn("produce", pg_url, f"p{n}", str(per_producer)) for n in range(PRODUCERS)]

    with psycopg.connect(pg_url, autocommit=True) as conn:
        # midway: once a third of the orders exist and workers are delivering, kill one
        deadline = time.monotonic() + TIMEOUT
        while _count(conn, "SELECT COUNT(*) FROM orders") < ORDERS // 3:
            assert time.monotonic() < deadline, "the producers made no progress"
            assert all(p.poll() is None or p.returncode == 0 for p in producers)
            time.sleep(0.05)
        assert _count(conn, "SELECT COUNT(*) FROM delivered") > 0, "no worker delivered yet"
        holder = None
        while holder is None:  # a worker that holds leased events right now
            assert time.monotonic() < deadline, "no worker ever held a lease"
            row = conn.execute(
                "SELECT lease_owner FROM outbox WHERE lease_owner IS NOT NULL LIMIT 1"
            ).fetchone()
            holder = row[0] if row else None
        victim = workers[int(holder[1:])]
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=30)
        assert victim.returncode == -signal.SIGKILL
        killed_at = _count(conn, "SELECT COUNT(*) FROM delivered")

        for producer in producers:
            out, err = producer.communicate(timeout=TIMEOUT)
            assert producer.returncode == 0, err
            assert out.strip() == f"produced {per_producer}"
        produced_at = time.perf_counter()
        done.touch()
        for process in workers:
            if process is victim:
                continue
            _out, err = process.communicate(timeout=TIMEOUT)
            assert process.returncode == 0, err
        wall = time.perf_counter() - started

        events = _count(conn, "SELECT COUNT(*) FROM outbox")
        pending = _count(conn, "SELECT COUNT(*) FROM outbox WHERE dispatched_at IS NULL")
        dead = _count(conn, "SELECT COUNT(*) FROM dead_letters")
        for handler in ("rec.a", "rec.b"):
            missing = _count(
                conn,
                "SELECT COUNT(*) FROM outbox o WHERE NOT EXISTS (SELECT 1 FROM delivered d "
                f"WHERE d.seq = o.seq AND d.handler = '{handler}')",
            )
            assert missing == 0, f"{missing} events never reached {handler}"
        assert _count(conn, "SELECT COUNT(*) FROM delivered") == 2 * events
        # in commit order per order: for each handler and order, the delivery sequence
        # number rises with the outbox seq
        out_of_order = _count(
            conn,
            """SELECT COUNT(*) FROM (
                 SELECT seq, LAG(seq) OVER (PARTITION BY handler, order_id ORDER BY n) AS before
                 FROM delivered) d
               WHERE d.before > d.seq""",
        )
        calls = _count(conn, "SELECT COUNT(*) FROM calls")
        delivered_orders = _count(conn, "SELECT COUNT(*) FROM orders WHERE state = 'delivered'")
        per_order_kinds = conn.execute(
            "SELECT kind, COUNT(*) FROM delivered WHERE handler = 'rec.a' GROUP BY kind"
        ).fetchall()
    kinds = dict(per_order_kinds)
    print(
        f"\nPostgreSQL scale: {PRODUCERS} producers x {per_producer} orders, {DISPATCHERS} "
        f"workers (one SIGKILLed after {killed_at} deliveries): {events} events, each to 2 "
        f"recording handlers once ({calls - 2 * events} re-deliveries after the kill, "
        f"de-duplicated); {delivered_orders} orders delivered; producers "
        f"{produced_at - started:.1f} s, all delivered {wall:.1f} s ({events / wall:.0f} events/s)"
    )
    assert out_of_order == 0
    assert pending == 0
    assert dead == 0
    assert delivered_orders == PRODUCERS * per_producer
    assert kinds["OrderPlaced"] == kinds["OrderDelivered"] == PRODUCERS * per_producer
    assert calls >= 2 * events
