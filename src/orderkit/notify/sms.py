"""Text messages: segment counting (GSM-7 and UCS-2), opt-outs, the reference SMS
sender and the SMS notifier.

An SMS carries 140 bytes. Text that fits the GSM 03.38 alphabet is sent in GSM-7:
160 characters in one message, or 153 per segment when it is split (the rest of
each segment holds the header that joins them); a character from the extension
table (``€ [ ] { } \\ ~ ^ |`` and form feed) takes two. Any other character
switches the whole message to UCS-2: 70 UTF-16 code units alone, 67 per segment,
an emoji outside the Basic Multilingual Plane taking two. A split never breaks an
escape pair or a surrogate pair.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Literal

import attrs
from attrs import frozen

from orderkit.domain.values import ContactChannel
from orderkit.errors import InvalidField, InvalidSettings, NotificationError, SmsTooLong
from orderkit.notify.render import MessageRenderer, as_email, default_renderer
from orderkit.ports import Notification, Notifier, OptOutList, SmsSender

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "MemoryOptOuts",
    "MemorySmsSender",
    "SentSms",
    "SmsNotifier",
    "SmsSegments",
    "sms_segments",
]

log = logging.getLogger("orderkit.notify")

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The GSM 03.38 default alphabet: one septet each."""

GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
"""The GSM 03.38 extension table: two septets each (an escape, then the character)."""

_LIMITS = {"GSM-7": (160, 153), "UCS-2": (70, 67)}
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


@frozen
class SmsSegments:
    """How a text travels as SMS: its encoding, its length in that encoding's units
    (septets or UTF-16 code units) and the number of messages it takes."""

    encoding: Literal["GSM-7", "UCS-2"]
    units: int
    segments: int


def sms_segments(text: str) -> SmsSegments:
    """The encoding, length and segment count of ``text`` (see the module's doc)."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        encoding: Literal["GSM-7", "UCS-2"] = "GSM-7"
        sizes = [2 if c in GSM7_EXTENSION else 1 for c in text]
    else:
        encoding = "UCS-2"
        sizes = [2 if ord(c) > 0xFFFF else 1 for c in text]
    units = sum(sizes)
    single, per_segment = _LIMITS[encoding]
    if units <= single:
        return SmsSegments(encoding, units, 1 if text else 0)
    segments, room = 1, per_segment
    for size in sizes:  # fill greedily; a pair that does not fit starts the next segment
        if size > room:
            segments, room = segments + 1, per_segment
        room -= size
    return SmsSegments(encoding, units, segments)


@frozen
class SentSms:
    """A text message the memory sender accepted."""

    to: str = attrs.field(repr=False)
    text: str = attrs.field(repr=False)
    key: str
    segments: SmsSegments


class MemorySmsSender:
    """The reference :class:`~orderkit.ports.SmsSender`: keeps what it sends, once per key.

    It checks what a provider checks (an E.164 number, a non-empty text of at most
    ``max_segments`` segments), and ``available = False`` makes it fail like a provider
    that cannot be reached, so retries can be tested.
    """

    def __init__(self, *, max_segments: int = 10) -> None:
        self._lock = threading.Lock()
        self.max_segments = max_segments
        self.available = True
        self.sent: list[SentSms] = []
        self._keys: set[str] = set()

    def send_sms(self, to: str, text: str, *, key: str) -> None:
        """Send ``text`` to ``to`` unless a message with ``key`` was sent already."""
        if not _E164.fullmatch(to):
            raise InvalidField("must be an E.164 phone number such as +4915112345678", field="to")
        if not text:
            raise InvalidField("must not be empty", field="text")
        segments = sms_segments(text)
        if segments.segments > self.max_segments:
            raise SmsTooLong(f"{segments.segments} segments; the sender takes {self.max_segments}")
        with self._lock:
            if not self.available:
                raise NotificationError("the SMS provider is unavailable; retry later")
            if key in self._keys:
                return
            self._keys.add(key)
            self.sent.append(SentSms(to, text, key, segments))

    def to(self, number: str) -> list[SentSms]:
        """The messages sent to ``number``, oldest first."""
        with self._lock:
            return [sms for sms in self.sent if sms.to == number]


class MemoryOptOuts:
    """The reference :class:`~orderkit.ports.OptOutList`, in this process's memory.

    Addresses compare without case and surrounding space (phone numbers also without
    inner spaces, dashes and brackets)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._out: set[tuple[ContactChannel, str]] = set()

    def is_opted_out(self, channel: ContactChannel, address: str) -> bool:
        """True when ``address`` opted out of ``channel``."""
        with self._lock:
            return (ContactChannel(channel), normalize_address(channel, address)) in self._out

    def opt_out(self, channel: ContactChannel, address: str) -> None:
        """Send ``address`` nothing more on ``channel``."""
        with self._lock:
            self._out.add((ContactChannel(channel), normalize_address(channel, address)))

    def opt_in(self, channel: ContactChannel, address: str) -> None:
        """Message ``address`` on ``channel`` again."""
        with self._lock:
            self._out.discard((ContactChannel(channel), normalize_address(channel, address)))


