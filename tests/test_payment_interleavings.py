"""Two money commands interleaved, and answers lost between the gateway and the record.

Each test runs a second command (or a cancellation) while the first is between its
gateway call and its commit, the way two processes or a webhook can, and checks that
the books end equal to the gateway's and no money is left behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from orderkit import (
    Address,
    Customer,
    GatewayCapture,
    GatewayUnavailable,
    InvalidField,
    LineItem,
    Money,
    PaymentStatus,
    PlaceOrder,
    Shop,
    ShopSettings,
)
from orderkit.adapters.memory import ManualClock, SequentialIds
from orderkit.adapters.memory_gateway import MemoryGateway

EUR = "EUR"


class HookedGateway(MemoryGateway):
    """A gateway that runs ``after_capture`` once, after a capture moved the money, and can
    lose its answer (``lose``: the money moved, the caller hears GatewayUnavailable)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.after_capture: Callable[[], object] | None = None
        self.lose = False

    def capture(
        self, authorization_id: str, amount: Money, *, idempotency_key: str
    ) -> GatewayCapture:
        result = super().capture(authorization_id, amount, idempotency_key=idempotency_key)
        hook, self.after_capture = self.after_capture, None
        if hook is not None:
            hook()
        if self.lose:
            raise GatewayUnavailable("the answer was lost (simulated)")
        return result


@pytest.fixture(params=["memory", "sqlite"])
def paying(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Shop, HookedGateway]]:
    clock = ManualClock()
    gateway = HookedGateway(seed=3, clock=clock)
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/shop.db"
    shop = Shop.open(
        url,
        clock=clock,
        ids=SequentialIds(),
        gateway=gateway,
        settings=ShopSettings(
            track_stock=False,
            capture="manual",
            gateway_retry_delay=timedelta(0),
            gateway_attempts=1,
        ),
    )
    yield shop, gateway
    shop.close()


def _order(shop: Shop) -> str:
    """Three mugs at 10.00 and a tea at 20.00, shipping 5.00: 55.00."""
    command = PlaceOrder(
        customer=Customer("cust-1", "Ada Lovelace", "ada@example.com"),
        shipping_address=Address("Ada Lovelace", "12 Analytical Row", "London", "N1 9GU", "GB"),
        lines=[
            LineItem("L1", "MUG-01", "Mug", 3, Money("10.00", EUR)),
            LineItem("L2", "TEA-GR", "Tea", 1, Money("20.00", EUR)),
        ],
        payment_token="tok_visa",
        shipping_charge=Money("5.00", EUR),
    )
    return shop.orders.place(command).id


def _books_agree(shop: Shop, gateway: HookedGateway, order_id: str) -> None:
    payment = shop.payments.for_order(order_id)[-1]
    assert payment.authorization_id is not None
    assert payment.captured == gateway.captured(payment.authorization_id)
    assert payment.refunded == gateway.refunded(payment.authorization_id)
    assert payment.captured <= payment.amount
    assert not shop.events.dead_letters()


def test_two_parcels_captured_at_once_charge_shipping_once(
    paying: tuple[Shop, HookedGateway],
) -> None:
    shop, gateway = paying
    order_id = _order(shop)
    gateway.after_capture = lambda: shop.payments.capture_lines(
        order_id, {"L2": 1}, reference="parcel-2"
    )
    shop.payments.capture_lines(order_id, {"L1": 1}, reference="parcel-1")
    payment = shop.payments.for_order(order_id)[-1]
    shipping = [c.reference for c in payment.captures if c.includes_shipping]
    assert len(shipping) == 1  # one of the two parcels paid the 5.00, never both
    assert payment.captured == Money("35.00", EUR)  # 10.00 + 20.00 + 5.00
    shop.payments.capture_lines(order_id, {"L1": 2}, reference="parcel-3")  # the rest fits
    payment = shop.payments.for_order(order_id)[-1]
    assert payment.captured == Money("55.00", EUR)
    assert payment.status is PaymentStatus.PAID
    _books_agree(shop, gateway, order_id)


def test_a_capture_retried_after_a_lost_answer_and_another_capture_moves_money_once(
    paying: tuple[Shop, HookedGateway],
) -> None:
    shop, gateway = paying
    order_id = _order(shop)
    gateway.lose = True
    with pytest.raises(GatewayUnavailable):
        shop.payments.capture_lines(order_id, {"L1": 1}, reference="parcel-1")
    gateway.lose = False
    shop.payments.capture_lines(order_id, {"L2": 1}, reference="parcel-2")
    shop.payments.capture_lines(order_id, {"L1": 1}, reference="parcel-1")  # the retry
    payment = shop.payments.for_order(order_id)[-1]
    assert sorted(c.reference for c in payment.captures) == ["parcel-1", "parcel-2"]
    assert payment.captured == Money("35.00", EUR)
    _books_agree(shop, gateway, order_id)


def test_a_cancellation_while_a_capture_is_unrecorded_ends_with_everything_refunded(
    paying: tuple[Shop, HookedGateway],
) -> None:
    shop, gateway = paying
    order_id = _order(shop)
    gateway.take_callbacks()
    gateway.lose = True
    with pytest.raises(GatewayUnavailable):
        shop.payments.capture(order_id, Money("10.00", EUR), reference="deposit")
    gateway.lose = False
    shop.orders.cancel(order_id, "customer asked")
    # the void released 45.00; the 10.00 the gateway captured is still unknown here
    for callback in gateway.take_callbacks():
        shop.payments.apply_payment_event(callback)
    shop.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]
    shop.events.run_pending()
    payment = shop.payments.for_order(order_id)[-1]
    assert payment.captured == Money("10.00", EUR)
    assert payment.refunded == Money("10.00", EUR)
    assert payment.status is PaymentStatus.REFUNDED
    assert shop.events.pending() == 0
    _books_agree(shop, gateway, order_id)


def test_a_capture_recorded_by_its_callback_after_the_cancellation_is_refunded(
    paying: tuple[Shop, HookedGateway],
) -> None:
    """The cancellation runs between the gateway's capture and our record of it."""
    shop, gateway = paying
    order_id = _order(shop)
    gateway.after_capture = lambda: shop.orders.cancel(order_id, "customer asked")
    shop.payments.capture(order_id, Money("10.00", EUR), reference="deposit")
    shop.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]
    shop.events.run_pending()
    payment = shop.payments.for_order(order_id)[-1]
    assert payment.captured == payment.refunded == Money("10.00", EUR)
    assert shop.events.pending() == 0
    _books_agree(shop, gateway, order_id)


@pytest.mark.parametrize("units", [{"L1": 0}, {}, {"L1": -1}, {"L1": True}, ["L1"]])
def test_capture_lines_refuses_units_that_are_not_whole_positive_counts(
    paying: tuple[Shop, HookedGateway], units: Any
) -> None:
    shop, gateway = paying
    order_id = _order(shop)
    before = shop.payments.for_order(order_id)[-1]
    with pytest.raises(InvalidField):
        shop.payments.capture_lines(order_id, units, reference="x")
    after = shop.payments.for_order(order_id)[-1]
    assert after.version == before.version
    assert after.capture_plans == ()
    shop.payments.capture_lines(order_id, {"L1": 1}, reference="x")  # the reference is free
    assert shop.payments.for_order(order_id)[-1].captured == Money("15.00", EUR)  # + shipping
    _books_agree(shop, gateway, order_id)
