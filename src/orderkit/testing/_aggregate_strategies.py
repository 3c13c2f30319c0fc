"""Hypothesis strategies for orderkit's aggregates, in any state of their lifecycles.

Every aggregate is built the way the shop builds it: created by its factory method
(``Order.place``, ``Payment.start``, ...) and moved along by its own methods, so it
keeps every invariant and carries the domain events those steps raised in
``pending_events``. Import them from :mod:`orderkit.testing.strategies`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from orderkit.domain.carrier import TrackingEvent, TrackingStatus
from orderkit.domain.gateway import (
    GatewayAuthorization,
    GatewayCapture,
    GatewayEventKind,
    GatewayRefund,
    GatewayVoid,
    PaymentGatewayEvent,
)
from orderkit.domain.inquiries import INQUIRY_KINDS, Inquiry, InquiryState
from orderkit.domain.inventory import Reservation, StockItem, removable_units
from orderkit.domain.order import Order, OrderState
from orderkit.domain.payment import Payment
from orderkit.domain.payment_lifecycle import PaymentState
from orderkit.domain.returns import ReturnRequest, ReturnState
from orderkit.domain.shipment import Shipment, ShipmentLine, ShipmentState
from orderkit.domain.values import HoldReason
from orderkit.money import Money
from orderkit.testing._value_strategies import (
    _ID,
    _NAME,
    _return_lines,
    addresses,
    aware_datetimes,
    currencies,
    inquiry_texts,
    inspections,
    labels,
    money,
    orders,
    parcels,
    rates,
)

__all__ = [
    "inquiries",
    "orders_in_state",
    "payments",
    "return_requests",
    "shipments",
    "stock_items",
]


def _state(draw: st.DrawFn, state: str | None, states: Sequence[str], what: str) -> str:
    """The state asked for (checked), or one drawn from ``states``."""
    if state is None:
        return draw(st.sampled_from(states))
    if state not in states:
        raise InvalidArgument(f"{what} has no state {state!r}; it has {', '.join(states)}")
    return state


def _later(draw: st.DrawFn, at: datetime, most: timedelta = timedelta(days=2)) -> datetime:
    """A moment 1 second to ``most`` after ``at``."""
    return at + timedelta(seconds=draw(st.integers(1, int(most.total_seconds()))))


def _split(draw: st.DrawFn, total: int, most: int = 3) -> list[int]:
    """``total`` (>= 1) split into 1 to ``most`` positive parts, in a drawn way."""
    cuts = draw(
        st.lists(st.integers(1, total - 1), max_size=most - 1, unique=True)
        if total > 1
        else st.just([])
    )
    bounds = [0, *sorted(cuts), total]
    return [high - low for low, high in itertools.pairwise(bounds)]


# -- orders ---------------------------------------------------------------------------------

_O = OrderState
_ORDER_PATHS: dict[str, tuple[str, ...]] = {
    _O.PLACED.value: (),
    _O.ACKNOWLEDGED.value: ("acknowledge",),
    _O.FULFILLING.value: ("acknowledge", "start_fulfilment"),
    _O.SHIPPED.value: ("acknowledge", "start_fulfilment", "mark_shipped"),
    _O.DELIVERED.value: ("acknowledge", "start_fulfilment", "mark_shipped", "mark_delivered"),
    _O.COMPLETED.value: (
        "acknowledge",
        "start_fulfilment",
        "mark_shipped",
        "mark_delivered",
        "complete",
    ),
}
_CANCELLABLE = (_O.PLACED.value, _O.ACKNOWLEDGED.value, _O.FULFILLING.value)
_HOLD_REASONS = [reason.value for reason in HoldReason]


@st.composite
def orders_in_state(
    draw: st.DrawFn, state: str | None = None, currency: str | None = None
) -> Order:
    """An :class:`~orderkit.domain.order.Order` of the default lifecycle in ``state`` (any
    state when None), walked there from :func:`orders` by its own methods: acknowledged
    with a promised date, maybe held and released, maybe with lines cancelled while that
    was allowed, and cancelled from placed, acknowledged or fulfilling. Orders still
    placed or acknowledged may keep holds. Its ``pending_events`` hold every event of the
    walk."""
    target = _state(draw, state, [s.value for s in OrderState], "the order lifecycle")
    order = draw(orders(currency=currency))
    at = order.placed_at
    path = _ORDER_PATHS.get(target)
    if path is None:  # cancelled: from one of the states that allow it
        path = _ORDER_PATHS[draw(st.sampled_from(_CANCELLABLE))]
    for trigger in path:
        at = _later(draw, at)
        if order.state in _CANCELLABLE:
            _maybe_cancel_lines(draw, order, at)
        if trigger == "acknowledge":
            promised = order.placed_at.date() + timedelta(days=draw(st.integers(1, 14)))
            _maybe_hold(draw, order, at, release=True)
            order.acknowledge(promised, at)
        elif trigger == "start_fulfilment":
            _maybe_hold(draw, order, at, release=True)
            order.start_fulfilment(at)
        else:
            order.fire(trigger, at)
    at = _later(draw, at)
    if target == _O.CANCELLED.value:
        order.cancel(draw(_NAME), at)
    elif target in (_O.PLACED.value, _O.ACKNOWLEDGED.value):
        _maybe_hold(draw, order, at, release=False)
    return order


def _maybe_hold(draw: st.DrawFn, order: Order, at: datetime, *, release: bool) -> None:
    """Put 0 to 2 holds on ``order`` (and lift them again when ``release``)."""
    reasons = draw(st.lists(st.sampled_from(_HOLD_REASONS), max_size=2, unique=True))
    for reason in reasons:
        order.hold(reason, at, note=draw(st.just("") | _NAME))
    if release:
        for reason in reasons:
            order.release(reason, at)


def _maybe_cancel_lines(draw: st.DrawFn, order: Order, at: datetime) -> None:
    """Sometimes cancel some open lines, always leaving at least one."""
    open_ids = [line.line_id for line in order.open_lines]
    if len(open_ids) < 2 or not draw(st.booleans()):
        return
    chosen = draw(st.lists(st.sampled_from(open_ids), min_size=1, max_size=len(open_ids) - 1))
    if len(set(chosen)) < len(open_ids):
        order.cancel_lines(chosen, draw(_NAME), at)


# -- payments -------------------------------------------------------------------------------

_P = PaymentState


@st.composite
def payments(draw: st.DrawFn, state: str | None = None, currency: str | None = None) -> Payment:
    """A :class:`~orderkit.domain.payment.Payment` in ``state`` (any when None), in
    ``currency`` (any ISO 4217 currency when None).

    It is started, then authorized or failed, then captured in 1 to 3 parts (recorded
    from our own call, planned first, or learnt from a gateway callback), voided or
    resolved by voiding the rest after part captures, and refunded in parts, each step
    by the payment's own methods with gateway results that agree with it."""
    target = _state(draw, state, [s.value for s in PaymentState], "the payment lifecycle")
    code = currency if currency is not None else draw(currencies())
    partial = target in (_P.PARTIALLY_CAPTURED.value, _P.PARTIALLY_REFUNDED.value)
    amount = draw(money(code, min_units=3 if partial else 1, max_units=10**8))
    at = draw(aware_datetimes())
    payment = Payment.start(
        payment_id=draw(_ID),
        order_id=draw(_ID),
        amount=amount,
        token=f"tok_{draw(_ID)}",
        at=at,
    )
    if target == _P.PENDING.value:
        return payment
    at = _later(draw, at)
    if target == _P.FAILED.value:
        payment.fail(draw(st.sampled_from(["card_declined", "insufficient_funds"])), at)
        return payment
    authorization = draw(_ID)
    payment.authorize(GatewayAuthorization(authorization, amount), at)
    if target == _P.AUTHORIZED.value:
        return payment
    at = _later(draw, at)
    if target == _P.VOIDED.value:
        payment.record_void(GatewayVoid("void-1", authorization, amount), at)
        return payment
    units = amount.minor_units
    if target == _P.PARTIALLY_CAPTURED.value:
        for part in _split(draw, draw(st.integers(1, units - 1))):
            at = _later(draw, at)
            _capture(draw, payment, authorization, Money.from_minor(part, code), at)
        if draw(st.booleans()):  # a shipped part came back before the rest shipped
            _refund(draw, payment, draw(st.integers(1, payment.captured.minor_units)), at)
        return payment
    least = 2 if target == _P.PARTIALLY_REFUNDED.value else 1
    void_rest = units > least and draw(st.booleans())
    captured = draw(st.integers(least, units - 1)) if void_rest else units
    for part in _split(draw, captured):
        at = _later(draw, at)
        _capture(draw, payment, authorization, Money.from_minor(part, code), at)
    if void_rest:
        at = _later(draw, at)
        payment.record_void(GatewayVoid("void-1", authorization, payment.capturable), at)
    if target == _P.CAPTURED.value:
        return payment
    refund = captured if target == _P.REFUNDED.value else draw(st.integers(1, captured - 1))
    for part in _split(draw, refund):
        at = _later(draw, at)
        _refund(draw, payment, part, at)
    return payment


