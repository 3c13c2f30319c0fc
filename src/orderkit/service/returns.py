"""The return service: requests, approval, receipt, inspection, refunds and exchanges.

Reach it as ``shop.returns``. What a customer can return is counted from the
order's delivered shipments (a shipment whose claim was settled is not
counted: it was replaced or refunded already), less what other returns of the
order take; the count is re-checked in the same transaction as the request,
and the order is saved with it, so two requests at once cannot both take the
last unit. Settling a return (refund or exchange) is decided the same way: in
one transaction that saves the order, so two returns of one order are priced
one after the other.

Money moves like every other refund (:mod:`orderkit.service.payments`): the
amount is fixed on the return first, then the gateway is called with a key
derived from the return's id, then the result is recorded. Repeating a step
after a crash or a timeout pays nothing twice, and a caller who loses a race
to another settling the same return gets the settled return back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from attrs import evolve

from orderkit.domain.order import Order
from orderkit.domain.payment_lifecycle import OPEN_STATES
from orderkit.domain.return_pricing import (
    RefundQuote,
    Replacement,
)
from orderkit.domain.returns import (
    RETURN_LIFECYCLE,
    Inspection,
    ReturnLine,
    ReturnRequest,
    ReturnState,
)
from orderkit.domain.shipment import Shipment, arrived_units
from orderkit.domain.stock_changes import Restock
from orderkit.domain.values import MAX_ID_LENGTH, check_text
from orderkit.errors import InvalidField, ReturnError
from orderkit.money import Money
from orderkit.ports import Clock, IdSource, UnitOfWork, UnitOfWorkFactory
from orderkit.service.commands import PlaceOrder, RequestReturn
from orderkit.service.dispatch import Dispatcher
from orderkit.service.exchanges import SETTLED, ExchangeSteps
from orderkit.service.payments import PaymentService
from orderkit.service.settings import ShopSettings

__all__ = ["RefundQuote", "Replacement", "ReturnService"]

_R = ReturnState
_BROKEN = frozenset({"damaged", "defective"})
_CLOSED_ORDERS = frozenset({"completed", "cancelled"})


def _returnable(shipments: Sequence[Shipment], returns: Sequence[ReturnRequest]) -> dict[str, int]:
    left = arrived_units(shipments)
    for request in returns:
        for line_id, count in request.units().items():
            left[line_id] = left.get(line_id, 0) - count
    return left


def _arrived_at(shipments: Sequence[Shipment], line_id: str) -> datetime | None:
    """When the last parcel with units of ``line_id`` reached the customer."""
    times = [
        s.delivered_at
        for s in shipments
        if s.arrived and s.delivered_at is not None and line_id in s.units()
    ]
    return max(times) if times else None


def _shipped_from(shipments: Sequence[Shipment], line_id: str) -> str | None:
    """Where the first parcel with units of ``line_id`` that reached the customer left from."""
    return next((s.location for s in shipments if s.arrived and line_id in s.units()), None)


class ReturnService(ExchangeSteps):
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
        """Returns in ``state`` (any if None; ``"received"``: waiting for inspection),
        oldest first, ``limit`` (1 to 1000) at a time."""
        if state is not None and state not in RETURN_LIFECYCLE.states:
            raise InvalidField(
                f"must be one of {', '.join(RETURN_LIFECYCLE.states)}", field="state", value=state
            )
        with self._uow() as uow:
            return uow.returns.list(state=state, limit=limit, offset=offset)

    def returnable(self, order_id: str) -> dict[str, int]:
        """Units per line the customer can ask to return now: delivered, less those that
        other returns take, for lines whose return window is still open."""
        check_text(order_id, field="order_id", limit=MAX_ID_LENGTH)
        now = self._clock.now()
        with self._uow() as uow:
            uow.orders.get(order_id)
            shipments = uow.shipments.for_order(order_id)
            left = _returnable(shipments, uow.returns.for_order(order_id))
        return {
            line_id: count
            for line_id, count in left.items()
            if count > 0 and self._window_closes(shipments, line_id, now) is None
        }

    def quote_refund(self, return_id: str, *, refund_shipping: bool = False) -> RefundQuote:
        """What refunding this return would come to now (see :class:`RefundQuote`); with
        ``refund_shipping``, the order's shipping charge too (once per order). Once a
        refund is decided, its quote is the decided one."""
        with self._uow() as uow:
            request = uow.returns.get(return_id)
            if request.resolution == "refund" and request.amount_due is not None:
                assert request.restocking_fee is not None
                assert request.shipping_refund is not None
                items = request.amount_due + request.restocking_fee - request.shipping_refund
                fee, shipping = request.restocking_fee, request.shipping_refund
                return RefundQuote(items, fee, shipping, request.amount_due)
            return self._quote(uow, request, refund_shipping=refund_shipping)

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
            if order.state in _CLOSED_ORDERS:
                raise ReturnError(f"order {order.id} is {order.state!r}: it takes no returns")
            for index, line in enumerate(lines):
                if not isinstance(line, ReturnLine):
                    raise InvalidField("must be a ReturnLine", field=f"lines[{index}]", value=line)
                order.line(line.line_id)  # an unknown line is named as such
            shipments = uow.shipments.for_order(order_id)
            for line in lines:
                closed = self._window_closes(shipments, line.line_id, now)
                if closed is not None:
                    raise ReturnError(
                        f"order {order.id} line {line.line_id}: the return window closed "
                        f"on {closed.date().isoformat()}"
                    )
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

    def submit(self, command: RequestReturn) -> ReturnRequest:
        """:meth:`request` from a :class:`~orderkit.service.commands.RequestReturn`
        (a web form's JSON through ``RequestReturn.from_json``)."""
        if not isinstance(command, RequestReturn):
            raise InvalidField("must be a RequestReturn command", field="command", value=command)
        return self.request(command.order_id, command.lines)

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
        """Record what became of each received unit. ``None``: units returned as damaged
        or defective are written off, all others restocked. Restocked units go back on
        hand (through the inventory ledger, in the same transaction) at ``location``, or
        by default where their line shipped from; written-off units do not."""
        if results is not None and (
            isinstance(results, (str, bytes)) or not isinstance(results, Sequence)
        ):
            raise InvalidField("must be a list of Inspection", field="results", value=results)

        def change(request: ReturnRequest, now: datetime, uow: UnitOfWork) -> None:
            found = list(results) if results is not None else _default_inspection(request)
            shipments = uow.shipments.for_order(request.order_id)
            placed = [
                evolve(r, location=location or r.location or _shipped_from(shipments, r.line_id))
                if isinstance(r, Inspection) and r.restock
                else r
                for r in found
            ]
            request.inspect(placed, now)
            if not self._settings.track_stock:
                return
            order = uow.orders.get(request.order_id)
            for result in request.inspections:
                if result.restock and result.location is not None:
                    sku = order.line(result.line_id).sku
                    uow.stock.stage(
                        Restock(
                            sku,
                            result.location,
                            result.restock,
                            order.id,
                            result.line_id,
                            now,
                            "returned",  # the movement names the order and line
                        )
                    )

        return self._change(return_id, change)

    def refund(self, return_id: str, *, refund_shipping: bool = False) -> ReturnRequest:
        """Settle an inspected return by a refund, and close it: the received units'
        share of what was paid (tax and discount included, split by largest remainder
        so that every refund of a line adds up to the line), less the restocking fee
        where it applies, plus the shipping charge with ``refund_shipping`` (once per
        order).

        The amount due is fixed on the return first; the gateway then pays it back
        from the order's captures, and the return records what was paid. Raises
        :class:`~orderkit.errors.ReturnError` while the order's payment is still
        authorized but not captured (capture or void it first). Safe to repeat after a
        failure, or at the same time: it resumes, pays once, and returns the refunded
        return. ``refund_shipping`` counts only the first time (the decided amount
        stays)."""
        check_text(return_id, field="return_id", limit=MAX_ID_LENGTH)

        def decide(uow: UnitOfWork, now: datetime) -> ReturnRequest:
            request = uow.returns.get(return_id)
            if request.state in SETTLED or request.resolution == "refund":
                return request
            order = uow.orders.get(request.order_id)
            quote = self._quote(uow, request, refund_shipping=refund_shipping)
            self._check_paid(order, quote.due)
            request.decide_refund(quote.due, quote.restocking_fee, quote.shipping)
            uow.orders.save(order)  # serialises the decisions of one order's returns
            uow.returns.save(request)
            return request

        decided = self._run(decide)
        if decided.state != _R.INSPECTED.value:
            return decided
        assert decided.amount_due is not None
        paid = self._pay_back(decided.order_id, decided.amount_due, ("return", return_id))

        def settle(request: ReturnRequest, now: datetime) -> None:
            request.mark_refunded(paid, now)
            request.close(now)

        return self._settle(return_id, settle)

    def close(self, return_id: str) -> ReturnRequest:
        """Close an exchanged return whose exchange order was delivered or completed (this
        happens by itself when the order arrives; refunds close themselves). Raises
        :class:`~orderkit.errors.ReturnError` while the exchange order is on its way."""

        def change(request: ReturnRequest, now: datetime, uow: UnitOfWork) -> None:
            if request.state == _R.EXCHANGED.value and request.exchange_order_id is not None:
                state = uow.orders.get(request.exchange_order_id).state
                if state not in ("delivered", "completed"):
                    raise ReturnError(
                        f"return {request.id}'s exchange order {request.exchange_order_id} is "
                        f"{state!r}: the return closes when it arrives"
                    )
            request.close(now)

        return self._change(return_id, change)

    # -- internals --------------------------------------------------------------------------------

    def _window_closes(
        self, shipments: Sequence[Shipment], line_id: str, now: datetime
    ) -> datetime | None:
        """When the return window of ``line_id`` closed, if it has (None while open)."""
        arrived = _arrived_at(shipments, line_id)
        if arrived is None:
            return None
        closes = arrived + self._settings.return_window
        no_returns = not self._settings.return_window
        return closes if now > closes or no_returns else None

    def _check_paid(self, order: Order, due: Money) -> None:
        """Refuse to refund from a payment still authorized but not captured enough:
        the money is not taken yet, and the refund would come to nothing."""
        if self._payments.gateway is None:
            return
        payments = self._payments.for_order(order.id)
        if payments and payments[-1].state in OPEN_STATES and payments[-1].free_to_refund < due:
            raise ReturnError(
                f"order {order.id}'s payment is authorized but not captured yet; capture "
                "it (or void what will not be captured) before refunding the return"
            )

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


def _default_inspection(request: ReturnRequest) -> list[Inspection]:
    reasons = {line.line_id: line.reason for line in request.lines}
    return [
        Inspection(line_id, 0, count) if reasons[line_id] in _BROKEN else Inspection(line_id, count)
        for line_id, count in sorted(request.received_units().items())
    ]
