"""Child processes of the PostgreSQL scale test (run as a script, not collected).

python tests/pg_scale_worker.py produce URL NAME COUNT
    place COUNT orders and carry each through acknowledgement, fulfilment, a label,
    hand-over and delivery; print "produced N" at the end.
python tests/pg_scale_worker.py dispatch URL NAME DONE
    dispatch events (the shop's handlers plus two recording handlers, "rec.a" and
    "rec.b") until the file DONE exists and nothing is pending.

The recording handlers write each (handler, outbox seq) once to ``delivered`` (with a
global sequence number, to check the order) and every call to ``calls`` (to count
re-deliveries after a kill).
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from datetime import timedelta
from pathlib import Path

import psycopg

import orderkit as ok
from orderkit.adapters.memory_carrier import MemoryCarrier
from orderkit.adapters.system import SystemClock
from orderkit.domain.carrier import TrackingEvent
from orderkit.service.dispatch import current_seq

SKUS = ("SC-A", "SC-B", "SC-C")
SETTINGS = ok.ShopSettings(dispatch="worker", handler_attempts=20)

TABLES = """
CREATE TABLE delivered (
    n BIGSERIAL PRIMARY KEY, handler TEXT NOT NULL, seq BIGINT NOT NULL,
    order_id TEXT NOT NULL, kind TEXT NOT NULL, UNIQUE (handler, seq)
);
CREATE TABLE calls (handler TEXT NOT NULL, seq BIGINT NOT NULL, pid INTEGER NOT NULL);
"""


def command(name: str, number: int) -> ok.PlaceOrder:
    sku = SKUS[number % len(SKUS)]
    return ok.PlaceOrder(
        customer=ok.Customer(f"cust-{name}-{number}", "Ann Example", "ann@example.com"),
        shipping_address=ok.Address("Ann Example", "1 Main St", "Berlin", "10115", "DE"),
        lines=[ok.LineItem("L1", sku, f"Item {sku}", 1 + number % 2, ok.Money("9.99", "EUR"))],
        payment_token="tok_test",
        idempotency_key=f"{name}-{number}",
    )


def produce(url: str, name: str, count: int) -> None:
    clock = SystemClock()
    carrier = MemoryCarrier(clock=clock, ids_seed=secrets.randbits(64))
    with ok.Shop.open(url, settings=SETTINGS, clock=clock, carriers=[carrier]) as shop:
        for number in range(count):
            order = shop.orders.place(command(name, number))
            shop.orders.acknowledge(order.id)
            for shipment in shop.fulfilment.start(order.id):
                shop.fulfilment.pick(shipment.id)
                shop.fulfilment.pack(shipment.id, [ok.Parcel(500, 200, 100, 100)])
                labelled = shop.shipping.buy_label(shipment.id)
                shop.shipping.hand_over(shipment.id)
                assert labelled.tracking_number is not None
                shop.shipping.apply_tracking_event(
                    TrackingEvent(
                        f"{labelled.tracking_number}-delivered",
                        labelled.tracking_number,
                        "delivered",
                        clock.now() + timedelta(seconds=1),
                    )
                )
    print(f"produced {count}")


class Recorder:
    def __init__(self, url: str, handler: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.handler = handler

    def __call__(self, event: ok.OrderEvent) -> None:
        seq = current_seq()
        self.conn.execute(
            "INSERT INTO calls (handler, seq, pid) VALUES (%s, %s, %s)",
            (self.handler, seq, os.getpid()),
        )
        self.conn.execute(
            "INSERT INTO delivered (handler, seq, order_id, kind) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (handler, seq) DO NOTHING",
            (self.handler, seq, getattr(event, "order_id", ""), type(event).__name__),
        )


def dispatch(url: str, name: str, done: str) -> None:
    with ok.Shop.open(url, settings=SETTINGS) as shop:
        shop.events.lease = timedelta(seconds=3)
        shop.events.retry_delay = timedelta(milliseconds=100)
        for handler in ("rec.a", "rec.b"):
            shop.subscribe(ok.DomainEvent, Recorder(url, handler), name=handler)
        delivered = 0
        while True:
            report = shop.events.run_pending(worker=name, batch=50)
            delivered += report.delivered
            if not report.delivered and Path(done).exists() and shop.events.pending() == 0:
                break
            if not report.delivered:
                shop.store.outbox.wait_for_events(0.2)  # type: ignore[attr-defined]
    print(f"delivered {delivered}")


def main() -> None:
    action, url, name = sys.argv[1:4]
    if action == "produce":
        produce(url, name, int(sys.argv[4]))
    elif action == "dispatch":
        dispatch(url, name, sys.argv[4])
    else:
        raise SystemExit(f"unknown action {action}")


if __name__ == "__main__":
    started = time.monotonic()
    main()
