"""What a payment gateway returns from a call, and what it reports in a callback.

Plain values: the gateway adapter (a port implementation) builds them, and the
:class:`~orderkit.domain.payment.Payment` records them.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import attrs
from attrs import field, frozen

from orderkit.domain.values import MAX_ID_LENGTH, MAX_NOTE_LENGTH, check_text, text
from orderkit.errors import InvalidField
from orderkit.money import Money

__all__ = [
    "CALLBACK_PREFIX",
    "GatewayAuthorization",
    "GatewayCapture",
    "GatewayEventKind",
    "GatewayRefund",
    "GatewayVoid",
    "PaymentGatewayEvent",
]

CALLBACK_PREFIX = "gateway:"
"""The reference of an operation first learnt from a gateway callback (``gateway:<event id>``)."""


def _money(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Money):
        raise InvalidField("must be Money", field=attribute.name, value=value)


def _optional_money(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _money(_instance, attribute, value)


def _aware(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidField("must be a timezone-aware datetime", field=attribute.name, value=value)


def _kind(value: object) -> GatewayEventKind:
    try:
        return GatewayEventKind(value)
    except ValueError:
        options = ", ".join(kind.value for kind in GatewayEventKind)
        raise InvalidField(f"must be one of {options}", field="kind", value=value) from None


def _optional_id(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        check_text(value, field=attribute.name, limit=MAX_ID_LENGTH)


def _optional_text(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:  # free text: screened for card numbers
        check_text(value, field=attribute.name, limit=MAX_NOTE_LENGTH)


@frozen
class GatewayAuthorization:
    """An approved authorization: ``amount`` is held on the payment method."""

    id: str = field(validator=text(MAX_ID_LENGTH))
    amount: Money


@frozen
class GatewayCapture:
    """A capture of ``amount`` from authorization ``authorization_id``."""

    id: str = field(validator=text(MAX_ID_LENGTH))
    authorization_id: str
    amount: Money


@frozen
class GatewayVoid:
    """The release of what was left of authorization ``authorization_id``: ``amount``,
    as the gateway counts it (so that a capture it made but we have not recorded yet
    is not lost)."""

    id: str = field(validator=text(MAX_ID_LENGTH))
    authorization_id: str
    amount: Money = field(validator=_money)


@frozen
class GatewayRefund:
    """A refund of ``amount`` from capture ``capture_id``."""

    id: str = field(validator=text(MAX_ID_LENGTH))
    capture_id: str
    amount: Money


class GatewayEventKind(str, Enum):
    """What a gateway callback reports."""

    AUTHORIZED = "authorized"
    AUTHORIZATION_FAILED = "authorization_failed"
    CAPTURED = "captured"
    VOIDED = "voided"
    REFUNDED = "refunded"


@frozen
class PaymentGatewayEvent:
    """A gateway callback (webhook): ``id`` is stable across its redeliveries.

    ``operation_id`` is the gateway's id of the capture, refund or void (for
    ``authorized`` and ``authorization_failed``, the authorization's id);
    ``capture_id`` names the refunded capture; ``amount`` is the money moved.
    """

    id: str = field(validator=text(MAX_ID_LENGTH))
    kind: GatewayEventKind = field(converter=_kind)
    authorization_id: str = field(validator=text(MAX_ID_LENGTH))
    occurred_at: datetime = field(validator=_aware)
    operation_id: str | None = field(default=None, validator=_optional_id)
    amount: Money | None = field(default=None, validator=_optional_money)
    capture_id: str | None = field(default=None, validator=_optional_id)
    reason: str | None = field(default=None, validator=_optional_text)
