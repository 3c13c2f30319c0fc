"""The return service: requests, approval, receipt, inspection, refunds and exchanges.

Reach it as ``shop.returns``. What a customer can return is counted from the
order's delivered shipments (a shipment whose claim was settled is not
counted: it was replaced or refunded already), less what other returns of the
order take; the count is re-checked in the same transaction as the request,
and the order is saved with it, so two requests at once cannot both take the
last unit.

Money moves like every other refund (:mod:`orderkit.service.payments`): the
amount is fixed on the return first, then the gateway is called with a key
derived from the return's id, then the result is recorded. Repeating a step
after a crash or a timeout pays nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from attrs import Attribute, field, frozen

from orderkit.domain.events import OrderDelivered
from orderkit.domain.order import Order
from orderkit.domain.payment import lines_share
from orderkit.domain.returns import (
    SHOP_FAULT_REASONS,
    Inspection,
    ReturnLine,
    ReturnRequest,
    ReturnState,
)
from orderkit.domain.shipment import Shipment, ShipmentState
from orderkit.domain.stock_changes import Restock
from orderkit.domain.values import MAX_ID_LENGTH, MAX_TEXT_LENGTH, LineItem, check_text, text
from orderkit.errors import InvalidField, ReturnError
from orderkit.money import Money
from orderkit.ports import Clock, IdSource, UnitOfWork, UnitOfWorkFactory
from orderkit.service.commands import PlaceOrder
from orderkit.service.dispatch import Dispatcher
from orderkit.service.payments import PaymentService, gateway_key
from orderkit.service.settings import ShopSettings
from orderkit.service.transaction import CommandRunner

__all__ = ["RefundQuote", "Replacement", "ReturnService", "delivered_units"]

T = TypeVar("T")


@frozen
class RefundQuote:
    """What a return's refund comes to: ``items`` (the returned units' share of what was
    paid, tax and discount included), less ``restocking_fee``, plus ``shipping`` (when
    the shop refunds it): ``due``."""

    items: Money
    restocking_fee: Money
    shipping: Money
    due: Money


def _money(_instance: object, _attribute: Attribute[Any], value: object) -> None:
    if not isinstance(value, Money) or value.is_negative():
        raise InvalidField("must be Money, not negative", field="unit_price", value=value)


@frozen
class Replacement:
    """In an exchange, the returned line ``line_id`` is replaced, unit for unit, by
    ``sku`` (another variant) at ``unit_price`` (with ``tax`` for the whole line)."""

    line_id: str = field(validator=text(MAX_ID_LENGTH))
    sku: str = field(validator=text(MAX_ID_LENGTH))
    name: str = field(validator=text(MAX_TEXT_LENGTH))
    unit_price: Money = field(validator=_money)
    tax: Money | None = None


def delivered_units(shipments: Iterable[Shipment]) -> dict[str, int]:
    """Units per order line that reached the customer: in delivered shipments whose
    claim (damaged, say) was not settled by a reship or a refund."""
    units: dict[str, int] = {}
    for shipment in shipments:
        if shipment.state == ShipmentState.DELIVERED.value and shipment.claim is None:
            for line in shipment.lines:
                units[line.line_id] = units.get(line.line_id, 0) + line.quantity
    return units


def _returnable(
    shipments: Sequence[Shipment], returns: Iterable[ReturnRequest], but: str | None = None
) -> dict[str, int]:
    left = delivered_units(shipments)
    for request in returns:
        if request.id != but:
            for line_id, count in request.units().items():
                left[line_id] = left.get(line_id, 0) - count
    return left


class ReturnService(CommandRunner):
    """Commands and queries on returns. Reach it as ``shop.returns``.

    Each command is one unit of work, re-run from a fresh load when it loses a race.
    Without a payment gateway, refunds are recorded as due and paid out by other
    means (``amount_refunded`` stays zero).
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        *,
        clock: Clock,
        ids: IdSource,
        settings: ShopSettings,
        dispatcher: Dispatcher,
        payments: PaymentService,
        place_exchange: Callable[[PlaceOrder, str], Order],
        acknowledge: Callable[[str], Order],
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._ids = ids
        self._settings = settings
        self._dispatcher = dispatcher
        self._payments = payments
        self._place_exchange = place_exchange
        self._acknowledge = acknowledge

    # -- queries --------------------------------------------------------------------------------

    def get(self, return_id: str) -> ReturnRequest:
        """The return ``return_id``; raises :class:`~orderkit.errors.ReturnNotFound`."""
        check_text(return_id, field="return_id", limit=MAX_ID_LENGTH)
        with self._uow() as uow:
            return uow.returns.get(return_id)

    def for_order(self, order_id: str) -> Sequence[ReturnRequest]:
        """The order's returns, oldest first."""
        check_text(order_id, field="order_id", limit=MAX_ID_LENGTH)
        with self._uow() as uow:
            return uow.returns.for_order(order_id)

    def list(
        self, *, state: str | None = None, limit: int = 50, offset: int = 0
    ) -> Sequence[ReturnRequest]:
        """Returns in ``state`` (any if None), oldest first, ``limit`` (1 to 1000) at a time."""
        with self._uow() as uow:
            return uow.returns.list(state=state, limit=limit, offset=offset)

    def returnable(self, order_id: str) -> dict[str, int]:
        """Units per line the customer can still ask to return (delivered, less those that
        other returns take), whatever the return window says."""
        check_text(order_id, field="order_id", limit=MAX_ID_LENGTH)
        with self._uow() as uow:
            uow.orders.get(order_id)
            shipments = uow.shipments.for_order(order_id)
            left = _returnable(shipments, uow.returns.for_order(order_id))
        return {line_id: count for line_id, count in left.items() if count > 0}

    def quote_refund(self, return_id: str, *, refund_shipping: bool = False) -> RefundQuote:
        """What refunding this return would come to now (see :class:`RefundQuote`); with
        ``refund_shipping``, the order's shipping charge too (once per order)."""
        with self._uow() as uow:
            request = uow.returns.get(return_id)
            return self._quote(uow, request, refund_shipping=refund_shipping, fee=True)

    # -- the customer's and the shop's steps ------------------------------------------------------

    def request(self, order_id: str, lines: Sequence[ReturnLine]) -> ReturnRequest:
        """Ask to return ``lines`` of a delivered order, each with a reason.

        Raises :class:`~orderkit.errors.ReturnError` when a line asks for more units than
        were delivered less those already being returned, or when the return window
        (``settings.return_window`` from the line's delivery) has closed; and
        :class:`InvalidField` for malformed lines. Nothing is stored then."""
        check_text(order_id, field="order_id", limit=MAX_ID_LENGTH)
        if isinstance(lines, (str, bytes)) or not isinstance(lines, Sequence):
            raise InvalidField("must be a list of ReturnLine", field="lines", value=lines)
        return_id = self._ids.new_id("return")

        def work(uow: UnitOfWork, now: datetime) -> ReturnRequest:
            order = uow.orders.get(order_id)
            for index, line in enumerate(lines):
                if isinstance(line, ReturnLine):
                    order.line(line.line_id)  # an unknown line is named as such
                else:
                    raise InvalidField("must be a ReturnLine", field=f"lines[{index}]", value=line)
            shipments = uow.shipments.for_order(order_id)
            self._check_window(order, shipments, lines, now)
            request = ReturnRequest.request(
                return_id=return_id,
                order_id=order_id,
                lines=lines,
                returnable=_returnable(shipments, uow.returns.for_order(order_id)),
                at=now,
            )
            uow.orders.save(order)  # serialises returns of one order: the count holds
            uow.returns.add(request)
            return request

        return self._run(work)

    def approve(self, return_id: str, instructions: str | None = None) -> ReturnRequest:
        """Approve the return; the customer is sent ``instructions`` (default
        ``settings.return_instructions``)."""
        told = self._settings.return_instructions if instructions is None else instructions
        return self._change(return_id, lambda r, now, _uow: r.approve(told, now))

    def reject(self, return_id: str, reason: str) -> ReturnRequest:
        """Reject the return; the customer is told ``reason``."""
        return self._change(return_id, lambda r, now, _uow: r.reject(reason, now))

    def cancel(self, return_id: str, reason: str = "withdrawn by the customer") -> ReturnRequest:
        """Withdraw the return before its units arrive; its units can be returned again."""
        return self._change(return_id, lambda r, now, _uow: r.cancel(reason, now))

    def receive(self, return_id: str, units: Mapping[str, int] | None = None) -> ReturnRequest:
        """The parcel arrived with ``units`` per line (None: all that were asked for)."""
        return self._change(return_id, lambda r, now, _uow: r.receive(units, now))

    def inspect(
        self,
        return_id: str,
        results: Sequence[Inspection] | None = None,
        *,
        location: str | None = None,
    ) -> ReturnRequest:
        """Record what became of each received unit (None: every unit restocked). Restocked
        units go back on hand at ``location`` (default: where the line shipped from) in
        the same transaction, through the inventory ledger; written-off units do not."""

        def change(request: ReturnRequest, now: datetime, uow: UnitOfWork) -> None:
            got = request.received_units()
            found = (
                [Inspection(line_id, count) for line_id, count in sorted(got.items())]
                if results is None
                else list(results)
            )
            order = uow.orders.get(request.order_id)
            where = location
            if where is None and any(r.restock for r in found if isinstance(r, Inspection)):
                where = _shipped_from(uow.shipments.for_order(order.id), got)
            request.inspect(found, where, now)
            if where is None:
                return
            for line_id, count in request.restocked_units().items():
                uow.stock.stage(
                    Restock(
                        order.line(line_id).sku,
                        where,
                        count,
                        order.id,
                        line_id,
                        now,
                        f"return {request.id}",
                    )
                )

        return self._change(return_id, change)

    def refund(self, return_id: str, *, refund_shipping: bool = False) -> ReturnRequest:
        """Settle an inspected return by a refund: the received units' share of what was
        paid (tax and discount included, split by largest remainder so that every
        return of a line adds up to the line), less the restocking fee where it
        applies, plus the shipping charge with ``refund_shipping``.

        The amount due is fixed on the return first; the gateway then pays it back
        from the order's captures (no more than is left captured), and the return
        records what was paid. Safe to repeat after a failure: it resumes, and pays
        once."""
        with self._uow() as uow:
            request = uow.returns.get(return_id)
            if request.state != ReturnState.INSPECTED.value:
                if request.state in (ReturnState.REFUNDED.value, ReturnState.CLOSED.value):
                    return request
                raise ReturnError(
                    f"return {return_id} is {request.state!r}: only an inspected return is refunded"
                )
            quote = self._quote(uow, request, refund_shipping=refund_shipping, fee=True)

        def decide(uow: UnitOfWork, now: datetime) -> ReturnRequest:
            fresh = uow.returns.get(return_id)
            fresh.decide_refund(quote.due, quote.restocking_fee, quote.shipping)
            uow.returns.save(fresh)
            return fresh

        decided = request if request.amount_due is not None else self._run(decide)
        assert decided.amount_due is not None
        paid = self._pay_back(decided.order_id, decided.amount_due, ("return", return_id))
        return self._change(return_id, lambda r, now, _uow: r.mark_refunded(paid, now))

    def exchange(self, return_id: str, replacements: Sequence[Replacement]) -> ReturnRequest:
        """Settle an inspected return by an exchange: a new order ships ``replacements``
        (another variant per returned line, unit for unit) to the same address, paid
        first with the returned units' credit. When the new items cost more, the
        customer's payment method is charged the difference (the new order's total);
        when they cost less, the credit left over is refunded. The new order is placed
        (its stock reserved) and acknowledged; it then ships like any other.

        Raises :class:`~orderkit.errors.OutOfStock` when a replacement is not in stock
        (the return stays inspected: refund it instead, or try another variant).
        Safe to repeat after a failure."""
        if isinstance(replacements, (str, bytes)) or not isinstance(replacements, Sequence):
            raise InvalidField("must be a list of Replacement", field="replacements", value=[])
        with self._uow() as uow:
            request = uow.returns.get(return_id)
            if request.state in (ReturnState.EXCHANGED.value, ReturnState.CLOSED.value):
                return request
            if request.state != ReturnState.INSPECTED.value:
                raise ReturnError(
                    f"return {return_id} is {request.state!r}: only an inspected return "
                    "is exchanged"
                )
            order = uow.orders.get(request.order_id)
            credit = self._quote(uow, request, refund_shipping=False, fee=False).due
        command = self._exchange_order(order, request, replacements, credit)
        new_order = self._place_exchange(command, return_id)
        charged = new_order.totals.total
        used = Money.sum((line.discount for line in new_order.lines), order.currency)
        refunded = self._pay_back(order.id, credit - used, ("return", return_id, "credit"))
        if new_order.state == "placed":
            self._acknowledge(new_order.id)
        return self._change(
            return_id,
            lambda r, now, _uow: r.mark_exchanged(new_order.id, credit, charged, refunded, now),
        )

    def close(self, return_id: str) -> ReturnRequest:
        """Close a refunded or exchanged return: nothing more will happen on it."""
        return self._change(return_id, lambda r, now, _uow: r.close(now))

    def close_exchanged(self, event: OrderDelivered) -> None:
        """Handler: an exchange order arrived, so the return it settled is closed."""
        with self._uow() as uow:
            exchange_for = uow.orders.get(event.order_id).exchange_for
            if exchange_for is None:
                return
            state = uow.returns.get(exchange_for).state
        if state == ReturnState.EXCHANGED.value:
            self.close(exchange_for)

    # -- internals --------------------------------------------------------------------------------

    def _check_window(
        self,
        order: Order,
        shipments: Sequence[Shipment],
        lines: Sequence[ReturnLine],
        now: datetime,
    ) -> None:
        window = self._settings.return_window
        for line in lines:
            arrived = [
                s.delivered_at
                for s in shipments
                if s.delivered_at is not None
                and s.state == ShipmentState.DELIVERED.value
                and any(item.line_id == line.line_id for item in s.lines)
            ]
            if arrived and now > max(arrived) + window:
                closed = (max(arrived) + window).date().isoformat()
                raise ReturnError(
                    f"order {order.id} line {line.line_id}: the return window closed on {closed}"
                )

    def _quote(
        self, uow: UnitOfWork, request: ReturnRequest, *, refund_shipping: bool, fee: bool
    ) -> RefundQuote:
        order = uow.orders.get(request.order_id)
        currency = order.currency
        # units settled by the order's other returns come first, so all its returns of a line
        # add up to the line exactly
        already: dict[str, int] = {}
        shipping_refunded = False
        for other in uow.returns.for_order(order.id):
            if other.id != request.id and other.amount_due is not None:
                for line_id, count in other.received_units().items():
                    already[line_id] = already.get(line_id, 0) + count
                if other.shipping_refund is not None and not other.shipping_refund.is_zero():
                    shipping_refunded = True
        got = request.received_units()
        items = lines_share(order, got, already=already, include_shipping=False)
        kept = Money.zero(currency)
        rate = self._settings.restocking_fee
        if fee and rate:
            reasons = {line.line_id: line.reason for line in request.lines}
            chargeable = {
                line_id: count
                for line_id, count in got.items()
                if reasons[line_id] not in SHOP_FAULT_REASONS
            }
            base = lines_share(order, chargeable, already=already, include_shipping=False)
            kept = base * Decimal(rate)
        shipping = (
            order.shipping_charge
            if refund_shipping and not shipping_refunded
            else Money.zero(currency)
        )
        return RefundQuote(items, kept, shipping, items - kept + shipping)

    def _exchange_order(
        self,
        order: Order,
        request: ReturnRequest,
        replacements: Sequence[Replacement],
        credit: Money,
    ) -> PlaceOrder:
        got = request.received_units()
        if not replacements:
            raise InvalidField("name at least one replacement", field="replacements", value=[])
        lines: list[LineItem] = []
        left = credit
        seen: set[str] = set()
        for index, item in enumerate(replacements):
            if not isinstance(item, Replacement):
                raise InvalidField(
                    "must be a Replacement", field=f"replacements[{index}]", value=item
                )
            if item.line_id not in got or item.line_id in seen:
                raise InvalidField(
                    "must name a received line of this return, once",
                    field=f"replacements[{index}].line_id",
                    value=item.line_id,
                )
            seen.add(item.line_id)
            subtotal = item.unit_price * got[item.line_id]
            used = min(left, subtotal, key=lambda money: money.amount)
            left = left - used
            tax = item.tax if item.tax is not None else Money.zero(order.currency)
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
        return PlaceOrder(
            customer=order.customer,
            shipping_address=order.shipping_address,
            lines=tuple(lines),
            payment_token=order.payment_token,
            channel=order.channel,
            idempotency_key=gateway_key("exchange", request.id),
        )

    def _pay_back(self, order_id: str, amount: Money, what: tuple[str, ...]) -> Money:
        """Refund up to ``amount`` through the gateway under a reference made of ``what``;
        returns what was paid (zero without a gateway, a payment or anything captured)."""
        if amount.is_zero() or self._payments.gateway is None:
            return Money.zero(amount.currency)
        payments = self._payments.for_order(order_id)
        if not payments:
            return Money.zero(amount.currency)
        reference = gateway_key(*what)
        plan = payments[-1].refund_plan(reference)
        # a retry repeats the planned amount: what is left captured has shrunk by it since
        paid = (
            plan.amount
            if plan is not None
            else min(amount, payments[-1].refundable, key=lambda money: money.amount)
        )
        if paid.is_zero():
            return paid
        self._payments.refund(order_id, paid, reference=reference)
        return paid

    def _change(
        self, return_id: str, change: Callable[[ReturnRequest, datetime, UnitOfWork], None]
    ) -> ReturnRequest:
        check_text(return_id, field="return_id", limit=MAX_ID_LENGTH)

        def work(uow: UnitOfWork, now: datetime) -> ReturnRequest:
            request = uow.returns.get(return_id)
            change(request, now, uow)
            uow.returns.save(request)
            return request

        return self._run(work)


def _shipped_from(shipments: Sequence[Shipment], units: Mapping[str, int]) -> str | None:
    """The location the first delivered shipment of any of the lines left from."""
    for shipment in shipments:
        if shipment.state == ShipmentState.DELIVERED.value and any(
            line.line_id in units for line in shipment.lines
        ):
            return shipment.location
    return None
