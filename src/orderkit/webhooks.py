"""Outgoing webhooks, signed the Standard Webhooks way (https://www.standardwebhooks.com/).

A :class:`WebhookEndpoint` names a URL, its signing secret and the event kinds it
wants; a :class:`WebhookSender` subscribed to the shop's dispatcher POSTs each such
event there. Delivery rides on the outbox: a sender that cannot deliver raises
:class:`~orderkit.errors.WebhookDeliveryFailed`, and the dispatcher retries it with
back-off and finally records a dead letter, which can be retried once the endpoint
is back.

Every request carries three headers:

* ``webhook-id``: :func:`webhook_id` of the event, the same on every retry and after
  a crash, so the receiver can drop duplicates (delivery is at least once);
* ``webhook-timestamp``: when this attempt was made, in Unix seconds;
* ``webhook-signature``: ``v1,<base64 HMAC-SHA256>`` of ``"{id}.{timestamp}.{body}"``
  keyed with the secret (:func:`sign_webhook`).

Receivers check them with :func:`verify_webhook` or any Standard Webhooks library.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import http.client
import json
import math
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from attrs import field, frozen

from orderkit.domain import events as events_module
from orderkit.domain import return_events as return_events_module
from orderkit.domain.events import DomainEvent
from orderkit.errors import InvalidField, WebhookDeliveryFailed, WebhookVerificationFailed
from orderkit.ports import Clock
from orderkit.serialization import dumps_event, event_tag
from orderkit.service.dispatch import current_seq

__all__ = [
    "WebhookEndpoint",
    "WebhookSender",
    "new_webhook_secret",
    "sign_webhook",
    "verify_webhook",
    "webhook_id",
    "webhook_payload",
]

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
"""The Standard Webhooks minimum for a symmetric signing key (192 bits)."""

_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
_MAX_TIMESTAMP_DIGITS = 15  # far beyond any real date; keeps int() of a header cheap


def _known_event_classes() -> dict[str, type[DomainEvent]]:
    known: dict[str, type[DomainEvent]] = {}
    for module in (events_module, return_events_module):
        for name, value in vars(module).items():
            if isinstance(value, type) and issubclass(value, DomainEvent):
                known[name] = value
    return known


_KNOWN_EVENTS = _known_event_classes()


def new_webhook_secret() -> str:
    """A fresh signing secret: ``"whsec_"`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _secret_key(secret: object) -> bytes:
    """The HMAC key of a secret: the base64 after ``"whsec_"`` (the prefix is optional, as
    in the Standard Webhooks libraries; missing ``=`` padding is tolerated too).

    Raises :class:`InvalidField` (never quoting the secret) when it is not base64 or
    decodes to fewer than :data:`MIN_SECRET_BYTES` bytes.
    """
    if not isinstance(secret, str):
        raise InvalidField("must be text such as 'whsec_...'", field="secret")
    encoded = secret.removeprefix(SECRET_PREFIX).strip()
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidField(
            "is not 'whsec_' followed by base64 (use new_webhook_secret() to make one)",
            field="secret",
        ) from None
    if len(key) < MIN_SECRET_BYTES:
        raise InvalidField(
            f"decodes to {len(key)} bytes; a signing secret needs at least {MIN_SECRET_BYTES}",
            field="secret",
        )
    return key


def _check_url(_instance: object, _attribute: object, url: Any) -> None:
    if not isinstance(url, str):
        raise InvalidField("must be text such as 'https://example.com/hooks'", field="url")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise InvalidField("must not contain spaces or control characters", field="url", value=url)
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidField(
            f"must be an http:// or https:// address, not {url[:60]!r}", field="url", value=url
        )
    if parts.username is not None or parts.password is not None:
        # credentials in a URL end up in logs and dead letters; nothing here would send them
        raise InvalidField("must not carry a user name or password", field="url")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname or port == -1:
        raise InvalidField("needs a host (and a valid port, if any)", field="url", value=url)


def _check_secret(_instance: object, _attribute: object, secret: Any) -> None:
    _secret_key(secret)


def _event_filter(events: Iterable[str] | None) -> frozenset[str] | None:
    if events is None:
        return None
    if isinstance(events, str):
        raise InvalidField(
            "must be a collection of event names, such as {'OrderPlaced'}, not one text",
            field="events",
            value=events,
        )
    tags = frozenset(events)
    if not tags:
        raise InvalidField("names no event; leave it out (None) for every event", field="events")
    for tag in sorted(tags, key=str):
        if not isinstance(tag, str) or not tag:
            raise InvalidField("event names must be non-empty text", field="events", value=tag)
        if ":" not in tag and tag not in _KNOWN_EVENTS:
            # "module:qualname" tags are the user's own events, imported only when they occur
            raise InvalidField(
                f"{tag!r} is not an orderkit event (such as 'OrderPlaced' or "
                "'ShipmentDelivered'; a base such as 'ShipmentEvent' covers its kinds)",
                field="events",
                value=tag,
            )
    return tags


def _check_name(_instance: object, _attribute: object, name: Any) -> None:
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise InvalidField("must be non-empty text (or None)", field="name", value=name)


def _check_timeout(_instance: object, _attribute: object, timeout: Any) -> None:
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise InvalidField("must be a positive number of seconds", field="timeout", value=timeout)


@frozen
class WebhookEndpoint:
    """Where to POST events, how to sign them and which ones to send.

    * ``url``: an ``http://`` or ``https://`` address (no credentials in it).
    * ``secret``: ``"whsec_"`` and the base64 of at least 24 random bytes
      (:func:`new_webhook_secret`); shown as ``'whsec_***'`` in ``repr``.
    * ``events``: event tags as :func:`~orderkit.serialization.event_tag` gives
      them (``"OrderPlaced"``, ``"ShipmentDelivered"``; a base class such as
      ``"ShipmentEvent"`` covers every kind under it); ``None`` sends every event.
    * ``name``: the stable part of :attr:`handler_name` (default: the url). Changing
      it makes the dispatcher treat the endpoint as a new handler.
    * ``timeout``: seconds to wait for the endpoint's answer.

    Raises :class:`~orderkit.errors.InvalidField` naming the field at fault.
    """

    url: str = field(validator=_check_url)
    secret: str = field(validator=_check_secret, repr=lambda _: "'whsec_***'")
    events: frozenset[str] | None = field(default=None, converter=_event_filter)
    name: str | None = field(default=None, validator=_check_name)
    timeout: float = field(default=10.0, validator=_check_timeout)

    @property
    def handler_name(self) -> str:
        """The dispatcher's name of this endpoint's sender: ``"orderkit.webhook."`` and
        ``name`` (or, without one, ``url``)."""
        return "orderkit.webhook." + (self.name or self.url)

    def wants(self, event_type: type[DomainEvent]) -> bool:
        """Whether events of ``event_type`` (or of a base it names) go to this endpoint."""
        if self.events is None:
            return True
        return any(
            event_tag(kind) in self.events
            for kind in event_type.__mro__
            if isinstance(kind, type) and issubclass(kind, DomainEvent)
        )


def webhook_id(event: DomainEvent, seq: int | None = None) -> str:
    """The stable ``webhook-id`` of an event: ``"msg_"``, the event's outbox ``seq`` (by
    default the one being dispatched, :func:`~orderkit.service.dispatch.current_seq`) and
    the first 32 hex digits of the SHA-256 of :func:`~orderkit.serialization.dumps_event`.
    An event read back from the outbox (after a retry or a crash) gets the same id, so
    receivers can de-duplicate; two equal events (hold, release, hold again in one
    instant) get different ones."""
    digest = hashlib.sha256(dumps_event(event).encode("utf-8")).hexdigest()
    seq = current_seq() if seq is None else seq
    return f"msg_{seq}_{digest[:32]}" if seq is not None else "msg_" + digest[:32]


def _utc_text(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def webhook_payload(event: DomainEvent) -> bytes:
    """The request body: compact UTF-8 JSON ``{"type", "timestamp", "data"}`` where ``type``
    is the event's tag, ``timestamp`` when it occurred (ISO 8601, UTC, ``Z``) and ``data``
    the event as :func:`~orderkit.serialization.dumps_event` writes it, less ``"type"``."""
    data = json.loads(dumps_event(event))
    tag = data.pop("type")
    document = {"type": tag, "timestamp": _utc_text(event.occurred_at), "data": data}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one attempt: ``"v1,"`` and the base64 of the
    HMAC-SHA256 of ``"{msg_id}.{timestamp}.{body}"``, keyed with the decoded secret.

    Raises :class:`~orderkit.errors.InvalidField` for a bad secret, a ``msg_id`` that is
    empty or holds a full stop or white space (the spec forbids both: they would make the
    signed text ambiguous or split the header), or a timestamp that is not a whole number.
    """
    key = _secret_key(secret)
    if not msg_id or "." in msg_id or any(ch.isspace() for ch in msg_id):
        raise InvalidField("must be non-empty, without '.' or spaces", field="msg_id", value=msg_id)
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise InvalidField("must be whole Unix seconds", field="timestamp", value=timestamp)
    digest = _signature(key, msg_id, str(timestamp), bytes(body))
    return "v1," + base64.b64encode(digest).decode("ascii")


def _matches(expected: bytes, header: str) -> bool:
    found = False
    for entry in header.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue  # another scheme (v1a: asymmetric) this receiver does not hold a key for
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        # no early exit: every entry costs the same whether or not one matched
        found |= hmac.compare_digest(expected, given)
    return found


def verify_webhook(
    body: bytes | str,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: timedelta = timedelta(minutes=5),
    now: datetime | None = None,
) -> dict[str, Any]:
    """Check a received webhook and return its parsed JSON payload.

    ``body`` is the raw request body exactly as received (text is taken as UTF-8);
    header names are matched case-insensitively. The secret may omit ``"whsec_"``.
    Raises :class:`~orderkit.errors.WebhookVerificationFailed`, saying which, when
    a webhook header is missing or empty, ``webhook-timestamp`` is not whole Unix
    seconds or lies more than ``tolerance`` before or after ``now`` (default: the
    system clock), no ``v1`` signature in ``webhook-signature`` matches, or the signed
    body is not a JSON object. A bad ``secret`` is :class:`~orderkit.errors.InvalidField`.
    """
    key = _secret_key(secret)
    by_name = {name.lower(): value for name, value in headers.items()}
    values = []
    for name in _HEADERS:
        value = str(by_name.get(name) or "").strip()
        if not value:
            raise WebhookVerificationFailed(f"the {name} header is missing")
        values.append(value)
    msg_id, stamp, signatures = values
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > _MAX_TIMESTAMP_DIGITS:
        raise WebhookVerificationFailed("the webhook-timestamp header is not whole Unix seconds")
    moment = now if now is not None else datetime.now(timezone.utc)
    if moment.tzinfo is None:
        raise InvalidField("must be timezone-aware", field="now", value=moment)
    age = moment.timestamp() - int(stamp)
    if age > tolerance.total_seconds():
        raise WebhookVerificationFailed(
            f"the webhook-timestamp is {age:.0f} s old, more than the {tolerance} allowed"
        )
    if -age > tolerance.total_seconds():
        raise WebhookVerificationFailed(
            f"the webhook-timestamp is {-age:.0f} s in the future, more than the {tolerance} "
            "allowed"
        )
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    if not _matches(_signature(key, msg_id, stamp, raw), signatures):
        raise WebhookVerificationFailed("no v1 signature in webhook-signature matches the body")
    try:
        payload = json.loads(raw)
    except ValueError:
        raise WebhookVerificationFailed("the signed body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookVerificationFailed("the signed body is not a JSON object")
    return payload


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Turns every 3xx into an error: the spec asks senders not to follow redirects."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_RefuseRedirects())


class WebhookSender:
    """A dispatcher handler that POSTs the events an endpoint wants, signed.

    Subscribe it to :class:`~orderkit.domain.events.DomainEvent` under
    ``endpoint.handler_name``. Each call is one attempt with a fresh
    ``webhook-timestamp`` from ``clock``; a 2xx answer means delivered. Any other
    status (redirects are not followed), a timeout or a connection error raises
    :class:`~orderkit.errors.WebhookDeliveryFailed` naming the url and what went
    wrong (never the secret), so the dispatcher retries and finally dead-letters.
    ``opener`` replaces the ``urllib`` opener (proxies, TLS settings); it should
    not follow redirects either.
    """

    def __init__(
        self,
        endpoint: WebhookEndpoint,
        *,
        clock: Clock,
        user_agent: str = "orderkit-webhooks",
        opener: urllib.request.OpenerDirector | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._clock = clock
        self._user_agent = user_agent
        self._opener = opener if opener is not None else _opener()

    def __repr__(self) -> str:
        return f"WebhookSender({self.endpoint!r})"

    def __call__(self, event: DomainEvent) -> None:
        """POST ``event`` if the endpoint wants its kind; raise if it was not delivered."""
        if not self.endpoint.wants(type(event)):
            return
        body = webhook_payload(event)
        msg_id = webhook_id(event)
        timestamp = math.floor(self._clock.now().timestamp())
        request = urllib.request.Request(
            self.endpoint.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": self._user_agent,
                "webhook-id": msg_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign_webhook(self.endpoint.secret, msg_id, timestamp, body),
            },
        )
        self._post(request)

    def _failed(self, what: str) -> WebhookDeliveryFailed:
        return WebhookDeliveryFailed(f"webhook to {self.endpoint.url} failed: {what}")

    def _post(self, request: urllib.request.Request) -> None:
        try:
            with self._opener.open(request, timeout=self.endpoint.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
            error.close()  # its body holds the connection open
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, TimeoutError):
                raise self._failed(f"timed out after {self.endpoint.timeout:g} s") from None
            raise self._failed(f"connection failed ({type(reason).__name__})") from None
        except TimeoutError:
            raise self._failed(f"timed out after {self.endpoint.timeout:g} s") from None
        except (OSError, http.client.HTTPException) as error:
            raise self._failed(f"connection failed ({type(error).__name__})") from None
        if not 200 <= status < 300:
            note = " (redirects are not followed)" if 300 <= status < 400 else ""
            raise self._failed(f"HTTP {status}{note}")
