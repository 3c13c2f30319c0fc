"""The inquiries part of the store contract: ``uow.inquiries`` and ``Outbox.history``.

:class:`~orderkit.testing.contracts.StoreContract` includes these mixins (separate only
to keep files short); they need the ``store`` fixture that ``StoreContract`` provides.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderkit.domain.inquiries import Inquiry
from orderkit.domain.return_events import (
    InquiryAnswered,
    InquiryCustomerReplied,
    InquiryOpened,
    InquiryResolved,
)
from orderkit.errors import (
    ConcurrencyError,
    DuplicateKey,
    InquiryNotFound,
    InvalidField,
    ReturnNotFound,
)
from orderkit.ports import Store
from orderkit.serialization import dumps
from orderkit.testing import strategies as oks
from orderkit.testing.payment_store import make_payment
from orderkit.testing.return_store import (
    _IDS,
    _PROPERTY,
    T0,
    _add,
    _inquiry,
    _order,
    make_inquiry,
    make_return,
)
from orderkit.testing.shipment_store import make_shipment

__all__ = ["InquiryStoreContract", "OrderHistoryContract"]


class InquiryStoreContract:
    """Customer inquiries in a store: staging, versions, lookups, events (mixed into
    StoreContract)."""

    def test_added_inquiry_reads_back_identical_with_version_one(self, store: Store) -> None:
        inquiry = make_inquiry("inq-1", "ord-1")
        inquiry.answer("Sam", "It left our warehouse yesterday.", T0 + timedelta(hours=1))
        inquiry.reply("Thanks — and the tracking number?", T0 + timedelta(hours=2))
        _add(store, inquiry)
        assert inquiry.version == 1
        assert inquiry.pending_events == []
        loaded = _inquiry(store, "inq-1")
        assert dumps(loaded) == dumps(inquiry)
        assert loaded.version == 1
        assert [(m.author, m.at) for m in loaded.messages] == [
            ("customer", T0),
            ("Sam", T0 + timedelta(hours=1)),
            ("customer", T0 + timedelta(hours=2)),
        ]

    @_PROPERTY
    @given(
        subject=oks.inquiry_texts(),
        messages=st.lists(oks.inquiry_texts(200, multiline=True), min_size=1, max_size=4),
        kind=st.sampled_from(["question", "complaint"]),
    )
    def test_any_valid_inquiry_reads_back_identical(
        self, store: Store, subject: str, messages: list[str], kind: str
    ) -> None:
        number = next(_IDS)
        first, *answers = messages
        inquiry = Inquiry.open(
            inquiry_id=f"inq-p{number}",
            order_id=f"ord-p{number}",
            customer_id="cust-1",
            kind=kind,
            subject=subject,
            message=first,
            at=T0,
        )
        for index, text in enumerate(answers):
            inquiry.answer(f"Agent {index}", text, T0 + timedelta(minutes=index + 1))
        _add(store, inquiry)
        loaded = _inquiry(store, inquiry.id)
        assert dumps(loaded) == dumps(inquiry)
        assert (loaded.subject, [m.text for m in loaded.messages]) == (subject, messages)

    def test_unknown_inquiry_is_not_found(self, store: Store) -> None:
        with store() as uow, pytest.raises(InquiryNotFound):
            uow.inquiries.get("nope")
        with store() as uow:
            assert list(uow.inquiries.for_order("nope")) == []
            assert list(uow.inquiries.list()) == []
        with store() as uow:
            uow.inquiries.save(make_inquiry("never-added", "ord-1"))
            with pytest.raises(InquiryNotFound):
                uow.commit()
        assert store.outbox.pending() == 0

    def test_uncommitted_inquiry_changes_are_invisible_and_rolled_back(self, store: Store) -> None:
        added = make_inquiry("inq-1", "ord-1")
        _add(store, added)
        added.resolve("Changed after its commit, never saved.", T0)
        pending = store.outbox.pending()
        with store() as uow:
            inquiry = uow.inquiries.get("inq-1")
            inquiry.answer("Sam", "On its way.", T0)
            uow.inquiries.save(inquiry)
            uow.inquiries.add(make_inquiry("inq-2", "ord-1"))
            with store() as other:
                assert len(other.inquiries.get("inq-1").messages) == 1
                with pytest.raises(InquiryNotFound):
                    other.inquiries.get("inq-2")
        loaded = _inquiry(store, "inq-1")
        assert (loaded.state, loaded.version, len(loaded.messages)) == ("open", 1, 1)
        with store() as uow, pytest.raises(InquiryNotFound):
            uow.inquiries.get("inq-2")
        assert store.outbox.pending() == pending

    def test_save_raises_inquiry_version_by_one(self, store: Store) -> None:
        _add(store, make_inquiry("inq-1", "ord-1"))
        with store() as uow:
            inquiry = uow.inquiries.get("inq-1")
            inquiry.answer("Sam", "On its way.", T0)
            uow.inquiries.save(inquiry)
            events = uow.commit()
        assert inquiry.version == 2
        assert [type(e) for e in events] == [InquiryAnswered]
        loaded = _inquiry(store, "inq-1")
        assert (loaded.version, loaded.state) == (2, "answered")
        assert dumps(loaded) == dumps(inquiry)

    def test_stale_inquiry_save_raises_and_writes_nothing_of_its_unit_of_work(
        self, store: Store
    ) -> None:
        _add(store, _order("ord-1"), make_inquiry("inq-1", "ord-1"))
        with store() as first, store() as second:
            one, two = first.inquiries.get("inq-1"), second.inquiries.get("inq-1")
            order = second.orders.get("ord-1")
            one.answer("Sam", "On its way.", T0)
            first.inquiries.save(one)
            first.commit()
            pending = store.outbox.pending()
            second.returns.add(make_return("ret-1", "ord-1"))
            order.acknowledge(T0.date(), T0)
            second.orders.save(order)
            two.resolve("Refunded instead.", T0)
            second.inquiries.save(two)
            with pytest.raises(ConcurrencyError):
                second.commit()
        assert (two.version, order.version) == (1, 1)
        loaded = _inquiry(store, "inq-1")
        assert (loaded.version, loaded.state, loaded.resolution) == (2, "answered", None)
        with store() as uow:
            assert uow.orders.get("ord-1").state == "placed"
            with pytest.raises(ReturnNotFound):
                uow.returns.get("ret-1")
        assert store.outbox.pending() == pending

    def test_duplicate_inquiry_id_commits_nothing(self, store: Store) -> None:
        _add(store, make_inquiry("inq-1", "ord-1"))
        before = dumps(_inquiry(store, "inq-1"))
        pending = store.outbox.pending()
        with store() as uow:
            uow.inquiries.add(make_inquiry("inq-2", "ord-2"))
            uow.returns.add(make_return("ret-1", "ord-2"))
            uow.inquiries.add(make_inquiry("inq-1", "ord-9", subject="Another question"))
            with pytest.raises(DuplicateKey):
                uow.commit()
        assert store.outbox.pending() == pending
        assert dumps(_inquiry(store, "inq-1")) == before
        with store() as uow:
            assert list(uow.inquiries.for_order("ord-2")) == []
            assert list(uow.inquiries.for_order("ord-9")) == []
            assert list(uow.returns.for_order("ord-2")) == []

    def test_inquiries_of_an_order_come_oldest_first(self, store: Store) -> None:
        _add(
            store,
            make_inquiry("inq-a", "ord-1", at=T0 + timedelta(hours=1)),
            make_inquiry("inq-b", "ord-1", at=T0),
            make_inquiry("inq-c", "ord-2", at=T0 - timedelta(days=2)),
        )
        _add(store, make_inquiry("inq-d", "ord-1", at=T0 - timedelta(days=1)))
        with store() as uow:
            assert [i.id for i in uow.inquiries.for_order("ord-1")] == ["inq-d", "inq-b", "inq-a"]
            assert [i.id for i in uow.inquiries.for_order("ord-2")] == ["inq-c"]

    def test_inquiries_are_listed_by_state_oldest_first_and_paged(self, store: Store) -> None:
        _add(
            store,
            *(make_inquiry(f"inq-{n}", f"ord-{n}", at=T0 - timedelta(hours=n)) for n in range(6)),
        )
        with store() as uow:
            for inquiry_id in ("inq-0", "inq-3"):
                inquiry = uow.inquiries.get(inquiry_id)
                inquiry.resolve("Answered by phone.", T0)
                uow.inquiries.save(inquiry)
            uow.commit()
        with store() as uow:
            assert [i.id for i in uow.inquiries.list()] == [f"inq-{n}" for n in range(5, -1, -1)]
            assert [i.id for i in uow.inquiries.list(state="resolved")] == ["inq-3", "inq-0"]
            assert [i.id for i in uow.inquiries.list(state="open", limit=2, offset=2)] == [
                "inq-2",
                "inq-1",
            ]
            assert [i.id for i in uow.inquiries.list(limit=3, offset=1)] == [
                "inq-4",
                "inq-3",
                "inq-2",
            ]
            assert list(uow.inquiries.list(state="answered")) == []
            for bad in ({"limit": 0}, {"limit": 1001}, {"limit": True}, {"offset": -1}):
                with pytest.raises(InvalidField):
                    uow.inquiries.list(**bad)

    def test_inquiry_events_reach_the_outbox_in_order(self, store: Store) -> None:
        committed = _add(store, make_inquiry("inq-1", "ord-1"))
        for step in ("answer", "reply", "resolve"):
            with store() as uow:
                inquiry = uow.inquiries.get("inq-1")
                if step == "answer":
                    inquiry.answer("Sam", "On its way.", T0)
                elif step == "reply":
                    inquiry.reply("Still nothing.", T0)
                else:
                    inquiry.resolve("Reshipped.", T0)
                uow.inquiries.save(inquiry)
                committed += uow.commit()
        records = store.outbox.claim(worker="w", limit=100, lease_seconds=30, now=T0)
        assert [type(r.event) for r in records] == [
            InquiryOpened,
            InquiryAnswered,
            InquiryCustomerReplied,
            InquiryResolved,
        ]
        assert [r.event for r in records] == committed
        assert {r.aggregate_id for r in records} == {"ord-1"}


class OrderHistoryContract:
    """``Outbox.history``: an order's whole story, whatever became of its events (mixed
    into StoreContract)."""

    def test_history_holds_every_committed_event_of_the_order_in_seq_order(
        self, store: Store
    ) -> None:
        committed = _add(store, _order("ord-1"), _order("ord-2"))
        with store() as uow:
            uow.returns.add(make_return("ret-1", "ord-1"))
            uow.inquiries.add(make_inquiry("inq-2", "ord-2"))
            uow.inquiries.add(make_inquiry("inq-1", "ord-1"))
            uow.shipments.add(make_shipment("shp-1", "ord-1"))
            uow.payments.add(make_payment("pay-1", "ord-1", authorization_id="auth-1"))
            committed += uow.commit()
        # rolled back: left without a commit, a stale save, a duplicate id
        with store() as uow:
            uow.returns.add(make_return("ret-9", "ord-1"))
            uow.inquiries.add(make_inquiry("inq-9", "ord-1"))
        with store() as first, store() as second:
            one, two = first.returns.get("ret-1"), second.returns.get("ret-1")
            one.approve("Send it back.", T0)
            first.returns.save(one)
            committed += first.commit()
            second.inquiries.add(make_inquiry("inq-8", "ord-1"))
            two.cancel("Changed my mind.", T0)
            second.returns.save(two)
            with pytest.raises(ConcurrencyError):
                second.commit()
        with store() as uow:
            uow.inquiries.add(make_inquiry("inq-7", "ord-1"))
            uow.returns.add(make_return("ret-1", "ord-1"))
            with pytest.raises(DuplicateKey):
                uow.commit()
        # some events dispatched, some leased, some waiting: all belong to the history
        claimed = store.outbox.claim(worker="w", limit=3, lease_seconds=30, now=T0)
        assert len(claimed) == 3
        store.outbox.finish(claimed[0].seq, worker="w", now=T0)
        store.outbox.finish(claimed[2].seq, worker="w", now=T0)
        with store() as uow:
            inquiry = uow.inquiries.get("inq-1")
            inquiry.answer("Sam", "On its way.", T0)
            uow.inquiries.save(inquiry)
            committed += uow.commit()

        for order_id in ("ord-1", "ord-2"):
            history = store.outbox.history(order_id)
            assert [r.event for r in history] == [
                e for e in committed if getattr(e, "order_id", None) == order_id
            ]
            assert {r.aggregate_id for r in history} == {order_id}
            seqs = [r.seq for r in history]
            assert seqs == sorted(set(seqs))
        kinds = [type(r.event).__name__ for r in store.outbox.history("ord-1")]
        assert kinds[:3] == ["OrderPlaced", "ReturnRequested", "InquiryOpened"]
        assert kinds[-2:] == ["ReturnApproved", "InquiryAnswered"]
        assert "ReturnCancelled" not in kinds
        assert kinds.count("InquiryOpened") == 1
        assert kinds.count("ReturnRequested") == 1
        # the same seq numbers the dispatcher sees
        everything = {r.seq: r.event for r in store.outbox.history("ord-1")}
        everything.update({r.seq: r.event for r in store.outbox.history("ord-2")})
        assert all(everything[r.seq] == r.event for r in claimed)
        assert list(store.outbox.history("ord-9")) == []
        assert list(store.outbox.history("nope")) == []
