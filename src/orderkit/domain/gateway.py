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

from orderkit.domain.values import MAX_ID_LENGTH, check_text, text
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
    when the gateway says (None: whatever the payment has not captured)."""

    id: str = field(validator=text(MAX_ID_LENGTH))
    authorization_id: str
    amount: Money | None = None


@frozen
class GatewayRefund:
    """A refund of ``amount`` from capture ``capture_id``."""

    id: str = field(validator=text(MAX_ID_LENGTH))
    capture_id: str
    amount: Money


def _optional_id(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        check_text(value, field=attribute.name, limit=MAX_ID_LENGTH)


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
    kind: GatewayEventKind = field(converter=GatewayEventKind)
    authorization_id: str = field(validator=text(MAX_ID_LENGTH))
    occurred_at: datetime
    operation_id: str | None = field(default=None, validator=_optional_id)
    amount: Money | None = None
    capture_id: str | None = field(default=None, validator=_optional_id)
    reason: str | None = field(default=None, validator=_optional_id)