def normalize_address(channel: ContactChannel, address: str) -> str:
    """The form of an address that opt-out lists compare."""
    address = address.strip().lower()
    if ContactChannel(channel) is ContactChannel.SMS:
        address = re.sub(r"[\s\-().]", "", address)
    return address


class SmsNotifier:
    """A :class:`~orderkit.ports.Notifier` that texts customers who prefer SMS.

    A notification on the SMS channel is rendered (``renderer``; by default the
    built-in templates), checked against ``max_segments`` and handed to ``sender``
    with its de-duplication key. A customer who opted out of SMS (``opt_outs``) is
    never texted: the message goes to ``fallback`` as an e-mail instead when there is
    one, else nowhere; so does a text longer than ``max_segments`` (without a fallback,
    :class:`~orderkit.errors.SmsTooLong`). E-mail notifications go to ``fallback`` (an
    :class:`~orderkit.notify.SmtpNotifier`, say); without one they raise. Nothing goes to
    the fallback for a customer who opted out of e-mail in ``opt_outs`` either.
    """

    def __init__(
        self,
        sender: SmsSender,
        *,
        renderer: MessageRenderer | None = None,
        opt_outs: OptOutList | None = None,
        fallback: Notifier | None = None,
        max_segments: int = 3,
    ) -> None:
        if max_segments < 1:
            raise InvalidSettings("must be at least 1", field="max_segments", value=max_segments)
        self.sender = sender
        self.renderer = renderer or default_renderer()
        self.opt_outs = opt_outs
        self.fallback = fallback
        self.max_segments = max_segments

    def send(self, notification: Notification) -> None:
        """Text ``notification``, or pass it on as e-mail (see the class doc)."""
        if notification.channel is ContactChannel.SMS:
            phone = notification.recipient
            if self.opt_outs is None or not self.opt_outs.is_opted_out(ContactChannel.SMS, phone):
                self._text(notification)
                return
            log.info("order %s: customer opted out of SMS", notification.order_id)
            if notification.email is None or self.fallback is None:
                return  # nowhere else to say it: say nothing
            self._to_fallback(as_email(notification))
            return
        if self.fallback is None:
            raise NotificationError(
                f"no e-mail notifier for {notification.kind} on order {notification.order_id}"
            )
        self._to_fallback(notification)

    def _to_fallback(self, notification: Notification) -> None:
        assert self.fallback is not None
        address = notification.email or notification.recipient
        if self.opt_outs is not None and self.opt_outs.is_opted_out(ContactChannel.EMAIL, address):
            log.info("order %s: customer opted out of e-mail", notification.order_id)
            return
        self.fallback.send(notification)

    def _text(self, notification: Notification) -> None:
        text = self.renderer.render(notification, ContactChannel.SMS).text
        segments = sms_segments(text)
        if segments.segments > self.max_segments:
            if self.fallback is not None and notification.email is not None:
                log.info(
                    "order %s: %s too long for SMS (%s segments); sent by e-mail",
                    notification.order_id,
                    notification.kind,
                    segments.segments,
                )
                self._to_fallback(as_email(notification))
                return
            raise SmsTooLong(
                f"{notification.kind} for order {notification.order_id} needs "
                f"{segments.segments} {segments.encoding} segments ({segments.units} units); "
                f"at most {self.max_segments} are allowed"
            )
        self.sender.send_sms(notification.recipient, text, key=notification.key)
