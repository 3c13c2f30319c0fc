"""Customer notifications: the templates, and the handlers that send them after commit."""

from __future__ import annotations

from orderkit.domain.events import OrderAcknowledged
from orderkit.domain.order import Order, OrderState
from orderkit.domain.values import ContactChannel
from orderkit.ports import Notification, Notifier, UnitOfWorkFactory

__all__ = ["ConfirmationSender", "order_confirmation"]


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