def _capture(
    draw: st.DrawFn, payment: Payment, authorization: str, amount: Money, at: datetime
) -> None:
    number = len(payment.captures) + 1
    capture = GatewayCapture(f"cap-{number}", authorization, amount)
    reference = f"capture-{number}"
    how = draw(st.sampled_from(["recorded", "planned", "callback"]))
    if how == "callback":
        event = PaymentGatewayEvent(
            id=f"evt-cap-{number}",
            kind=GatewayEventKind.CAPTURED,
            authorization_id=authorization,
            occurred_at=at,
            operation_id=capture.id,
            amount=amount,
        )
        payment.apply_gateway_event(event, at)
        return
    if how == "planned":
        payment.plan_capture(reference, amount, at)
    payment.record_capture(capture, at, reference=reference)


def _refund(draw: st.DrawFn, payment: Payment, units: int, at: datetime) -> None:
    """Refund ``units`` minor units, oldest capture first, planned then recorded."""
    reference = f"refund-{len(payment.refund_plans) + 1}"
    plan = payment.plan_refund(reference, Money.from_minor(units, payment.currency), at)
    for index, (capture_id, part) in enumerate(plan.parts):
        payment.record_refund(
            GatewayRefund(f"{reference}-{index}", capture_id, part), at, reference=reference
        )


