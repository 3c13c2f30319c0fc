"""Exchanges: a return settled by an order for other variants, paid with the return's
credit. Part of the return service (``shop.returns.exchange``), kept apart by concept.

An exchange order is an ordinary order with ``exchange_for`` naming the return: it
reserves stock, ships and is tracked like any other. Its discount is the credit, a
payment rather than a price cut: when its units come back, or it is cancelled before
it ships, the credit is paid back on the order it came from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from orderkit.domain.events import OrderCancelled, OrderDelivered, ShipmentClaimResolved
from orderkit.domain.order import Order
from orderkit.domain.return_pricing import (
    RefundQuote,
    Replacement,
    exchange_lines,
    quote_return,
    settled_units,
)
from orderkit.domain.returns import ReturnRequest, ReturnState
from orderkit.domain.values import MAX_ID_LENGTH, check_text
from orderkit.errors import (
    GatewayUnavailable,
    InvalidField,
    OrderkitError,
    ReturnError,
    StorageError,
)
from orderkit.money import Money
from orderkit.ports import UnitOfWork, UnitOfWorkFactory
from orderkit.service.commands import PlaceOrder
from orderkit.service.payments import PaymentService, gateway_key
from orderkit.service.transaction import CommandRunner

__all__ = ["ExchangeSteps"]

_R = ReturnState
SETTLED = frozenset({_R.REFUNDED.value, _R.EXCHANGED.value, _R.CLOSED.value})
"""Return states past the settlement decision's money."""


