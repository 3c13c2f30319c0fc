"""The Order aggregate and its default lifecycle.

An order changes only through its methods. Each method checks its rules first,
raises a typed error and leaves the order untouched on failure, and otherwise
changes the order and appends a domain event to ``pending_events``. Methods
take the current time as an argument: the domain never reads a clock.

``version`` counts committed changes; the repository raises it by one on
every successful save and refuses a save from a stale version.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal, localcontext
from enum import Enum

from attrs import define, field, frozen, setters

from orderkit.domain.events import (
    DomainEvent,
    OrderAcknowledged,
    OrderCancelled,
    OrderCompleted,
    OrderDelivered,
    OrderEvent,
    OrderFulfilmentStarted,
    OrderHoldPlaced,
    OrderHoldReleased,
    OrderLinesCancelled,
    OrderPlaced,
    OrderShipped,
    OrderTransitioned,
)
from orderkit.domain.lifecycle import Lifecycle, LifecycleDefinition, TransitionSpec
from orderkit.domain.values import (
    MAX_ID_LENGTH,
    MAX_LINES,
    MAX_NOTE_LENGTH,
    Address,
    Customer,
    Hold,
    LineItem,
    SalesChannel,
    check_payment_token,
    check_text,
    text,
)
from orderkit.errors import (
    CurrencyMismatch,
    DuplicateLineId,
    HoldError,
    InvalidField,
    InvalidTransition,
    TooManyLines,
)
from orderkit.money import EXACT_CONTEXT, Money, minor_unit

__all__ = [
    "ORDER_LIFECYCLE",
    "Order",
    "OrderState",
    "OrderTotals",
    "check_order_lines",
    "no_holds",
]


class OrderState(str, Enum):
    """The states of the default order lifecycle. ``Order.state`` holds the plain value."""

    PLACED = "placed"
    ACKNOWLEDGED = "acknowledged"
    FULFILLING = "fulfilling"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


def no_holds(order: Order) -> bool:
    """no holds"""
    return not order.holds


_S = OrderState
ORDER_LIFECYCLE = LifecycleDefinition(
    aggregate="order",
    states=[state.value for state in OrderState],
    initial=_S.PLACED.value,
    final=[_S.COMPLETED.value, _S.CANCELLED.value],
    transitions=[
        TransitionSpec("acknowledge", [_S.PLACED.value], _S.ACKNOWLEDGED.value),
        TransitionSpec(
            "start_fulfilment", [_S.ACKNOWLEDGED.value], _S.FULFILLING.value, guards=[no_holds]
        ),
        TransitionSpec("mark_shipped", [_S.FULFILLING.value], _S.SHIPPED.value),
        TransitionSpec("mark_delivered", [_S.SHIPPED.value], _S.DELIVERED.value),
        TransitionSpec("complete", [_S.DELIVERED.value], _S.COMPLETED.value),
        TransitionSpec(
            "cancel",
            [_S.PLACED.value, _S.ACKNOWLEDGED.value, _S.FULFILLING.value],
            _S.CANCELLED.value,
        ),
    ],
)
"""The default order graph. Extend it with :meth:`LifecycleDefinition.extend`."""

_DEFAULT = ORDER_LIFECYCLE.build()
_NEEDS_ARGUMENTS = frozenset({"acknowledge", "cancel"})
_SIMPLE_EVENTS: dict[str, type[OrderEvent]] = {
    "start_fulfilment": OrderFulfilmentStarted,
    "mark_shipped": OrderShipped,
    "mark_delivered": OrderDelivered,
    "complete": OrderCompleted,
}


@frozen
class OrderTotals:
    """An order's money, derived from its lines and shipping charge (never stored)."""

    subtotal: Money
    discount: Money
    tax: Money
    shipping: Money
    total: Money


def check_order_lines(lines: Sequence[LineItem], currency: str, shipping: Money) -> None:
    """Check the rules that span an order's lines; raise a typed error on the first break.

    There must be 1 to :data:`MAX_LINES` lines with distinct line ids, and every
    amount (prices, discounts, taxes, shipping) must be in ``currency``.
    """
    minor_unit(currency)
    if not lines:
        raise InvalidField("an order needs at least one line", field="lines", value=[])
    if len(lines) > MAX_LINES:
        raise TooManyLines(
            f"{len(lines)} lines; the limit is {MAX_LINES}", field="lines", value=len(lines)
        )
    seen: set[str] = set()
    for index, line in enumerate(lines):
        if not isinstance(line, LineItem):
            raise InvalidField("must be a LineItem", field=f"lines[{index}]", value=line)
        if line.line_id in seen:
            raise DuplicateLineId(
                "appears more than once", field=f"lines[{index}].line_id", value=line.line_id
            )
        seen.add(line.line_id)
        if line.unit_price.currency != currency:
            raise CurrencyMismatch(
                f"is in {line.unit_price.currency} but the order is in {currency}",
                field=f"lines[{index}].unit_price",
                value=line.unit_price.currency,
            )
    if not isinstance(shipping, Money) or shipping.is_negative():
        raise InvalidField("must be Money, not negative", field="shipping_charge", value=shipping)
    if shipping.currency != currency:
        raise CurrencyMismatch(
            f"is in {shipping.currency} but the order is in {currency}",
            field="shipping_charge",
            value=shipping.currency,
        )


