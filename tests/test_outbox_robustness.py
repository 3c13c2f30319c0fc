"""The outbox under stress: bad rows, slow batches, interruptions, failures after commit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import orderkit as ok
import pg
import rawdb
from orderkit.adapters.memory import ManualClock, MemoryStore, SequentialIds
from orderkit.adapters.sqlite import SqliteStore
from orderkit.shop import open_store as open_store_url

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ok.Store]:
    made: ok.Store = (
        MemoryStore()
        if request.param == "memory"
        else open_store_url(pg.store_url(request.param, tmp_path / "shop.db"))
    )
    yield made
    made.close()


def _shop(store: ok.Store, clock: ManualClock, **settings: object) -> ok.Shop:
    return ok.Shop(
        store,
        clock=clock,
        ids=SequentialIds(),
        settings=ok.ShopSettings(**{"track_stock": False, **settings}),
    )  # type: ignore[arg-type]


def _place(shop: ok.Shop, n: int) -> ok.Order:
    return shop.orders.place(
        ok.PlaceOrder(
            customer=ok.Customer(f"c{n}", "Ann", "ann@example.com"),
            shipping_address=ok.Address("Ann", "1 Main St", "Berlin", "10115", "DE"),
            lines=[ok.LineItem("L1", "SKU", "Mug", 1, ok.Money("1.00", "EUR"))],
            payment_token=f"tok_{n}",
        )
    )


def test_an_unreadable_outbox_row_is_set_aside_and_others_flow(tmp_path: Path) -> None:
    clock = ManualClock(START)
    shop = _shop(SqliteStore(tmp_path / "shop.db"), clock, dispatch="worker")
    seen: list[str] = []
    shop.subscribe(ok.OrderPlaced, lambda e: seen.append(e.order_id), name="seen")
    first, second = _place(shop, 1), _place(shop, 2)
    with rawdb.connect(tmp_path / "shop.db") as conn:
        conn.execute(
            'UPDATE outbox SET payload = \'{"type": "Gone"}\' WHERE aggregate_id = ?', (first.id,)
        )
    report = shop.events.run_pending()
    assert report.delivered == 1
    assert seen == [second.id]
    assert shop.events.pending() == 1  # kept, not lost: delivered once it can be read
    assert shop.orders.get(first.id).state == "placed"


def test_a_failure_after_commit_does_not_fail_the_command(store: ok.Store) -> None:
    clock = ManualClock(START)
    shop = _shop(store, clock)

    def broken_claim(**_: object) -> list[ok.DeadLetter]:
        raise ok.StorageError("the outbox is unreachable")

    shop.events._outbox = type("Broken", (), {"claim": staticmethod(broken_claim)})()  # type: ignore[assignment]
    order = _place(shop, 1)  # committed: must return normally
    assert shop.orders.get(order.id).version == 1


def test_an_interrupted_batch_hands_its_other_events_back_at_once(store: ok.Store) -> None:
    clock = ManualClock(START)
    shop = _shop(store, clock, dispatch="worker")
    calls: list[str] = []

    def handler(event: ok.OrderPlaced) -> None:
        calls.append(event.order_id)
        if len(calls) == 1:
            raise KeyboardInterrupt

    shop.subscribe(ok.OrderPlaced, handler, name="interrupted")
    ids = [_place(shop, n).id for n in range(3)]
    with pytest.raises(KeyboardInterrupt):
        shop.events.run_pending()
    report = shop.events.run_pending()  # no clock advance: nothing may stay leased
    assert report.delivered == 3
    assert calls == [ids[0], *ids]
    assert shop.events.pending() == 0


def test_a_slow_batch_never_starts_events_whose_lease_it_lost(store: ok.Store) -> None:
    clock = ManualClock(START)
    shop = _shop(store, clock, dispatch="worker")
    runs: list[str] = []
    taken: list[int] = []

    def slow_handler(event: ok.OrderPlaced) -> None:
        runs.append(event.order_id)
        if len(runs) == 1:
            clock.advance(timedelta(seconds=61))  # the batch's lease runs out meanwhile...
            claimed = store.outbox.claim(
                worker="other", limit=10, lease_seconds=60, now=clock.now()
            )  # ...and another worker takes it
            taken.extend(record.seq for record in claimed)

    shop.subscribe(ok.OrderPlaced, slow_handler, name="h")
    ids = [_place(shop, n).id for n in range(3)]
    shop.events.run_pending(worker="slow")
    assert len(taken) == 3
    assert runs == [ids[0]]  # the events now held by "other" were not started
    assert shop.events.pending() == 3  # and not finished by the worker that lost them
    clock.advance(timedelta(seconds=61))
    assert shop.events.run_pending(worker="slow").delivered == 3


def test_orders_are_placed_in_utc_whatever_the_clock_zone(store: ok.Store) -> None:
    berlin = ManualClock(datetime(2026, 3, 29, 3, 30, tzinfo=ZoneInfo("Europe/Berlin")))
    shop = _shop(store, berlin)
    order = _place(shop, 1)
    assert order.placed_at.utcoffset() == timedelta(0)
    assert order.placed_at == datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc)


def test_a_late_evening_order_in_a_western_shop_can_be_acknowledged(store: ok.Store) -> None:
    evening = ManualClock(datetime(2026, 1, 5, 19, 0, tzinfo=ZoneInfo("America/Los_Angeles")))
    promise = ok.DeliveryPromise(
        handling_days=0, transit_days=0, cutoff=datetime.max.time(), timezone="America/Los_Angeles"
    )
    shop = _shop(store, evening, delivery=promise)
    order = shop.orders.acknowledge(_place(shop, 1).id)
    assert order.promised_delivery == datetime(2026, 1, 5).date()
