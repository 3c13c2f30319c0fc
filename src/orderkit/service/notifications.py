"""Customer notifications: the templates, and the handlers that send them after commit."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date
from typing import Any

from orderkit.domain.events import (
    DomainEvent,
    OrderAcknowledged,
    OrderCancelled,
    OrderLinesCancelled,
    ShipmentDelivered,
    ShipmentDeliveryFailed,
    ShipmentEvent,
    ShipmentHandedOver,
    ShipmentLost,
    ShipmentOutForDelivery,
    ShipmentReturnedToSender,
)
from orderkit.domain.order import Order, OrderState
from orderkit.domain.return_events import (
    InquiryAnswered,
    ReturnApproved,
    ReturnEvent,
    ReturnExchanged,
    ReturnRefunded,
    ReturnRejected,
)
from orderkit.domain.returns import ReturnRequest
from orderkit.domain.shipment import Shipment, expected_delivery
from orderkit.domain.values import ContactChannel
from orderkit.ports import Notification, Notifier, UnitOfWorkFactory
from orderkit.serialization import dumps_event
from orderkit.service.dispatch import current_seq

__all__ = [
    "CancellationNotices",
    "ConfirmationSender",
    "InquiryNotices",
    "LinesCancelledNotices",
    "ReturnNotices",
    "ShipmentNotices",
    "cancellation_notice",
    "customer_message",
    "event_digest",
    "event_key",
    "lines_cancelled_notice",
    "order_confirmation",
    "return_notice",
    "shipment_notice",
]


def _customer_facts(order: Order, shop_name: str) -> dict[str, Any]:
    """What every message template can use: the shop, the customer and the order."""
    return {
        "shop_name": shop_name,
        "customer_name": order.customer.name,
        "order_id": order.id,
        "currency": order.currency,
    }


def order_confirmation(order: Order, shop_name: str) -> Notification:
    """The acknowledgement message, on the customer's preferred channel."""
    promised = order.promised_delivery.isoformat() if order.promised_delivery else "soon"
    totals = order.totals
    facts = _customer_facts(order, shop_name) | {
        "lines": [
            {"name": line.name, "sku": line.sku, "quantity": line.quantity, "total": line.total}
            for line in order.lines
        ],
        "subtotal": totals.subtotal,
        "discount": totals.discount,
        "tax": totals.tax,
        "shipping": order.shipping_charge,
        "total": totals.total,
        "promised_delivery": order.promised_delivery,
    }
    lines = "\n".join(
        f"  {line.quantity} x {line.name} ({line.sku})  {line.total}" for line in order.lines
    )
    text = (
        f"thank you for your order {order.id}.\n\n{lines}\n"
        f"  Shipping  {order.shipping_charge}\n  Total  {totals.total}\n\n"
        f"Expected delivery: {promised}.\n\n{shop_name}"
    )
    sms = f"{shop_name}: order {order.id} confirmed, {totals.total}. Expected delivery {promised}."
    return customer_message(
        order,
        "order_confirmation",
        f"{shop_name}: your order {order.id} is confirmed",
        text,
        order.promised_delivery,
        key=f"order_confirmation:{order.id}",
        facts=facts,
        sms=sms,
    )


class ConfirmationSender:
    """Sends the confirmation when an order is acknowledged (subscribe it to OrderAcknowledged)."""

    def __init__(self, uow: UnitOfWorkFactory, notifier: Notifier, shop_name: str) -> None:
        self._uow = uow
        self._notifier = notifier
        self._shop_name = shop_name

    def __call__(self, event: OrderAcknowledged) -> None:
        with self._uow() as uow:
            order = uow.orders.get(event.order_id)
        if order.state == OrderState.CANCELLED.value:
            return  # cancelled before a worker got here: a "confirmed" message would mislead
        self._notifier.send(order_confirmation(order, self._shop_name))


