"""The demo's week after delivery: returns, exchanges, refunds and customer inquiries.

Part of the ``orderkit demo`` command (:mod:`orderkit.cli.demo`); it drives the shop only
through its public services, as an operator would.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import timedelta

from attrs import define, field

from orderkit.adapters.memory import ManualClock
from orderkit.domain.inquiries import InquiryState
from orderkit.domain.order import OrderState
from orderkit.domain.returns import SHOP_FAULT_REASONS, Inspection, ReturnLine
from orderkit.domain.shipment import Shipment
from orderkit.errors import OutOfStock
from orderkit.money import Money
from orderkit.service.returns import Replacement
from orderkit.shop import Shop

__all__ = ["Aftercare", "after_delivery"]

OTHER_SIZE = {"TEE-M": ("TEE-L", "Organic T-shirt, L"), "TEE-L": ("TEE-M", "Organic T-shirt, M")}
"""What a T-shirt that did not fit is exchanged for."""

REASONS = ["size_or_fit", "changed_mind", "damaged", "defective", "wrong_item", "not_as_described"]
QUESTIONS = [
    ("Where is my parcel?", "The tracking page has not moved for a day."),
    ("Invoice", "Could you send me an invoice with my company's name?"),
    ("Gift wrap", "Can you still add a gift note?"),
]


@define
class Aftercare:
    """What the week after delivery came to, for the demo's summary."""

    due: Money
    paid: Money
    returns: Counter[str] = field(factory=Counter)
    exchanges: int = 0
    exchanges_out_of_stock: int = 0
    restocked: int = 0
    written_off: int = 0
    completed: int = 0
    inquiries: Counter[str] = field(factory=Counter)


def after_delivery(
    shop: Shop,
    clock: ManualClock,
    rng: random.Random,
    placed: Sequence[str],
    send: Callable[[Shop, Shipment], None],
    advance: Callable[[], None],
) -> Aftercare:
    """Some customers return units (most approved, a few rejected or withdrawn), the
    warehouse receives and inspects them, the shop refunds or exchanges (a T-shirt that
    did not fit for the other size), and some customers ask questions that are answered.
    ``send`` ships an exchange order's shipment; ``advance`` reports progress."""
    zero = Money.zero(shop.settings.currency)
    outcome = Aftercare(zero, zero)
    delivered = [
        order_id
        for order_id in placed
        if shop.orders.get(order_id).state == OrderState.DELIVERED.value
    ]
    requested, returns, inquiries = [], [], []
    for order_id in delivered:
        advance()
        if rng.random() < 0.15:
            inquiries.append(_ask(shop, rng, order_id))
        if rng.random() >= 0.12:
            continue
        returnable = shop.returns.returnable(order_id)
        if not returnable:
            continue
        line_id = rng.choice(sorted(returnable))
        units = rng.randint(1, returnable[line_id])
        request = shop.returns.request(order_id, [ReturnLine(line_id, units, rng.choice(REASONS))])
        returns.append(request.id)
        if rng.random() < 0.08:
            shop.returns.reject(request.id, "The items were worn; we cannot take them back.")
            continue
        shop.returns.approve(request.id)
        if rng.random() < 0.05:
            shop.returns.cancel(request.id, "the customer decided to keep it")
            continue
        requested.append(request.id)
    clock.advance(timedelta(days=3))  # the parcels come back
    exchange_orders = []
    for return_id in requested:
        exchange = _settle(shop, rng, return_id, outcome)
        if exchange is not None:
            exchange_orders.append(exchange)
    for order_id in exchange_orders:  # released to fulfilment by the shop's policy
        for shipment in shop.fulfilment.shipments(order_id) or shop.fulfilment.start(order_id):
            if shipment.state == "pending":
                send(shop, shipment)
    for _ in range(9):  # economy parcels take a working week, longer over a holiday
        clock.advance(timedelta(days=1))
        shop.shipping.poll()
    for inquiry_id in inquiries:
        if shop.inquiries.get(inquiry_id).state == InquiryState.OPEN.value:
            shop.inquiries.answer(inquiry_id, "Sam from support", "Yes: it leaves today.")
    outcome.returns.update(shop.returns.get(return_id).state for return_id in returns)
    outcome.inquiries.update(shop.inquiries.get(inquiry_id).state for inquiry_id in inquiries)
    return outcome


def _ask(shop: Shop, rng: random.Random, order_id: str) -> str:
    subject, message = rng.choice(QUESTIONS)
    inquiry = shop.inquiries.open(order_id, subject, message)
    shop.inquiries.answer(inquiry.id, "Sam from support", "Thank you for asking: it is done.")
    if rng.random() < 0.3:
        shop.inquiries.reply(inquiry.id, "Thanks! One more thing: can it arrive before Friday?")
    else:
        shop.inquiries.resolve(inquiry.id, "answered")
    return inquiry.id


def _settle(shop: Shop, rng: random.Random, return_id: str, outcome: Aftercare) -> str | None:
    """Receive, inspect and refund or exchange one approved return; returns the id of an
    exchange order to ship, if one was placed."""
    request = shop.returns.receive(return_id)
    line = request.lines[0]
    got = request.received_units()[line.line_id]
    broken = got if line.reason in ("damaged", "defective") else int(rng.random() < 0.05)
    request = shop.returns.inspect(return_id, [Inspection(line.line_id, got - broken, broken)])
    outcome.restocked += got - broken
    outcome.written_off += broken
    sku = shop.orders.get(request.order_id).line(line.line_id).sku
    if line.reason == "size_or_fit" and sku in OTHER_SIZE:
        other, name = OTHER_SIZE[sku]
        price = shop.orders.get(request.order_id).line(line.line_id).unit_price
        try:
            request = shop.returns.exchange(
                return_id, [Replacement(line.line_id, other, name, price)]
            )
        except OutOfStock:
            outcome.exchanges_out_of_stock += 1
        else:
            outcome.exchanges += 1
            return request.exchange_order_id
    request = shop.returns.refund(return_id, refund_shipping=line.reason in SHOP_FAULT_REASONS)
    outcome.due += request.amount_due or Money.zero(outcome.due.currency)
    outcome.paid += request.amount_refunded or Money.zero(outcome.due.currency)
    return None
