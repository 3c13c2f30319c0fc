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
    "InquiryAnswered",
    "InquiryCustomerReplied",
    "InquiryEvent",
    "InquiryOpened",
    "InquiryResolved",
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
    "ReturnApproved",
    "ReturnCancelled",
    "ReturnClosed",
    "ReturnEvent",
    "ReturnExchanged",
    "ReturnInspected",
    "ReturnReceived",
    "ReturnRefunded",
    "ReturnRejected",
    "ReturnRequested",
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


@frozen
class ReturnEvent(OrderEvent):
    """An event about one return request of an order (kept in order with the order's events)."""

    return_id: str


@frozen
class ReturnRequested(ReturnEvent):
    """The customer asked to return units: ``(line id, units, reason)`` per line."""

    lines: tuple[tuple[str, int, str], ...]


@frozen
class ReturnApproved(ReturnEvent):
    """The shop agreed to take the units back; the customer is told how to send them."""

    instructions: str


@frozen
class ReturnRejected(ReturnEvent):
    """The shop refused the return, for ``reason``."""

    reason: str


@frozen
class ReturnCancelled(ReturnEvent):
    """The return was withdrawn before any unit came back."""

    reason: str


@frozen
class ReturnReceived(ReturnEvent):
    """Units arrived at the warehouse: ``(line id, units)`` per line."""

    units: tuple[tuple[str, int], ...]


@frozen
class ReturnInspected(ReturnEvent):
    """Each received unit was put back on hand (``restocked``) or written off."""

    restocked: tuple[tuple[str, int], ...]
    written_off: tuple[tuple[str, int], ...]


@frozen
class ReturnRefunded(ReturnEvent):
    """The return was settled by a refund: ``due`` is what the shop owes, ``paid`` what the
    gateway paid out (less when less was captured; zero without a gateway)."""

    due: Money
    paid: Money


@frozen
class ReturnExchanged(ReturnEvent):
    """The return was settled by an exchange order of other variants; ``charged`` is the
    price difference the customer pays, ``refunded`` the credit paid back."""

    exchange_order_id: str
    charged: Money
    refunded: Money


@frozen
class ReturnClosed(ReturnEvent):
    """Nothing more happens on this return."""


@frozen
class InquiryEvent(OrderEvent):
    """An event about one customer inquiry of an order."""

    inquiry_id: str


@frozen
class InquiryOpened(InquiryEvent):
    """A customer asked a question or complained about the order."""

    kind: str
    subject: str


@frozen
class InquiryAnswered(InquiryEvent):
    """Someone from the shop answered (``author``)."""

    author: str


@frozen
class InquiryCustomerReplied(InquiryEvent):
    """The customer wrote again; the inquiry is open again."""


@frozen
class InquiryResolved(InquiryEvent):
    """The inquiry was settled."""

    resolution: str
