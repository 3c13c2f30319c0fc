"""Money moves once even when a step fails between the gateway call and the record."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs
import pytest

from orderkit import (
    GatewayUnavailable,
    Location,
    OutOfStock,
    Payment,
    PaymentStatus,
    PlaceOrder,
    Shop,
    ShopSettings,
    StorageError,
)
from orderkit.adapters.memory import ManualClock, MemoryStore, SequentialIds
from orderkit.adapters.memory_gateway import MemoryGateway
from orderkit.service.payments import PaymentService


def _shop(
    store: Any,
    gateway: MemoryGateway,
    clock: ManualClock,
    ids: SequentialIds | None = None,
    **settings: Any,
) -> Shop:
    options: dict[str, Any] = {"track_stock": False, "gateway_retry_delay": timedelta(0)}
    options.update(settings)
    return Shop(
        store,
        clock=clock,
        ids=ids or SequentialIds(),
        gateway=gateway,
        settings=ShopSettings(retry_delay=timedelta(seconds=1), **options),
    )


def test_a_capture_recorded_after_a_failure_is_made_once(
    place_command: PlaceOrder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The capture-on-placement handler fails after the gateway captured; its retry (same
    key) gets the same capture from the gateway and records it once."""
    clock = ManualClock()
    gateway = MemoryGateway(seed=1, clock=clock)
    shop = _shop(MemoryStore(), gateway, clock, capture="on_placement")
    original = Payment.record_capture
    failures = []

    def flaky(self: Payment, *args: Any, **kwargs: Any) -> bool:
        if not failures:
            failures.append(1)
            raise StorageError("disk full (simulated) after the gateway captured")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Payment, "record_capture", flaky)
    order = shop.orders.place(place_command)
    payment = shop.payments.for_order(order.id)[0]
    assert payment.authorization_id is not None
    assert gateway.captured(payment.authorization_id) == order.totals.total  # money moved...
    assert shop.payments.status(order.id) is PaymentStatus.AUTHORIZED  # ...but not recorded
    assert shop.events.pending() == 1

    clock.advance(timedelta(seconds=2))
    report = shop.events.run_pending()
    assert report.delivered == 2  # the retried PaymentAuthorized, then the PaymentCaptured
    payment = shop.payments.for_order(order.id)[0]
    assert len(payment.captures) == 1
    assert payment.captured == order.totals.total == gateway.captured(payment.authorization_id)
    assert shop.payments.status(order.id) is PaymentStatus.PAID


def test_placement_that_fails_after_authorizing_voids_the_authorization(
    place_command: PlaceOrder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stock goes to another order between the check and the commit: the order is not
    placed, and the authorization made for it is released."""
    clock = ManualClock()
    gateway = MemoryGateway(seed=2, clock=clock)
    store, ids = MemoryStore(), SequentialIds()  # two processes of one shop share ids
    shop = _shop(store, gateway, clock, ids, track_stock=True)
    rival = _shop(store, MemoryGateway(seed=3), clock, ids, track_stock=True)
    shop.inventory.add_location(Location("main", "Main"))
    for line in place_command.lines:
        shop.inventory.receive(line.sku, location="main", quantity=line.quantity)
    original = PaymentService.authorize
    made = []

    def authorize_then_lose_the_race(self: PaymentService, *args: Any, **kwargs: Any) -> Any:
        authorization = original(self, *args, **kwargs)
        if self is shop.payments:
            made.append(authorization)
            rival.orders.place(attrs.evolve(place_command, idempotency_key="rival"))
        return authorization

    monkeypatch.setattr(PaymentService, "authorize", authorize_then_lose_the_race)
    with pytest.raises(OutOfStock):
        shop.orders.place(attrs.evolve(place_command, idempotency_key="mine"))
    (authorization,) = made
    assert gateway.is_voided(authorization.id)
    assert gateway.captured(authorization.id).is_zero()
    assert [o.idempotency_key for o in shop.orders.list()] == ["rival"]


def test_a_cancellation_waits_for_the_gateway_and_then_voids(place_command: PlaceOrder) -> None:
    """The gateway is down when the order is cancelled: the void is retried by the
    dispatcher with back-off, and happens once when the gateway is back."""
    clock = ManualClock()
    gateway = MemoryGateway(seed=4, clock=clock)
    shop = _shop(MemoryStore(), gateway, clock, gateway_attempts=1)
    order = shop.orders.place(place_command)
    authorization = shop.payments.for_order(order.id)[0].authorization_id
    assert authorization is not None
    gateway.unavailable_rate = 1.0
    shop.orders.cancel(order.id, "customer asked")  # the command itself succeeds
    assert not gateway.is_voided(authorization)
    assert shop.events.pending() == 1
    with pytest.raises(GatewayUnavailable):
        shop.payments.void(order.id)  # an operator trying by hand meets the same outage
    gateway.unavailable_rate = 0.0
    clock.advance(timedelta(seconds=5))
    # the cancellation's handler voids, and the PaymentVoided it records is delivered too
    assert shop.events.run_pending().delivered == 2
    assert gateway.is_voided(authorization)
    payment = shop.payments.for_order(order.id)[0]
    assert payment.state == "voided"
    assert payment.voided == order.totals.total
    assert shop.payments.status(order.id) is PaymentStatus.UNPAID
    assert shop.events.pending() == 0
