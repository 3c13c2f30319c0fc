"""Contract suites: what every store (repository, unit of work, outbox) must do.

Written once, run against every adapter: this repository runs them against the
memory and SQLite stores, and you can run them against your own. Subclass,
implement :meth:`StoreContract.make_store`, and let pytest collect the class::

    from orderkit.testing.contracts import StoreContract

    class TestMyStore(StoreContract):
        def make_store(self, tmp_path):
            return MyStore(...)

Needs pytest (the ``test`` extra).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from orderkit.domain.events import OrderPlaced
from orderkit.domain.inventory import (
    Location,
    Movement,
    MovementKind,
    Reservation,
    StockLevel,
    StockPick,
)
from orderkit.domain.order import Order
from orderkit.domain.stock_changes import (
    AddLocation,
    Adjust,
    Allocate,
    ExpireReservations,
    KeepReservations,
    Receive,
    Release,
    Reserve,
    Restock,
    SetBackorderLimit,
    Ship,
    StockChange,
)
from orderkit.domain.values import Address, Customer, LineItem, SalesChannel
from orderkit.errors import (
    ConcurrencyError,
    DuplicateKey,
    InvalidField,
    InvalidQuantity,
    OrderNotFound,
    OutOfStock,
    ReservationNotFound,
    UnknownLocation,
    UnknownSku,
)
from orderkit.money import Money
from orderkit.ports import DeadLetter, Store
from orderkit.serialization import dumps
from orderkit.testing.inquiry_store import InquiryStoreContract, OrderHistoryContract
from orderkit.testing.payment_store import PaymentStoreContract
from orderkit.testing.return_store import ReturnStoreContract
from orderkit.testing.shipment_store import ShipmentStoreContract

__all__ = ["STOCK_SKUS", "StoreContract", "assert_ledger_matches_on_hand", "make_order"]

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def make_order(
    order_id: str,
    *,
    customer_id: str = "cust-1",
    placed_at: datetime = T0,
    key: str | None = None,
) -> Order:
    """A small placed order with its ``OrderPlaced`` event pending."""
    return Order.place(
        order_id=order_id,
        customer=Customer(customer_id, "Ann Example", "ann@example.com"),
        shipping_address=Address("Ann Example", "1 Main St", "Berlin", "10115", "DE"),
        channel=SalesChannel.WEB,
        currency="EUR",
        lines=[LineItem("L1", "SKU-1", "Mug", 2, Money("9.99", "EUR"))],
        shipping_charge=Money("4.90", "EUR"),
        payment_token="tok_test",
        placed_at=placed_at,
        idempotency_key=key,
    )


def _add(store: Store, *orders: Order) -> None:
    with store() as uow:
        for order in orders:
            uow.orders.add(order)
        uow.commit()


# -- stock fixtures and helpers ----------------------------------------------------------

WH1 = Location("WH-1", "Main warehouse", priority=1)
WH2 = Location("WH-2", "Overflow warehouse", priority=2, handling_days=2)
STOCK_SKUS = ("SKU-A", "SKU-B", "SKU-C")
"""The SKUs the stock contract uses; the ledger check covers each of them at every location."""


def _commit(store: Store, *changes: StockChange) -> None:
    with store() as uow:
        for change in changes:
            uow.stock.stage(change)
        uow.commit()


def _stock(store: Store, quantities: Mapping[tuple[str, str], int]) -> None:
    """Add WH-1 and WH-2, then receive ``quantities`` per (sku, location) at T0."""
    _commit(
        store,
        AddLocation(WH1),
        AddLocation(WH2),
        *(Receive(sku, loc, qty, T0) for (sku, loc), qty in quantities.items()),
    )


def _pick(line_id: str, sku: str, location: str, quantity: int) -> StockPick:
    return StockPick(line_id, sku, location, quantity)


def _reserve(
    order_id: str,
    *picks: StockPick,
    expires_at: datetime | None = None,
    now: datetime = T0,
) -> Reserve:
    return Reserve(order_id, tuple(picks), expires_at, now)


def _level(store: Store, sku: str, location: str, now: datetime = T0) -> StockLevel | None:
    with store() as uow:
        return uow.stock.levels([sku], now).get((sku, location))


def _reservations(store: Store, order_id: str) -> list[tuple[str, str, Reservation]]:
    with store() as uow:
        return uow.stock.reservations(order_id)


def _movements(store: Store, sku: str, location: str) -> list[Movement]:
    with store() as uow:
        return uow.stock.movements(sku, location)


def _snapshot(store: Store, now: datetime = T0) -> Any:
    """Everything a failed commit must leave as it was: locations, levels, items with
    their reservations, ledgers, orders and the outbox."""
    with store() as uow:
        levels = uow.stock.levels(STOCK_SKUS, now)
        items = {}
        for key in sorted(levels):
            item = uow.stock.item(*key)
            assert item is not None
            items[key] = (
                item.on_hand,
                item.backorder_limit,
                dict(item.reservations),
                uow.stock.movements(*key),
            )
        orders = [dumps(order) for order in uow.orders.list(limit=1000)]
        return (uow.stock.locations(), levels, items, orders, store.outbox.pending())


def assert_ledger_matches_on_hand(store: Store) -> None:
    """On hand equals the sum of the movements, and is never negative, for every stock
    item of :data:`STOCK_SKUS`."""
    with store() as uow:
        for (sku, location), level in uow.stock.levels(STOCK_SKUS, T0).items():
            item = uow.stock.item(sku, location)
            assert item is not None
            ledger = sum(m.quantity for m in uow.stock.movements(sku, location))
            assert ledger == level.on_hand == item.on_hand, (sku, location)
            assert level.on_hand >= 0, (sku, location)


class StoreContract(
    PaymentStoreContract,
    ShipmentStoreContract,
    ReturnStoreContract,
    InquiryStoreContract,
    OrderHistoryContract,
):
    """The contract of a :class:`~orderkit.ports.Store`; subclass and implement ``make_store``."""

    def make_store(self, tmp_path: Path) -> Store:
        """A new, empty store."""
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        store = self.make_store(tmp_path)
        yield store
        store.close()

    @pytest.fixture(autouse=True)
    def _ledger_matches_on_hand_after_each_test(self, store: Store) -> Iterator[None]:
        yield
        assert_ledger_matches_on_hand(store)

    # -- repository and unit of work ------------------------------------------------

    def test_added_order_reads_back_identical_with_version_one(self, store: Store) -> None:
        order = make_order("o-1", key="k-1")
        _add(store, order)
        assert order.version == 1
        assert order.pending_events == []
        with store() as uow:
            loaded = uow.orders.get("o-1")
        assert dumps(loaded) == dumps(order)
        assert loaded.version == 1

    def test_unknown_order_is_not_found(self, store: Store) -> None:
        with store() as uow, pytest.raises(OrderNotFound):
            uow.orders.get("nope")

    def test_uncommitted_changes_are_invisible_and_rolled_back(self, store: Store) -> None:
        with store() as uow:
            uow.orders.add(make_order("o-1"))
            with store() as other, pytest.raises(OrderNotFound):
                other.orders.get("o-1")
        with store() as uow, pytest.raises(OrderNotFound):
            uow.orders.get("o-1")
        assert store.outbox.pending() == 0

    def test_save_raises_version_by_one(self, store: Store) -> None:
        _add(store, make_order("o-1"))
        with store() as uow:
            order = uow.orders.get("o-1")
            order.acknowledge(T0.date(), T0)
            uow.orders.save(order)
            events = uow.commit()
        assert order.version == 2
        assert [type(e).__name__ for e in events] == ["OrderAcknowledged"]
        with store() as uow:
            loaded = uow.orders.get("o-1")
        assert (loaded.version, loaded.state) == (2, "acknowledged")

    def test_stale_save_raises_and_changes_nothing(self, store: Store) -> None:
        _add(store, make_order("o-1"))
        with store() as first, store() as second:
            a = first.orders.get("o-1")
            b = second.orders.get("o-1")
            a.hold("manual_review", T0)
            first.orders.save(a)
            first.commit()
            b.cancel("too late", T0)
            second.orders.save(b)
            with pytest.raises(ConcurrencyError):
                second.commit()
        assert b.version == 1
        with store() as uow:
            stored = uow.orders.get("o-1")
        assert (stored.version, stored.state) == (2, "placed")
        assert store.outbox.pending() == 2  # OrderPlaced, OrderHoldPlaced: nothing from b

    def test_duplicate_id_or_key_commits_nothing(self, store: Store) -> None:
        _add(store, make_order("o-1", key="k-1"))
        for clash in (make_order("o-1"), make_order("o-9", key="k-1")):
            with store() as uow:
                uow.orders.add(make_order("o-2"))
                uow.orders.add(clash)
                with pytest.raises(DuplicateKey):
                    uow.commit()
        with store() as uow:
            assert [o.id for o in uow.orders.list()] == ["o-1"]
        assert store.outbox.pending() == 1

    def test_find_by_idempotency_key(self, store: Store) -> None:
        _add(store, make_order("o-1", key="k-1"), make_order("o-2"))
        with store() as uow:
            found = uow.orders.find_by_idempotency_key("k-1")
            assert found is not None
            assert found.id == "o-1"
            assert uow.orders.find_by_idempotency_key("k-2") is None

    def test_list_filters_orders_and_pages(self, store: Store) -> None:
        orders = [
            make_order(f"o-{n}", customer_id=f"c-{n % 2}", placed_at=T0 + timedelta(minutes=9 - n))
            for n in range(10)
        ]
        _add(store, *orders)
        with store() as uow:
            order = uow.orders.get("o-3")
            order.acknowledge(T0.date(), T0)
            uow.orders.save(order)
            uow.commit()
        with store() as uow:
            everything = [o.id for o in uow.orders.list(limit=100)]
            assert everything == [f"o-{n}" for n in range(9, -1, -1)]
            assert [o.id for o in uow.orders.list(limit=3, offset=2)] == ["o-7", "o-6", "o-5"]
            assert [o.id for o in uow.orders.list(customer_id="c-1")] == [
                "o-9",
                "o-7",
                "o-5",
                "o-3",
                "o-1",
            ]
            assert [o.id for o in uow.orders.list(state="acknowledged")] == ["o-3"]
            assert [o.id for o in uow.orders.list(state="placed", customer_id="c-1", limit=2)] == [
                "o-9",
                "o-7",
            ]
            with pytest.raises(InvalidField):
                uow.orders.list(limit=0)
            with pytest.raises(InvalidField):
                uow.orders.list(offset=-1)

    # -- outbox ---------------------------------------------------------------------

    def test_committed_events_wait_in_order(self, store: Store) -> None:
        _add(store, make_order("o-1"), make_order("o-2"))
        records = store.outbox.claim(worker="w", limit=10, lease_seconds=30, now=T0)
        assert [r.aggregate_id for r in records] == ["o-1", "o-2"]
        assert all(isinstance(r.event, OrderPlaced) for r in records)
        assert records[0].seq < records[1].seq
        assert [r.attempts for r in records] == [0, 0]

    def test_a_lease_keeps_other_workers_away_until_it_ends(self, store: Store) -> None:
        _add(store, make_order("o-1"))
        assert len(store.outbox.claim(worker="a", limit=10, lease_seconds=30, now=T0)) == 1
        assert store.outbox.claim(worker="b", limit=10, lease_seconds=30, now=T0) == []
        later = T0 + timedelta(seconds=31)
        taken = store.outbox.claim(worker="b", limit=10, lease_seconds=30, now=later)
        assert [r.aggregate_id for r in taken] == ["o-1"]

    def test_release_and_finish(self, store: Store) -> None:
        _add(store, make_order("o-1"))
        (record,) = store.outbox.claim(worker="a", limit=10, lease_seconds=30, now=T0)
        store.outbox.release([record.seq], worker="a")
        (again,) = store.outbox.claim(worker="b", limit=10, lease_seconds=30, now=T0)
        assert again.seq == record.seq
        store.outbox.finish(again.seq, worker="b", now=T0)
        assert store.outbox.pending() == 0
        later = T0 + timedelta(hours=1)
        assert store.outbox.claim(worker="c", limit=10, lease_seconds=30, now=later) == []

    def test_postponed_event_holds_back_later_events_of_its_aggregate(self, store: Store) -> None:
        _add(store, make_order("o-1"))
        with store() as uow:
            order = uow.orders.get("o-1")
            order.acknowledge(T0.date(), T0)
            uow.orders.save(order)
            uow.commit()
        _add(store, make_order("o-2"))
        first, *others = store.outbox.claim(worker="a", limit=10, lease_seconds=30, now=T0)
        assert [r.aggregate_id for r in others] == ["o-1", "o-2"]
        store.outbox.release([r.seq for r in others], worker="a")
        store.outbox.postpone(first.seq, worker="a", until=T0 + timedelta(minutes=5))
        soon = store.outbox.claim(
            worker="a", limit=10, lease_seconds=30, now=T0 + timedelta(minutes=1)
        )
        assert [r.aggregate_id for r in soon] == ["o-2"]
        store.outbox.release([r.seq for r in soon], worker="a")
        due = store.outbox.claim(
            worker="a", limit=10, lease_seconds=30, now=T0 + timedelta(minutes=5)
        )
        assert [r.aggregate_id for r in due] == ["o-1", "o-1", "o-2"]
        assert due[0].attempts == 1

    def test_processed_marks_are_per_handler_and_idempotent(self, store: Store) -> None:
        _add(store, make_order("o-1"))
        (record,) = store.outbox.claim(worker="a", limit=10, lease_seconds=30, now=T0)
        assert not store.outbox.is_processed("h1", record.seq)
        store.outbox.mark_processed("h1", record.seq)
        store.outbox.mark_processed("h1", record.seq)
        assert store.outbox.is_processed("h1", record.seq)
        assert not store.outbox.is_processed("h2", record.seq)

    def test_dead_letters_are_kept_replaced_and_removed(self, store: Store) -> None:
        _add(store, make_order("o-1"), make_order("o-2"))
        records = store.outbox.claim(worker="a", limit=10, lease_seconds=30, now=T0)
        second, first = records[1], records[0]
        store.outbox.dead_letter(DeadLetter("h", second.seq, second.event, "boom", T0))
        store.outbox.dead_letter(DeadLetter("h", first.seq, first.event, "bang", T0))
        store.outbox.dead_letter(DeadLetter("h", first.seq, first.event, "bang again", T0))
        letters = store.outbox.dead_letters()
        assert [(d.seq, d.error) for d in letters] == [
            (first.seq, "bang again"),
            (second.seq, "boom"),
        ]
        assert letters[0].event == first.event
        store.outbox.remove_dead_letter("h", first.seq)
        assert [d.seq for d in store.outbox.dead_letters()] == [second.seq]

    # -- stock: locations, receiving, counts ------------------------------------------

    def test_locations_read_back_by_priority_then_id_and_are_replaced_by_id(
        self, store: Store
    ) -> None:
        third = Location("WH-0", "Shop floor", priority=2)
        _commit(store, AddLocation(WH2), AddLocation(third), AddLocation(WH1))
        with store() as uow:
            assert uow.stock.locations() == [WH1, third, WH2]
        moved = Location("WH-2", "Overflow, now first", priority=0, handling_days=3)
        _commit(store, AddLocation(moved))
        with store() as uow:
            assert uow.stock.locations() == [moved, WH1, third]

    def test_receive_creates_the_item_and_records_received_movements(self, store: Store) -> None:
        _commit(store, AddLocation(WH1))
        with store() as uow:
            assert uow.stock.item("SKU-A", "WH-1") is None
            assert uow.stock.levels(["SKU-A"], T0) == {}
        later = T0 + timedelta(hours=1)
        _commit(store, Receive("SKU-A", "WH-1", 5, T0, "PO-17"))
        _commit(store, Receive("SKU-A", "WH-1", 3, later))
        with store() as uow:
            item = uow.stock.item("SKU-A", "WH-1")
            assert item is not None
            assert (item.sku, item.location, item.on_hand) == ("SKU-A", "WH-1", 8)
            assert (item.backorder_limit, item.reservations) == (0, {})
            assert uow.stock.levels(["SKU-A", "SKU-B"], T0) == {
                ("SKU-A", "WH-1"): StockLevel("SKU-A", "WH-1", 8, 0, 8)
            }
        assert _movements(store, "SKU-A", "WH-1") == [
            Movement("SKU-A", "WH-1", MovementKind.RECEIVED, 5, T0, "PO-17"),
            Movement("SKU-A", "WH-1", MovementKind.RECEIVED, 3, later, "received"),
        ]

    def test_receive_at_an_unknown_location_raises_and_changes_nothing(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 5})
        before = _snapshot(store)
        with store() as uow:
            uow.stock.stage(Receive("SKU-A", "WH-1", 2, T0))
            uow.stock.stage(Receive("SKU-A", "NOWHERE", 1, T0))
            with pytest.raises(UnknownLocation) as caught:
                uow.commit()
        assert caught.value.location == "NOWHERE"
        assert _snapshot(store) == before
        with store() as uow:
            assert uow.stock.item("SKU-A", "NOWHERE") is None

    @pytest.mark.parametrize("quantity", [0, -1])
    def test_receive_of_no_units_is_refused(self, store: Store, quantity: int) -> None:
        _stock(store, {("SKU-A", "WH-1"): 5})
        before = _snapshot(store)
        with pytest.raises(InvalidQuantity):
            _commit(store, Receive("SKU-A", "WH-1", quantity, T0))
        assert _snapshot(store) == before

    def test_uncommitted_stock_changes_are_invisible_and_rolled_back(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 5})
        with store() as uow:
            uow.stock.stage(Receive("SKU-A", "WH-1", 4, T0))
            uow.stock.stage(Receive("SKU-B", "WH-1", 4, T0))
            with store() as other:
                assert other.stock.levels(["SKU-A", "SKU-B"], T0) == {
                    ("SKU-A", "WH-1"): StockLevel("SKU-A", "WH-1", 5, 0, 5)
                }
        assert _level(store, "SKU-A", "WH-1") == StockLevel("SKU-A", "WH-1", 5, 0, 5)
        assert _level(store, "SKU-B", "WH-1") is None
        assert len(_movements(store, "SKU-A", "WH-1")) == 1

    def test_adjust_up_and_down_records_the_reason(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 10})
        later = T0 + timedelta(minutes=5)
        _commit(store, Adjust("SKU-A", "WH-1", -3, later, "damaged in transit"))
        _commit(store, Adjust("SKU-A", "WH-1", 1, later, "found behind a shelf"))
        assert _level(store, "SKU-A", "WH-1") == StockLevel("SKU-A", "WH-1", 8, 0, 8)
        assert [(m.kind, m.quantity, m.reason) for m in _movements(store, "SKU-A", "WH-1")] == [
            (MovementKind.RECEIVED, 10, "received"),
            (MovementKind.ADJUSTED, -3, "damaged in transit"),
            (MovementKind.ADJUSTED, 1, "found behind a shelf"),
        ]

    def test_adjust_below_zero_raises_out_of_stock_and_changes_nothing(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 2})
        before = _snapshot(store)
        with pytest.raises(OutOfStock) as caught:
            _commit(store, Adjust("SKU-A", "WH-1", -3, T0, "count"))
        assert (caught.value.sku, caught.value.requested, caught.value.available) == (
            "SKU-A",
            3,
            2,
        )
        assert _snapshot(store) == before

    def test_adjust_below_active_reservations_raises_and_changes_nothing(
        self, store: Store
    ) -> None:
        _stock(store, {("SKU-A", "WH-1"): 5})
        _commit(store, _reserve("o-1", _pick("L1", "SKU-A", "WH-1", 4)))
        before = _snapshot(store)
        with pytest.raises(OutOfStock) as caught:
            _commit(store, Adjust("SKU-A", "WH-1", -2, T0, "count"))
        assert (caught.value.sku, caught.value.requested, caught.value.available) == (
            "SKU-A",
            2,
            1,
        )
        assert _snapshot(store) == before
        _commit(store, Adjust("SKU-A", "WH-1", -1, T0, "count"))
        assert _level(store, "SKU-A", "WH-1") == StockLevel("SKU-A", "WH-1", 4, 4, 0)

    def test_adjust_ignores_expired_reservations(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 5})
        expiry = T0 + timedelta(minutes=30)
        _commit(store, _reserve("o-1", _pick("L1", "SKU-A", "WH-1", 5), expires_at=expiry))
        with pytest.raises(OutOfStock):
            _commit(store, Adjust("SKU-A", "WH-1", -5, expiry - timedelta(seconds=1), "count"))
        _commit(store, Adjust("SKU-A", "WH-1", -5, expiry, "count"))
        assert _level(store, "SKU-A", "WH-1", expiry) == StockLevel("SKU-A", "WH-1", 0, 0, 0)

    @pytest.mark.parametrize(
        ("delta", "reason", "error"),
        [(0, "count", InvalidQuantity), (-1, "", InvalidField), (1, "   ", InvalidField)],
    )
    def test_adjust_needs_a_non_zero_delta_and_a_reason(
        self, store: Store, delta: int, reason: str, error: type[Exception]
    ) -> None:
        _stock(store, {("SKU-A", "WH-1"): 5})
        before = _snapshot(store)
        with pytest.raises(error):
            _commit(store, Adjust("SKU-A", "WH-1", delta, T0, reason))
        assert _snapshot(store) == before

    def test_adjust_or_restock_of_an_unstocked_sku_or_location_is_refused(
        self, store: Store
    ) -> None:
        _stock(store, {("SKU-A", "WH-1"): 5})
        before = _snapshot(store)
        with pytest.raises(UnknownSku):
            _commit(store, Adjust("SKU-B", "WH-1", 1, T0, "count"))
        with pytest.raises(UnknownLocation):
            _commit(store, Adjust("SKU-A", "NOWHERE", 1, T0, "count"))
        with pytest.raises(UnknownSku):
            _commit(store, Restock("SKU-A", "WH-2", 1, "o-1", "L1", T0))
        with pytest.raises(UnknownLocation):
            _commit(store, Restock("SKU-A", "NOWHERE", 1, "o-1", "L1", T0))
        assert _snapshot(store) == before

    # -- stock: backorders ----------------------------------------------------------------

    def test_backorder_limit_zero_denies_reserving_beyond_on_hand(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 2})
        with pytest.raises(OutOfStock) as caught:
            _commit(store, _reserve("o-1", _pick("L1", "SKU-A", "WH-1", 3)))
        assert (caught.value.requested, caught.value.available) == (3, 2)
        assert _reservations(store, "o-1") == []
        assert _level(store, "SKU-A", "WH-1") == StockLevel("SKU-A", "WH-1", 2, 0, 2)

    def test_backorder_limit_n_allows_n_units_beyond_on_hand(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 2})
        _commit(store, SetBackorderLimit("SKU-A", "WH-1", 3, T0))
        assert _level(store, "SKU-A", "WH-1") == StockLevel("SKU-A", "WH-1", 2, 0, 5)
        _commit(store, _reserve("o-1", _pick("L1", "SKU-A", "WH-1", 5)))
        assert _level(store, "SKU-A", "WH-1") == StockLevel("SKU-A", "WH-1", 2, 5, 0)
        with pytest.raises(OutOfStock) as caught:
            _commit(store, _reserve("o-2", _pick("L1", "SKU-A", "WH-1", 1)))
        assert (caught.value.sku, caught.value.requested, caught.value.available) == (
            "SKU-A",
            1,
            0,
        )
        assert _reservations(store, "o-2") == []
        before = _snapshot(store)
        with pytest.raises(OutOfStock):  # lowering the limit below what is reserved
            _commit(store, SetBackorderLimit("SKU-A", "WH-1", 2, T0))
        with pytest.raises(OutOfStock):  # on hand 1 + limit 3 < reserved 5
            _commit(store, Adjust("SKU-A", "WH-1", -1, T0, "count"))
        assert _snapshot(store) == before

    def test_backorder_limit_none_allows_any_quantity(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 1})
        _commit(store, SetBackorderLimit("SKU-A", "WH-1", None, T0))
        _commit(store, _reserve("o-1", _pick("L1", "SKU-A", "WH-1", 1000)))
        assert _level(store, "SKU-A", "WH-1") == StockLevel("SKU-A", "WH-1", 1, 1000, None)
        with pytest.raises(OutOfStock):  # back to deny while 999 units are backordered
            _commit(store, SetBackorderLimit("SKU-A", "WH-1", 0, T0))
        assert _level(store, "SKU-A", "WH-1") == StockLevel("SKU-A", "WH-1", 1, 1000, None)

    def test_backorder_limit_on_a_new_item_creates_it_without_stock(self, store: Store) -> None:
        _stock(store, {})
        _commit(store, SetBackorderLimit("SKU-B", "WH-2", 2, T0))
        assert _level(store, "SKU-B", "WH-2") == StockLevel("SKU-B", "WH-2", 0, 0, 2)
        assert _movements(store, "SKU-B", "WH-2") == []
        _commit(store, _reserve("o-1", _pick("L1", "SKU-B", "WH-2", 2)))
        with pytest.raises(OutOfStock):
            _commit(store, _reserve("o-2", _pick("L1", "SKU-B", "WH-2", 1)))
        with pytest.raises(InvalidQuantity):
            _commit(store, SetBackorderLimit("SKU-B", "WH-2", -1, T0))
        with pytest.raises(UnknownLocation):
            _commit(store, SetBackorderLimit("SKU-B", "NOWHERE", 2, T0))

    # -- stock: reservations --------------------------------------------------------------

    def test_reserve_holds_every_pick_and_reads_back(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 5, ("SKU-A", "WH-2"): 5, ("SKU-B", "WH-1"): 5})
        expiry = T0 + timedelta(hours=1)
        _commit(
            store,
            _reserve(
                "o-1",
                _pick("L2", "SKU-B", "WH-1", 1),
                _pick("L1", "SKU-A", "WH-2", 2),
                _pick("L1", "SKU-A", "WH-1", 3),
                expires_at=expiry,
            ),
        )
        assert _reservations(store, "o-1") == [
            ("SKU-A", "WH-1", Reservation("o-1", "L1", 3, expiry)),
            ("SKU-A", "WH-2", Reservation("o-1", "L1", 2, expiry)),
            ("SKU-B", "WH-1", Reservation("o-1", "L2", 1, expiry)),
        ]
        assert _reservations(store, "o-2") == []
        with store() as uow:
            assert uow.stock.levels(["SKU-A", "SKU-B"], T0) == {
                ("SKU-A", "WH-1"): StockLevel("SKU-A", "WH-1", 5, 3, 2),
                ("SKU-A", "WH-2"): StockLevel("SKU-A", "WH-2", 5, 2, 3),
                ("SKU-B", "WH-1"): StockLevel("SKU-B", "WH-1", 5, 1, 4),
            }
            item = uow.stock.item("SKU-A", "WH-1")
        assert item is not None
        assert item.reservations == {("o-1", "L1"): Reservation("o-1", "L1", 3, expiry)}

    def test_reserve_is_all_or_nothing_across_sku_and_location_groups(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 5, ("SKU-A", "WH-2"): 1, ("SKU-B", "WH-1"): 1})
        before = _snapshot(store)
        short_sku = _reserve(
            "o-1", _pick("L1", "SKU-A", "WH-1", 3), _pick("L2", "SKU-B", "WH-1", 2)
        )
        short_location = _reserve(
            "o-1", _pick("L1", "SKU-A", "WH-1", 3), _pick("L1", "SKU-A", "WH-2", 2)
        )
        for change, short in ((short_sku, ("SKU-B", 2, 1)), (short_location, ("SKU-A", 2, 1))):
            with pytest.raises(OutOfStock) as caught:
                _commit(store, change)
            error = caught.value
            assert (error.sku, error.requested, error.available) == short
            assert error.sku in str(error)
            assert _snapshot(store) == before
            assert _reservations(store, "o-1") == []
            assert _level(store, "SKU-A", "WH-1") == StockLevel("SKU-A", "WH-1", 5, 0, 5)

    def test_reserve_checks_the_total_demand_of_lines_with_one_sku(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 3})
        with pytest.raises(OutOfStock) as caught:
            _commit(
                store,
                _reserve("o-1", _pick("L1", "SKU-A", "WH-1", 2), _pick("L2", "SKU-A", "WH-1", 2)),
            )
        assert (caught.value.sku, caught.value.requested, caught.value.available) == (
            "SKU-A",
            4,
            3,
        )
        assert _reservations(store, "o-1") == []
        _commit(
            store,
            _reserve("o-1", _pick("L1", "SKU-A", "WH-1", 2), _pick("L2", "SKU-A", "WH-1", 1)),
        )
        assert _level(store, "SKU-A", "WH-1") == StockLevel("SKU-A", "WH-1", 3, 3, 0)
        assert [r.line_id for _, _, r in _reservations(store, "o-1")] == ["L1", "L2"]

    def test_reserve_of_an_unstocked_sku_or_unknown_location_is_refused(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 3})
        before = _snapshot(store)
        with pytest.raises(UnknownSku) as unknown_sku:
            _commit(store, _reserve("o-1", _pick("L1", "SKU-B", "WH-1", 1)))
        assert unknown_sku.value.sku == "SKU-B"
        with pytest.raises(UnknownLocation):
            _commit(store, _reserve("o-1", _pick("L1", "SKU-A", "NOWHERE", 1)))
        with pytest.raises(InvalidQuantity):
            _commit(store, _reserve("o-1", _pick("L1", "SKU-A", "WH-1", 0)))
        assert _snapshot(store) == before

    def test_an_expired_reservation_never_counts_against_availability(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 3})
        expiry = T0 + timedelta(minutes=30)
        just_before = expiry - timedelta(seconds=1)
        _commit(store, _reserve("o-1", _pick("L1", "SKU-A", "WH-1", 3), expires_at=expiry))
        assert _level(store, "SKU-A", "WH-1", just_before) == StockLevel("SKU-A", "WH-1", 3, 3, 0)
        with pytest.raises(OutOfStock):
            _commit(store, _reserve("o-2", _pick("L1", "SKU-A", "WH-1", 1), now=just_before))
        # At the expiry, before any clean-up: levels and a new reservation both ignore it.
        assert _level(store, "SKU-A", "WH-1", expiry) == StockLevel("SKU-A", "WH-1", 3, 0, 3)
        _commit(store, _reserve("o-2", _pick("L1", "SKU-A", "WH-1", 3), now=expiry))
        assert _reservations(store, "o-2") == [("SKU-A", "WH-1", Reservation("o-2", "L1", 3, None))]
        assert _level(store, "SKU-A", "WH-1", expiry) == StockLevel("SKU-A", "WH-1", 3, 3, 0)

    def test_kept_reservations_stop_expiring_and_expired_ones_stay_expired(
        self, store: Store
    ) -> None:
        _stock(store, {("SKU-A", "WH-1"): 10})
        soon = T0 + timedelta(hours=1)
        _commit(store, _reserve("ord-1", _pick("L1", "SKU-A", "WH-1", 3), expires_at=soon))
        _commit(store, _reserve("ord-2", _pick("L1", "SKU-A", "WH-1", 2), expires_at=soon))
        later = T0 + timedelta(hours=2)
        _commit(store, KeepReservations("ord-1", T0))  # before it expired: kept
        _commit(store, KeepReservations("ord-2", later))  # after: not revived
        level = _level(store, "SKU-A", "WH-1", T0 + timedelta(days=30))
        assert level is not None
        assert level.reserved == 3
        assert [r.expires_at for _, _, r in _reservations(store, "ord-1")] == [None]

    def test_expire_reservations_removes_only_expired_unallocated_ones(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 10, ("SKU-B", "WH-2"): 10})
        expiry = T0 + timedelta(minutes=30)
        _commit(
            store,
            _reserve("o-1", _pick("L1", "SKU-A", "WH-1", 2), expires_at=expiry),
            _reserve("o-2", _pick("L1", "SKU-B", "WH-2", 3), expires_at=expiry),
            _reserve("o-3", _pick("L1", "SKU-A", "WH-1", 4)),
            _reserve("o-4", _pick("L1", "SKU-A", "WH-1", 1), expires_at=expiry),
            Allocate("o-4", "L1", "ship-4", T0),
        )
        _commit(store, ExpireReservations(expiry - timedelta(seconds=1)))
        assert [len(_reservations(store, o)) for o in ("o-1", "o-2", "o-3", "o-4")] == [1, 1, 1, 1]
        _commit(store, ExpireReservations(expiry))
        assert _reservations(store, "o-1") == []
        assert _reservations(store, "o-2") == []
        assert _reservations(store, "o-3") == [("SKU-A", "WH-1", Reservation("o-3", "L1", 4, None))]
        assert _reservations(store, "o-4") == [
            ("SKU-A", "WH-1", Reservation("o-4", "L1", 1, None, "ship-4"))
        ]
        with store() as uow:
            item = uow.stock.item("SKU-B", "WH-2")
            assert item is not None
            assert item.reservations == {}
            assert uow.stock.levels(["SKU-A", "SKU-B"], expiry) == {
                ("SKU-A", "WH-1"): StockLevel("SKU-A", "WH-1", 10, 5, 5),
                ("SKU-B", "WH-2"): StockLevel("SKU-B", "WH-2", 10, 0, 10),
            }

    def test_reserving_more_for_a_held_line_adds_to_it(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 5})
        first, second = T0 + timedelta(minutes=30), T0 + timedelta(hours=1)
        _commit(store, _reserve("o-1", _pick("L1", "SKU-A", "WH-1", 2), expires_at=first))
        _commit(store, _reserve("o-1", _pick("L1", "SKU-A", "WH-1", 1), expires_at=second))
        assert _reservations(store, "o-1") == [
            ("SKU-A", "WH-1", Reservation("o-1", "L1", 3, second))
        ]
        assert _level(store, "SKU-A", "WH-1", first) == StockLevel("SKU-A", "WH-1", 5, 3, 2)

    def test_reserving_more_for_an_allocated_line_keeps_the_allocated_units(
        self, store: Store
    ) -> None:
        _stock(store, {("SKU-A", "WH-1"): 5})
        expiry = T0 + timedelta(minutes=30)
        _commit(
            store,
            _reserve("o-1", _pick("L1", "SKU-A", "WH-1", 2), expires_at=expiry),
            Allocate("o-1", "L1", "ship-1", T0),
        )
        _commit(store, _reserve("o-1", _pick("L1", "SKU-A", "WH-1", 1), expires_at=expiry))
        much_later = T0 + timedelta(days=1)
        _commit(store, ExpireReservations(much_later))
        # An allocated reservation never expires: its 2 units stay held, allocated.
        level = _level(store, "SKU-A", "WH-1", much_later)
        assert level is not None
        assert level.reserved >= 2
        ((_, _, held),) = _reservations(store, "o-1")
        assert (held.shipment_id, held.quantity >= 2) == ("ship-1", True)

    # -- stock: release, allocate, ship, restock -------------------------------------------

    def test_release_one_line_then_the_whole_order(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 10, ("SKU-B", "WH-1"): 10})
        _commit(
            store,
            _reserve("o-1", _pick("L1", "SKU-A", "WH-1", 2), _pick("L2", "SKU-B", "WH-1", 3)),
            _reserve("o-2", _pick("L1", "SKU-A", "WH-1", 1)),
        )
        _commit(store, Release("o-1", "L1"))
        assert _reservations(store, "o-1") == [("SKU-B", "WH-1", Reservation("o-1", "L2", 3, None))]
        assert _reservations(store, "o-2") == [("SKU-A", "WH-1", Reservation("o-2", "L1", 1, None))]
        assert _level(store, "SKU-A", "WH-1") == StockLevel("SKU-A", "WH-1", 10, 1, 9)
        _commit(store, Release("o-1"))
        assert _reservations(store, "o-1") == []
        assert _level(store, "SKU-B", "WH-1") == StockLevel("SKU-B", "WH-1", 10, 0, 10)
        _commit(store, Release("o-1"), Release("o-9", "L1"))  # nothing held: no error
        assert _level(store, "SKU-A", "WH-1") == StockLevel("SKU-A", "WH-1", 10, 1, 9)

    def test_release_keeps_allocated_units_unless_asked(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 10})
        _commit(
            store,
            _reserve("o-1", _pick("L1", "SKU-A", "WH-1", 2), _pick("L2", "SKU-A", "WH-1", 3)),
            Allocate("o-1", "L1", "ship-1", T0),
        )
        _commit(store, Release("o-1"))
        assert _reservations(store, "o-1") == [
            ("SKU-A", "WH-1", Reservation("o-1", "L1", 2, None, "ship-1"))
        ]
        _commit(store, Release("o-1", include_allocated=True))
        assert _reservations(store, "o-1") == []
        assert _level(store, "SKU-A", "WH-1") == StockLevel("SKU-A", "WH-1", 10, 0, 10)

    def test_allocated_reservation_no_longer_expires(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 3})
        expiry = T0 + timedelta(minutes=30)
        _commit(store, _reserve("o-1", _pick("L1", "SKU-A", "WH-1", 2), expires_at=expiry))
        _commit(store, Allocate("o-1", "L1", "ship-1", expiry - timedelta(seconds=1)))
        assert _reservations(store, "o-1") == [
            ("SKU-A", "WH-1", Reservation("o-1", "L1", 2, None, "ship-1"))
        ]
        much_later = T0 + timedelta(days=3)
        assert _level(store, "SKU-A", "WH-1", much_later) == StockLevel("SKU-A", "WH-1", 3, 2, 1)
        _commit(store, ExpireReservations(much_later))
        with pytest.raises(OutOfStock):
            _commit(store, _reserve("o-2", _pick("L1", "SKU-A", "WH-1", 2), now=much_later))
        assert len(_reservations(store, "o-1")) == 1

    def test_allocating_an_expired_or_missing_reservation_is_refused(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 3})
        expiry = T0 + timedelta(minutes=30)
        _commit(store, _reserve("o-1", _pick("L1", "SKU-A", "WH-1", 2), expires_at=expiry))
        before = _snapshot(store)
        for order_id, line_id in (("o-1", "L1"), ("o-1", "L2"), ("o-9", "L1")):
            with pytest.raises(ReservationNotFound) as caught:
                _commit(store, Allocate(order_id, line_id, "ship-1", expiry))
            assert (caught.value.order_id, caught.value.line_id) == (order_id, line_id)
        assert _snapshot(store) == before
        assert _reservations(store, "o-1") == [
            ("SKU-A", "WH-1", Reservation("o-1", "L1", 2, expiry))
        ]

    def test_ship_lowers_on_hand_by_the_allocated_units(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 5, ("SKU-A", "WH-2"): 4, ("SKU-B", "WH-1"): 2})
        _commit(
            store,
            _reserve(
                "o-1",
                _pick("L1", "SKU-A", "WH-1", 2),
                _pick("L1", "SKU-A", "WH-2", 1),
                _pick("L2", "SKU-B", "WH-1", 1),
            ),
            Allocate("o-1", "L1", "ship-1", T0),
        )
        shipped_at = T0 + timedelta(hours=2)
        _commit(store, Ship("o-1", "L1", shipped_at))
        assert _level(store, "SKU-A", "WH-1") == StockLevel("SKU-A", "WH-1", 3, 0, 3)
        assert _level(store, "SKU-A", "WH-2") == StockLevel("SKU-A", "WH-2", 3, 0, 3)
        assert _movements(store, "SKU-A", "WH-1")[-1] == Movement(
            "SKU-A", "WH-1", MovementKind.SHIPPED, -2, shipped_at, "shipped", "o-1", "L1"
        )
        assert _movements(store, "SKU-A", "WH-2")[-1] == Movement(
            "SKU-A", "WH-2", MovementKind.SHIPPED, -1, shipped_at, "shipped", "o-1", "L1"
        )
        assert _reservations(store, "o-1") == [("SKU-B", "WH-1", Reservation("o-1", "L2", 1, None))]

    def test_shipping_an_unallocated_or_shipped_line_is_refused(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 5})
        _commit(
            store,
            _reserve("o-1", _pick("L1", "SKU-A", "WH-1", 2), _pick("L2", "SKU-A", "WH-1", 1)),
            Allocate("o-1", "L1", "ship-1", T0),
        )
        _commit(store, Ship("o-1", "L1", T0))
        before = _snapshot(store)
        for order_id, line_id in (("o-1", "L2"), ("o-1", "L1"), ("o-9", "L1")):
            with pytest.raises(ReservationNotFound) as caught:
                _commit(store, Ship(order_id, line_id, T0))
            assert (caught.value.order_id, caught.value.line_id) == (order_id, line_id)
        assert _snapshot(store) == before
        assert _level(store, "SKU-A", "WH-1") == StockLevel("SKU-A", "WH-1", 3, 1, 2)

    def test_shipping_backordered_units_waits_for_stock(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 1})
        _commit(
            store,
            SetBackorderLimit("SKU-A", "WH-1", 5, T0),
            _reserve("o-1", _pick("L1", "SKU-A", "WH-1", 3)),
            Allocate("o-1", "L1", "ship-1", T0),
        )
        before = _snapshot(store)
        with pytest.raises(OutOfStock):
            _commit(store, Ship("o-1", "L1", T0))
        assert _snapshot(store) == before
        _commit(store, Receive("SKU-A", "WH-1", 2, T0), Ship("o-1", "L1", T0))
        assert _level(store, "SKU-A", "WH-1") == StockLevel("SKU-A", "WH-1", 0, 0, 5)

    def test_restock_puts_returned_units_back_on_hand(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 5})
        _commit(
            store,
            _reserve("o-1", _pick("L1", "SKU-A", "WH-1", 2)),
            Allocate("o-1", "L1", "ship-1", T0),
            Ship("o-1", "L1", T0),
        )
        returned_at = T0 + timedelta(days=5)
        _commit(store, Restock("SKU-A", "WH-1", 1, "o-1", "L1", returned_at, "unopened"))
        assert _level(store, "SKU-A", "WH-1") == StockLevel("SKU-A", "WH-1", 4, 0, 4)
        assert _movements(store, "SKU-A", "WH-1")[-1] == Movement(
            "SKU-A", "WH-1", MovementKind.RESTOCKED, 1, returned_at, "unopened", "o-1", "L1"
        )
        with pytest.raises(InvalidQuantity):
            _commit(store, Restock("SKU-A", "WH-1", 0, "o-1", "L1", returned_at))
        assert len(_movements(store, "SKU-A", "WH-1")) == 3  # received, shipped, restocked

    # -- stock and orders: one transaction ------------------------------------------------

    def test_a_failed_commit_leaves_orders_stock_and_ledger_unchanged(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 2, ("SKU-B", "WH-1"): 5})
        _add(store, make_order("o-0"))
        before = _snapshot(store)
        order = make_order("o-1")
        with store() as uow:
            uow.orders.add(order)
            uow.stock.stage(Receive("SKU-B", "WH-1", 5, T0))
            uow.stock.stage(_reserve("o-1", _pick("L1", "SKU-B", "WH-1", 1)))
            uow.stock.stage(_reserve("o-1", _pick("L2", "SKU-A", "WH-1", 3)))
            with pytest.raises(OutOfStock):
                uow.commit()
        assert _snapshot(store) == before
        assert order.version == 0
        assert [type(e).__name__ for e in order.pending_events] == ["OrderPlaced"]
        with store() as uow, pytest.raises(OrderNotFound):
            uow.orders.get("o-1")
        assert _reservations(store, "o-1") == []

    def test_a_stale_order_save_rolls_back_its_stock_changes(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 5})
        _add(store, make_order("o-1"))
        with store() as first, store() as second:
            a = first.orders.get("o-1")
            b = second.orders.get("o-1")
            a.hold("manual_review", T0)
            first.orders.save(a)
            first.commit()
            before = _snapshot(store)
            b.cancel("too late", T0)
            second.orders.save(b)
            second.stock.stage(Receive("SKU-A", "WH-1", 1, T0))
            second.stock.stage(_reserve("o-1", _pick("L1", "SKU-A", "WH-1", 1)))
            with pytest.raises(ConcurrencyError):
                second.commit()
        assert _snapshot(store) == before

    def test_order_and_reservation_commit_together(self, store: Store) -> None:
        _stock(store, {("SKU-A", "WH-1"): 5})
        order = make_order("o-1")
        with store() as uow:
            uow.orders.add(order)
            uow.stock.stage(_reserve("o-1", _pick("L1", "SKU-A", "WH-1", 2)))
            events = uow.commit()
        assert [type(e).__name__ for e in events] == ["OrderPlaced"]
        assert order.version == 1
        with store() as uow:
            assert uow.orders.get("o-1").version == 1
        assert _reservations(store, "o-1") == [("SKU-A", "WH-1", Reservation("o-1", "L1", 2, None))]
