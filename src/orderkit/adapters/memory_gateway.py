"""The in-memory reference payment gateway: a complete, thread-safe gateway with test tokens.

It keeps authorizations, captures and refunds with the same rules a real gateway
enforces (no over-capture, no capture after a void, no refund beyond a capture),
honours idempotency keys like Stripe (same key and arguments: the first result,
declines included; other arguments: :class:`IdempotencyConflict`), and queues the
callbacks (webhooks) a real gateway would send, for :meth:`take_callbacks`.

Test tokens (matched by prefix, so ``tok_decline_42`` declines too):

=============================  ==========================================================
token                          behaviour
=============================  ==========================================================
``tok_decline``                authorize raises ``PaymentDeclined("card_declined")``
``tok_insufficient_funds``     authorize raises ``PaymentDeclined("insufficient_funds")``
``tok_timeout_after_success``  each operation's first call succeeds at the gateway, then
                               raises ``GatewayUnavailable``; its retry with the same key
                               returns the result (nothing moves twice)
``tok_duplicate_callback``     approved; every callback about the payment is queued twice
anything else                  approved (``tok_approve``, ``tok_visa``, ...)
=============================  ==========================================================

Ids and the optional random outages (``unavailable_rate``) come from a
``random.Random(seed)``, so a run is repeatable.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

from attrs import define, field

from orderkit.domain.payment import (
    GatewayAuthorization,
    GatewayCapture,
    GatewayEventKind,
    GatewayRefund,
    GatewayVoid,
    PaymentGatewayEvent,
)
from orderkit.domain.values import MAX_ID_LENGTH, check_payment_token, check_text
from orderkit.errors import (
    GatewayUnavailable,
    IdempotencyConflict,
    InvalidField,
    InvalidPaymentOperation,
    PaymentDeclined,
)
from orderkit.money import Money
from orderkit.ports import Clock

__all__ = ["TEST_TOKENS", "MemoryGateway"]

T = TypeVar("T")

TEST_TOKENS = {
    "tok_approve": "approved",
    "tok_decline": "declined: card_declined",
    "tok_insufficient_funds": "declined: insufficient_funds",
    "tok_timeout_after_success": "succeeds, then the call raises GatewayUnavailable once per key",
    "tok_duplicate_callback": "approved; every callback is queued twice",
}
"""The documented test tokens and what each does."""

_DECLINES = {"tok_decline": "card_declined", "tok_insufficient_funds": "insufficient_funds"}


@define
class _Authorization:
    amount: Money
    token: str
    captured: Money
    voided: bool = False


@define
class _Capture:
    authorization_id: str
    amount: Money
    refunded: Money


@define
class _Remembered:
    """What an idempotency key was first used for, and how that call ended."""

    request: tuple[Any, ...]
    result: object = None
    error: Exception | None = None
    unanswered: bool = False  # the first call "timed out" after succeeding
    retries: int = field(default=0)


class MemoryGateway:
    """A payment gateway held in memory; see the module docstring for the test tokens.

    ``unavailable_rate`` (0 to 1) makes that share of calls fail with
    :class:`GatewayUnavailable` *before* doing anything, drawn from the seeded
    generator. ``clock`` stamps callbacks (the system clock if omitted).
    """

    def __init__(
        self, *, seed: int = 0, unavailable_rate: float = 0.0, clock: Clock | None = None
    ) -> None:
        if not 0.0 <= unavailable_rate <= 1.0:
            raise InvalidField(
                "must be from 0 to 1", field="unavailable_rate", value=unavailable_rate
            )
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._clock = clock
        self.unavailable_rate = unavailable_rate
        self._keys: dict[str, _Remembered] = {}
        self._authorizations: dict[str, _Authorization] = {}
        self._captures: dict[str, _Capture] = {}
        self._refunds: dict[str, GatewayRefund] = {}
        self._callbacks: list[PaymentGatewayEvent] = []
        self.calls = 0

    # -- the PaymentGateway port -------------------------------------------------------------

    def authorize(self, amount: Money, token: str, *, idempotency_key: str) -> GatewayAuthorization:
        """Hold ``amount`` on ``token``'s payment method (see the test tokens)."""
        _positive(amount)
        check_payment_token(token)

        def run() -> GatewayAuthorization:
            for prefix, reason in _DECLINES.items():
                if token.startswith(prefix):
                    raise PaymentDeclined(reason)
            authorization_id = self._new_id("auth")
            self._authorizations[authorization_id] = _Authorization(
                amount, token, Money.zero(amount.currency)
            )
            self._callback(GatewayEventKind.AUTHORIZED, authorization_id, authorization_id, amount)
            return GatewayAuthorization(authorization_id, amount)

        return self._once(idempotency_key, ("authorize", amount, token), token, run)

    def capture(
        self, authorization_id: str, amount: Money, *, idempotency_key: str
    ) -> GatewayCapture:
        """Charge ``amount`` of the authorization; several partial captures are allowed."""
        _positive(amount)
        authorization = self._authorization(authorization_id)

        def run() -> GatewayCapture:
            if authorization.voided:
                raise InvalidPaymentOperation(f"authorization {authorization_id} is voided")
            rest = authorization.amount - authorization.captured
            if amount.currency != rest.currency or amount > rest:
                raise InvalidPaymentOperation(
                    f"cannot capture {amount} of authorization {authorization_id}: {rest} left"
                )
            capture_id = self._new_id("cap")
            authorization.captured = authorization.captured + amount
            self._captures[capture_id] = _Capture(
                authorization_id, amount, Money.zero(amount.currency)
            )
            self._callback(
                GatewayEventKind.CAPTURED, authorization_id, capture_id, amount, authorization.token
            )
            return GatewayCapture(capture_id, authorization_id, amount)

        request = ("capture", authorization_id, amount)
        return self._once(idempotency_key, request, authorization.token, run)

    def void(self, authorization_id: str, *, idempotency_key: str) -> GatewayVoid:
        """Release what is left of the authorization; it cannot be captured afterwards."""
        authorization = self._authorization(authorization_id)

        def run() -> GatewayVoid:
            if authorization.voided:
                raise InvalidPaymentOperation(f"authorization {authorization_id} is already voided")
            if authorization.captured == authorization.amount:
                raise InvalidPaymentOperation(
                    f"authorization {authorization_id} is fully captured; refund instead"
                )
            authorization.voided = True
            void_id = self._new_id("void")
            rest = authorization.amount - authorization.captured
            self._callback(
                GatewayEventKind.VOIDED, authorization_id, void_id, rest, authorization.token
            )
            return GatewayVoid(void_id, authorization_id, rest)

        request = ("void", authorization_id)
        return self._once(idempotency_key, request, authorization.token, run)

    def refund(self, capture_id: str, amount: Money, *, idempotency_key: str) -> GatewayRefund:
        """Pay back ``amount`` of a capture; several partial refunds are allowed."""
        _positive(amount)
        check_text(capture_id, field="capture_id", limit=MAX_ID_LENGTH)
        with self._lock:
            capture = self._captures.get(capture_id)
        if capture is None:
            raise InvalidPaymentOperation(f"the gateway has no capture {capture_id!r}")
        token = self._authorizations[capture.authorization_id].token

        def run() -> GatewayRefund:
            left = capture.amount - capture.refunded
            if amount.currency != left.currency or amount > left:
                raise InvalidPaymentOperation(
                    f"cannot refund {amount} of capture {capture_id}: {left} left"
                )
            refund_id = self._new_id("re")
            capture.refunded = capture.refunded + amount
            refund = GatewayRefund(refund_id, capture_id, amount)
            self._refunds[refund_id] = refund
            self._callback(
                GatewayEventKind.REFUNDED,
                capture.authorization_id,
                refund_id,
                amount,
                token,
                capture_id=capture_id,
            )
            return refund

        request = ("refund", capture_id, amount)
        return self._once(idempotency_key, request, token, run)

    # -- what tests and simulations read ------------------------------------------------------

    def take_callbacks(self) -> list[PaymentGatewayEvent]:
        """The callbacks queued since the last call, oldest first (and forget them)."""
        with self._lock:
            taken, self._callbacks = self._callbacks, []
        return taken

    def authorization_count(self) -> int:
        """How many authorizations the gateway has made."""
        with self._lock:
            return len(self._authorizations)

    def captured(self, authorization_id: str) -> Money:
        """How much of an authorization has been captured, by the gateway's own books."""
        return self._authorization(authorization_id).captured

    def refunded(self, authorization_id: str) -> Money:
        """How much of an authorization's captures has been refunded."""
        authorization = self._authorization(authorization_id)
        with self._lock:
            refunds = [
                c.refunded
                for c in self._captures.values()
                if c.authorization_id == authorization_id
            ]
        return Money.sum(refunds, authorization.amount.currency)

    def is_voided(self, authorization_id: str) -> bool:
        """True once the authorization's rest was released."""
        return self._authorization(authorization_id).voided

    # -- internals ------------------------------------------------------------------------------

    def _once(self, key: str, request: tuple[Any, ...], token: str, run: Callable[[], T]) -> T:
        """Run ``run`` at most once per idempotency key, under the gateway's lock."""
        check_text(key, field="idempotency_key", limit=MAX_ID_LENGTH)
        with self._lock:
            self.calls += 1
            remembered = self._keys.get(key)
            if remembered is not None:
                if remembered.request != request:
                    existing = str(getattr(remembered.result, "id", remembered.request[0]))
                    raise IdempotencyConflict(key, existing, what="gateway request")
                remembered.unanswered = False
                if remembered.error is not None:
                    raise remembered.error
                return remembered.result  # type: ignore[return-value]
            if self.unavailable_rate and self._random.random() < self.unavailable_rate:
                raise GatewayUnavailable("the gateway did not answer (simulated outage)")
            remembered = _Remembered(request)
            try:
                remembered.result = run()
            except PaymentDeclined as error:
                remembered.error = error
            except InvalidPaymentOperation:
                raise  # a refused request moved nothing: the key stays free
            self._keys[key] = remembered
            if remembered.error is not None:
                raise remembered.error
            if token.startswith("tok_timeout_after_success"):
                remembered.unanswered = True
                raise GatewayUnavailable("the gateway timed out (after doing the work)")
            return remembered.result  # type: ignore[return-value]

    def _authorization(self, authorization_id: str) -> _Authorization:
        check_text(authorization_id, field="authorization_id", limit=MAX_ID_LENGTH)
        with self._lock:
            authorization = self._authorizations.get(authorization_id)
        if authorization is None:
            raise InvalidPaymentOperation(f"the gateway has no authorization {authorization_id!r}")
        return authorization

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{self._random.getrandbits(64):016x}"

    def _callback(
        self,
        kind: GatewayEventKind,
        authorization_id: str,
        operation_id: str,
        amount: Money,
        token: str | None = None,
        *,
        capture_id: str | None = None,
    ) -> None:
        now = self._clock.now() if self._clock else datetime.now(timezone.utc)
        event = PaymentGatewayEvent(
            id=self._new_id("evt"),
            kind=kind,
            authorization_id=authorization_id,
            occurred_at=now,
            operation_id=operation_id,
            amount=amount,
            capture_id=capture_id,
        )
        self._callbacks.append(event)
        token = token or self._authorizations[authorization_id].token
        if token.startswith("tok_duplicate_callback"):
            self._callbacks.append(event)


def _positive(amount: Money) -> None:
    if not isinstance(amount, Money) or amount.minor_units <= 0:
        raise InvalidField("must be positive Money", field="amount", value=amount)
