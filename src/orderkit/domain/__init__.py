"""The domain: aggregates, value objects, lifecycles, events and errors. No I/O."""

from orderkit.domain.calendar import BusinessCalendar, DeliveryPromise
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
    OrderPlaced,
    OrderShipped,
    OrderTransitioned,
)
from orderkit.domain.lifecycle import Lifecycle, LifecycleDefinition, TransitionSpec
from orderkit.domain.order import ORDER_LIFECYCLE, Order, OrderState, OrderTotals
from orderkit.domain.values import (
    Address,
    ContactChannel,
    Customer,
    Hold,
    HoldReason,
    LineItem,
    SalesChannel,
)

__all__ = [
    "ORDER_LIFECYCLE",
    "Address",
    "BusinessCalendar",
    "ContactChannel",
    "Customer",
    "DeliveryPromise",
    "DomainEvent",
    "Hold",
    "HoldReason",
    "Lifecycle",
    "LifecycleDefinition",
    "LineItem",
    "Order",
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
    "OrderState",
    "OrderTotals",
    "OrderTransitioned",
    "SalesChannel",
    "TransitionSpec",
]