_NOTICES: dict[type[ShipmentEvent], tuple[str, str]] = {
    ShipmentHandedOver: ("shipped", "is on its way"),
    ShipmentOutForDelivery: ("out_for_delivery", "is out for delivery today"),
    ShipmentDelivered: ("delivered", "was delivered"),
    ShipmentDeliveryFailed: ("delivery_exception", "could not be delivered"),
    ShipmentLost: ("delivery_exception", "was lost by the carrier; we are on it"),
    ShipmentReturnedToSender: ("delivery_exception", "is being returned to us"),
}
"""The shipment events customers hear about: notification kind and what happened."""


def shipment_notice(
    order: Order, shipment: Shipment, event: ShipmentEvent, shop_name: str, eta: date | None
) -> Notification:
    """A message about one of the order's parcels, on the customer's preferred channel:
    what happened, the tracking number and link, and the expected delivery date."""
    kind, happened = _NOTICES[type(event)]
    label = shipment.label
    tracking = f" Tracking: {label.tracking_number}" if label else ""
    link = f" {label.tracking_url}" if label and label.tracking_url else ""
    when = f" Expected delivery: {eta.isoformat()}." if eta and kind != "delivered" else ""
    problem = (
        shipment.problem if isinstance(event, ShipmentDeliveryFailed) and shipment.problem else None
    )
    if order.exchange_for is not None:
        parcel = f"your exchange (return {order.exchange_for})"
        kind = "exchange_shipped" if kind == "shipped" else kind
    else:
        parcel = f"your parcel for order {order.id}"
    facts = _customer_facts(order, shop_name) | {
        "shipment_id": shipment.id,
        "event": type(event).__name__,
        "happened": happened,
        "problem": problem,
        "tracking_number": label.tracking_number if label else None,
        "tracking_url": label.tracking_url if label else None,
        "carrier": label.carrier if label else None,
        "expected_delivery": eta if kind != "delivered" else None,
        "exchange_for": order.exchange_for,
    }
    because = f" ({problem})" if problem else ""
    text = f"{shop_name}: {parcel} {happened}{because}.{tracking}{link}{when}"
    return customer_message(
        order,
        kind,
        f"{shop_name}: {parcel} {happened}",
        text,
        eta,
        key=f"{kind}:{shipment.id}:{event_key(event)}",
        facts=facts,
    )


def event_digest(event: DomainEvent) -> str:
    """A short digest of an event's content: equal for the same event read back from the
    outbox after a crash, so it makes de-duplication keys stable."""
    return hashlib.sha256(dumps_event(event).encode()).hexdigest()[:16]


def event_key(event: DomainEvent) -> str:
    """The part of a de-duplication key that names one committed event: its outbox seq
    (the same on every retry, distinct for two events equal field by field, such as two
    failed deliveries scanned at one instant) and its digest."""
    seq = current_seq()
    digest = event_digest(event)
    return f"{seq}.{digest}" if seq is not None else digest


def customer_message(
    order: Order,
    kind: str,
    subject: str,
    text: str,
    promised: date | None = None,
    *,
    key: str,
    facts: Mapping[str, Any] | None = None,
    sms: str | None = None,
) -> Notification:
    """A message about ``order`` on the customer's preferred channel: an SMS of ``text``
    (or ``sms``) when they prefer SMS and gave a phone number, else an e-mail greeting
    them by name. ``key`` de-duplicates it; ``facts`` are what templates render
    (the shop, customer and order are added)."""
    customer = order.customer
    if customer.preferred_contact is ContactChannel.SMS and customer.phone:
        channel, recipient = ContactChannel.SMS, customer.phone
    else:
        channel, recipient = ContactChannel.EMAIL, customer.email
    shop_name = (facts or {}).get("shop_name", "")
    return Notification(
        order_id=order.id,
        kind=kind,
        channel=channel,
        recipient=recipient,
        subject=subject,
        body=(sms or text)
        if channel is ContactChannel.SMS
        else f"Dear {customer.name},\n\n{text}\n",
        promised_delivery=promised,
        key=key,
        facts=_customer_facts(order, shop_name) | dict(facts or {}) | {"text": text},
        email=customer.email,
        locale=customer.locale,
    )


