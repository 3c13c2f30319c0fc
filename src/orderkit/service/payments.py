"""The payment service: authorize at placement, capture, void, refund, and gateway callbacks.

Reach it as ``shop.payments``. Money moves in two steps, never inside a database
transaction: the gateway is called with an idempotency key derived from what the
movement is *for* (the placement, a shipment's reference, a refund's reference),
then the result is recorded on the payment in one unit of work. A retry of the
same movement, after a timeout or a crash, reuses the key, so the gateway moves
the money once and returns the first result; recording is idempotent by the
gateway's operation id, so our call, its retry and the gateway's callbacks agree
on one record.

Policies run as outbox handlers (so a crash between steps only delays them):
capture at placement (on :class:`PaymentAuthorized`), capture the rest when the
order ships (on :class:`OrderShipped`), and void the rest and refund what was
captured when an order is cancelled (on :class:`OrderCancelled`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from orderkit.domain.events import (
    OrderCancelled,
    OrderLinesCancelled,
    OrderShipped,
    PaymentAuthorized,
    PaymentCaptured,
    ShipmentClaimResolved,
    ShipmentHandedOver,
)
from orderkit.domain.order import Order
from orderkit.domain.payment import (
    GatewayAuthorization,
    GatewayRefund,
    Payment,
    PaymentGatewayEvent,
    PaymentState,
    PaymentStatus,
    RefundPlan,
    lines_share,
)
from orderkit.domain.payment_records import CapturePlan
from orderkit.domain.values import MAX_ID_LENGTH, check_text
from orderkit.errors import (
    ConcurrencyError,
    GatewayUnavailable,
    IdempotencyConflict,
    InvalidField,
    InvalidPaymentOperation,
    PaymentDeclined,
    PaymentError,
    PaymentNotFound,
)
from orderkit.money import Money
from orderkit.ports import Clock, IdSource, PaymentGateway, UnitOfWork, UnitOfWorkFactory
from orderkit.serialization import loads_untrusted
from orderkit.service.dispatch import Dispatcher
from orderkit.service.settings import ShopSettings
from orderkit.service.transaction import dispatch_after_commit, run_and_dispatch

__all__ = ["PaymentService", "gateway_key"]

T = TypeVar("T")
Step = Callable[[Payment, datetime], bool]
"""Records a gateway result on a fresh copy of the payment; True when it changed."""
Plan = Callable[[Payment], Step | None]
Planned = tuple[Money, dict[str, int], bool]
"""A capture to plan: amount, units per line, whether it includes the shipping charge."""
"""Checks a payment and calls the gateway; returns the recording step, or None if nothing to do."""

_OPEN = (PaymentState.AUTHORIZED.value, PaymentState.PARTIALLY_CAPTURED.value)

log = logging.getLogger("orderkit.payments")


def gateway_key(*parts: str) -> str:
    """The idempotency key of one money movement, from what it is for: the parts joined
    by ``:`` when that fits in :data:`MAX_ID_LENGTH` characters, else a digest of them."""
    text = ":".join(parts)
    if len(text) <= MAX_ID_LENGTH:
        return text
    return "orderkit:" + hashlib.sha256(text.encode()).hexdigest()[:40]


class PaymentService:
    """Commands and queries on payments. Reach it as ``shop.payments``.

    Without a gateway (``Shop.open(..., gateway=None)``) orders are placed unpaid
    and the money commands raise :class:`~orderkit.errors.PaymentError`.
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        *,
        gateway: PaymentGateway | None,
        clock: Clock,
        ids: IdSource,
        settings: ShopSettings,
        dispatcher: Dispatcher,
    ) -> None:
        self._uow = uow
        self.gateway = gateway
        self._clock = clock
        self._ids = ids
        self._settings = settings
        self._dispatcher = dispatcher

    # -- queries --------------------------------------------------------------------------------

    def get(self, payment_id: str) -> Payment:
        """The payment ``payment_id``; raises :class:`PaymentNotFound`."""
        check_text(payment_id, field="payment_id", limit=MAX_ID_LENGTH)
        with self._uow() as uow:
            return uow.payments.get(payment_id)

    def for_order(self, order_id: str) -> Sequence[Payment]:
        """The order's payments, oldest first (one per order today)."""
        check_text(order_id, field="order_id", limit=MAX_ID_LENGTH)
        with self._uow() as uow:
            return uow.payments.for_order(order_id)

    def status(self, order_id: str) -> PaymentStatus:
        """The order's derived payment status: unpaid, authorized, partially paid, paid,
        partially refunded or refunded (``unpaid`` when it has no payment)."""
        payments = self.for_order(order_id)
        return payments[-1].status if payments else PaymentStatus.UNPAID

    # -- placement (called by the order service) ------------------------------------------------

    def authorize(self, amount: Money, token: str, *, key: str) -> GatewayAuthorization:
        """Ask the gateway to hold ``amount``, retrying outages with the same key.

        If the gateway answers with an authorization that a failed placement already
        voided (a retry of that request reuses its key), a new one is asked for under
        a key derived from the voided one, so retries stay idempotent.

        Raises :class:`~orderkit.errors.PaymentDeclined` when declined and
        :class:`GatewayUnavailable` when the gateway stayed unreachable.
        """
        gateway = self._require_gateway()
        for _ in range(100):

            def ask(key: str = key) -> GatewayAuthorization:
                return gateway.authorize(amount, token, idempotency_key=key)

            authorization = self._call(ask)
            with self._uow() as uow:
                known = uow.payments.by_authorization(authorization.id)
            if known is None or known.state != PaymentState.VOIDED.value:
                return authorization
            key = gateway_key(key, "after", authorization.id)
        raise PaymentError("the gateway keeps answering with voided authorizations")

    def new_payment(
        self, order: Order, authorization: GatewayAuthorization, now: datetime
    ) -> Payment:
        """A payment of ``order``'s total, already authorized by ``authorization``."""
        payment = Payment.start(
            payment_id=self._ids.new_id("payment"),
            order_id=order.id,
            amount=order.totals.total,
            token=order.payment_token,
            at=now,
        )
        payment.authorize(authorization, now)
        return payment

    def void_unused(self, order: Order, authorization: GatewayAuthorization, key: str) -> None:
        """Release the authorization made for ``order``, which could not be stored (its
        stock went meanwhile), and keep a voided payment of it, so that a retry of the
        request knows to ask for a fresh authorization. An authorization a stored payment
        holds (a concurrent twin of the request was placed with it) is left alone. Best
        effort: if the gateway cannot be reached, the hold lapses by itself."""
        gateway = self._require_gateway()
        with self._uow() as uow:
            if uow.payments.by_authorization(authorization.id) is not None:
                return
        try:
            void = self._call(
                lambda: gateway.void(authorization.id, idempotency_key=gateway_key(key, "void"))
            )
        except PaymentError as error:
            log.warning("could not void unused authorization: %s", type(error).__name__)
            return

        def record(uow: UnitOfWork, now: datetime) -> None:
            if uow.payments.by_authorization(authorization.id) is not None:
                return
            payment = self.new_payment(order, authorization, now)
            payment.record_void(void, now)
            payment.pending_events.clear()  # no order exists for subscribers to look up
            uow.payments.add(payment)

        self._run(record)

    # -- money commands ---------------------------------------------------------------------------

    def capture(self, order_id: str, amount: Money | None = None, *, reference: str) -> Payment:
        """Capture ``amount`` (default: everything still capturable) of the order's payment.

        ``reference`` names what the capture is for and makes it idempotent: a second
        call with the same reference returns the payment without moving money again.
        """
        payment = self._move(order_id, lambda p: self._capture(p, amount, reference))
        self._after_commit()
        return payment

    def capture_lines(self, order_id: str, units: Mapping[str, int], *, reference: str) -> Payment:
        """Capture the share of ``units`` (line id → units shipped), by largest remainder,
        plus the shipping charge with the first such capture. Idempotent per ``reference``
        (a shipment id, say). Each count must be a whole number >= 1 (raises
        :class:`InvalidField` otherwise, before anything is kept)."""
        if not isinstance(units, Mapping) or not units:
            raise InvalidField(
                "must map line ids to units (at least one)", field="units", value=units
            )
        for line_id, count in units.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise InvalidField(
                    "must be a whole number >= 1", field=f"units[{line_id}]", value=count
                )
        payment = self._move(order_id, lambda p: self._capture_units(p, units, reference))
        self._after_commit()
        return payment

    def void(self, order_id: str) -> Payment:
        """Release what is left of the order's authorization (nothing can be captured after)."""
        payment = self._move(order_id, self._void)
        self._after_commit()
        return payment

    def refund(self, order_id: str, amount: Money, *, reference: str) -> Payment:
        """Pay back ``amount`` from the order's captures, oldest capture first.

        Idempotent per ``reference`` (a return's id, say): repeating it, even after a
        crash halfway, refunds the same parts once.
        """
        if not isinstance(amount, Money):
            raise InvalidField(
                "must be Money (there is no 'refund everything')", field="amount", value=amount
            )
        payment = self._move(order_id, lambda p: self._refund(p, amount, reference))
        self._after_commit()
        return payment

    def apply_payment_event(self, event: PaymentGatewayEvent) -> str:
        """Apply a gateway callback at most once (see :meth:`Payment.apply_gateway_event`
        for the outcomes). Raises :class:`PaymentNotFound` when no payment holds its
        authorization yet: answer the gateway with an error so it redelivers later."""
        if not isinstance(event, PaymentGatewayEvent):
            raise InvalidField("must be a PaymentGatewayEvent", field="event", value=event)
        check_text(event.authorization_id, field="authorization_id", limit=MAX_ID_LENGTH)

        def work(uow: UnitOfWork, now: datetime) -> str:
            payment = uow.payments.by_authorization(event.authorization_id)
            if payment is None:
                raise PaymentNotFound(
                    f"no payment holds authorization {event.authorization_id!r} (yet)"
                )
            outcome = payment.apply_gateway_event(event, now)
            if outcome != "duplicate":
                uow.payments.save(payment)
            return outcome

        outcome = self._run(work)
        self._after_commit()
        return outcome

    def apply_payment_event_json(self, payload: str | bytes) -> str:
        """Parse a callback in orderkit's JSON shape of :class:`PaymentGatewayEvent`
        strictly (unknown keys, wrong types, floats for money and times without a zone
        are refused with an :class:`~orderkit.errors.InvalidPayload` subclass), then
        :meth:`apply_payment_event` it."""
        return self.apply_payment_event(loads_untrusted(payload, PaymentGatewayEvent))

    # -- policies (outbox handlers) --------------------------------------------------------------

    def capture_on_placement(self, event: PaymentAuthorized) -> None:
        """Handler: with ``capture="on_placement"``, capture the whole order once authorized."""
        if self._settings.capture != "on_placement":
            return
        self._move(event.order_id, lambda p: self._capture_rest(p, "placement"))

    def capture_shipment(self, event: ShipmentHandedOver) -> None:
        """Handler: with ``capture="on_shipment"``, capture a shipment's share when the
        carrier takes it (idempotent per shipment)."""
        if self._settings.capture != "on_shipment" or not self.for_order(event.order_id):
            return
        with self._uow() as uow:
            units = uow.shipments.get(event.shipment_id).units()
            replaces = [
                s
                for s in uow.shipments.for_order(event.order_id)
                if s.claim == f"reship:{event.shipment_id}"
            ]
            quantities = {
                line.line_id: line.quantity for line in uow.orders.get(event.order_id).lines
            }
        if replaces:  # a replacement: its units were paid with the parcel it replaces
            return
        reference = gateway_key("shipment", event.shipment_id)

        def capture(payment: Payment) -> Step | None:
            if payment.state not in _OPEN:
                return None
            plan = payment.capture_plan(reference)
            if plan is not None:
                wanted = dict(plan.units)
            else:  # a replacement parcel's units may be paid already (by the one it replaces)
                charged = payment.charged_units()
                wanted = {
                    line: min(count, quantities[line] - charged.get(line, 0))
                    for line, count in units.items()
                    if quantities[line] > charged.get(line, 0)
                }
            return self._capture_units(payment, wanted, reference) if wanted else None

        self._move(event.order_id, capture)

    def capture_on_shipment(self, event: OrderShipped) -> None:
        """Handler: when the order has shipped, capture what is left of its open lines
        (with ``capture="on_shipment"``), then void what is left of the authorization
        (the share of cancelled lines)."""
        if self._settings.capture != "on_shipment" or not self.for_order(event.order_id):
            return  # manual: the operator captures; on placement: nothing is left open
        self._move(event.order_id, lambda p: self._capture_rest(p, "order-shipped"))
        self._move(event.order_id, lambda p: self._void(p) if p.state in _OPEN else None)

    def settle_cancelled_lines(self, event: OrderLinesCancelled) -> None:
        """Handler: refund what was already captured for cancelled lines (their share), and
        void the rest of the authorization once every open unit is captured."""
        if not self.for_order(event.order_id):
            return
        with self._uow() as uow:
            order = uow.orders.get(event.order_id)
        reference = "lines-cancelled:" + ",".join(event.line_ids)

        def refund_captured(payment: Payment) -> Step | None:
            charged = payment.captured_units()
            units = {i: charged[i] for i in event.line_ids if charged.get(i)}
            if not units and payment.refund_plan(gateway_key(reference)) is None:
                return None
            share = lines_share(order, units, already={}, include_shipping=False)
            return None if share.is_zero() else self._refund(payment, share, gateway_key(reference))

        self._move(event.order_id, refund_captured)
        charged = self.for_order(event.order_id)[-1].captured_units()
        if all(charged.get(line.line_id, 0) >= line.quantity for line in order.open_lines):
            self._move(event.order_id, lambda p: self._void(p) if p.state in _OPEN else None)

    def refund_claim(self, event: ShipmentClaimResolved) -> None:
        """Handler: a claim settled by ``"refund"`` pays back the share of the shipment's
        units that was captured (nothing when none was: the authorization is left to the
        capture policy). Idempotent per claimed shipment."""
        if event.resolution != "refund" or not self.for_order(event.order_id):
            return
        with self._uow() as uow:
            order = uow.orders.get(event.order_id)
            units = uow.shipments.get(event.shipment_id).units()
            others = [
                shipment
                for shipment in uow.shipments.for_order(event.order_id)
                if shipment.claim == "refund" and shipment.id != event.shipment_id
            ]
            returned = [r for r in uow.returns.for_order(event.order_id) if r.resolution]
        reference = gateway_key("claim", event.shipment_id)

        def refund(payment: Payment) -> Step | None:
            plan = payment.refund_plan(reference)
            if plan is not None:
                return self._refund(payment, plan.amount, reference)
            charged = payment.captured_units()
            # units refunded by earlier claims come first, so all claims add up to the line
            already: dict[str, int] = {}
            for request in returned:  # and units whose refund a return decided
                for line, count in request.received_units().items():
                    already[line] = already.get(line, 0) + count
            for other in others:
                if payment.refund_plan(gateway_key("claim", other.id)) is not None:
                    for line, count in other.units().items():
                        already[line] = already.get(line, 0) + count
            paid = {
                line: min(count, charged.get(line, 0) - already.get(line, 0))
                for line, count in units.items()
                if charged.get(line, 0) > already.get(line, 0)
            }
            share = lines_share(order, paid, already=already, include_shipping=False)
            share = min(share, payment.refundable, key=lambda money: money.amount)
            return None if share.is_zero() else self._refund(payment, share, reference)

        self._move(event.order_id, refund)

    def refund_units(self, order_id: str, units: Mapping[str, int], *, reference: str) -> Payment:
        """Refund the share of ``units`` (line id → units) of the order, idempotent per
        ``reference`` (a claim, a return)."""
        with self._uow() as uow:
            order = uow.orders.get(order_id)
        share = lines_share(order, units, already={}, include_shipping=False)
        if share.is_zero():
            return self.for_order(order_id)[-1]
        return self.refund(order_id, share, reference=reference)

    def settle_cancelled(self, event: OrderCancelled | PaymentCaptured) -> None:
        """Handler: a cancelled order keeps no money. Void the uncaptured rest, and refund
        each capture in full (one refund per capture, so a capture recorded late, after
        a lost answer or by its callback, is refunded when its own event comes).

        Raises :class:`PaymentError`, so that the dispatcher tries again later, while
        the gateway still reports something not yet recorded here (a parked callback,
        a planned capture without its result)."""
        if not self.for_order(event.order_id):
            return
        with self._uow() as uow:
            if uow.orders.get(event.order_id).state != "cancelled":
                return  # a capture of an order that is not cancelled: nothing to settle
        self._move(event.order_id, lambda p: self._void(p) if p.state in _OPEN else None)
        payment = self.for_order(event.order_id)[-1]
        for capture in payment.captures:

            def refund_capture(
                p: Payment,
                capture_id: str = capture.id,
                reference: str = gateway_key("order-cancelled", capture.id),
            ) -> Step | None:
                plan = p.refund_plan(reference)
                if plan is None and p.refundable_of(capture_id).is_zero():
                    return None
                amount = plan.amount if plan else p.refundable_of(capture_id)
                return self._refund(p, amount, reference, only=capture_id)

            self._move(event.order_id, refund_capture)
        payment = self.for_order(event.order_id)[-1]
        if payment.parked_events or payment.state in _OPEN:
            raise PaymentError(
                f"order {event.order_id} is cancelled but payment {payment.id} still has "
                "gateway results to record; settling again later"
            )

    # -- internals --------------------------------------------------------------------------------

    def _move(self, order_id: str, plan: Plan) -> Payment:
        """Plan a money movement on the order's payment, call the gateway, record the result.

        ``plan`` checks the payment and calls the gateway, returning a step that records
        the result (or None when there is nothing to do). The step runs on a fresh copy
        in a unit of work, re-run on a lost race.
        """
        self._require_gateway()
        payments = self.for_order(order_id)
        if not payments:
            raise PaymentNotFound(f"order {order_id!r} has no payment")
        step = plan(payments[-1])
        if step is None:
            return payments[-1]
        payment_id = payments[-1].id

        def work(uow: UnitOfWork, now: datetime) -> Payment:
            payment = uow.payments.get(payment_id)
            if step(payment, now):
                uow.payments.save(payment)
            return payment

        return self._run(work)

    def _capture(self, payment: Payment, amount: Money | None, reference: str) -> Step | None:
        """Capture ``amount`` (None: all that is free to capture) under ``reference``."""
        if amount is not None and (not isinstance(amount, Money) or amount.minor_units <= 0):
            raise InvalidPaymentOperation(f"a capture must be positive Money, not {amount}")

        def compute(fresh: Payment) -> Planned | None:
            wanted = fresh.free_to_capture if amount is None else amount
            return None if wanted.is_zero() else (wanted, {}, False)

        def same(plan: CapturePlan) -> bool:
            return amount is None or plan.amount == amount

        return self._plan_capture(payment, reference, compute, same)

    def _capture_units(
        self, payment: Payment, units: Mapping[str, int], reference: str, *, cap: bool = False
    ) -> Step | None:
        """Capture the share of ``units`` (and shipping, the first time) under ``reference``;
        with ``cap``, no more than is free to capture (the rest of an order)."""
        if not isinstance(units, Mapping):
            raise InvalidField("must map line ids to units", field="units", value=units)
        units = {line_id: count for line_id, count in units.items() if count}
        with self._uow() as uow:
            order = uow.orders.get(payment.order_id)

        def compute(fresh: Payment) -> Planned | None:
            shipping = not fresh.shipping_charged
            already = fresh.charged_units()
            share = lines_share(order, units, already=already, include_shipping=shipping)
            if cap:
                share = min(share, fresh.free_to_capture, key=lambda money: money.amount)
            return None if share.is_zero() else (share, dict(units), shipping)

        def same(plan: CapturePlan) -> bool:
            return dict(plan.units) == {k: v for k, v in units.items() if v}

        return self._plan_capture(payment, reference, compute, same)

    def _capture_rest(self, payment: Payment, reference: str) -> Step | None:
        """Capture every open unit not yet charged (and shipping, if not yet charged), no
        more than is free to capture."""
        if payment.capture_plan(reference) is None and payment.free_to_capture.is_zero():
            return None
        with self._uow() as uow:
            order = uow.orders.get(payment.order_id)
        open_units = {line.line_id: line.quantity for line in order.open_lines}
        plan = payment.capture_plan(reference)
        rest = dict(plan.units) if plan else _uncharged(payment, open_units, planned=True)
        return self._capture_units(payment, rest, reference, cap=True)

    def _plan_capture(
        self,
        payment: Payment,
        reference: str,
        compute: Callable[[Payment], Planned | None],
        same: Callable[[CapturePlan], bool],
    ) -> Step | None:
        """Commit the capture's plan (unless one exists for ``reference``), then ask the
        gateway for it with a key derived from the reference, and return the step that
        records the result. A refusal for good drops the plan."""
        check_text(reference, field="reference", limit=MAX_ID_LENGTH)
        plan = payment.capture_plan(reference)
        if plan is None:

            def commit(uow: UnitOfWork, now: datetime) -> CapturePlan | None:
                fresh = uow.payments.get(payment.id)
                existing = fresh.capture_plan(reference)
                if existing is not None:
                    return existing
                computed = compute(fresh)
                if computed is None:
                    return None
                amount, units, shipping = computed
                planned = fresh.plan_capture(
                    reference, amount, now, units=units, includes_shipping=shipping
                )
                uow.payments.save(fresh)
                return planned

            plan = self._run(commit)
            if plan is None:
                return None
        if any(capture.reference == reference for capture in payment.captures):
            return None  # done already (a retry, or the handler delivered again)
        if not same(plan):
            raise IdempotencyConflict(reference, payment.id, what="payment capture reference")
        gateway = self._require_gateway()
        authorization_id = _authorization_of(payment)
        key = gateway_key(payment.id, "capture", reference)
        amount = plan.amount
        try:
            capture = self._call(
                lambda: gateway.capture(authorization_id, amount, idempotency_key=key)
            )
        except (PaymentDeclined, InvalidPaymentOperation):
            self._drop_plan(payment.id, reference)
            raise
        units, shipping = dict(plan.units), plan.includes_shipping
        return lambda p, now: p.record_capture(
            capture, now, reference=reference, units=units, includes_shipping=shipping
        )

    def _drop_plan(self, payment_id: str, reference: str) -> None:
        def work(uow: UnitOfWork, now: datetime) -> None:
            payment = uow.payments.get(payment_id)
            if payment.drop_plan(reference):
                uow.payments.save(payment)

        self._run(work)

    def _void(self, payment: Payment) -> Step | None:
        if payment.void_record is not None:
            return None
        if payment.state not in _OPEN:
            raise InvalidPaymentOperation(
                f"payment {payment.id} is {payment.state!r}: nothing is left to void"
            )
        gateway = self._require_gateway()
        authorization_id = _authorization_of(payment)
        void = self._call(
            lambda: gateway.void(authorization_id, idempotency_key=gateway_key(payment.id, "void"))
        )
        return lambda p, now: p.record_void(void, now)

    def _refund(
        self,
        payment: Payment,
        amount: Money | None,
        reference: str,
        *,
        only: str | None = None,
    ) -> Step | None:
        """Refund ``amount`` (None: everything refundable) under ``reference``.

        The plan (which captures give how much) is committed on the payment before the
        gateway is called, so a retry, after a crash or a lost answer, repeats the same
        calls with the same keys; parts already recorded under the reference are skipped.
        """
        check_text(reference, field="reference", limit=MAX_ID_LENGTH)
        plan = payment.refund_plan(reference)
        if plan is None:
            if amount is None:
                amount = payment.refundable
                if amount.is_zero():
                    return None
            if not isinstance(amount, Money) or amount.minor_units <= 0:
                raise InvalidPaymentOperation(f"a refund must be positive Money, not {amount}")
            checked = amount
            payment.plan_refund(reference, checked, self._clock.now(), only=only)  # checks first
            plan = self._run(
                lambda uow, now: self._commit_plan(uow, payment.id, reference, checked, only)
            )
        elif amount is not None and amount != plan.amount:
            raise InvalidPaymentOperation(
                f"reference {reference!r} was used for a refund of {plan.amount}, not {amount}"
            )
        done = {r.capture_id for r in payment.refunds if r.reference == reference}
        gateway = self._require_gateway()

        def refund_part(capture_id: str, part: Money) -> GatewayRefund:
            key = gateway_key(payment.id, "refund", reference, capture_id)
            return self._call(lambda: gateway.refund(capture_id, part, idempotency_key=key))

        refunds: list[GatewayRefund] = []

        def record(p: Payment, now: datetime) -> bool:
            changed = [p.record_refund(refund, now, reference=reference) for refund in refunds]
            return any(changed)

        try:
            for capture_id, part in plan.parts:
                if capture_id not in done:
                    refunds.append(refund_part(capture_id, part))
        except (PaymentDeclined, InvalidPaymentOperation):
            # refused for good: keep the parts that went through, forget the rest of the plan
            payment_id = payment.id

            def settle(uow: UnitOfWork, now: datetime) -> None:
                fresh = uow.payments.get(payment_id)
                record(fresh, now)
                fresh.drop_plan(reference)
                uow.payments.save(fresh)

            self._run(settle)
            raise
        return record if refunds else None

    def _commit_plan(
        self,
        uow: UnitOfWork,
        payment_id: str,
        reference: str,
        amount: Money,
        only: str | None = None,
    ) -> RefundPlan:
        payment = uow.payments.get(payment_id)
        plan = payment.refund_plan(reference)
        if plan is None:
            plan = payment.plan_refund(reference, amount, self._clock.now(), only=only)
            uow.payments.save(payment)
        elif plan.amount != amount:  # a concurrent call planned this reference first
            raise InvalidPaymentOperation(
                f"reference {reference!r} was used for a refund of {plan.amount}, not {amount}"
            )
        return plan

    def _call(self, operation: Callable[[], T]) -> T:
        """Call the gateway; on :class:`GatewayUnavailable` retry (same key) with back-off."""
        attempts = self._settings.gateway_attempts
        for attempt in range(attempts):
            try:
                return operation()
            except GatewayUnavailable:
                if attempt == attempts - 1:
                    raise
                delay = self._settings.gateway_retry_delay.total_seconds() * 2**attempt
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _run(self, work: Callable[[UnitOfWork, datetime], T]) -> T:
        return run_and_dispatch(
            self._uow,
            self._clock,
            work,
            retries=self._settings.concurrency_retries,
            retry_on=ConcurrencyError,
            dispatcher=None,  # commands dispatch after their last step; handlers never nest
        )

    def _after_commit(self) -> None:
        if self._settings.dispatch == "inline":
            dispatch_after_commit(self._dispatcher)

    def _require_gateway(self) -> PaymentGateway:
        if self.gateway is None:
            raise PaymentError(
                "this shop has no payment gateway; open it with Shop.open(..., gateway=...)"
            )
        return self.gateway


def _uncharged(
    payment: Payment, units: Mapping[str, int], *, planned: bool = False
) -> dict[str, int]:
    """Of ``units`` per line, those whose share the payment has not captured (or, with
    ``planned``, planned to capture) yet."""
    charged = payment.charged_units() if planned else payment.captured_units()
    return {
        line_id: count - charged.get(line_id, 0)
        for line_id, count in units.items()
        if count > charged.get(line_id, 0)
    }


def _authorization_of(payment: Payment) -> str:
    if payment.authorization_id is None:
        raise InvalidPaymentOperation(f"payment {payment.id} is not authorized")
    return payment.authorization_id
