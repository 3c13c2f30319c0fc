"""What notifiers render a notification with: the rendered message, the renderer
protocol, and the plain renderer that needs no extra."""

from __future__ import annotations

from typing import Protocol

import attrs
from attrs import frozen

from orderkit.domain.values import ContactChannel
from orderkit.errors import NotificationError
from orderkit.ports import Notification

__all__ = ["MessageRenderer", "PlainRenderer", "RenderedMessage", "as_email", "default_renderer"]


@frozen
class RenderedMessage:
    """One notification rendered for a channel: ``html`` is None for SMS (and for plain
    e-mail)."""

    subject: str
    text: str
    html: str | None


class MessageRenderer(Protocol):
    """Turns a notification into the subject, text and HTML a channel sends."""

    def render(
        self, notification: Notification, channel: ContactChannel | None = None
    ) -> RenderedMessage:
        """Render ``notification`` for ``channel`` (by default its own)."""
        ...


class PlainRenderer:
    """Sends the notification's own built-in subject and text (no HTML, no locale
    formatting): for shops without the ``notify`` extra."""

    def render(
        self, notification: Notification, channel: ContactChannel | None = None
    ) -> RenderedMessage:
        """The notification's subject and body; for a channel other than its own, the
        plain ``text`` fact (the message without greeting) when there is one."""
        channel = channel or notification.channel
        if channel is ContactChannel.EMAIL:
            body = as_email(notification).body
        elif notification.channel is ContactChannel.SMS:
            body = notification.body
        else:
            body = str(notification.facts.get("text", notification.body))
        subject = " ".join(notification.subject.split())  # one line, whatever the facts held
        return RenderedMessage(subject=subject, text=body, html=None)


def as_email(notification: Notification) -> Notification:
    """``notification`` as the e-mail to the same customer: unchanged when it is one, else
    sent to their e-mail address, the text greeting them by name. Raises
    :class:`~orderkit.errors.NotificationError` when there is no address to send to."""
    if notification.channel is ContactChannel.EMAIL:
        return notification
    if notification.email is None:
        raise NotificationError(
            f"{notification.kind} for order {notification.order_id} has no e-mail address"
        )
    text = str(notification.facts.get("text", notification.body))
    name = notification.facts.get("customer_name")
    return attrs.evolve(
        notification,
        channel=ContactChannel.EMAIL,
        recipient=notification.email,
        body=f"Dear {name},\n\n{text}\n" if name else text,
    )


def default_renderer() -> MessageRenderer:
    """The built-in templates (:class:`~orderkit.notify.templates.MessageTemplates`,
    needing ``orderkit[notify]``)."""
    from orderkit.notify.templates import MessageTemplates

    return MessageTemplates()
