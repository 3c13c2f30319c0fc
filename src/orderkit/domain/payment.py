"""The Payment aggregate: one authorization on the customer's payment method, its
captures, refunds and void, and the gateway's results and callbacks it records.

Money rules (checked by every method, which leaves the payment untouched on failure):

* captured <= authorized; refunded <= captured, per capture and in total;
* the authorization is resolved (fully captured, or its rest voided) at most once,
  and nothing is captured or voided after that;
* every gateway operation (capture, refund, void) is recorded once, by its gateway
  id, however many times it is reported: by our own call, its retry, or callbacks.

A payment never holds a card number: it holds the gateway's token and ids. The
gateway is called by the service layer (:mod:`orderkit.service.payments`); the
payment only records results, so the domain stays free of I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import attrs
from attrs import define, field, setters

from orderkit.domain import payment_callbacks
from orderkit.domain.events import (
    DomainEvent,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentFailed,
    PaymentRefunded,
    PaymentVoided,
)
from orderkit.domain.gateway import (
    CALLBACK_PREFIX,
    GatewayAuthorization,
    GatewayCapture,
    GatewayEventKind,
    GatewayRefund,
    GatewayVoid,
    PaymentGatewayEvent,
)
from orderkit.domain.order import Order
from orderkit.domain.payment_lifecycle import (
    OPEN_STATES,
    PAYMENT_LIFECYCLE,
    PaymentState,
    PaymentStatus,
)
from orderkit.domain.payment_records import (
    CapturePlan,
    CaptureRecord,
    RefundPlan,
    RefundRecord,
    VoidRecord,
)
from orderkit.domain.values import MAX_ID_LENGTH, check_payment_token, check_text, text
from orderkit.errors import (
    CurrencyMismatch,
    InvalidField,
    InvalidPaymentOperation,
)
from orderkit.money import Money

__all__ = [
    "CALLBACK_PREFIX",
    "PAYMENT_LIFECYCLE",
    "CaptureRecord",
    "GatewayAuthorization",
    "GatewayCapture",
    "GatewayEventKind",
    "GatewayRefund",
    "GatewayVoid",
    "Payment",
    "PaymentGatewayEvent",
    "PaymentState",
    "PaymentStatus",
    "RefundPlan",
    "RefundRecord",
    "VoidRecord",
    "lines_share",
]


_LIFECYCLE = PAYMENT_LIFECYCLE.build()

_P = PaymentState
_UNRESOLVED = frozenset({_P.PENDING.value, *OPEN_STATES})


def _tuple(value: Iterable[object]) -> tuple[object, ...]:
    return tuple(value)


@define(eq=False, on_setattr=setters.NO_OP)
class Payment:
    """The payment of an order. Create it with :meth:`start`; identity is the ``id``."""

    id: str = field(validator=text(MAX_ID_LENGTH))
    order_id: str
    amount: Money
    token: str = field(repr=False)
    created_at: datetime
    state: str = PaymentState.PENDING.value
    authorization_id: str | None = None
    captures: tuple[CaptureRecord, ...] = field(default=(), converter=_tuple)
    refunds: tuple[RefundRecord, ...] = field(default=(), converter=_tuple)
    void_record: VoidRecord | None = None
    refund_plans: tuple[RefundPlan, ...] = field(default=(), converter=_tuple, repr=False)
    capture_plans: tuple[CapturePlan, ...] = field(default=(), converter=_tuple, repr=False)
    failure_reason: str | None = None
    seen_events: tuple[str, ...] = field(default=(), converter=_tuple, repr=False)
    parked_events: tuple[PaymentGatewayEvent, ...] = field(default=(), converter=_tuple, repr=False)
    version: int = 0
    pending_events: list[DomainEvent] = field(factory=list, repr=False)

    @classmethod
    def start(
        cls, *, payment_id: str, order_id: str, amount: Money, token: str, at: datetime
    ) -> Payment:
        """A pending payment of ``amount`` with a gateway ``token`` (never a card number).

        Raises :class:`InvalidField` for an amount that is not positive Money and
        :class:`~orderkit.errors.CardNumberRejected` for a token that is a card number.
        """
        if not isinstance(amount, Money) or amount.is_negative() or amount.is_zero():
            raise InvalidField("must be positive Money", field="amount", value=amount)
        check_payment_token(token)
        return cls(id=payment_id, order_id=order_id, amount=amount, token=token, created_at=at)

    # -- derived amounts ----------------------------------------------------------------------

    @property
    def currency(self) -> str:
        """The payment's currency."""
        return self.amount.currency

    @property
    def authorized(self) -> Money:
        """The amount held by the authorization (zero before or without one)."""
        held = self.state not in (_P.PENDING.value, _P.FAILED.value)
        return self.amount if held else Money.zero(self.currency)

    @property
    def captured(self) -> Money:
        """The sum of all captures."""
        return Money.sum((c.amount for c in self.captures), self.currency)

    @property
    def refunded(self) -> Money:
        """The sum of all refunds."""
        return Money.sum((r.amount for r in self.refunds), self.currency)

    @property
    def voided(self) -> Money:
        """The uncaptured amount released by the void (zero if none)."""
        return self.void_record.amount if self.void_record else Money.zero(self.currency)

    @property
    def is_resolved(self) -> bool:
        """True once the authorization is fully captured, voided or failed."""
        return self.state not in _UNRESOLVED

    @property
    def capturable(self) -> Money:
        """What can still be captured: the authorization's uncaptured rest, while open."""
        if self.state not in OPEN_STATES:
            return Money.zero(self.currency)
        return self.amount - self.captured

    @property
    def refundable(self) -> Money:
        """What can still be refunded: captured minus refunded."""
        return self.captured - self.refunded

    @property
    def free_to_refund(self) -> Money:
        """What can still be planned for refund: refundable less planned parts not yet
        recorded."""
        outstanding = Money.sum(
            (self._outstanding(capture.id) for capture in self.captures), self.currency
        )
        return self.refundable - outstanding

    def capture_plan(self, reference: str) -> CapturePlan | None:
        """The capture planned under ``reference``, if any."""
        return next((p for p in self.capture_plans if p.reference == reference), None)

    def outstanding_captures(self) -> tuple[CapturePlan, ...]:
        """Planned captures whose result is not recorded yet (none once the authorization
        is resolved: nothing more can be captured)."""
        if self.state not in OPEN_STATES:
            return ()
        done = {capture.reference for capture in self.captures}
        return tuple(plan for plan in self.capture_plans if plan.reference not in done)

    @property
    def free_to_capture(self) -> Money:
        """What can still be planned for capture: capturable less outstanding plans."""
        planned = Money.sum((p.amount for p in self.outstanding_captures()), self.currency)
        return self.capturable - planned

    def charged_units(self) -> dict[str, int]:
        """Units per line captured or planned for capture."""
        units = self.captured_units()
        for plan in self.outstanding_captures():
            for line_id, count in plan.units:
                units[line_id] = units.get(line_id, 0) + count
        return units

    @property
    def shipping_charged(self) -> bool:
        """True once a capture paid, or a planned capture is to pay, the shipping charge."""
        return self.shipping_captured or any(
            plan.includes_shipping for plan in self.outstanding_captures()
        )

    def plan_capture(
        self,
        reference: str,
        amount: Money,
        at: datetime,
        *,
        units: Mapping[str, int] | None = None,
        includes_shipping: bool = False,
    ) -> CapturePlan:
        """Decide a capture before calling the gateway, under ``reference``.

        Raises :class:`InvalidPaymentOperation` when the reference was used before,
        the authorization is not open, the amount is not positive or more than is free
        to capture, or the shipping charge is already charged.
        """
        check_text(reference, field="reference", limit=MAX_ID_LENGTH)
        self._same_money(amount, "capture")
        if self.capture_plan(reference) is not None:
            raise InvalidPaymentOperation(
                f"payment {self.id} already has a capture planned under {reference!r}"
            )
        if self.state not in OPEN_STATES:
            raise InvalidPaymentOperation(
                f"payment {self.id} is {self.state!r}: nothing can be captured"
            )
        free = self.free_to_capture
        if amount.minor_units <= 0 or amount > free:
            raise InvalidPaymentOperation(
                f"payment {self.id}: cannot capture {amount}, {free} is free to capture"
            )
        if includes_shipping and self.shipping_charged:
            raise InvalidPaymentOperation(f"payment {self.id}: shipping is charged already")
        plan = CapturePlan(
            reference, amount, tuple(sorted((units or {}).items())), includes_shipping, at
        )
        self.capture_plans = (*self.capture_plans, plan)
        return plan

    def drop_plan(self, reference: str) -> bool:
        """Forget the capture or refund planned under ``reference`` after the gateway
        refused it for good (nothing moved); True when there was one."""
        captures = tuple(p for p in self.capture_plans if p.reference != reference)
        refunds = tuple(p for p in self.refund_plans if p.reference != reference)
        changed = len(captures) != len(self.capture_plans) or len(refunds) != len(self.refund_plans)
        self.capture_plans, self.refund_plans = captures, refunds
        return changed

    def refund_plan(self, reference: str) -> RefundPlan | None:
        """The refund planned under ``reference``, if any."""
        return next((p for p in self.refund_plans if p.reference == reference), None)

    def plan_refund(
        self, reference: str, amount: Money, at: datetime, *, only: str | None = None
    ) -> RefundPlan:
        """Decide, before calling the gateway, which captures refund ``amount`` (oldest
        first) and keep the plan under ``reference``.

        Parts already planned under other references and not yet recorded count as
        taken. With ``only``, just that capture is refunded. Raises
        :class:`InvalidPaymentOperation` when the reference was planned before or the
        amount is more than can be refunded.
        """
        check_text(reference, field="reference", limit=MAX_ID_LENGTH)
        self._same_money(amount, "refund")
        if amount.minor_units <= 0:
            raise InvalidPaymentOperation(f"a refund must be positive, not {amount}")
        if self.refund_plan(reference) is not None:
            raise InvalidPaymentOperation(
                f"payment {self.id} already has a refund planned under {reference!r}"
            )
        left, parts = amount, []
        for capture in self.captures:
            if only is not None and capture.id != only:
                continue
            if left.is_zero():
                break
            available = self.refundable_of(capture.id) - self._outstanding(capture.id)
            part = min(left, available, key=lambda money: money.amount)
            if part.minor_units > 0:
                parts.append((capture.id, part))
                left = left - part
        if not left.is_zero():
            raise InvalidPaymentOperation(
                f"payment {self.id}: cannot refund {amount}, {amount - left} is refundable now"
            )
        plan = RefundPlan(reference, tuple(parts), at)
        self.refund_plans = (*self.refund_plans, plan)
        return plan

    def _outstanding(self, capture_id: str) -> Money:
        """Planned refund parts of ``capture_id`` not yet recorded."""
        recorded = {(r.reference, r.capture_id) for r in self.refunds}
        return Money.sum(
            (
                part
                for plan in self.refund_plans
                for planned_capture, part in plan.parts
                if planned_capture == capture_id and (plan.reference, capture_id) not in recorded
            ),
            self.currency,
        )

    def refundable_of(self, capture_id: str) -> Money:
        """What can still be refunded from capture ``capture_id``."""
        capture = self._capture(capture_id)
        if capture is None:
            raise InvalidPaymentOperation(
                f"payment {self.id} has no capture {capture_id!r} to refund"
            )
        refunded = Money.sum(
            (r.amount for r in self.refunds if r.capture_id == capture_id), self.currency
        )
        return capture.amount - refunded

    @property
    def status(self) -> PaymentStatus:
        """The payment status an order shows: unpaid, authorized, partially paid, paid,
        partially refunded or refunded."""
        captured = self.captured
        if captured.is_zero():
            if self.state in OPEN_STATES:
                return PaymentStatus.AUTHORIZED
            return PaymentStatus.UNPAID
        refunded = self.refunded
        if refunded == captured:
            return PaymentStatus.REFUNDED
        if not refunded.is_zero():
            return PaymentStatus.PARTIALLY_REFUNDED
        return PaymentStatus.PAID if self.is_resolved else PaymentStatus.PARTIALLY_PAID

    def captured_units(self) -> dict[str, int]:
        """Units per line whose share has been captured (by line-share captures)."""
        units: dict[str, int] = {}
        for capture in self.captures:
            for line_id, count in capture.units:
                units[line_id] = units.get(line_id, 0) + count
        return units

    @property
    def shipping_captured(self) -> bool:
        """True once a line-share capture included the shipping charge."""
        return any(c.includes_shipping for c in self.captures)

    # -- changes ----------------------------------------------------------------------------

    def authorize(self, authorization: GatewayAuthorization, at: datetime) -> None:
        """Record the gateway's approval of the whole amount (and apply any callbacks
        that were waiting for it)."""
        self._authorize(authorization, at)
        self._drain_parked(at)

    def _authorize(self, authorization: GatewayAuthorization, at: datetime) -> None:
        """Record the approval (see :meth:`authorize`), without draining parked events."""
        self._same_money(authorization.amount, "authorization")
        if authorization.amount != self.amount:
            raise InvalidPaymentOperation(
                f"payment {self.id} asked for {self.amount} but the gateway authorized "
                f"{authorization.amount}"
            )
        _LIFECYCLE.fire(self, "authorize")
        self.authorization_id = authorization.id
        self.pending_events.append(
            PaymentAuthorized(at, self.order_id, self.id, self.amount, authorization.id)
        )

    def fail(self, reason: str, at: datetime) -> None:
        """Record that the authorization was declined for ``reason``."""
        check_text(reason, field="reason", limit=MAX_ID_LENGTH)
        _LIFECYCLE.fire(self, "fail")
        self.failure_reason = reason
        self.pending_events.append(PaymentFailed(at, self.order_id, self.id, reason))

    def _record_capture(
        self,
        capture: GatewayCapture,
        at: datetime,
        *,
        reference: str,
        units: Mapping[str, int] | None = None,
        includes_shipping: bool = False,
    ) -> bool:
        """Record a capture (see :meth:`record_capture`), without draining parked events."""
        known = self._capture(capture.id)
        if known is not None:
            if not known.reference.startswith(CALLBACK_PREFIX) or reference.startswith(
                CALLBACK_PREFIX
            ):
                return False
            # A callback recorded it before our own call's answer: keep what the capture was
            # for (the shipment's units and shipping), so later shares are computed right.
            relabelled = attrs.evolve(
                known,
                reference=reference,
                units=tuple(sorted((units or {}).items())),
                includes_shipping=includes_shipping,
            )
            self.captures = tuple(relabelled if c is known else c for c in self.captures)
            return True
        self._same_money(capture.amount, "capture")
        self._own_authorization(capture.authorization_id)
        if not capture.amount.minor_units > 0:
            raise InvalidPaymentOperation(f"a capture must be positive, not {capture.amount}")
        rest = self.capturable
        trigger = "capture_part"
        if capture.amount == rest:
            trigger = "capture_rest" if self.refunds == () else "capture_rest_after_refund"
        if self.state in OPEN_STATES and capture.amount > rest:
            raise InvalidPaymentOperation(
                f"payment {self.id}: cannot capture {capture.amount}, only {rest} is capturable"
            )
        _LIFECYCLE.fire(self, trigger)
        record = CaptureRecord(
            capture.id,
            capture.amount,
            reference,
            at,
            tuple(sorted((units or {}).items())),
            includes_shipping,
        )
        self.captures = (*self.captures, record)
        self.pending_events.append(
            PaymentCaptured(at, self.order_id, self.id, capture.id, capture.amount, reference)
        )
        return True

    def _record_void(self, void: GatewayVoid, at: datetime) -> bool:
        """Record a void (see :meth:`record_void`), without draining parked events."""
        if self.void_record is not None and self.void_record.id == void.id:
            return False
        self._own_authorization(void.authorization_id)
        rest = self.capturable
        if void.amount != rest:
            raise InvalidPaymentOperation(
                f"payment {self.id}: the gateway released {void.amount} but {rest} is "
                "uncaptured here (a capture not yet recorded?)"
            )
        trigger = "void"
        if self.state == _P.PARTIALLY_CAPTURED.value:
            refunded = self.refunded
            trigger = "void_rest"
            if refunded == self.captured:
                trigger = "void_rest_all_refunded"
            elif not refunded.is_zero():
                trigger = "void_rest_after_refund"
        _LIFECYCLE.fire(self, trigger)
        self.void_record = VoidRecord(void.id, rest, at)
        self.pending_events.append(PaymentVoided(at, self.order_id, self.id, rest))
        return True

    def _record_refund(self, refund: GatewayRefund, at: datetime, *, reference: str) -> bool:
        """Record a refund (see :meth:`record_refund`), without draining parked events."""
        known = next((r for r in self.refunds if r.id == refund.id), None)
        if known is not None:
            if not known.reference.startswith(CALLBACK_PREFIX) or reference.startswith(
                CALLBACK_PREFIX
            ):
                return False
            relabelled = attrs.evolve(known, reference=reference)
            self.refunds = tuple(relabelled if r is known else r for r in self.refunds)
            return True
        self._same_money(refund.amount, "refund")
        if not refund.amount.minor_units > 0:
            raise InvalidPaymentOperation(f"a refund must be positive, not {refund.amount}")
        left = self.refundable_of(refund.capture_id)
        if refund.amount > left:
            raise InvalidPaymentOperation(
                f"payment {self.id}: cannot refund {refund.amount} of capture "
                f"{refund.capture_id}, only {left} is left"
            )
        if self.state == _P.PARTIALLY_CAPTURED.value:
            trigger = "refund_open"
        else:
            trigger = "refund_rest" if refund.amount == self.refundable else "refund_part"
        _LIFECYCLE.fire(self, trigger)
        self.refunds = (
            *self.refunds,
            RefundRecord(refund.id, refund.capture_id, refund.amount, reference, at),
        )
        self.pending_events.append(
            PaymentRefunded(
                at, self.order_id, self.id, refund.id, refund.capture_id, refund.amount, reference
            )
        )
        return True

    def record_capture(
        self,
        capture: GatewayCapture,
        at: datetime,
        *,
        reference: str,
        units: Mapping[str, int] | None = None,
        includes_shipping: bool = False,
    ) -> bool:
        """Record a capture; False (and no change) when it is already recorded.

        Raises :class:`InvalidPaymentOperation` when it is for another
        authorization or would capture more than is capturable, and
        :class:`~orderkit.errors.InvalidTransition` once the authorization is resolved.
        Parked callbacks it unblocks (a refund of this capture) are applied after it.
        """
        changed = self._record_capture(
            capture, at, reference=reference, units=units, includes_shipping=includes_shipping
        )
        self._drain_parked(at)
        return changed

    def record_void(self, void: GatewayVoid, at: datetime) -> bool:
        """Record the release of the uncaptured rest; False when already recorded.

        With nothing captured the payment is voided; after partial captures the
        authorization is resolved and the payment counts as captured.
        """
        known = self.void_record is not None and self.void_record.id == void.id
        if not known and void.amount != self.capturable:
            # The gateway released less than is uncaptured here: a capture it made is not
            # recorded yet. Keep the void as a parked callback; it applies after that capture.
            event = PaymentGatewayEvent(
                id=payment_callbacks.synthetic_id("void", void.id),
                kind=GatewayEventKind.VOIDED,
                authorization_id=void.authorization_id,
                occurred_at=at,
                operation_id=void.id,
                amount=void.amount,
            )
            if event.id in self.seen_events:
                return False
            self.seen_events = (*self.seen_events, event.id)
            self.parked_events = (*self.parked_events, event)
            return True
        changed = self._record_void(void, at)
        self._drain_parked(at)
        return changed

    def record_refund(self, refund: GatewayRefund, at: datetime, *, reference: str) -> bool:
        """Record a refund from one capture; False when already recorded.

        Raises :class:`InvalidPaymentOperation` for an unknown capture or more
        than that capture has left, and :class:`~orderkit.errors.InvalidTransition`
        before anything was captured.
        """
        changed = self._record_refund(refund, at, reference=reference)
        self._drain_parked(at)
        return changed

    def apply_gateway_event(self, event: PaymentGatewayEvent, at: datetime) -> str:
        """Apply a gateway callback at most once; returns what happened:

        * ``"duplicate"``: this event id was seen before; nothing changes;
        * ``"known"``: the operation it reports is already recorded (our own call
          got there first, or an event arrived late); only the id is remembered;
        * ``"parked"``: it cannot apply yet (a refund before its capture, a capture
          before the authorization); it is kept and applied when it can;
        * ``"applied"``: it was recorded (and any parked events it unblocked too).
        """
        return payment_callbacks.apply(self, event, at)

    def _drain_parked(self, at: datetime) -> None:
        payment_callbacks.drain(self, at)

    def _capture(self, capture_id: str) -> CaptureRecord | None:
        return next((c for c in self.captures if c.id == capture_id), None)

    def _own_authorization(self, authorization_id: str) -> None:
        if authorization_id != self.authorization_id:
            raise InvalidPaymentOperation(
                f"payment {self.id} has authorization {self.authorization_id}, "
                f"not {authorization_id}"
            )

    def _same_money(self, amount: Money, what: str) -> None:
        if not isinstance(amount, Money) or amount.currency != self.currency:
            raise CurrencyMismatch(
                f"the {what} must be Money in {self.currency}", field="amount", value=amount
            )


def lines_share(
    order: Order,
    units: Mapping[str, int],
    *,
    already: Mapping[str, int],
    include_shipping: bool,
) -> Money:
    """The part of ``order``'s total that ``units`` (line id → units) account for.

    Each line's total (price * quantity - discount + tax) is split over its units by
    largest remainder; ``already`` says how many units of each line were charged
    before, so the units taken now get the next parts. The shares of all units,
    plus shipping once, add up to the order total exactly. Raises
    :class:`InvalidField` for an unknown line or more units than the line has left.
    """
    total = Money.zero(order.currency)
    for line_id, count in units.items():
        line = order.line(line_id)
        start = already.get(line_id, 0)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidField(
                "must be a whole number >= 0", field=f"units[{line_id}]", value=count
            )
        if start + count > line.quantity:
            raise InvalidField(
                f"line {line_id} has {line.quantity - start} unit(s) left to charge",
                field=f"units[{line_id}]",
                value=count,
            )
        if count:
            parts = line.total.allocate([1] * line.quantity)
            total = total + Money.sum(parts[start : start + count], order.currency)
    if include_shipping:
        total = total + order.shipping_charge
    return total
