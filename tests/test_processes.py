"""Several processes on one SQLite file: nothing lost, one winner per race, crashes survived.

The crash test's repetitions default to 15 here; ``nox -s stress`` runs it 100 times
(``ORDERKIT_CRASH_RUNS=100``).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import children
import orderkit as ok
import rawdb
from orderkit.adapters.memory import ManualClock
from orderkit.adapters.sqlite import SqliteStore
from orderkit.testing.contracts import make_order

WORKER = str(Path(__file__).with_name("proc_worker.py"))
CRASH_RUNS = int(os.environ.get("ORDERKIT_CRASH_RUNS", "15"))

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _spawn(*args: str) -> subprocess.Popen[str]:
    return children.spawn(WORKER, *args)


def _finish(process: subprocess.Popen[str], timeout: float = 120) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return out


def test_four_processes_place_250_orders_each_and_nothing_is_lost(tmp_path: Path) -> None:
    path = str(tmp_path / "shop.db")
    SqliteStore(path).close()
    workers = [_spawn("place", path, f"w{n}", "250") for n in range(4)]
    placed = {line for process in workers for line in _finish(process).split()}
    assert len(placed) == 1000
    with rawdb.connect(path) as conn:
        stored = {row[0] for row in conn.execute("SELECT id FROM orders")}
        events = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        keys = conn.execute("SELECT COUNT(DISTINCT idempotency_key) FROM orders").fetchone()[0]
    assert stored == placed
    assert events == 1000
    assert keys == 1000


def test_two_processes_replaying_the_same_keys_place_each_order_once(tmp_path: Path) -> None:
    path = str(tmp_path / "shop.db")
    SqliteStore(path).close()
    twins = [_spawn("place", path, "same", "150") for _ in range(2)]
    first, second = (_finish(process).split() for process in twins)
    assert first == second  # both got the same order for every key
    with rawdb.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 150
        assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 150


def test_concurrent_commands_on_one_order_lose_no_update(tmp_path: Path) -> None:
    path = str(tmp_path / "shop.db")
    store = SqliteStore(path)
    with store() as uow:
        uow.orders.add(make_order("o-1"))
        uow.commit()
    workers = [_spawn("hold", path, "o-1", "50") for _ in range(4)]
    changes = sum(int(_finish(process)) for process in workers)
    with store() as uow:
        order = uow.orders.get("o-1")
    assert changes == 400
    assert order.version == 1 + changes
    assert order.holds == ()


@pytest.mark.parametrize("attempt", range(3))
def test_of_two_concurrent_saves_exactly_one_wins(tmp_path: Path, attempt: int) -> None:
    path = str(tmp_path / "shop.db")
    store = SqliteStore(path)
    with store() as uow:
        uow.orders.add(make_order("o-1"))
        uow.commit()
    a, b = str(tmp_path / "a.ready"), str(tmp_path / "b.ready")
    first, second = _spawn("race", path, "o-1", a, b), _spawn("race", path, "o-1", b, a)
    results = sorted([_finish(first).strip(), _finish(second).strip()])
    assert results == ["lost", "won"]
    with store() as uow:
        order = uow.orders.get("o-1")
    assert order.version == 2
    assert len(order.holds) == 1


def test_killed_workers_leases_expire_and_another_worker_delivers(tmp_path: Path) -> None:
    path = str(tmp_path / "shop.db")
    with ok.Shop.open(path, settings=ok.ShopSettings(dispatch="worker", track_stock=False)) as shop:
        for number in range(200):
            shop.orders.place(
                ok.PlaceOrder(
                    customer=ok.Customer("c", "Ann", "ann@example.com"),
                    shipping_address=ok.Address("Ann", "1 Main St", "Berlin", "10115", "DE"),
                    lines=[ok.LineItem("L1", "SKU", "Mug", 1, ok.Money("1.00", "EUR"))],
                    payment_token=f"tok_{number}",
                )
            )
    workers = [_spawn("dispatch", path, f"worker-{n}", "3") for n in range(3)]
    _finish(workers[0])
    calls = sum(int(_finish(process)) for process in workers[1:])
    with rawdb.connect(path) as conn:
        received = conn.execute("SELECT COUNT(*) FROM received").fetchone()[0]
        pending = conn.execute(
            "SELECT COUNT(*) FROM outbox WHERE dispatched_at IS NULL"
        ).fetchone()[0]
    assert received == 200
    assert pending == 0
    assert calls <= 200  # the workers that were not killed never took the same event twice


def test_sigkill_during_commit_and_dispatch_loses_nothing(tmp_path: Path) -> None:
    from proc_worker import DedupHandler

    path = str(tmp_path / "shop.db")
    log = tmp_path / "committed.log"
    SqliteStore(path).close()
    DedupHandler(path).conn.close()
    rng = random.Random(20261126)
    for run in range(CRASH_RUNS):
        child = _spawn("crashy", path, str(log), str(run))
        time.sleep(0.4 + rng.random() * 0.6)  # start-up, then a random point of its work
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=60)
        assert child.returncode == -signal.SIGKILL

    # Reopen, with a clock past every lease a killed process held, and deliver the rest.
    later = ManualClock(datetime.now(timezone.utc) + timedelta(hours=1))
    settings = ok.ShopSettings(dispatch="worker", track_stock=False)
    with ok.Shop.open(path, settings=settings, clock=later) as shop:
        handler = DedupHandler(path)
        shop.subscribe(ok.OrderEvent, handler, name="test.dedup")
        shop.events.run_pending()
        assert shop.events.pending() == 0
        assert shop.events.dead_letters() == []
        handler.conn.close()

    with rawdb.connect(path) as conn:
        orders = {row[0] for row in conn.execute("SELECT id FROM orders")}
        outbox = [json.loads(row[0]) for row in conn.execute("SELECT payload FROM outbox")]
        received = list(conn.execute("SELECT order_id, kind, occurred_at FROM received"))
        calls = conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    committed = set(log.read_text().split())
    events = {(e["order_id"], e["type"], e["occurred_at"]) for e in outbox}
    assert committed, "the children committed nothing before being killed"
    assert committed <= orders  # every order whose commit returned is there
    assert {e["order_id"] for e in outbox if e["type"] == "OrderPlaced"} == orders
    assert len(received) == len(set(received))
    assert set(received) == events  # each committed event reached the handler, exactly once
    assert {order_id for order_id, _, _ in received} <= orders  # nothing rolled back delivered
    print(
        f"crash test: {CRASH_RUNS} kills, {len(orders)} orders, {len(events)} events, "
        f"{calls} handler calls ({calls - len(events)} repeats absorbed by de-duplication)"
    )
