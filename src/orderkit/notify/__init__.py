"""Notifications over real channels: templates, e-mail by SMTP and SMS.

>>> from orderkit.notify import SmtpNotifier, SmsNotifier, MemorySmsSender, MessageTemplates
>>> email = SmtpNotifier("smtp.example.com", sender="Shop <orders@example.com>",
...                      username="orders", password="...")       # doctest: +SKIP
>>> shop = Shop.open(notifier=SmsNotifier(MemorySmsSender(), fallback=email))  # doctest: +SKIP

The templates need the extra ``orderkit[notify]`` (Jinja2 and Babel); without it,
pass ``renderer=PlainRenderer()`` for plain-text messages.
"""

from orderkit.notify.email import SmtpNotifier, check_header
from orderkit.notify.render import MessageRenderer, PlainRenderer, RenderedMessage
from orderkit.notify.sms import (
    MemoryOptOuts,
    MemorySmsSender,
    SentSms,
    SmsNotifier,
    SmsSegments,
    sms_segments,
)

__all__ = [
    "MemoryOptOuts",
    "MemorySmsSender",
    "MessageRenderer",
    "MessageTemplates",
    "PlainRenderer",
    "RenderedMessage",
    "SentSms",
    "SmsNotifier",
    "SmsSegments",
    "SmtpNotifier",
    "check_header",
    "sms_segments",
]


def __getattr__(name: str) -> object:
    if name == "MessageTemplates":  # imported on use: it needs the notify extra
        from orderkit.notify.templates import MessageTemplates

        return MessageTemplates
    raise AttributeError(f"module 'orderkit.notify' has no attribute {name!r}")