class ShipmentNotices:
    """Tells the customer when a parcel ships (with tracking), is out for delivery, is
    delivered, or runs into trouble. Subscribe it to the events in ``_NOTICES``."""

    events = tuple(_NOTICES)

    def __init__(self, uow: UnitOfWorkFactory, notifier: Notifier, shop_name: str) -> None:
        self._uow = uow
        self._notifier = notifier
        self._shop_name = shop_name

    def __call__(self, event: ShipmentEvent) -> None:
        with self._uow() as uow:
            order = uow.orders.get(event.order_id)
            shipment = uow.shipments.get(event.shipment_id)
            eta = expected_delivery(order.promised_delivery, uow.shipments.for_order(order.id))
        self._notifier.send(shipment_notice(order, shipment, event, self._shop_name, eta))


def return_notice(
    order: Order, request: ReturnRequest, event: ReturnEvent, shop_name: str
) -> Notification | None:
    """The message a return event sends the customer (None for events they do not hear
    about): approved with the instructions, rejected with the reason, refund issued
    with the amount (also for the credit an exchange leaves over)."""
    about = f"your return {request.id} for order {order.id}"
    facts: dict[str, Any] = {"shop_name": shop_name, "return_id": request.id}
    if isinstance(event, ReturnApproved):
        kind, headline = "return_approved", f"{about} is approved"
        text = f"{shop_name}: {headline}. {event.instructions}"
        facts["instructions"] = event.instructions
    elif isinstance(event, ReturnRejected):
        kind, headline = "return_rejected", f"{about} was not accepted"
        text = f"{shop_name}: {headline}: {event.reason}"
        facts["reason"] = event.reason
    elif isinstance(event, ReturnRefunded) and not event.due.is_zero():
        kind, headline = "refund_issued", f"{event.due} refunded for {about}"
        how = "to your payment method" if not event.paid.is_zero() else "by separate payment"
        text = f"{shop_name}: we are refunding {event.due} {how} for {about}."
        if not event.paid.is_zero() and event.paid != event.due:
            text += f" {event.paid} goes back to your payment method now; we will settle the rest."
        facts |= {"amount": event.due, "paid": event.paid, "exchange_order_id": None}
    elif isinstance(event, ReturnExchanged) and not event.refunded.is_zero():
        kind, headline = "refund_issued", f"{event.refunded} refunded for {about}"
        text = (
            f"{shop_name}: your exchange order {event.exchange_order_id} is placed; the "
            f"{event.refunded} your returned items were worth beyond it goes back to your "
            "payment method."
        )
        facts |= {
            "amount": event.refunded,
            "paid": event.refunded,
            "exchange_order_id": event.exchange_order_id,
        }
    else:
        return None
    return customer_message(
        order,
        kind,
        f"{shop_name}: {headline}",
        text,
        key=f"{kind}:{request.id}:{event_key(event)}",
        facts=facts,
    )


class ReturnNotices:
    """Tells the customer when a return is approved or rejected and when a refund is
    issued. Subscribe it to each of ``ReturnNotices.events``."""

    events = (ReturnApproved, ReturnRejected, ReturnRefunded, ReturnExchanged)

    def __init__(self, uow: UnitOfWorkFactory, notifier: Notifier, shop_name: str) -> None:
        self._uow = uow
        self._notifier = notifier
        self._shop_name = shop_name

    def __call__(self, event: ReturnEvent) -> None:
        with self._uow() as uow:
            order = uow.orders.get(event.order_id)
            request = uow.returns.get(event.return_id)
        notice = return_notice(order, request, event, self._shop_name)
        if notice is not None:
            self._notifier.send(notice)


