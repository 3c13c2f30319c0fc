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
    "OrderLinesCancelled",
    "OrderPlaced",
    "OrderShipped",
    "OrderTransitioned",
    "PaymentAuthorized",
    "PaymentCaptured",
    "PaymentEvent",
    "PaymentFailed",
    "PaymentRefunded",
    "PaymentVoided",
    "ShipmentCancelled",
    "ShipmentClaimResolved",
    "ShipmentCreated",
    "ShipmentDelivered",
    "ShipmentDeliveryFailed",
    "ShipmentEtaChanged",
    "ShipmentEvent",
    "ShipmentHandedOver",
    "ShipmentLabelled",
    "ShipmentLost",
    "ShipmentOutForDelivery",
    "ShipmentPacked",
    "ShipmentPicked",
    "ShipmentReturnedToSender",
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


@frozen
class OrderLinesCancelled(OrderEvent):
    """Lines were cancelled before they shipped (short shipping); their stock was released."""

    line_ids: tuple[str, ...]
    reason: str


@frozen
class ShipmentEvent(OrderEvent):
    """An event about one shipment of an order (kept in order with the order's events)."""

    shipment_id: str


@frozen
class ShipmentCreated(ShipmentEvent):
    """Fulfilment allocated units of the order to a shipment from ``location``."""

    location: str
    units: tuple[tuple[str, int], ...]


@frozen
class ShipmentPicked(ShipmentEvent):
    """The units were taken from their bins."""


@frozen
class ShipmentPacked(ShipmentEvent):
    """The units were packed into ``parcels`` boxes."""

    parcels: int


@frozen
class ShipmentLabelled(ShipmentEvent):
    """A label was bought."""

    carrier: str
    service: str
    tracking_number: str


@frozen
class ShipmentHandedOver(ShipmentEvent):
    """The carrier took the parcels: the units left on hand."""

    tracking_number: str
    eta: date | None


@frozen
class ShipmentOutForDelivery(ShipmentEvent):
    """The parcels are on the van today."""


@frozen
class ShipmentDelivered(ShipmentEvent):
    """The carrier confirmed delivery."""


@frozen
class ShipmentDeliveryFailed(ShipmentEvent):
    """A delivery attempt failed (the carrier will try again or return it)."""

    reason: str


@frozen
class ShipmentLost(ShipmentEvent):
    """The carrier lost the parcels."""


@frozen
class ShipmentReturnedToSender(ShipmentEvent):
    """The carrier is bringing the parcels back."""


@frozen
class ShipmentCancelled(ShipmentEvent):
    """The shipment was cancelled before hand-over."""

    reason: str
    tracking_number: str | None


@frozen
class ShipmentEtaChanged(ShipmentEvent):
    """The carrier's expected delivery date changed."""

    eta: date | None


@frozen
class ShipmentClaimResolved(ShipmentEvent):
    """A lost, returned or damaged shipment was settled by a reship or a refund."""

    resolution: str
    replacement_id: str | None
