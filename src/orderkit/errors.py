"""The one error hierarchy of orderkit.

Every error the library raises on purpose is an :class:`OrderkitError`. Errors
caused by the caller's input are :class:`InvalidInput` (also a ``ValueError``)
and carry the offending ``field`` and ``value`` so that a web layer can point
at the form field; their message is written for a shop owner to read.

This module sits at the bottom of the layers (``money.py`` needs it too); the
domain package re-exports it.
"""

from __future__ import annotations

import re
from typing import Any

_MAX_SHOWN = 60


_CARD_LIKE = re.compile(r"[\d\s-]{12,}")


_REDACTED_DIGITS = "<redacted digits>"


def _show(value: object) -> str:
    """A short ``repr`` of a rejected value, cut so that a huge payload cannot flood a log.

    Anything that could be a card number (12 or more digits) is never echoed.
    """
    if _CARD_LIKE.search(str(value)):
        return "<redacted digits>"
    text = repr(value)
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 3] + "..."
    return text


_JSON_KINDS = {
    str: "text",
    int: "whole number",
    float: "number",
    bool: "true/false",
    list: "list",
    dict: "object",
    type(None): "null",
}


def _json_kind(value: object) -> str:
    """What a parsed JSON value is, in JSON's words rather than Python's."""
    return getattr(value, "json_kind", None) or _JSON_KINDS.get(type(value), type(value).__name__)


class OrderkitError(Exception):
    """Base class of every error orderkit raises on purpose."""


