"""Exchange money on taxed lines: the credit pays the replacement's price and tax, so a
like-for-like exchange moves no money, and a dearer one charges only the difference."""

from __future__ import annotations

from datetime import timedelta

import pytest

import orderkit as ok
from orderkit.adapters.memory import ManualClock, SequentialIds
from orderkit.adapters.memory_carrier import MemoryCarrier
from orderkit.adapters.memory_gateway import MemoryGateway


def E(amount: str) -> ok.Money:
    return ok.Money(amount, "EUR")


def _exchanged(replacement_price: str, replacement_tax: str) -> tuple[ok.Shop, ok.ReturnRequest]:
    clock = ManualClock()
    shop = ok.Shop.open(
        "memory://",
        clock=clock,
        ids=SequentialIds(),
        gateway=MemoryGateway(seed=1),
        carriers=[MemoryCarrier(clock=clock, seed=1)],
    )
    shop.inventory.add_location(ok.Location("berlin", "Berlin"))
    for sku in ("MUG-01", "MUG-02"):
        shop.inventory.receive(sku, location="berlin", quantity=5)
    order = shop.orders.place(
        ok.PlaceOrder(
            customer=ok.Customer("cust-1", "Ada Lovelace", "ada@example.com"),
            shipping_address=ok.Address("Ada", "12 Row", "London", "N1 9GU", "GB"),
            lines=[ok.LineItem("L1", "MUG-01", "Mug", 1, E("10.00"), tax=E("2.00"))],
            payment_token="tok_visa",
        )
    )
    shop.orders.acknowledge(order.id)
    for shipment in shop.fulfilment.start(order.id):
        shop.fulfilment.pick(shipment.id)
        shop.fulfilment.pack(shipment.id, [ok.Parcel(300, 300, 200, 100)])
        shop.shipping.buy_label(shipment.id)
        shop.shipping.hand_over(shipment.id)
    for _ in range(10):
        clock.advance(timedelta(days=1))
        shop.shipping.poll()
    assert shop.orders.get(order.id).state == "delivered"
    request = shop.returns.request(order.id, [ok.ReturnLine("L1", 1, "size_or_fit")])
    shop.returns.approve(request.id)
    shop.returns.receive(request.id)
    shop.returns.inspect(request.id)
    replacement = ok.Replacement(
        "L1", "MUG-02", "Blue mug", E(replacement_price), E(replacement_tax)
    )
    return shop, shop.returns.exchange(request.id, [replacement])


@pytest.mark.parametrize(
    ("price", "tax", "charged", "refunded"),
    [
        ("10.00", "2.00", "0.00", "0.00"),  # like for like: no money moves
        ("15.00", "3.00", "6.00", "0.00"),  # dearer: only the difference, tax included
        ("5.00", "1.00", "0.00", "6.00"),  # cheaper: the credit left over goes back
    ],
)
def test_the_credit_pays_price_and_tax(price: str, tax: str, charged: str, refunded: str) -> None:
    shop, request = _exchanged(price, tax)
    assert request.amount_due == E("12.00")  # the mug and its tax
    assert (request.exchange_charged, request.amount_refunded) == (E(charged), E(refunded))
    assert request.exchange_order_id is not None
    exchange = shop.orders.get(request.exchange_order_id)
    assert exchange.totals.total == E(charged)
    refund_notices = [n for n in shop.notifier.sent if n.kind == "refund_issued"]
    assert len(refund_notices) == (0 if refunded == "0.00" else 1)


def test_a_line_never_costs_less_than_nothing() -> None:
    ok.LineItem("L1", "S", "n", 1, E("10.00"), discount=E("12.00"), tax=E("2.00"))
    with pytest.raises(ok.InvalidField, match="more than the line's price and tax"):
        ok.LineItem("L1", "S", "n", 1, E("10.00"), discount=E("12.01"), tax=E("2.00"))