# -- shipments ------------------------------------------------------------------------------

_S = ShipmentState
_T = TrackingStatus
_BEFORE_HAND_OVER = (_S.PENDING.value, _S.PICKED.value, _S.PACKED.value, _S.LABELLED.value)
_SCANS: dict[str, tuple[tuple[TrackingStatus, ...], ...]] = {
    # the scans that may lead to each state after hand-over; the last one puts it there
    _S.IN_TRANSIT.value: ((), (_T.IN_TRANSIT,)),
    _S.OUT_FOR_DELIVERY.value: ((_T.OUT_FOR_DELIVERY,), (_T.IN_TRANSIT, _T.OUT_FOR_DELIVERY)),
    _S.DELIVERED.value: (
        (_T.DELIVERED,),
        (_T.OUT_FOR_DELIVERY, _T.DELIVERED),
        (_T.OUT_FOR_DELIVERY, _T.DELIVERY_FAILED, _T.IN_TRANSIT, _T.DELIVERED),
        (_T.LOST, _T.DELIVERED),
    ),
    _S.DELIVERY_FAILED.value: (
        (_T.DELIVERY_FAILED,),
        (_T.OUT_FOR_DELIVERY, _T.DELIVERY_FAILED),
    ),
    _S.LOST.value: ((_T.LOST,), (_T.IN_TRANSIT, _T.LOST)),
    _S.RETURNED_TO_SENDER.value: (
        (_T.RETURNED_TO_SENDER,),
        (_T.DELIVERY_FAILED, _T.RETURNED_TO_SENDER),
        (_T.LOST, _T.RETURNED_TO_SENDER),
    ),
}
_CLAIMABLE = (_S.DELIVERED.value, _S.LOST.value, _S.RETURNED_TO_SENDER.value)


