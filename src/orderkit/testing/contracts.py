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

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from orderkit.domain.events import OrderPlaced
from orderkit.domain.order import Order
from orderkit.domain.values import Address, Customer, LineItem, SalesChannel
from orderkit.errors import ConcurrencyError, DuplicateKey, InvalidField, OrderNotFound
from orderkit.money import Money
from orderkit.ports import DeadLetter, Store
from orderkit.serialization import dumps

__all__ = ["StoreContract", "make_order"]

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


class StoreContract:
    """The contract of a :class:`~orderkit.ports.Store`; subclass and implement ``make_store``."""

    def make_store(self, tmp_path: Path) -> Store:
        """A new, empty store."""
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        store = self.make_store(tmp_path)
        yield store
        store.close()

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
