"""The payment's states, the status an order shows, and the payment lifecycle graph."""

from __future__ import annotations

from enum import Enum

from orderkit.domain.lifecycle import LifecycleDefinition, TransitionSpec

__all__ = ["OPEN_STATES", "PAYMENT_LIFECYCLE", "PaymentState", "PaymentStatus"]


class PaymentState(str, Enum):
    """The states of a payment's lifecycle. ``Payment.state`` holds the plain value."""

    PENDING = "pending"
    AUTHORIZED = "authorized"
    PARTIALLY_CAPTURED = "partially_captured"
    CAPTURED = "captured"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"
    FAILED = "failed"


class PaymentStatus(str, Enum):
    """What an order shows about its payment, derived from the amounts (never stored)."""

    UNPAID = "unpaid"
    AUTHORIZED = "authorized"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


_P = PaymentState
OPEN_STATES = (_P.AUTHORIZED.value, _P.PARTIALLY_CAPTURED.value)
"""States in which the authorization is open: more can be captured, or the rest voided."""
_SETTLED = [_P.CAPTURED.value, _P.PARTIALLY_REFUNDED.value]
PAYMENT_LIFECYCLE = LifecycleDefinition(
    aggregate="payment",
    states=[state.value for state in PaymentState],
    initial=_P.PENDING.value,
    final=[_P.REFUNDED.value, _P.VOIDED.value, _P.FAILED.value],
    transitions=[
        TransitionSpec("authorize", [_P.PENDING.value], _P.AUTHORIZED.value),
        TransitionSpec("fail", [_P.PENDING.value], _P.FAILED.value),
        TransitionSpec("capture_part", OPEN_STATES, _P.PARTIALLY_CAPTURED.value),
        TransitionSpec("capture_rest", OPEN_STATES, _P.CAPTURED.value),
        TransitionSpec("void", [_P.AUTHORIZED.value], _P.VOIDED.value),
        # voiding what is left after partial captures resolves the authorization
        TransitionSpec("void_rest", [_P.PARTIALLY_CAPTURED.value], _P.CAPTURED.value),
        # resolving it after part of the captured money went back already
        TransitionSpec(
            "capture_rest_after_refund",
            [_P.PARTIALLY_CAPTURED.value],
            _P.PARTIALLY_REFUNDED.value,
        ),
        TransitionSpec(
            "void_rest_after_refund", [_P.PARTIALLY_CAPTURED.value], _P.PARTIALLY_REFUNDED.value
        ),
        TransitionSpec("void_rest_all_refunded", [_P.PARTIALLY_CAPTURED.value], _P.REFUNDED.value),
        # a shipped part may come back before the rest ships: refund it, stay open
        TransitionSpec("refund_open", [_P.PARTIALLY_CAPTURED.value], _P.PARTIALLY_CAPTURED.value),
        TransitionSpec("refund_part", _SETTLED, _P.PARTIALLY_REFUNDED.value),
        TransitionSpec("refund_rest", _SETTLED, _P.REFUNDED.value),
    ],
)
"""The payment graph: pending → authorized → partially captured → captured →
partially refunded → refunded, with voided and failed."""