@st.composite
def shipments(draw: st.DrawFn, state: str | None = None, currency: str = "EUR") -> Shipment:
    """A :class:`~orderkit.domain.shipment.Shipment` of 1 to 3 lines in ``state`` (any when
    None): created, picked, packed into parcels, labelled with a rate in ``currency``
    (chosen first or not), handed over, then moved by carrier scans that arrive in any
    order, some twice; cancelled from any state before hand-over. Delivered, lost and
    returned shipments may have a claim settled (refund or reship)."""
    target = _state(draw, state, [s.value for s in ShipmentState], "the shipment lifecycle")
    at = draw(aware_datetimes())
    count = draw(st.integers(1, 3))
    lines = [
        ShipmentLine(f"L{index}", draw(_ID), draw(st.integers(1, 10)))
        for index in range(1, count + 1)
    ]
    shipment = Shipment.create(
        shipment_id=draw(_ID),
        order_id=draw(_ID),
        location=draw(_ID),
        ship_to=draw(addresses()),
        lines=lines,
        at=at,
    )
    stop = draw(st.sampled_from(_BEFORE_HAND_OVER)) if target == _S.CANCELLED.value else target
    for step in _BEFORE_HAND_OVER[1:]:
        if shipment.state == stop:
            break
        at = _later(draw, at, timedelta(hours=6))
        if step == _S.PICKED.value:
            shipment.pick(at)
        elif step == _S.PACKED.value:
            shipment.pack(draw(st.lists(parcels(), min_size=1, max_size=3)), at)
        else:
            rate = draw(rates(currency=currency))
            if draw(st.booleans()):
                shipment.choose_rate(rate)
            label = draw(labels(carrier=rate.carrier, service=rate.service))
            shipment.attach_label(rate, label, at)
    if target == _S.CANCELLED.value:
        shipment.cancel(draw(_NAME), _later(draw, at))
        return shipment
    if target in _BEFORE_HAND_OVER:
        return shipment
    at = _later(draw, at)
    eta = draw(st.none() | st.just(at.date() + timedelta(days=draw(st.integers(1, 7)))))
    shipment.hand_over(at, eta)
    statuses = draw(st.sampled_from(_SCANS[target]))
    scans: list[TrackingEvent] = []
    when = at
    for index, status in enumerate(statuses):
        when = _later(draw, when, timedelta(days=1))
        scans.append(
            TrackingEvent(
                f"scan-{index}",
                shipment.tracking_number or "",
                status,
                when,
                eta=draw(st.none() | st.just(when.date() + timedelta(days=1))),
                description=draw(st.none() | _NAME),
            )
        )
    arrivals = draw(st.permutations(scans))
    repeats = draw(st.lists(st.sampled_from(scans), max_size=2)) if scans else []
    for scan in [*arrivals, *repeats]:
        shipment.apply_scan(scan, _later(draw, when))
    if target in _CLAIMABLE and draw(st.booleans()):
        resolution = draw(st.sampled_from(["refund", "reship"]))
        replacement = draw(_ID) if resolution == "reship" else None
        shipment.resolve_claim(resolution, _later(draw, when), replacement)
    return shipment


# -- returns --------------------------------------------------------------------------------

_R = ReturnState


