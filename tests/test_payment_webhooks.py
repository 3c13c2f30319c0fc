"""Gateway callbacks arriving as JSON (a webhook body) are parsed strictly, then applied once."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from orderkit import (
    InvalidMoney,
    InvalidPayload,
    Money,
    PaymentNotFound,
    PlaceOrder,
    Shop,
    ShopSettings,
    UnknownField,
)
from orderkit.adapters.memory import ManualClock, SequentialIds
from orderkit.adapters.memory_gateway import MemoryGateway


@pytest.fixture
def paying_shop() -> tuple[Shop, MemoryGateway]:
    clock = ManualClock()
    gateway = MemoryGateway(seed=9, clock=clock)
    shop = Shop.open(
        "memory://",
        clock=clock,
        ids=SequentialIds(),
        gateway=gateway,
        settings=ShopSettings(
            track_stock=False, capture="manual", gateway_retry_delay=timedelta(0)
        ),
    )
    return shop, gateway


def _body(event: Any, **changes: Any) -> str:
    data = {
        "id": event.id,
        "kind": event.kind.value,
        "authorization_id": event.authorization_id,
        "occurred_at": event.occurred_at.isoformat(),
        "operation_id": event.operation_id,
        "amount": {"amount": str(event.amount.amount), "currency": event.amount.currency},
        "capture_id": event.capture_id,
        "reason": None,
    }
    data.update(changes)
    return json.dumps(data)


def test_a_webhook_body_is_applied_once(
    paying_shop: tuple[Shop, MemoryGateway], place_command: PlaceOrder
) -> None:
    shop, gateway = paying_shop
    order = shop.orders.place(place_command)
    authorization = shop.payments.for_order(order.id)[0].authorization_id
    assert authorization is not None
    gateway.take_callbacks()
    gateway.capture(authorization, Money("10.00", "EUR"), idempotency_key="dashboard-1")
    (captured,) = gateway.take_callbacks()
    body = _body(captured)
    assert shop.payments.apply_payment_event_json(body) == "applied"
    assert shop.payments.apply_payment_event_json(body.encode()) == "duplicate"
    payment = shop.payments.for_order(order.id)[0]
    assert payment.captured == Money("10.00", "EUR")
    assert [c.reference for c in payment.captures] == [f"gateway:{captured.id}"]


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        ({"kind": "stolen"}, InvalidPayload, "kind"),
        ({"occurred_at": "2026-01-05T09:00:00"}, InvalidPayload, "occurred_at"),
        ({"occurred_at": "yesterday"}, InvalidPayload, "occurred_at"),
        ({"extra": 1}, UnknownField, "extra"),
        ({"amount": {"amount": 10.0, "currency": "EUR"}}, InvalidMoney, "amount.amount"),
    ],
)
def test_a_bad_webhook_body_is_refused_and_changes_nothing(
    paying_shop: tuple[Shop, MemoryGateway],
    place_command: PlaceOrder,
    changes: dict[str, Any],
    error: type[Exception],
    field: str,
) -> None:
    shop, gateway = paying_shop
    order = shop.orders.place(place_command)
    authorization = shop.payments.for_order(order.id)[0].authorization_id
    assert authorization is not None
    gateway.take_callbacks()
    gateway.capture(authorization, Money("10.00", "EUR"), idempotency_key="dashboard-1")
    (captured,) = gateway.take_callbacks()
    before = shop.payments.for_order(order.id)[0]
    with pytest.raises(error) as raised:
        shop.payments.apply_payment_event_json(_body(captured, **changes))
    assert getattr(raised.value, "field", None) == field
    after = shop.payments.for_order(order.id)[0]
    assert after.version == before.version
    assert after.captures == ()


def test_a_webhook_for_an_unknown_authorization_is_not_found(
    paying_shop: tuple[Shop, MemoryGateway],
) -> None:
    shop, _ = paying_shop
    body = json.dumps(
        {
            "id": "evt_x",
            "kind": "captured",
            "authorization_id": "auth_nobody",
            "occurred_at": "2026-01-05T09:00:00+00:00",
            "operation_id": "cap_x",
            "amount": {"amount": "1.00", "currency": "EUR"},
        }
    )
    with pytest.raises(PaymentNotFound, match="auth_nobody"):
        shop.payments.apply_payment_event_json(body)
