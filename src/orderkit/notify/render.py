"""What notifiers render a notification with: the rendered message, the renderer
protocol, and the plain renderer that needs no extra."""

from __future__ import annotations

from typing import Protocol

from attrs import frozen

from orderkit.domain.values import ContactChannel
from orderkit.ports import Notification

__all__ = ["MessageRenderer", "PlainRenderer", "RenderedMessage", "default_renderer"]


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
        body = notification.body
        if channel is not notification.channel:
            text = str(notification.facts.get("text", body))
            name = notification.facts.get("customer_name")
            body = f"Dear {name},\n\n{text}\n" if channel is ContactChannel.EMAIL and name else text
        subject = " ".join(notification.subject.split())  # one line, whatever the facts held
        return RenderedMessage(subject=subject, text=body, html=None)


def default_renderer() -> MessageRenderer:
    """The built-in templates (:class:`~orderkit.notify.templates.MessageTemplates`,
    needing ``orderkit[notify]``)."""
    from orderkit.notify.templates import MessageTemplates

    return MessageTemplates()
