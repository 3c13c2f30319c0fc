"""The payment part of the store contract: what every ``uow.payments`` must do.

:class:`~orderkit.testing.contracts.StoreContract` includes it; it is a separate
module only to keep files short. It needs the ``store`` fixture that
``StoreContract`` provides.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from orderkit.domain.events import PaymentAuthorized, PaymentCaptured
from orderkit.domain.payment import (
    GatewayAuthorization,
    GatewayCapture,
    GatewayEventKind,
    GatewayRefund,
    Payment,
    PaymentGatewayEvent,
)
from orderkit.errors import ConcurrencyError, DuplicateKey, PaymentNotFound
from orderkit.money import Money
from orderkit.ports import Store
from orderkit.serialization import dumps

__all__ = ["PaymentStoreContract", "make_payment"]

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def make_payment(
    payment_id: str,
    order_id: str,
    *,
    authorization_id: str | None = None,
    amount: str = "24.88",
    at: datetime = T0,
) -> Payment:
    """A payment of ``amount`` EUR, authorized when ``authorization_id`` is given."""
    payment = Payment.start(
        payment_id=payment_id,
        order_id=order_id,
        amount=Money(amount, "EUR"),
        token="tok_test",
        at=at,
    )
    if authorization_id is not None:
        payment.authorize(GatewayAuthorization(authorization_id, payment.amount), at)
    return payment


def _add(store: Store, *payments: Payment) -> None:
    with store() as uow:
        for payment in payments:
            uow.payments.add(payment)
        uow.commit()


def _get(store: Store, payment_id: str) -> Payment:
    with store() as uow:
        return uow.payments.get(payment_id)


class PaymentStoreContract:
    """Payments in a store: staging, versions, lookups, events (mixed into StoreContract)."""

    def test_added_payment_reads_back_identical_with_version_one(self, store: Store) -> None:
        payment = make_payment("pay-1", "ord-1", authorization_id="auth-1")
        _add(store, payment)
        loaded = _get(store, "pay-1")
        assert loaded.version == 1
        assert dumps(loaded) == dumps(payment)
        assert loaded.pending_events == []

    def test_unknown_payment_is_not_found(self, store: Store) -> None:
        with store() as uow, pytest.raises(PaymentNotFound):
            uow.payments.get("nope")
        with store() as uow:
            assert uow.payments.by_authorization("nope") is None
            assert list(uow.payments.for_order("nope")) == []

    def test_payments_are_found_by_order_oldest_first_and_by_authorization(
        self, store: Store
    ) -> None:
        later = make_payment("pay-a", "ord-1", authorization_id="auth-a", at=T0 + timedelta(1))
        earlier = make_payment("pay-b", "ord-1", authorization_id="auth-b", at=T0)
        other = make_payment("pay-c", "ord-2", authorization_id="auth-c")
        _add(store, later, earlier, other)
        with store() as uow:
            assert [p.id for p in uow.payments.for_order("ord-1")] == ["pay-b", "pay-a"]
            found = uow.payments.by_authorization("auth-c")
            assert found is not None
            assert found.id == "pay-c"

    def test_authorization_recorded_later_is_found_by_it(self, store: Store) -> None:
        _add(store, make_payment("pay-1", "ord-1"))
        with store() as uow:
            payment = uow.payments.get("pay-1")
            payment.authorize(GatewayAuthorization("auth-9", payment.amount), T0)
            uow.payments.save(payment)
            uow.commit()
        with store() as uow:
            found = uow.payments.by_authorization("auth-9")
            assert found is not None
            assert found.state == "authorized"
            assert found.version == 2

    def test_uncommitted_payment_changes_are_invisible_and_rolled_back(self, store: Store) -> None:
        _add(store, make_payment("pay-1", "ord-1", authorization_id="auth-1"))
        with store() as uow:
            payment = uow.payments.get("pay-1")
            capture = GatewayCapture("cap-1", "auth-1", Money("5.00", "EUR"))
            payment.record_capture(capture, T0, reference="s1")
            uow.payments.save(payment)
            uow.payments.add(make_payment("pay-2", "ord-2"))
        loaded = _get(store, "pay-1")
        assert loaded.captures == ()
        assert loaded.version == 1
        with store() as uow, pytest.raises(PaymentNotFound):
            uow.payments.get("pay-2")

    def test_stale_payment_save_raises_and_changes_nothing(self, store: Store) -> None:
        _add(store, make_payment("pay-1", "ord-1", authorization_id="auth-1"))
        with store() as first, store() as second:
            one, two = first.payments.get("pay-1"), second.payments.get("pay-1")
            one.record_capture(
                GatewayCapture("cap-1", "auth-1", Money("5", "EUR")), T0, reference="a"
            )
            first.payments.save(one)
            first.commit()
            two.record_capture(
                GatewayCapture("cap-2", "auth-1", Money("7", "EUR")), T0, reference="b"
            )
            second.payments.save(two)
            with pytest.raises(ConcurrencyError):
                second.commit()
        loaded = _get(store, "pay-1")
        assert [c.id for c in loaded.captures] == ["cap-1"]
        assert loaded.version == 2

    def test_duplicate_payment_id_or_authorization_commits_nothing(self, store: Store) -> None:
        _add(store, make_payment("pay-1", "ord-1", authorization_id="auth-1"))
        pending = store.outbox.pending()
        for duplicate in (
            make_payment("pay-1", "ord-9", authorization_id="auth-9"),
            make_payment("pay-2", "ord-2", authorization_id="auth-1"),
        ):
            with store() as uow:
                uow.payments.add(duplicate)
                with pytest.raises(DuplicateKey):
                    uow.commit()
        assert store.outbox.pending() == pending
        with store() as uow:
            assert list(uow.payments.for_order("ord-2")) == []
            assert list(uow.payments.for_order("ord-9")) == []

    def test_payment_events_reach_the_outbox_in_order(self, store: Store) -> None:
        payment = make_payment("pay-1", "ord-1", authorization_id="auth-1")
        _add(store, payment)
        with store() as uow:
            loaded = uow.payments.get("pay-1")
            loaded.record_capture(
                GatewayCapture("cap-1", "auth-1", loaded.amount), T0, reference="x"
            )
            uow.payments.save(loaded)
            uow.commit()
        records = store.outbox.claim(worker="w", limit=10, lease_seconds=30, now=T0)
        assert [type(r.event) for r in records] == [PaymentAuthorized, PaymentCaptured]
        assert {r.aggregate_id for r in records} == {"ord-1"}

    def test_gateway_event_bookkeeping_survives_a_round_trip(self, store: Store) -> None:
        _add(store, make_payment("pay-1", "ord-1", authorization_id="auth-1"))
        refund = PaymentGatewayEvent(
            id="evt-2",
            kind=GatewayEventKind.REFUNDED,
            authorization_id="auth-1",
            occurred_at=T0,
            operation_id="re-1",
            amount=Money("2.00", "EUR"),
            capture_id="cap-1",
        )
        with store() as uow:
            payment = uow.payments.get("pay-1")
            assert payment.apply_gateway_event(refund, T0) == "parked"
            uow.payments.save(payment)
            uow.commit()
        loaded = _get(store, "pay-1")
        assert loaded.parked_events == (refund,)
        assert loaded.seen_events == ("evt-2",)
        with store() as uow:
            payment = uow.payments.get("pay-1")
            capture = GatewayCapture("cap-1", "auth-1", Money("10.00", "EUR"))
            payment.record_capture(capture, T0, reference="s1")
            payment.record_refund(
                GatewayRefund("re-0", "cap-1", Money("1.00", "EUR")), T0, reference="r"
            )
            uow.payments.save(payment)
            uow.commit()
        loaded = _get(store, "pay-1")
        # recording the capture applied the parked refund too
        assert loaded.refunded == Money("3.00", "EUR")
        assert [r.id for r in loaded.refunds] == ["re-1", "re-0"]
        assert loaded.parked_events == ()
