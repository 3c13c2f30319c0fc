"""The returns part of the store contract: ``uow.returns`` (helpers shared with
:mod:`orderkit.testing.inquiry_store`).

:class:`~orderkit.testing.contracts.StoreContract` includes these mixins (separate only
to keep files short); they need the ``store`` fixture that ``StoreContract`` provides.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderkit.domain.events import (
    DomainEvent,
    OrderAcknowledged,
    OrderPlaced,
)
from orderkit.domain.inquiries import Inquiry
from orderkit.domain.order import Order
from orderkit.domain.return_events import (
    InquiryOpened,
    ReturnApproved,
    ReturnReceived,
    ReturnRequested,
)
from orderkit.domain.returns import Inspection, ReturnLine, ReturnRequest
from orderkit.errors import (
    ConcurrencyError,
    DuplicateKey,
    InquiryNotFound,
    InvalidField,
    ReturnNotFound,
)
from orderkit.money import Money
from orderkit.ports import Store
from orderkit.serialization import dumps
from orderkit.testing import strategies as oks

__all__ = [
    "ReturnStoreContract",
    "make_inquiry",
    "make_return",
    "settled_return",
]

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
RETURNABLE = {"L1": 2, "L2": 1}
"""What :func:`make_return` may take back: two units of ``L1`` and one of ``L2``."""

_IDS = itertools.count(1)


def make_return(return_id: str, order_id: str, *, at: datetime = T0) -> ReturnRequest:
    """A requested return of 1 x ``L1`` (changed mind) and 1 x ``L2`` (damaged), its
    ``ReturnRequested`` pending."""
    return ReturnRequest.request(
        return_id=return_id,
        order_id=order_id,
        lines=[ReturnLine("L1", 1, "changed_mind", "too small"), ReturnLine("L2", 1, "damaged")],
        returnable=RETURNABLE,
        at=at,
    )


def settled_return(return_id: str, order_id: str, *, at: datetime = T0) -> ReturnRequest:
    """:func:`make_return` taken all the way: approved, received, inspected (``L1``
    restocked at ``WH-1``, ``L2`` written off), refunded and closed, so that every
    field holds a value; its events pending."""
    request = make_return(return_id, order_id, at=at)
    request.approve("Send it to the returns desk.", at)
    request.receive(None, at + timedelta(days=3))
    inspections = [Inspection("L2", 0, 1), Inspection("L1", 1, location="WH-1")]
    request.inspect(inspections, at + timedelta(days=4))
    request.decide_refund(Money("12.80", "EUR"), Money("1.00", "EUR"), Money("4.90", "EUR"))
    request.mark_refunded(Money("12.80", "EUR"), at + timedelta(days=4))
    request.close(at + timedelta(days=5))
    return request


def make_inquiry(
    inquiry_id: str, order_id: str, *, at: datetime = T0, subject: str = "Where is my parcel?"
) -> Inquiry:
    """An open question about ``order_id`` from customer ``cust-1``, its ``InquiryOpened``
    pending."""
    return Inquiry.open(
        inquiry_id=inquiry_id,
        order_id=order_id,
        customer_id="cust-1",
        kind="question",
        subject=subject,
        message="It has not arrived yet.",
        at=at,
    )


def _order(order_id: str) -> Order:
    # contracts.py imports this module: its helpers are reached at call time
    from orderkit.testing.contracts import make_order

    return make_order(order_id)


def _add(store: Store, *aggregates: ReturnRequest | Inquiry | Order) -> list[DomainEvent]:
    with store() as uow:
        for aggregate in aggregates:
            if isinstance(aggregate, ReturnRequest):
                uow.returns.add(aggregate)
            elif isinstance(aggregate, Inquiry):
                uow.inquiries.add(aggregate)
            else:
                uow.orders.add(aggregate)
        return uow.commit()


def _return(store: Store, return_id: str) -> ReturnRequest:
    with store() as uow:
        return uow.returns.get(return_id)


def _inquiry(store: Store, inquiry_id: str) -> Inquiry:
    with store() as uow:
        return uow.inquiries.get(inquiry_id)


# One store serves every example (ids differ per example), and each store's subclass runs
# the same method: the fixture and executor health checks do not apply.
_PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.differing_executors,
        HealthCheck.too_slow,
    ],
)


class ReturnStoreContract:
    """Return requests in a store: staging, versions, lookups, events (mixed into
    StoreContract)."""

    def test_added_return_reads_back_identical_with_version_one(self, store: Store) -> None:
        requested, settled = make_return("ret-1", "ord-1"), settled_return("ret-2", "ord-1")
        _add(store, requested, settled)
        assert (requested.version, settled.version) == (1, 1)
        assert requested.pending_events == settled.pending_events == []
        for original in (requested, settled):
            loaded = _return(store, original.id)
            assert dumps(loaded) == dumps(original)
            assert loaded.version == 1
            assert loaded.pending_events == []
        loaded = _return(store, "ret-2")
        assert (loaded.state, loaded.amount_refunded) == ("closed", Money("12.80", "EUR"))
        assert loaded.inspections == (Inspection("L1", 1, location="WH-1"), Inspection("L2", 0, 1))

    @_PROPERTY
    @given(data=st.data())
    def test_any_valid_return_reads_back_identical(self, store: Store, data: st.DataObject) -> None:
        order = data.draw(oks.orders(currency="EUR"), label="order")
        number = next(_IDS)
        request = ReturnRequest.request(
            return_id=f"ret-p{number}",
            order_id=f"ord-p{number}",
            lines=data.draw(oks.return_lines(order), label="lines"),
            returnable={line.line_id: line.quantity for line in order.lines},
            at=T0 + timedelta(seconds=data.draw(st.integers(0, 10**8), label="seconds")),
        )
        steps = data.draw(st.integers(min_value=0, max_value=3), label="steps")
        if steps >= 1:
            request.approve(data.draw(oks.inquiry_texts(multiline=True)), T0)
        if steps >= 2:
            asked = request.requested_units()
            units = {
                line_id: data.draw(st.integers(0, count), label=f"received {line_id}")
                for line_id, count in asked.items()
            }
            request.receive(units if any(units.values()) else None, T0)
        if steps >= 3:
            results = data.draw(oks.inspections(request.received_units()), label="inspections")
            request.inspect(results, T0)
        _add(store, request)
        loaded = _return(store, request.id)
        assert dumps(loaded) == dumps(request)
        assert loaded.version == 1
        with store() as uow:
            assert [r.id for r in uow.returns.for_order(request.order_id)] == [request.id]

    def test_unknown_return_is_not_found(self, store: Store) -> None:
        with store() as uow, pytest.raises(ReturnNotFound):
            uow.returns.get("nope")
        with store() as uow:
            assert list(uow.returns.for_order("nope")) == []
            assert list(uow.returns.list()) == []
        with store() as uow:
            uow.returns.save(make_return("never-added", "ord-1"))
            with pytest.raises(ReturnNotFound):
                uow.commit()
        assert store.outbox.pending() == 0

    def test_uncommitted_return_changes_are_invisible_and_rolled_back(self, store: Store) -> None:
        added = make_return("ret-1", "ord-1")
        _add(store, added)
        added.cancel("Changed after its commit, never saved.", T0)
        pending = store.outbox.pending()
        with store() as uow:
            request = uow.returns.get("ret-1")
            request.approve("Send it back.", T0)
            uow.returns.save(request)
            uow.returns.add(make_return("ret-2", "ord-1"))
            with store() as other:
                assert other.returns.get("ret-1").state == "requested"
                assert [r.id for r in other.returns.for_order("ord-1")] == ["ret-1"]
                with pytest.raises(ReturnNotFound):
                    other.returns.get("ret-2")
        loaded = _return(store, "ret-1")
        assert (loaded.state, loaded.version, loaded.instructions) == ("requested", 1, None)
        with store() as uow, pytest.raises(ReturnNotFound):
            uow.returns.get("ret-2")
        assert store.outbox.pending() == pending

    def test_save_raises_return_version_by_one(self, store: Store) -> None:
        _add(store, make_return("ret-1", "ord-1"))
        with store() as uow:
            request = uow.returns.get("ret-1")
            request.approve("Send it back.", T0)
            uow.returns.save(request)
            events = uow.commit()
        assert request.version == 2
        assert [type(e) for e in events] == [ReturnApproved]
        loaded = _return(store, "ret-1")
        assert (loaded.version, loaded.state, loaded.instructions) == (
            2,
            "approved",
            "Send it back.",
        )
        assert dumps(loaded) == dumps(request)

    def test_stale_return_save_raises_and_writes_nothing_of_its_unit_of_work(
        self, store: Store
    ) -> None:
        _add(store, _order("ord-1"), make_return("ret-1", "ord-1"))
        with store() as first, store() as second:
            one, two = first.returns.get("ret-1"), second.returns.get("ret-1")
            order = second.orders.get("ord-1")
            one.approve("Send it back.", T0)
            first.returns.save(one)
            first.commit()
            pending = store.outbox.pending()
            order.hold("manual_review", T0)
            second.orders.save(order)  # staged before the stale return, valid on its own
            two.reject("Outside the return window.", T0)
            second.returns.save(two)
            second.inquiries.add(make_inquiry("inq-1", "ord-1"))
            with pytest.raises(ConcurrencyError):
                second.commit()
        assert (two.version, order.version) == (1, 1)
        loaded = _return(store, "ret-1")
        assert (loaded.version, loaded.state, loaded.rejection_reason) == (2, "approved", None)
        with store() as uow:
            stored = uow.orders.get("ord-1")
            assert (stored.version, stored.holds) == (1, ())
            with pytest.raises(InquiryNotFound):
                uow.inquiries.get("inq-1")
        assert store.outbox.pending() == pending

    def test_duplicate_return_id_commits_nothing(self, store: Store) -> None:
        _add(store, make_return("ret-1", "ord-1"))
        before = dumps(_return(store, "ret-1"))
        pending = store.outbox.pending()
        with store() as uow:
            uow.returns.add(make_return("ret-2", "ord-2"))
            uow.inquiries.add(make_inquiry("inq-1", "ord-2"))
            uow.returns.add(make_return("ret-1", "ord-9", at=T0 + timedelta(days=1)))
            with pytest.raises(DuplicateKey):
                uow.commit()
        assert store.outbox.pending() == pending
        assert dumps(_return(store, "ret-1")) == before
        with store() as uow:
            assert list(uow.returns.for_order("ord-2")) == []
            assert list(uow.returns.for_order("ord-9")) == []
            assert list(uow.inquiries.for_order("ord-2")) == []

    def test_returns_of_an_order_come_oldest_first(self, store: Store) -> None:
        _add(
            store,
            make_return("ret-a", "ord-1", at=T0 + timedelta(hours=1)),
            make_return("ret-b", "ord-1", at=T0),
            make_return("ret-c", "ord-2", at=T0 - timedelta(days=2)),
        )
        _add(store, make_return("ret-d", "ord-1", at=T0 - timedelta(days=1)))  # committed last
        with store() as uow:
            assert [r.id for r in uow.returns.for_order("ord-1")] == ["ret-d", "ret-b", "ret-a"]
            assert [r.id for r in uow.returns.for_order("ord-2")] == ["ret-c"]

    def test_returns_are_listed_by_state_oldest_first_and_paged(self, store: Store) -> None:
        # created in the reverse order of their ids, so ids cannot stand in for time
        _add(
            store,
            *(make_return(f"ret-{n}", f"ord-{n}", at=T0 - timedelta(hours=n)) for n in range(6)),
        )
        with store() as uow:
            for return_id in ("ret-1", "ret-4"):
                request = uow.returns.get(return_id)
                request.approve("Send it back.", T0)
                uow.returns.save(request)
            uow.commit()
        with store() as uow:
            assert [r.id for r in uow.returns.list()] == [f"ret-{n}" for n in range(5, -1, -1)]
            assert [r.id for r in uow.returns.list(state="approved")] == ["ret-4", "ret-1"]
            assert [r.id for r in uow.returns.list(state="requested", limit=2, offset=1)] == [
                "ret-3",
                "ret-2",
            ]
            assert [r.id for r in uow.returns.list(limit=2, offset=4)] == ["ret-1", "ret-0"]
            assert list(uow.returns.list(offset=6)) == []
            assert list(uow.returns.list(state="closed")) == []
            for bad in ({"limit": 0}, {"limit": 1001}, {"limit": True}, {"offset": -1}):
                with pytest.raises(InvalidField):
                    uow.returns.list(**bad)

    def test_return_events_reach_the_outbox_in_staging_order(self, store: Store) -> None:
        committed = _add(store, _order("ord-1"))
        with store() as uow:
            # staged inquiry, return, order: not the order the repositories are declared in
            uow.inquiries.add(make_inquiry("inq-1", "ord-1"))
            uow.returns.add(make_return("ret-1", "ord-1"))
            order = uow.orders.get("ord-1")
            order.acknowledge(T0.date(), T0)
            uow.orders.save(order)
            committed += uow.commit()
        with store() as uow:
            request = uow.returns.get("ret-1")
            request.approve("Send it back.", T0)
            request.receive(None, T0)
            uow.returns.save(request)
            committed += uow.commit()
        records = store.outbox.claim(worker="w", limit=100, lease_seconds=30, now=T0)
        assert [type(r.event) for r in records] == [
            OrderPlaced,
            InquiryOpened,
            ReturnRequested,
            OrderAcknowledged,
            ReturnApproved,
            ReturnReceived,
        ]
        assert [r.event for r in records] == committed
        assert {r.aggregate_id for r in records} == {"ord-1"}
        assert [r.seq for r in records] == sorted({r.seq for r in records})
