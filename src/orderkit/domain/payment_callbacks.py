"""Applying gateway callbacks (webhooks) to a payment: at most once, in any order.

A callback whose operation is already recorded is "known"; one that cannot apply
yet (a refund before its capture, a void the gateway reports smaller than what is
uncaptured here, anything before the authorization) is parked on the payment and
applied as soon as a later change makes it possible.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING

from orderkit.domain.gateway import (
    CALLBACK_PREFIX,
    GatewayAuthorization,
    GatewayCapture,
    GatewayEventKind,
    GatewayRefund,
    GatewayVoid,
    PaymentGatewayEvent,
)
from orderkit.domain.payment_lifecycle import OPEN_STATES, PaymentState
from orderkit.domain.values import MAX_ID_LENGTH
from orderkit.errors import InvalidField, InvalidInput, InvalidPaymentOperation, InvalidTransition

if TYPE_CHECKING:
    from orderkit.domain.payment import Payment
    from orderkit.money import Money

__all__ = ["apply", "drain", "synthetic_id"]

_PENDING = PaymentState.PENDING.value


def apply(payment: Payment, event: PaymentGatewayEvent, at: datetime) -> str:
    """Apply a callback to ``payment`` at most once; see :meth:`Payment.apply_gateway_event`."""
    if event.id in payment.seen_events:
        return "duplicate"
    if event.authorization_id != payment.authorization_id and payment.authorization_id is not None:
        raise InvalidPaymentOperation(
            f"event {event.id} is for authorization {event.authorization_id}, "
            f"not payment {payment.id}'s"
        )
    outcome = _try(payment, event, at)
    payment.seen_events = (*payment.seen_events, event.id)
    if outcome is None:
        payment.parked_events = (*payment.parked_events, event)
        return "parked"
    drain(payment, at)
    return outcome


def _try(payment: Payment, event: PaymentGatewayEvent, at: datetime) -> str | None:
    """Apply one event; "applied", "known", or None when it cannot apply (yet)."""
    kind, state = event.kind, payment.state
    reference = f"{CALLBACK_PREFIX}{event.id}"
    try:
        if kind is GatewayEventKind.AUTHORIZED:
            if state != _PENDING:
                return "known"
            payment._authorize(GatewayAuthorization(event.authorization_id, _money(event)), at)
        elif kind is GatewayEventKind.AUTHORIZATION_FAILED:
            if state != _PENDING:
                return "known"
            payment.fail(event.reason or "declined", at)
        elif kind is GatewayEventKind.CAPTURED:
            if state == _PENDING:
                return None
            capture = GatewayCapture(_operation(event), event.authorization_id, _money(event))
            if not payment._record_capture(capture, at, reference=reference):
                return "known"
        elif kind is GatewayEventKind.VOIDED:
            if payment.void_record is not None:
                return "known" if payment.void_record.id == _operation(event) else None
            if state not in OPEN_STATES:
                return None  # not authorized yet, or a void the record contradicts
            void = GatewayVoid(_operation(event), event.authorization_id, _money(event))
            payment._record_void(void, at)
        else:
            if event.capture_id is None or payment._capture(event.capture_id) is None:
                return None
            refund = GatewayRefund(_operation(event), event.capture_id, _money(event))
            if not payment._record_refund(refund, at, reference=reference):
                return "known"
    except (InvalidPaymentOperation, InvalidInput, InvalidTransition):
        # it contradicts what is recorded (a capture after our void, say): keep it
        # parked where an operator can see it rather than bend the money rules
        return None
    return "applied"


def drain(payment: Payment, at: datetime) -> None:
    """Apply every parked callback that can apply now, until none can."""
    progress = True
    while progress and payment.parked_events:
        progress = False
        for parked in payment.parked_events:
            if _try(payment, parked, at) is not None:
                payment.parked_events = tuple(p for p in payment.parked_events if p is not parked)
                progress = True
                break


def synthetic_id(kind: str, operation_id: str) -> str:
    """An event id for a result of our own call kept as a parked callback."""
    text_id = f"{kind}:{operation_id}"
    if len(text_id) <= MAX_ID_LENGTH:
        return text_id
    return f"{kind}:" + hashlib.sha256(operation_id.encode()).hexdigest()[:40]


def _money(event: PaymentGatewayEvent) -> Money:
    if event.amount is None:
        raise InvalidField("this kind of event needs an amount", field="amount", value=None)
    return event.amount


def _operation(event: PaymentGatewayEvent) -> str:
    if not event.operation_id:
        raise InvalidField(
            "this kind of event needs the gateway's operation id", field="operation_id", value=None
        )
    return event.operation_id