def _lines(value: Iterable[LineItem]) -> tuple[LineItem, ...]:
    return tuple(value)


def _holds(value: Iterable[Hold]) -> tuple[Hold, ...]:
    return tuple(value)


# Methods assign only values they have checked, so plain attribute writes are enough
# (and cheaper than attrs' validate-on-setattr hook, which transitions would also pay).
@define(eq=False, on_setattr=setters.NO_OP)
class Order:
    """A customer's order. Identity is the ``id``; build new ones with :meth:`place`."""

    id: str = field(validator=text(MAX_ID_LENGTH))
    customer: Customer
    shipping_address: Address
    channel: SalesChannel = field(converter=SalesChannel)
    currency: str
    lines: tuple[LineItem, ...] = field(converter=_lines)
    shipping_charge: Money
    payment_token: str = field(repr=False)
    placed_at: datetime
    state: str = OrderState.PLACED.value
    holds: tuple[Hold, ...] = field(default=(), converter=_holds)
    promised_delivery: date | None = None
    cancellation_reason: str | None = None
    cancelled_lines: tuple[str, ...] = field(default=(), converter=tuple)
    idempotency_key: str | None = None
    request_fingerprint: str | None = field(default=None, repr=False)
    exchange_for: str | None = None
    billing_address: Address | None = field(default=None, repr=False)
    version: int = 0
    pending_events: list[DomainEvent] = field(factory=list, repr=False)

    @classmethod
    def place(
        cls,
        *,
        order_id: str,
        customer: Customer,
        shipping_address: Address,
        channel: SalesChannel,
        currency: str,
        lines: Sequence[LineItem],
        shipping_charge: Money,
        payment_token: str,
        placed_at: datetime,
        idempotency_key: str | None = None,
        request_fingerprint: str | None = None,
        exchange_for: str | None = None,
        billing_address: Address | None = None,
    ) -> Order:
        """Create a placed order after checking its lines and payment token;
        ``exchange_for`` is the return an exchange order settles; ``billing_address`` the
        payer's address when it differs from the shipping address.

        Appends :class:`OrderPlaced`. Raises :class:`CardNumberRejected` when the
        token is a card number.
        """
        check_order_lines(lines, currency, shipping_charge)
        check_payment_token(payment_token)
        order = cls(
            id=order_id,
            customer=customer,
            shipping_address=shipping_address,
            channel=channel,
            currency=currency,
            lines=tuple(lines),
            shipping_charge=shipping_charge,
            payment_token=payment_token,
            placed_at=placed_at,
            idempotency_key=idempotency_key,
            request_fingerprint=request_fingerprint,
            exchange_for=exchange_for,
            billing_address=billing_address,
        )
        order.pending_events.append(
            OrderPlaced(placed_at, order.id, customer.id, order.totals.total)
        )
        return order

    @property
    def totals(self) -> OrderTotals:
        """Subtotal, discount, tax, shipping and total, computed from the lines."""
        # Amounts of one currency are quantized to its minor unit, so Decimal sums and
        # integer multiples are exact; one Money per figure instead of one per addition.
        with localcontext(EXACT_CONTEXT):
            subtotal = discount = tax = Decimal(0)
            for line in self.lines:
                subtotal += line.unit_price.amount * line.quantity
                discount += line.discount.amount
                tax += line.tax.amount
            total = subtotal - discount + tax + self.shipping_charge.amount
        trusted = Money._trusted
        currency = self.currency
        return OrderTotals(
            trusted(subtotal, currency),
            trusted(discount, currency),
            trusted(tax, currency),
            self.shipping_charge,
            trusted(total, currency),
        )

    @property
    def is_on_hold(self) -> bool:
        """True while at least one hold is in place."""
        return bool(self.holds)

    def line(self, line_id: str) -> LineItem:
        """The line with ``line_id``; raises :class:`InvalidField` if there is none."""
        for line in self.lines:
            if line.line_id == line_id:
                return line
        raise InvalidField(f"order {self.id} has no such line", field="line_id", value=line_id)

    @property
    def open_lines(self) -> tuple[LineItem, ...]:
        """The lines not cancelled."""
        return tuple(line for line in self.lines if line.line_id not in self.cancelled_lines)

    def cancel_lines(
        self, line_ids: Sequence[str], reason: str, at: datetime, lifecycle: Lifecycle = _DEFAULT
    ) -> None:
        """Cancel whole lines before they ship (short shipping); at least one line stays.

        Raises :class:`InvalidField` for an unknown or already cancelled line, or for
        cancelling every open line (cancel the order instead), and
        :class:`~orderkit.errors.InvalidTransition` where the order cannot be cancelled.
        """
        check_text(reason, field="reason", limit=MAX_NOTE_LENGTH)
        wanted = tuple(dict.fromkeys(line_ids))
        if not wanted:
            raise InvalidField("name at least one line", field="line_ids", value=[])
        for line_id in wanted:
            self.line(line_id)
            if line_id in self.cancelled_lines:
                raise InvalidField("is already cancelled", field="line_ids", value=line_id)
        if len(wanted) >= len(self.open_lines):
            raise InvalidField(
                "would cancel every line; cancel the order instead", field="line_ids", value=wanted
            )
        if not lifecycle.can_fire(self, "cancel"):
            raise InvalidTransition("order", self.id, self.state, "cancel_lines")
        self.cancelled_lines = (*self.cancelled_lines, *wanted)
        self.pending_events.append(OrderLinesCancelled(at, self.id, wanted, reason))

    def _fire(self, lifecycle: Lifecycle, trigger: str, event: DomainEvent) -> None:
        lifecycle.fire(self, trigger)
        self.pending_events.append(event)

    def acknowledge(
        self, promised_delivery: date, at: datetime, lifecycle: Lifecycle = _DEFAULT
    ) -> None:
        """Confirm the order to the customer with a promised delivery date."""
        # The promise is a date in the shop's time zone, which may be a day behind UTC.
        earliest = self.placed_at.date() - timedelta(days=1)
        if not isinstance(promised_delivery, date) or promised_delivery < earliest:
            raise InvalidField(
                "must be a date on or after the order date",
                field="promised_delivery",
                value=promised_delivery,
            )
        self._fire(lifecycle, "acknowledge", OrderAcknowledged(at, self.id, promised_delivery))
        self.promised_delivery = promised_delivery

    def start_fulfilment(self, at: datetime, lifecycle: Lifecycle = _DEFAULT) -> None:
        """Begin fulfilment; blocked while the order is on hold."""
        self.fire("start_fulfilment", at, lifecycle)

    def mark_shipped(self, at: datetime, lifecycle: Lifecycle = _DEFAULT) -> None:
        """Record that everything on the order has shipped."""
        self.fire("mark_shipped", at, lifecycle)

    def mark_delivered(self, at: datetime, lifecycle: Lifecycle = _DEFAULT) -> None:
        """Record delivery."""
        self.fire("mark_delivered", at, lifecycle)

    def complete(self, at: datetime, lifecycle: Lifecycle = _DEFAULT) -> None:
        """Close a delivered order."""
        self.fire("complete", at, lifecycle)

    def cancel(self, reason: str, at: datetime, lifecycle: Lifecycle = _DEFAULT) -> None:
        """Cancel before anything has shipped; the reason is recorded on the order."""
        check_text(reason, field="reason", limit=MAX_NOTE_LENGTH)
        previous = self.state
        self._fire(lifecycle, "cancel", OrderCancelled(at, self.id, reason, previous))
        self.cancellation_reason = reason

    def fire(self, trigger: str, at: datetime, lifecycle: Lifecycle = _DEFAULT) -> None:
        """Fire a trigger that needs no arguments, including those an extended lifecycle adds.

        The default triggers append their own event (``mark_shipped`` appends
        :class:`OrderShipped`); others append :class:`OrderTransitioned`.
        ``acknowledge`` and ``cancel`` need arguments: call those methods instead.
        """
        if trigger in _NEEDS_ARGUMENTS:
            raise InvalidField(
                f"needs arguments; call order.{trigger}(...) instead",
                field="trigger",
                value=trigger,
            )
        source = self.state
        lifecycle.fire(self, trigger)
        event_class = _SIMPLE_EVENTS.get(trigger)
        if event_class is not None:
            self.pending_events.append(event_class(at, self.id))
        else:
            self.pending_events.append(OrderTransitioned(at, self.id, trigger, source, self.state))

    def hold(
        self, reason: str, at: datetime, note: str = "", lifecycle: Lifecycle = _DEFAULT
    ) -> None:
        """Put the order on hold for ``reason`` (one hold per reason).

        Raises :class:`HoldError` when the order is already held for that reason,
        or when it is past the point where a hold can stop anything (final, or
        fulfilment has started: no ``start_fulfilment`` lies ahead).
        """
        check_text(reason, field="reason", limit=MAX_ID_LENGTH)
        check_text(note, field="note", limit=MAX_NOTE_LENGTH, required=False)
        if not lifecycle.leads_to(self.state, "start_fulfilment"):
            raise HoldError(f"order {self.id} is {self.state!r}: it can no longer be held")
        if any(hold.reason == reason for hold in self.holds):
            raise HoldError(f"order {self.id} is already on hold for {reason!r}")
        self.holds = (*self.holds, Hold(reason, at, note))
        self.pending_events.append(OrderHoldPlaced(at, self.id, reason))

    def release(self, reason: str, at: datetime) -> None:
        """Lift the hold placed for ``reason``; raises :class:`HoldError` if there is none."""
        remaining = tuple(hold for hold in self.holds if hold.reason != reason)
        if len(remaining) == len(self.holds):
            raise HoldError(f"order {self.id} has no hold for {reason!r}")
        self.holds = remaining
        self.pending_events.append(OrderHoldReleased(at, self.id, reason))