@st.composite
def return_requests(
    draw: st.DrawFn, state: str | None = None, currency: str = "EUR"
) -> ReturnRequest:
    """A :class:`~orderkit.domain.returns.ReturnRequest` of lines ``L1`` to ``L3`` in
    ``state`` (any when None): requested, approved or rejected, cancelled before the
    units arrive, received (all or fewer), inspected (:func:`inspections`), settled by a
    refund or an exchange in ``currency`` (an exchange whose order was cancelled ends
    refunded), and closed."""
    target = _state(draw, state, [s.value for s in ReturnState], "the return lifecycle")
    at = draw(aware_datetimes())
    left = {f"L{index}": draw(st.integers(1, 10)) for index in (1, 2, 3)}
    lines = draw(_return_lines(left))
    returnable = {line.line_id: line.quantity + draw(st.integers(0, 3)) for line in lines}
    request = ReturnRequest.request(
        return_id=draw(_ID), order_id=draw(_ID), lines=lines, returnable=returnable, at=at
    )
    if target == _R.REQUESTED.value:
        return request
    at = _later(draw, at)
    if target == _R.REJECTED.value:
        request.reject(draw(_NAME), at)
        return request
    if target == _R.CANCELLED.value:
        if draw(st.booleans()):
            request.approve(draw(_NAME), at)
        request.cancel(draw(_NAME), _later(draw, at))
        return request
    request.approve(draw(_NAME), at)
    if target == _R.APPROVED.value:
        return request
    at = _later(draw, at, timedelta(days=10))
    asked = request.requested_units()
    units = None
    if draw(st.booleans()):
        units = {line_id: draw(st.integers(0, count)) for line_id, count in asked.items()}
        if not any(units.values()):
            units[next(iter(units))] = 1
    request.receive(units, at)
    if target == _R.RECEIVED.value:
        return request
    at = _later(draw, at)
    request.inspect(draw(inspections(request.received_units(), draw(_ID))), at)
    if target == _R.INSPECTED.value:
        return request
    at = _later(draw, at)
    by_exchange = target == _R.EXCHANGED.value or (
        target in (_R.REFUNDED.value, _R.CLOSED.value) and draw(st.booleans())
    )
    due = draw(money(currency, max_units=10**6))
    fee = draw(money(currency, max_units=10**4))
    if by_exchange:
        request.decide_exchange(due, fee)
        refunded = draw(money(currency, max_units=due.minor_units))
        charged = draw(money(currency, max_units=10**5))
        request.mark_exchanged(draw(_ID), charged, refunded, at)
        if target == _R.REFUNDED.value or (target == _R.CLOSED.value and draw(st.booleans())):
            rest = due.minor_units - refunded.minor_units
            at = _later(draw, at)
            request.cancel_exchange(draw(money(currency, max_units=rest)), at)
    else:
        shipping = draw(money(currency, max_units=due.minor_units))
        request.decide_refund(due, fee, shipping)
        request.mark_refunded(draw(money(currency, max_units=due.minor_units)), at)
    if target == _R.CLOSED.value:
        request.close(_later(draw, at))
    return request


# -- inquiries ------------------------------------------------------------------------------

_AUTHORS = _NAME.filter(lambda name: name != "customer")


@st.composite
def inquiries(draw: st.DrawFn, state: str | None = None) -> Inquiry:
    """An :class:`~orderkit.domain.inquiries.Inquiry` in ``state`` (any when None): opened
    as a question or complaint, answered by the shop and replied to by the customer in
    any order, and resolved."""
    target = _state(draw, state, [s.value for s in InquiryState], "the inquiry lifecycle")
    at = draw(aware_datetimes())
    text = inquiry_texts(200, multiline=True)
    inquiry = Inquiry.open(
        inquiry_id=draw(_ID),
        order_id=draw(_ID),
        customer_id=draw(_ID),
        kind=draw(st.sampled_from(INQUIRY_KINDS)),
        subject=draw(inquiry_texts(80)),
        message=draw(text),
        at=at,
    )
    steps = draw(st.lists(st.sampled_from(["answer", "reply"]), max_size=4))
    if target == InquiryState.OPEN.value and steps and steps[-1] == "answer":
        steps.append("reply")
    if target == InquiryState.ANSWERED.value and (not steps or steps[-1] == "reply"):
        steps.append("answer")
    for step in steps:
        at = _later(draw, at)
        if step == "answer":
            inquiry.answer(draw(_AUTHORS), draw(text), at)
        else:
            inquiry.reply(draw(text), at)
    if target == InquiryState.RESOLVED.value:
        inquiry.resolve(draw(text), _later(draw, at))
    return inquiry


