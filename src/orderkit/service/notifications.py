"""Customer notifications: the templates, and the handlers that send them after commit."""

from __future__ import annotations

from datetime import date

from orderkit.domain.events import (
    OrderAcknowledged,
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

__all__ = [
    "ConfirmationSender",
    "InquiryNotices",
    "ReturnNotices",
    "ShipmentNotices",
    "customer_message",
    "order_confirmation",
    "return_notice",
    "shipment_notice",
]


def order_confirmation(order: Order, shop_name: str) -> Notification:
    """The acknowledgement message, on the customer's preferred channel."""
    customer = order.customer
    promised = order.promised_delivery.isoformat() if order.promised_delivery else "soon"
    total = order.totals.total
    if customer.preferred_contact is ContactChannel.SMS and customer.phone:
        return Notification(
            order_id=order.id,
            kind="order_confirmation",
            channel=ContactChannel.SMS,
            recipient=customer.phone,
            subject=f"{shop_name}: order {order.id}",
            body=f"{shop_name}: order {order.id} confirmed, {total}. Expected delivery {promised}.",
            promised_delivery=order.promised_delivery,
        )
    lines = "\n".join(
        f"  {line.quantity} x {line.name} ({line.sku})  {line.total}" for line in order.lines
    )
    body = (
        f"Dear {customer.name},\n\n"
        f"thank you for your order {order.id}.\n\n{lines}\n"
        f"  Shipping  {order.shipping_charge}\n  Total  {total}\n\n"
        f"Expected delivery: {promised}.\n\n{shop_name}\n"
    )
    return Notification(
        order_id=order.id,
        kind="order_confirmation",
        channel=ContactChannel.EMAIL,
        recipient=customer.email,
        subject=f"{shop_name}: your order {order.id} is confirmed",
        body=body,
        promised_delivery=order.promised_delivery,
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
        f" ({shipment.problem})"
        if isinstance(event, ShipmentDeliveryFailed) and shipment.problem
        else ""
    )
    if order.exchange_for is not None:
        parcel = f"your exchange (return {order.exchange_for})"
        kind = "exchange_shipped" if kind == "shipped" else kind
    else:
        parcel = f"your parcel for order {order.id}"
    text = f"{shop_name}: {parcel} {happened}{problem}.{tracking}{link}{when}"
    return customer_message(order, kind, f"{shop_name}: {parcel} {happened}", text, eta)


def customer_message(
    order: Order, kind: str, subject: str, text: str, promised: date | None = None
) -> Notification:
    """A message about ``order`` on the customer's preferred channel: an SMS of ``text``
    when they prefer SMS and gave a phone number, else an e-mail greeting them by name."""
    customer = order.customer
    if customer.preferred_contact is ContactChannel.SMS and customer.phone:
        channel, recipient = ContactChannel.SMS, customer.phone
    else:
        channel, recipient = ContactChannel.EMAIL, customer.email
    return Notification(
        order_id=order.id,
        kind=kind,
        channel=channel,
        recipient=recipient,
        subject=subject,
        body=text if channel is ContactChannel.SMS else f"Dear {customer.name},\n\n{text}\n",
        promised_delivery=promised,
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
    if isinstance(event, ReturnApproved):
        kind, headline = "return_approved", f"{about} is approved"
        text = f"{shop_name}: {headline}. {event.instructions}"
    elif isinstance(event, ReturnRejected):
        kind, headline = "return_rejected", f"{about} was not accepted"
        text = f"{shop_name}: {headline}: {event.reason}"
    elif isinstance(event, ReturnRefunded) and not event.due.is_zero():
        kind, headline = "refund_issued", f"{event.due} refunded for {about}"
        how = "to your payment method" if not event.paid.is_zero() else "by separate payment"
        text = f"{shop_name}: we are refunding {event.due} {how} for {about}."
        if not event.paid.is_zero() and event.paid != event.due:
            text += f" {event.paid} goes back to your payment method now; we will settle the rest."
    elif isinstance(event, ReturnExchanged) and not event.refunded.is_zero():
        kind, headline = "refund_issued", f"{event.refunded} refunded for {about}"
        text = (
            f"{shop_name}: your exchange order {event.exchange_order_id} is placed; the "
            f"{event.refunded} your returned items were worth beyond it goes back to your "
            "payment method."
        )
    else:
        return None
    return customer_message(order, kind, f"{shop_name}: {headline}", text)


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
        subject = f"{self._shop_name}: re: {inquiry.subject}"
        text = f"{self._shop_name} about order {order.id} ({inquiry.subject}): {answer.text}"
        self._notifier.send(customer_message(order, "inquiry_answered", subject, text))