class InvalidInput(OrderkitError, ValueError):
    """The caller's input was rejected; nothing was stored, reserved, charged or sent.

    ``field`` names the input field (a dotted path where known, such as
    ``lines[1].quantity``) and ``value`` is the rejected value.
    """

    def __init__(self, message: str, *, field: str | None = None, value: Any = None) -> None:
        self.reason = message
        self.field = field
        # a web layer echoes ``value``: anything that could be a card number never leaves here
        self.value = _REDACTED_DIGITS if _CARD_LIKE.search(str(value)) else value
        super().__init__(self._text())

    def _text(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason

    def at(self, path: str) -> InvalidInput:
        """Prefix ``field`` with ``path`` (where the value sits in a payload); returns self."""
        if path:
            self.field = f"{path}.{self.field}" if self.field else path
            self.args = (self._text(),)
        return self


class InvalidPayload(InvalidInput):
    """An untrusted payload (JSON text) is malformed: bad JSON, a duplicate key."""


class UnknownField(InvalidPayload):
    """A payload carries a key that orderkit does not know (a typo or an injection attempt)."""


class MissingField(InvalidPayload):
    """A payload lacks a required key."""


class WrongType(InvalidPayload):
    """A payload value has the wrong JSON type (a number where text is expected, say)."""

    def __init__(self, expected: str, value: Any, *, field: str | None = None) -> None:
        super().__init__(
            f"expected {expected}, got {_json_kind(value)} {_show(value)}",
            field=field,
            value=value,
        )


class NonFiniteNumber(InvalidPayload):
    """A payload contains NaN or Infinity, which JSON does not allow and money cannot be."""


class InvalidMoney(InvalidInput):
    """An amount of money could not be built: a float, NaN, or text that is not a number."""


class UnknownCurrency(InvalidMoney):
    """A currency code is not an active ISO 4217 currency."""


class CurrencyMismatch(InvalidInput):
    """Two amounts in different currencies were combined, or an order mixes currencies."""


class InvalidQuantity(InvalidInput):
    """A quantity is not a positive whole number within the allowed range."""


class ValueTooLong(InvalidInput):
    """A text field is longer than its documented limit."""


class TooManyLines(InvalidInput):
    """An order has more lines than the documented limit."""


class DuplicateLineId(InvalidInput):
    """Two lines of one order share a line id."""


class CardNumberRejected(InvalidInput):
    """Something that looks like a card number was passed where a gateway token belongs.

    orderkit never accepts or stores card numbers; pass the token your payment
    gateway's client-side library returned instead.
    """


class InvalidField(InvalidInput):
    """A field's value is not acceptable (empty, malformed, out of range)."""


class InvalidSettings(InvalidInput):
    """A :class:`~orderkit.ShopSettings` value is not acceptable."""


class InvalidTransition(OrderkitError):
    """A lifecycle trigger is not allowed in the aggregate's current state; nothing changed."""

    def __init__(
        self,
        aggregate: str,
        aggregate_id: str,
        state: str,
        trigger: str,
        detail: str = "is not allowed from there",
    ) -> None:
        self.aggregate = aggregate
        self.aggregate_id = aggregate_id
        self.state = state
        self.trigger = trigger
        super().__init__(f"{aggregate} {aggregate_id} is {state!r}: {trigger!r} {detail}")


class TransitionBlocked(InvalidTransition):
    """A trigger is allowed from the current state, but a guard refused it; nothing changed."""

    def __init__(
        self, aggregate: str, aggregate_id: str, state: str, trigger: str, guard: str
    ) -> None:
        super().__init__(aggregate, aggregate_id, state, trigger)
        self.guard = guard
        self.args = (f"{aggregate} {aggregate_id} is {state!r}: {trigger!r} is blocked: {guard}",)


class LifecycleDefinitionError(OrderkitError):
    """A lifecycle definition is inconsistent (unknown or unreachable states, dead ends)."""


class HoldError(OrderkitError):
    """A hold could not be placed or released."""


class NotFound(OrderkitError, LookupError):
    """A looked-up aggregate does not exist."""


class OrderNotFound(NotFound):
    """No order has the given id."""

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        super().__init__(f"no order with id {order_id!r}")


class ConcurrencyError(OrderkitError):
    """An aggregate was saved from a stale version: someone else saved it first."""


class TransactionAborted(ConcurrencyError):
    """The database rolled the transaction back to resolve a conflict with another one (a
    deadlock or a serialization failure: SQLSTATE 40P01, 40001). Every command is run
    again on it; it reaches the caller only when the retries run out."""


class IdempotencyConflict(OrderkitError):
    """An idempotency key was reused for a different request."""

    def __init__(self, key: str, existing_id: str, *, what: str = "order") -> None:
        self.key = key
        self.existing_id = existing_id
        super().__init__(
            f"idempotency key {key!r} was already used for a different request "
            f"({what} {existing_id}); use a new key for a new {what}"
        )


class DuplicateKey(OrderkitError):
    """A repository refused an insert because an id or idempotency key is already taken."""


class UnsupportedStore(OrderkitError):
    """A store URL names a backend that orderkit does not have (or whose extra is missing)."""


class MissingExtra(OrderkitError, ImportError):
    """A feature needs an optional dependency that is not installed; the message names the extra."""


class StorageError(OrderkitError):
    """A store cannot be used as it is; nothing was changed."""


class NotAnOrderkitDatabase(StorageError):
    """The file is not a database, or a database that orderkit did not create."""


class SchemaTooNew(StorageError):
    """The database was written by a newer orderkit; upgrade orderkit to open it."""


class CorruptRecord(StorageError):
    """A stored document cannot be read back (damaged JSON or an unknown shape)."""


class UnknownSku(InvalidInput):
    """An order names a SKU that no location stocks."""

    def __init__(self, sku: str) -> None:
        super().__init__(f"no location stocks SKU {sku!r}", field="sku", value=sku)
        self.sku = sku


class UnknownLocation(InvalidInput):
    """A stock operation names a location the shop does not have."""

    def __init__(self, location: str) -> None:
        super().__init__(
            "no such location; add it with shop.inventory.add_location",
            field="location",
            value=location,
        )
        self.location = location


class OutOfStock(OrderkitError):
    """Not enough stock: names the SKU, the quantity requested and the quantity available.

    Nothing was reserved.
    """

    def __init__(
        self, sku: str, requested: int, available: int, *, location: str | None = None
    ) -> None:
        self.sku = sku
        self.requested = requested
        self.available = available
        self.location = location
        where = f" at {location}" if location else ""
        super().__init__(
            f"out of stock: {requested} x {sku} requested, {available} available{where}"
        )


class ReservationNotFound(OrderkitError):
    """An order line holds no (active or allocated, as needed) reservation at a location."""

    def __init__(self, sku: str | None, location: str | None, order_id: str, line_id: str) -> None:
        self.sku, self.location, self.order_id, self.line_id = sku, location, order_id, line_id
        what = f" of {sku} at {location}" if sku and location else ""
        super().__init__(
            f"order {order_id} line {line_id} holds no such reservation{what} "
            "(never made, released, expired or not allocated)"
        )


class PaymentError(OrderkitError):
    """A payment operation failed. The subclasses say whether money may have moved:
    after :class:`PaymentDeclined` and :class:`InvalidPaymentOperation` nothing did;
    after :class:`GatewayUnavailable` it may have (retry with the same key or reference)."""


class PaymentDeclined(PaymentError):
    """The payment gateway declined the operation; ``reason`` says why (``card_declined``,
    ``insufficient_funds``, ...). Not retryable with the same payment method."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        self.reason = reason
        super().__init__(message or f"payment declined: {reason}")


class GatewayUnavailable(PaymentError):
    """The gateway could not be reached or did not answer in time. Retryable: the
    operation may or may not have happened, so retry it with the same idempotency key."""

    retryable = True


class InvalidPaymentOperation(PaymentError):
    """A capture, void or refund breaks a payment rule (more than authorized or
    captured, after a void, on an unknown capture); nothing changed."""


class PaymentNotFound(NotFound):
    """No payment matches the given order, id or gateway reference."""


class CarrierError(OrderkitError):
    """A carrier refused a request (an unknown rate, a label already scanned, ...)."""


class CarrierUnavailable(CarrierError):
    """The carrier could not be reached; retry (with the same idempotency key)."""

    retryable = True


class ShipmentNotFound(NotFound):
    """No shipment has the given id or tracking number."""


class FulfilmentError(OrderkitError):
    """A fulfilment step cannot be taken in the order's or shipment's current situation."""


class ReturnError(OrderkitError):
    """A return cannot be made or moved on as asked (more units than were delivered, a
    closed return window, inspections that do not add up to the units received, ...)."""


class ReturnNotFound(NotFound):
    """No return request has the given id."""


class InquiryNotFound(NotFound):
    """No customer inquiry has the given id."""


class NotificationError(OrderkitError):
    """A notification could not be built or sent (the dispatcher retries it, then
    records a dead letter)."""


class HeaderInjection(InvalidInput):
    """A value meant for a message header holds a line break (CR or LF), which could add
    headers or recipients; nothing was sent."""


class TemplateError(NotificationError):
    """A message template is missing, does not parse, or uses a value it was not given."""


class SmsTooLong(NotificationError):
    """An SMS needs more segments than the sender allows."""


class WebhookError(OrderkitError):
    """Base class of outgoing-webhook errors."""


class WebhookDeliveryFailed(WebhookError):
    """A webhook endpoint did not answer with a 2xx status (retried by the dispatcher)."""

    retryable = True


class WebhookVerificationFailed(WebhookError):
    """A received webhook's signature, timestamp or headers do not check out: reject it."""
