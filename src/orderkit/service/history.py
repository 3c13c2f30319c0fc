"""An order's history: every event of the order, its payments, shipments, returns and
inquiries, in the order they were committed, each with a sentence a support agent reads."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from attrs import fields, frozen

from orderkit.domain import events as ev
from orderkit.domain import return_events as rev
from orderkit.ports import Outbox

__all__ = ["HistoryEntry", "describe_event", "order_history"]


@frozen
class HistoryEntry:
    """One thing that happened to an order: when, what kind (the event's class name),
    a readable ``summary``, and the event itself (typed) for anything more."""

    seq: int
    at: datetime
    kind: str
    summary: str
    event: ev.DomainEvent


def _units(pairs: tuple[tuple[str, int], ...]) -> str:
    return ", ".join(f"{count} x {line_id}" for line_id, count in pairs) or "nothing"


_SUMMARIES: dict[type[Any], Callable[[Any], str]] = {
    ev.OrderPlaced: lambda e: f"Order placed by customer {e.customer_id}, total {e.total}",
    ev.OrderAcknowledged: lambda e: f"Order confirmed; delivery promised by {e.promised_delivery}",
    ev.OrderHoldPlaced: lambda e: f"Put on hold: {e.reason}",
    ev.OrderHoldReleased: lambda e: f"Hold released: {e.reason}",
    ev.OrderCancelled: lambda e: f"Order cancelled ({e.reason})",
    ev.OrderFulfilmentStarted: lambda e: "Fulfilment started",
    ev.OrderShipped: lambda e: "Everything has shipped",
    ev.OrderDelivered: lambda e: "Everything was delivered",
    ev.OrderCompleted: lambda e: "Order completed",
    ev.OrderTransitioned: lambda e: f"{e.trigger}: {e.source} -> {e.dest}",
    ev.OrderLinesCancelled: lambda e: f"Lines {', '.join(e.line_ids)} cancelled ({e.reason})",
    ev.PaymentAuthorized: lambda e: f"Payment {e.payment_id}: {e.amount} authorized",
    ev.PaymentFailed: lambda e: f"Payment {e.payment_id} failed: {e.reason}",
    ev.PaymentCaptured: lambda e: f"Payment {e.payment_id}: {e.amount} captured",
    ev.PaymentVoided: lambda e: f"Payment {e.payment_id}: {e.amount} released (voided)",
    ev.PaymentRefunded: lambda e: f"Payment {e.payment_id}: {e.amount} refunded",
    ev.ShipmentCreated: lambda e: f"Shipment {e.shipment_id} from {e.location}: {_units(e.units)}",
    ev.ShipmentPicked: lambda e: f"Shipment {e.shipment_id} picked",
    ev.ShipmentPacked: lambda e: f"Shipment {e.shipment_id} packed in {e.parcels} parcel(s)",
    ev.ShipmentLabelled: lambda e: (
        f"Shipment {e.shipment_id}: {e.carrier} {e.service} label, tracking {e.tracking_number}"
    ),
    ev.ShipmentHandedOver: lambda e: (
        f"Shipment {e.shipment_id} handed to the carrier (expected {e.eta or 'unknown'})"
    ),
    ev.ShipmentOutForDelivery: lambda e: f"Shipment {e.shipment_id} out for delivery",
    ev.ShipmentDelivered: lambda e: f"Shipment {e.shipment_id} delivered",
    ev.ShipmentDeliveryFailed: lambda e: f"Shipment {e.shipment_id} not delivered: {e.reason}",
    ev.ShipmentLost: lambda e: f"Shipment {e.shipment_id} lost by the carrier",
    ev.ShipmentReturnedToSender: lambda e: f"Shipment {e.shipment_id} returned to sender",
    ev.ShipmentCancelled: lambda e: f"Shipment {e.shipment_id} cancelled ({e.reason})",
    ev.ShipmentEtaChanged: lambda e: f"Shipment {e.shipment_id}: expected {e.eta}",
    ev.ShipmentClaimResolved: lambda e: (
        f"Shipment {e.shipment_id}: claim settled by {e.resolution}"
    ),
    rev.ReturnRequested: lambda e: (
        f"Return {e.return_id} requested: "
        + ", ".join(f"{count} x {line} ({reason})" for line, count, reason in e.lines)
    ),
    rev.ReturnApproved: lambda e: f"Return {e.return_id} approved",
    rev.ReturnRejected: lambda e: f"Return {e.return_id} rejected: {e.reason}",
    rev.ReturnCancelled: lambda e: f"Return {e.return_id} cancelled ({e.reason})",
    rev.ReturnReceived: lambda e: f"Return {e.return_id} received: {_units(e.units)}",
    rev.ReturnInspected: lambda e: (
        f"Return {e.return_id} inspected: restocked {_units(e.restocked)}; "
        f"written off {_units(e.written_off)}"
    ),
    rev.ReturnRefunded: lambda e: f"Return {e.return_id} refunded: {e.due} due, {e.paid} paid",
    rev.ReturnExchanged: lambda e: (
        f"Return {e.return_id} exchanged for order {e.exchange_order_id} "
        f"(charged {e.charged}, refunded {e.refunded})"
    ),
    rev.ReturnClosed: lambda e: f"Return {e.return_id} closed",
    rev.InquiryOpened: lambda e: f"Customer {e.kind} {e.inquiry_id}: {e.subject}",
    rev.InquiryAnswered: lambda e: f"Inquiry {e.inquiry_id} answered by {e.author}",
    rev.InquiryCustomerReplied: lambda e: f"Inquiry {e.inquiry_id}: the customer wrote again",
    rev.InquiryResolved: lambda e: f"Inquiry {e.inquiry_id} resolved: {e.resolution}",
}


def describe_event(event: ev.DomainEvent) -> str:
    """One sentence about ``event``: orderkit's own events have their own wording; any
    other (your own event classes) reads as its class name and fields."""
    for cls in type(event).__mro__:
        summary = _SUMMARIES.get(cls)
        if summary is not None:
            return summary(event)
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", type(event).__name__).capitalize()
    details = ", ".join(
        f"{a.name}={getattr(event, a.name)}"
        for a in fields(type(event))
        if a.name not in ("occurred_at", "order_id")
    )
    return f"{words} ({details})" if details else words


def order_history(outbox: Outbox, order_id: str) -> tuple[HistoryEntry, ...]:
    """The order's timeline from its committed events, in commit order."""
    return tuple(
        HistoryEntry(
            record.seq,
            record.event.occurred_at,
            type(record.event).__name__,
            describe_event(record.event),
            record.event,
        )
        for record in outbox.history(order_id)
    )