class ExchangeSteps(CommandRunner):
    """The exchange steps of :class:`~orderkit.service.returns.ReturnService`, the money an
    exchange order pays back through the order its credit came from, and the pricing and
    settling both kinds of settlement share."""

    _uow: UnitOfWorkFactory
    _payments: PaymentService
    _place_exchange: Callable[[PlaceOrder, str], Order]
    _acknowledge: Callable[[str], Order]

    def _quote(
        self,
        uow: UnitOfWork,
        request: ReturnRequest,
        *,
        refund_shipping: bool,
        no_fee: frozenset[str] | set[str] = frozenset(),
    ) -> RefundQuote:
        order = uow.orders.get(request.order_id)
        others = [r for r in uow.returns.for_order(order.id) if r.id != request.id]
        shipping_refunded = any(
            r.shipping_refund and not r.shipping_refund.is_zero() for r in others
        )
        return quote_return(
            order,
            request,
            already=settled_units(others, uow.shipments.for_order(order.id)),
            fee_rate=self._settings.restocking_fee,
            shipping=refund_shipping and not shipping_refunded,
            no_fee_lines=no_fee,
        )

    def _settle(
        self,
        return_id: str,
        step: Callable[[ReturnRequest, datetime], None],
        *,
        when: str = _R.INSPECTED.value,
    ) -> ReturnRequest:
        """Take a settlement ``step`` if the return is still ``when``; a return another
        caller moved on meanwhile is returned as it is."""

        def work(uow: UnitOfWork, now: datetime) -> ReturnRequest:
            request = uow.returns.get(return_id)
            if request.state == when:
                step(request, now)
                uow.returns.save(request)
            return request

        return self._run(work)

    def exchange(self, return_id: str, replacements: Sequence[Replacement]) -> ReturnRequest:
        """Settle an inspected return by an exchange: a new order ships ``replacements``
        (another variant per returned line, unit for unit) to the same address, paid
        first with the returned units' credit (no restocking fee on the lines exchanged;
        it is kept on the others). When the new items cost more, the customer's payment
        method is charged the difference (the new order's total); when they cost less,
        the credit left over is refunded. The new order is placed (its stock reserved)
        and acknowledged; it then ships like any other, and the return closes when it
        arrives. If it is cancelled before it ships, the credit is refunded (and the return
        closed).

        Raises :class:`~orderkit.errors.OutOfStock` when a replacement is not in stock,
        :class:`~orderkit.errors.PaymentDeclined` when the difference is refused, and the
        placement's other refusals (an unknown SKU): the return stays inspected and
        undecided (refund it instead, or try another variant).
        Safe to repeat after a failure, or at the same time."""
        check_text(return_id, field="return_id", limit=MAX_ID_LENGTH)
        if isinstance(replacements, (str, bytes)) or not isinstance(replacements, Sequence):
            raise InvalidField(
                "must be a list of Replacement", field="replacements", value=replacements
            )
        exchanged = {item.line_id for item in replacements if isinstance(item, Replacement)}

        def decide(uow: UnitOfWork, now: datetime) -> tuple[ReturnRequest, Order]:
            request = uow.returns.get(return_id)
            order = uow.orders.get(request.order_id)
            if request.state in SETTLED or request.resolution == "exchange":
                return request, order
            if request.state != _R.INSPECTED.value:
                raise ReturnError(
                    f"return {request.id} is {request.state!r}: only an inspected return is settled"
                )
            quote = self._quote(uow, request, refund_shipping=False, no_fee=exchanged)
            exchange_lines(order, request, replacements, quote.due)  # checks them first
            request.decide_exchange(quote.due, quote.restocking_fee)
            uow.orders.save(order)
            uow.returns.save(request)
            return request, order

        decided, order = self._run(decide)
        if decided.state != _R.INSPECTED.value:
            return decided
        assert decided.amount_due is not None
        credit = decided.amount_due
        command = PlaceOrder(
            customer=order.customer,
            shipping_address=order.shipping_address,
            lines=exchange_lines(order, decided, replacements, credit),
            payment_token=order.payment_token,
            channel=order.channel,
            idempotency_key=gateway_key("exchange", return_id),
        )
        try:
            new_order = self._place_exchange(command, return_id)
        except (GatewayUnavailable, StorageError):
            raise  # the outcome is unknown: a retry resumes the decided exchange
        except OrderkitError:
            # refused (out of stock, declined, an unknown SKU): nothing was placed; the return
            # may be refunded, or exchanged for another variant
            def withdraw(r: ReturnRequest, now: datetime) -> None:
                if r.resolution == "exchange":
                    r.withdraw_decision()

            self._settle(return_id, withdraw)
            raise
        charged = new_order.totals.total
        used = Money.sum((line.discount for line in new_order.lines), order.currency)
        refunded = self._pay_back(order.id, credit - used, ("return", return_id, "credit"))
        with self._uow() as uow:  # the shop's policies may have acknowledged it already
            placed = uow.orders.get(new_order.id).state == "placed"
        if placed:
            self._acknowledge(new_order.id)
        return self._settle(
            return_id, lambda r, now: r.mark_exchanged(new_order.id, charged, refunded, now)
        )

    def close_exchanged(self, event: OrderDelivered) -> None:
        """Handler: an exchange order arrived, so the return it settled is closed."""
        request = self._exchange_return(event.order_id)
        if request is not None:
            self._settle(request.id, lambda r, now: r.close(now), when=_R.EXCHANGED.value)

    def refund_cancelled_exchange(self, event: OrderCancelled) -> None:
        """Handler: an exchange order was cancelled before it shipped, so the credit it
        used is refunded on the original order, and the return ends refunded."""
        request = self._exchange_return(event.order_id)
        if request is None or request.state != _R.EXCHANGED.value:
            return  # (a return closes only when its exchange arrives: nothing to pay back)
        with self._uow() as uow:
            exchange_order = uow.orders.get(event.order_id)
        used = Money.sum((line.discount for line in exchange_order.lines), exchange_order.currency)
        paid = self._pay_back(request.order_id, used, ("return", request.id, "exchange-cancelled"))

        def refunded(r: ReturnRequest, now: datetime) -> None:
            r.cancel_exchange(paid, now)
            r.close(now)

        self._settle(request.id, refunded, when=_R.EXCHANGED.value)

    def refund_claimed_exchange(self, event: ShipmentClaimResolved) -> None:
        """Handler: a lost or damaged exchange parcel settled by a refund. The payment
        handlers refund what the exchange order itself was paid; the credit its claimed
        units used is paid back here, on the order the credit came from."""
        if event.resolution != "refund":
            return
        request = self._exchange_return(event.order_id)
        if request is None:
            return
        with self._uow() as uow:
            exchange_order = uow.orders.get(event.order_id)
            units = uow.shipments.get(event.shipment_id).units()
        credit = Money.zero(exchange_order.currency)
        for line_id, count in units.items():
            line = exchange_order.line(line_id)  # its discount is the credit it used
            credit = credit + Money.sum(
                line.discount.allocate([1] * line.quantity)[:count], line.discount.currency
            )
        what = ("return", request.id, "claim", event.shipment_id)
        self._pay_back(request.order_id, credit, what)

    def _exchange_return(self, order_id: str) -> ReturnRequest | None:
        with self._uow() as uow:
            exchange_for = uow.orders.get(order_id).exchange_for
            return None if exchange_for is None else uow.returns.get(exchange_for)

    def _pay_back(self, order_id: str, amount: Money, what: tuple[str, ...]) -> Money:
        """Refund up to ``amount`` under a reference made of ``what``; returns what was
        paid (zero without a gateway or a payment). An exchange order pays back from its
        own payment first, then from the order whose return its credit came from."""
        paid = Money.zero(amount.currency)
        if amount.is_zero() or self._payments.gateway is None:
            return paid
        while True:
            payments = self._payments.for_order(order_id)
            if payments:
                reference = gateway_key(*what)
                plan = payments[-1].refund_plan(reference)
                # a retry repeats the planned amount (what is free to refund shrank by it)
                part = (
                    plan.amount
                    if plan is not None
                    else min(amount - paid, payments[-1].free_to_refund, key=lambda m: m.amount)
                )
                if not part.is_zero():
                    self._payments.refund(order_id, part, reference=reference)
                    paid = paid + part
            request = self._exchange_return(order_id)
            if paid >= amount or request is None:
                return paid
            order_id, what = request.order_id, (*what, "credit")
