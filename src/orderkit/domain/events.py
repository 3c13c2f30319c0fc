"""Domain events: immutable facts, named in the past tense.

Aggregates append events to ``pending_events`` when they change; the unit of
work collects them on commit and the dispatcher hands them to subscribers.
"""

from __future__ import annotations

from datetime import date, datetime

from attrs import frozen

from orderkit.money import Money

__all__ = [
    "DomainEvent",
    "OrderAcknowledged",
    "OrderCancelled",
    "OrderCompleted",
    "OrderDelivered",
    "OrderEvent",
    "OrderFulfilmentStarted",
    "OrderHoldPlaced",
    "OrderHoldReleased",
    "OrderPlaced",
    "OrderShipped",
    "OrderTransitioned",
    "PaymentAuthorized",
    "PaymentCaptured",
    "PaymentEvent",
    "PaymentFailed",
    "PaymentRefunded",
    "PaymentVoided",
]


@frozen
class DomainEvent:
    """Base class of every event: when it happened."""

    occurred_at: datetime


def aggregate_of(event: DomainEvent) -> str:
    """The id of the aggregate an event is about ("" if none): its events stay in order."""
    return str(getattr(event, "order_id", ""))


@frozen
class OrderEvent(DomainEvent):
    """An event about one order."""

    order_id: str


@frozen
class OrderPlaced(OrderEvent):
    """An order was accepted."""

    customer_id: str
    total: Money


@frozen
class OrderAcknowledged(OrderEvent):
    """The order was confirmed to the customer with a promised delivery date."""

    promised_delivery: date


@frozen
class OrderHoldPlaced(OrderEvent):
    """A hold now keeps the order from fulfilment."""

    reason: str


@frozen
class OrderHoldReleased(OrderEvent):
    """A hold was lifted."""

    reason: str


@frozen
class OrderCancelled(OrderEvent):
    """The order was cancelled before anything shipped."""

    reason: str
    previous_state: str


@frozen
class OrderFulfilmentStarted(OrderEvent):
    """Fulfilment began: the order can no longer be held."""


@frozen
class OrderShipped(OrderEvent):
    """Everything on the order has left the warehouse."""


@frozen
class OrderDelivered(OrderEvent):
    """The carrier confirmed delivery."""


@frozen
class OrderCompleted(OrderEvent):
    """The order is closed."""


@frozen
class OrderTransitioned(OrderEvent):
    """A trigger of an extended lifecycle (one with no event class of its own) fired."""

    trigger: str
    source: str
    dest: str


@frozen
class PaymentEvent(OrderEvent):
    """An event about one payment of an order (kept in order with the order's events)."""

    payment_id: str


@frozen
class PaymentAuthorized(PaymentEvent):
    """The gateway authorized ``amount``: it is held on the customer's payment method."""

    amount: Money
    authorization_id: str


@frozen
class PaymentFailed(PaymentEvent):
    """The authorization was declined; nothing is held."""

    reason: str


@frozen
class PaymentCaptured(PaymentEvent):
    """``amount`` of the authorization was captured (charged)."""

    capture_id: str
    amount: Money
    reference: str


@frozen
class PaymentVoided(PaymentEvent):
    """The uncaptured rest of the authorization, ``amount``, was released."""

    amount: Money


@frozen
class PaymentRefunded(PaymentEvent):
    """``amount`` of a capture was paid back to the customer."""

    refund_id: str
    capture_id: str
    amount: Money
    reference: str
