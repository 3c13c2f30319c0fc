"""Child-process bodies for the multi-process and crash tests (run as a script, not collected).

python tests/proc_worker.py place DB WORKER COUNT        place COUNT orders, one per command
python tests/proc_worker.py hold DB ORDER_ID COUNT        hold/release one order COUNT times
python tests/proc_worker.py race DB ORDER_ID ME OTHER     save one order when OTHER is ready
python tests/proc_worker.py crashy DB LOG SEED           place and dispatch until killed
python tests/proc_worker.py dispatch DB WORKER SECONDS   run a dispatch worker for a while
"""

from __future__ import annotations

import os
import random
import sqlite3
import sys
import time

import orderkit as ok
from orderkit.adapters.memory import MemoryNotifier


def command(worker: str, number: int) -> ok.PlaceOrder:
    return ok.PlaceOrder(
        customer=ok.Customer(f"cust-{worker}", "Ann Example", "ann@example.com"),
        shipping_address=ok.Address("Ann Example", "1 Main St", "Berlin", "10115", "DE"),
        lines=[ok.LineItem("L1", "SKU-1", "Mug", 1 + number % 3, ok.Money("9.99", "EUR"))],
        payment_token="tok_test",
        idempotency_key=f"{worker}-{number}",
    )


class DedupHandler:
    """A de-duplicating handler: records each event once, in the shop's own database."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, timeout=60, isolation_level=None)
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS received "
            "(order_id TEXT, kind TEXT, occurred_at TEXT, "
            "PRIMARY KEY (order_id, kind, occurred_at))"
        )
        self.conn.execute("CREATE TABLE IF NOT EXISTS calls (order_id TEXT)")
        self.calls = 0

    def __call__(self, event: ok.OrderEvent) -> None:
        self.calls += 1
        self.conn.execute("INSERT INTO calls VALUES (?)", (event.order_id,))
        self.conn.execute(
            "INSERT INTO received VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (event.order_id, type(event).__name__, event.occurred_at.isoformat()),
        )


def main() -> None:
    action, path = sys.argv[1], sys.argv[2]
    if action == "place":
        worker, count = sys.argv[3], int(sys.argv[4])
        with ok.Shop.open(
            path, settings=ok.ShopSettings(dispatch="worker", track_stock=False)
        ) as shop:
            for number in range(count):
                order = shop.orders.place(command(worker, number))
                print(order.id, flush=True)
    elif action == "hold":
        order_id, count = sys.argv[3], int(sys.argv[4])
        settings = ok.ShopSettings(dispatch="worker", concurrency_retries=100, track_stock=False)
        with ok.Shop.open(path, settings=settings) as shop:
            wins = 0
            for _ in range(count):
                reason = f"r{os.getpid()}"
                shop.orders.hold(order_id, reason)
                shop.orders.release(order_id, reason)
                wins += 2
            print(wins, flush=True)
    elif action == "race":
        order_id, me, other = sys.argv[3], sys.argv[4], sys.argv[5]
        store = ok.Shop.open(path).store
        with store() as uow:
            order = uow.orders.get(order_id)
            order.hold(f"reason-{os.path.basename(me)}", order.placed_at)
            uow.orders.save(order)
            open(me, "w").close()
            while not os.path.exists(other):
                time.sleep(0.001)
            try:
                uow.commit()
                print("won", flush=True)
            except ok.ConcurrencyError:
                print("lost", flush=True)
    elif action == "crashy":
        log, seed = sys.argv[3], int(sys.argv[4])
        rng = random.Random(seed)
        shop = ok.Shop.open(
            path, notifier=MemoryNotifier(), settings=ok.ShopSettings(track_stock=False)
        )
        shop.subscribe(ok.OrderEvent, DedupHandler(path), name="test.dedup")
        with open(log, "a", encoding="utf-8") as committed:
            for number in range(10_000):
                order = shop.orders.place(command(f"s{seed}", number))
                committed.write(order.id + "\n")
                committed.flush()
                if rng.random() < 0.5:
                    shop.orders.acknowledge(order.id)
    elif action == "dispatch":
        worker, seconds = sys.argv[3], float(sys.argv[4])
        shop = ok.Shop.open(path, settings=ok.ShopSettings(dispatch="worker", track_stock=False))
        handler = DedupHandler(path)
        shop.subscribe(ok.OrderEvent, handler, name="test.dedup")
        deadline = time.monotonic() + seconds
        shop.events.run_worker(
            worker=worker, poll_interval=0.05, should_stop=lambda: time.monotonic() > deadline
        )
        print(handler.calls, flush=True)
    else:
        raise SystemExit(f"unknown action {action}")


if __name__ == "__main__":
    main()