# -- stock ----------------------------------------------------------------------------------

_ORDERS = ("order-1", "order-2", "order-3")
_LINES = ("L1", "L2")


@st.composite
def stock_items(draw: st.DrawFn, max_steps: int = 12) -> StockItem:
    """A :class:`~orderkit.domain.inventory.StockItem` after up to ``max_steps`` changes,
    each one its methods allow at that moment: receive, count corrections, backorder
    limits, reservations (some expiring) for a few orders, allocation, shipping, release,
    restock and clean-up of expired reservations. Its ``pending_movements`` is the whole
    ledger (it starts empty), so ``on_hand`` equals their sum."""
    item = StockItem(draw(_ID), draw(_ID))
    now = draw(aware_datetimes())
    shipments_made = 0
    for _ in range(draw(st.integers(0, max_steps))):
        now = now + timedelta(minutes=draw(st.integers(0, 3 * 24 * 60)))
        held = item.reserved(now)
        reservations = list(item.reservations.values())
        active = [r for r in reservations if r.is_active(now) and r.shipment_id is None]
        allocated = [r for r in reservations if r.shipment_id is not None]
        shippable = [r for r in allocated if r.quantity <= item.on_hand]
        available = item.available(now)
        choices = ["receive", "backorder", "restock", "expire"]
        choices += ["reserve"] if available is None or available > 0 else []
        choices += ["allocate"] if active else []
        choices += ["ship"] if shippable else []
        choices += ["release"] if reservations else []
        choices += ["adjust"]
        step = draw(st.sampled_from(choices))
        if step == "receive":
            item.receive(draw(st.integers(1, 50)), now)
        elif step == "restock":
            order, line = draw(st.sampled_from(_ORDERS)), draw(st.sampled_from(_LINES))
            item.restock(draw(st.integers(1, 5)), now, order, line)
        elif step == "expire":
            item.expire(now)
        elif step == "backorder":
            floor = max(0, held - item.on_hand)
            item.set_backorder_limit(draw(st.none() | st.integers(floor, floor + 10)), now)
        elif step == "reserve":
            most = 20 if available is None else min(available, 20)
            hours = draw(st.none() | st.integers(1, 48))
            expiry = None if hours is None else now + timedelta(hours=hours)
            hold = Reservation(
                draw(st.sampled_from(_ORDERS)),
                draw(st.sampled_from(_LINES)),
                draw(st.integers(1, most)),
                expiry,
            )
            item.reserve([hold], now)
        elif step == "allocate":
            chosen = draw(st.sampled_from(active))
            shipments_made += 1
            item.allocate(chosen.order_id, chosen.line_id, f"shipment-{shipments_made}", now)
        elif step == "ship":
            chosen = draw(st.sampled_from(shippable))
            item.ship(chosen.order_id, chosen.line_id, now)
        elif step == "release":
            chosen = draw(st.sampled_from(reservations))
            one_line = draw(st.none() | st.just(chosen.line_id))
            item.release(chosen.order_id, one_line, include_allocated=draw(st.booleans()))
        else:
            lowest = -removable_units(item.on_hand, held, item.backorder_limit)
            delta = draw(st.integers(lowest, 20).filter(bool))
            item.adjust(delta, now, draw(_NAME))
    return item
