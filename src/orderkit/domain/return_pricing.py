"""What a return is worth: refund quotes, the restocking fee, and exchange orders' lines.

Every unit of an order line has its share of what was paid for the line (price times
quantity, less discount, plus tax), split by largest remainder. Units settled earlier
(by other returns, or by a parcel claim refunded) take the first shares, so that all
the refunds of a line add up to the line, never more. An exchange order's discount is
the credit of the return it settles: a payment, not a price cut, so its units are
worth their full price when they come back in turn.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from attrs import Attribute, evolve, field, frozen

from orderkit.domain.order import Order
from orderkit.domain.payment import lines_share
from orderkit.domain.returns import SHOP_FAULT_REASONS, ReturnRequest
from orderkit.domain.shipment import Shipment
from orderkit.domain.values import MAX_ID_LENGTH, MAX_TEXT_LENGTH, LineItem, text
from orderkit.errors import CurrencyMismatch, InvalidField
from orderkit.money import Money

__all__ = [
    "RefundQuote",
    "Replacement",
    "exchange_lines",
    "quote_return",
    "settled_units",
]


@frozen
class RefundQuote:
    """What a return comes to: ``items`` (the received units' share of what was paid, tax
    and discount included), less ``restocking_fee``, plus ``shipping`` (when the shop
    refunds it): ``due``."""

    items: Money
    restocking_fee: Money
    shipping: Money
    due: Money


def _price(_instance: object, attribute: Attribute[Any], value: object) -> None:
    if not isinstance(value, Money) or value.is_negative():
        raise InvalidField("must be Money, not negative", field=attribute.name, value=value)


def _tax(instance: Replacement, attribute: Attribute[Any], value: object) -> None:
    if value is None:
        return
    _price(instance, attribute, value)
    assert isinstance(value, Money)
    if value.currency != instance.unit_price.currency:
        raise CurrencyMismatch(
            f"is in {value.currency} but the unit price is in {instance.unit_price.currency}",
            field="tax",
            value=value.currency,
        )


@frozen
class Replacement:
    """In an exchange, the returned line ``line_id`` is replaced, unit for unit, by
    ``sku`` (another variant) at ``unit_price``, with ``tax`` for the whole line."""

    line_id: str = field(validator=text(MAX_ID_LENGTH))
    sku: str = field(validator=text(MAX_ID_LENGTH))
    name: str = field(validator=text(MAX_TEXT_LENGTH))
    unit_price: Money = field(validator=_price)
    tax: Money | None = field(default=None, validator=_tax)


def settled_units(
    returns: Iterable[ReturnRequest], shipments: Iterable[Shipment], *, but: str | None = None
) -> dict[str, int]:
    """Units per line whose money was already settled: received by returns whose refund
    or exchange was decided (all but ``but``), and in parcels whose claim was refunded."""
    units: dict[str, int] = {}
    for request in returns:
        if request.id != but and request.resolution is not None:
            for line_id, count in request.received_units().items():
                units[line_id] = units.get(line_id, 0) + count
    for shipment in shipments:
        if shipment.claim == "refund":
            for line_id, count in shipment.units().items():
                units[line_id] = units.get(line_id, 0) + count
    return units


def _priced(order: Order) -> Order:
    """The order as its units are worth: an exchange order's credit is not a discount."""
    if order.exchange_for is None:
        return order
    lines = tuple(evolve(line, discount=Money.zero(order.currency)) for line in order.lines)
    return evolve(order, lines=lines, pending_events=[])


def quote_return(
    order: Order,
    request: ReturnRequest,
    *,
    already: Mapping[str, int],
    fee_rate: Decimal,
    shipping: bool,
    no_fee_lines: Collection[str] = (),
) -> RefundQuote:
    """The quote for ``request``'s received units (the units asked for, before any
    arrive), after the ``already`` settled ones.

    The fee (``fee_rate`` of the items' share) is kept for units returned for the
    customer's own reasons (not :data:`SHOP_FAULT_REASONS`), except on ``no_fee_lines``
    (those exchanged). ``shipping`` adds the order's shipping charge."""
    priced = _priced(order)
    got = request.received_units() or request.requested_units()  # an estimate until received
    items = lines_share(priced, got, already=already, include_shipping=False)
    fee = Money.zero(order.currency)
    if fee_rate:
        reasons = {line.line_id: line.reason for line in request.lines}
        chargeable = {
            line_id: count
            for line_id, count in got.items()
            if reasons[line_id] not in SHOP_FAULT_REASONS and line_id not in no_fee_lines
        }
        fee = lines_share(priced, chargeable, already=already, include_shipping=False) * fee_rate
    extra = order.shipping_charge if shipping else Money.zero(order.currency)
    return RefundQuote(items, fee, extra, items - fee + extra)


def exchange_lines(
    order: Order, request: ReturnRequest, replacements: Sequence[Replacement], credit: Money
) -> tuple[LineItem, ...]:
    """The exchange order's lines: each replacement, unit for unit with the received units
    of its line, discounted by the ``credit`` (up to its price and tax, line by line, in
    order)."""
    got = request.received_units()
    if not replacements:
        raise InvalidField("name at least one replacement", field="replacements", value=[])
    lines: list[LineItem] = []
    left = credit
    seen: set[str] = set()
    for index, item in enumerate(replacements):
        if not isinstance(item, Replacement):
            raise InvalidField("must be a Replacement", field=f"replacements[{index}]", value=item)
        if item.line_id not in got or item.line_id in seen:
            raise InvalidField(
                "must name a received line of this return, once",
                field=f"replacements[{index}].line_id",
                value=item.line_id,
            )
        if item.unit_price.currency != order.currency:
            raise CurrencyMismatch(
                f"is in {item.unit_price.currency} but the order is in {order.currency}",
                field=f"replacements[{index}].unit_price",
                value=item.unit_price.currency,
            )
        seen.add(item.line_id)
        tax = item.tax if item.tax is not None else Money.zero(order.currency)
        price = item.unit_price * got[item.line_id] + tax  # the credit pays its tax too
        used = min(left, price, key=lambda money: money.amount)
        left = left - used
        lines.append(
            LineItem(
                line_id=item.line_id,
                sku=item.sku,
                name=item.name,
                quantity=got[item.line_id],
                unit_price=item.unit_price,
                discount=used,
                tax=tax,
            )
        )
    return tuple(lines)