class InquiryNotices:
    """Sends the customer the shop's answer to their inquiry (subscribe it to
    :class:`InquiryAnswered`)."""

    def __init__(self, uow: UnitOfWorkFactory, notifier: Notifier, shop_name: str) -> None:
        self._uow = uow
        self._notifier = notifier
        self._shop_name = shop_name

    def __call__(self, event: InquiryAnswered) -> None:
        with self._uow() as uow:
            order = uow.orders.get(event.order_id)
            inquiry = uow.inquiries.get(event.inquiry_id)
        answer = inquiry.messages[event.message_index]  # the one this event is about
        subject = f"{self._shop_name}: re: {' '.join(inquiry.subject.split())}"
        text = f"{self._shop_name} about order {order.id} ({inquiry.subject}): {answer.text}"
        facts = {
            "shop_name": self._shop_name,
            "inquiry_id": inquiry.id,
            "inquiry_subject": inquiry.subject,
            "answer": answer.text,
        }
        key = f"inquiry_answered:{inquiry.id}:{event.message_index}"
        self._notifier.send(
            customer_message(order, "inquiry_answered", subject, text, key=key, facts=facts)
        )


def cancellation_notice(order: Order, shop_name: str) -> Notification:
    """The message telling the customer their order was cancelled."""
    what = (
        f"your exchange order {order.id} (return {order.exchange_for})"
        if order.exchange_for
        else f"your order {order.id}"
    )
    text = (
        f"{shop_name}: {what} was cancelled. Anything you paid for it goes back to your "
        "payment method."
    )
    facts = {
        "shop_name": shop_name,
        "exchange_for": order.exchange_for,
        "total": order.totals.total,
    }
    return customer_message(
        order,
        "order_cancelled",
        f"{shop_name}: {what} was cancelled",
        text,
        key=f"order_cancelled:{order.id}",
        facts=facts,
    )


class CancellationNotices:
    """Tells the customer when their order is cancelled (subscribe it to
    :class:`OrderCancelled`)."""

    def __init__(self, uow: UnitOfWorkFactory, notifier: Notifier, shop_name: str) -> None:
        self._uow = uow
        self._notifier = notifier
        self._shop_name = shop_name

    def __call__(self, event: OrderCancelled) -> None:
        with self._uow() as uow:
            order = uow.orders.get(event.order_id)
        self._notifier.send(cancellation_notice(order, self._shop_name))


def lines_cancelled_notice(
    order: Order, event: OrderLinesCancelled, shop_name: str
) -> Notification:
    """The message telling the customer that some items of their order will not ship."""
    items = [line for line in order.lines if line.line_id in event.line_ids]
    names = ", ".join(f"{line.quantity} x {line.name}" for line in items)
    text = (
        f"{shop_name}: we cannot send {names} of your order {order.id} and have cancelled "
        "them. Anything you paid for them goes back to your payment method; the rest of "
        "your order is on its way as planned."
    )
    facts = {
        "shop_name": shop_name,
        "cancelled_lines": [
            {"name": line.name, "sku": line.sku, "quantity": line.quantity, "total": line.total}
            for line in items
        ],
    }
    return customer_message(
        order,
        "lines_cancelled",
        f"{shop_name}: items of your order {order.id} were cancelled",
        text,
        key=f"lines_cancelled:{order.id}:{event_key(event)}",
        facts=facts,
    )


class LinesCancelledNotices:
    """Tells the customer when lines of their order are cancelled before shipping
    (subscribe it to :class:`OrderLinesCancelled`)."""

    def __init__(self, uow: UnitOfWorkFactory, notifier: Notifier, shop_name: str) -> None:
        self._uow = uow
        self._notifier = notifier
        self._shop_name = shop_name

    def __call__(self, event: OrderLinesCancelled) -> None:
        with self._uow() as uow:
            order = uow.orders.get(event.order_id)
        self._notifier.send(lines_cancelled_notice(order, event, self._shop_name))
