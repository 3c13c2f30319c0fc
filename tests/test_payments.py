"""Payments as a shop takes them: ``shop.payments`` and placement / shipment / cancellation
through ``shop.orders``, against the in-memory gateway, on the memory and the SQLite store."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import random
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import attrs
import pytest

from orderkit import (
    CardNumberRejected,
    DomainEvent,
    GatewayEventKind,
    GatewayUnavailable,
    InvalidPaymentOperation,
    LineItem,
    Location,
    Money,
    OrderPlaced,
    OutOfStock,
    Payment,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentError,
    PaymentGatewayEvent,
    PaymentNotFound,
    PaymentRefunded,
    PaymentState,
    PaymentStatus,
    PaymentVoided,
    PlaceOrder,
    Shop,
    ShopSettings,
    StockItem,
    StockLevel,
)
from orderkit.adapters.memory import ManualClock, SequentialIds
from orderkit.adapters.memory_gateway import MemoryGateway

E = TypeVar("E", bound=DomainEvent)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
STORES = ["memory", "sqlite"]
WEST = Location("west", "West warehouse", priority=1)

# The conftest order (``place_command``): L1 is 2 x 9.99 - 1.00 discount + 3.61 tax = 22.59,
# split over its two units by largest remainder as 11.30 + 11.29; L2 is 1 x 24.50; shipping 4.95.
TOTAL = Money("52.04", "EUR")
L1_FIRST_UNIT = Money("11.30", "EUR")
SHIPPING = Money("4.95", "EUR")
ZERO = Money.zero("EUR")

_DEFAULT: Any = object()


class Shops:
    """Opens shops on fresh stores (memory, or a new SQLite file each) and closes them all."""

    def __init__(self, tmp_path: Path) -> None:
        self._tmp_path = tmp_path
        self._numbers = itertools.count(1)
        self._opened: list[Shop] = []

    def open(
        self,
        store: str,
        *,
        gateway: MemoryGateway | None = _DEFAULT,
        stock: dict[str, int] | None = None,
        **settings: Any,
    ) -> Shop:
        """A shop with a :class:`MemoryGateway` (unless ``gateway`` says otherwise);
        ``stock`` (sku -> units at WEST) turns stock tracking on; ``settings`` as keywords."""
        clock = ManualClock(T0)
        if gateway is _DEFAULT:
            gateway = MemoryGateway(seed=7, clock=clock)
        url = (
            "memory://"
            if store == "memory"
            else str(self._tmp_path / f"shop-{next(self._numbers)}.db")
        )
        options: dict[str, Any] = {
            "track_stock": stock is not None,
            "gateway_retry_delay": timedelta(0),
            **settings,
        }
        shop = Shop.open(
            url, settings=ShopSettings(**options), clock=clock, ids=SequentialIds(), gateway=gateway
        )
        self._opened.append(shop)
        if stock is not None:
            shop.inventory.add_location(WEST)
            for sku, quantity in stock.items():
                shop.inventory.receive(sku, location=WEST.id, quantity=quantity)
        return shop

    def close_all(self) -> None:
        for shop in self._opened:
            shop.close()


OpenShop = Callable[..., Shop]


@pytest.fixture
def shops(tmp_path: Path) -> Iterator[Shops]:
    opened = Shops(tmp_path)
    yield opened
    opened.close_all()


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def open_shop(shops: Shops, store: str) -> OpenShop:
    def open_(**kwargs: Any) -> Shop:
        return shops.open(store, **kwargs)

    return open_


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads very often so that concurrent commands really interleave."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def gateway_of(shop: Shop) -> MemoryGateway:
    gateway = shop.payments.gateway
    assert isinstance(gateway, MemoryGateway)
    return gateway


class HookedGateway(MemoryGateway):
    """Runs ``after_authorize`` once, right after the next approved authorization
    (to change the world between the authorization and the placement's commit)."""

    after_authorize: Callable[[], None] | None = None

    def authorize(self, amount: Money, token: str, *, idempotency_key: str) -> Any:
        result = super().authorize(amount, token, idempotency_key=idempotency_key)
        hook, self.after_authorize = self.after_authorize, None
        if hook is not None:
            hook()
        return result


class LossyGateway(MemoryGateway):
    """Loses the answer of the next capture / refund named in ``lose``: the money moves,
    then the call raises GatewayUnavailable (a retry with the same key gets the answer)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lose: set[str] = set()

    def _answer(self, operation: str, result: Any) -> Any:
        if operation in self.lose:
            self.lose.discard(operation)
            raise GatewayUnavailable(f"the {operation} answer was lost")
        return result

    def capture(self, authorization_id: str, amount: Money, *, idempotency_key: str) -> Any:
        result = super().capture(authorization_id, amount, idempotency_key=idempotency_key)
        return self._answer("capture", result)

    def refund(self, capture_id: str, amount: Money, *, idempotency_key: str) -> Any:
        result = super().refund(capture_id, amount, idempotency_key=idempotency_key)
        return self._answer("refund", result)


def record(shop: Shop, event_type: type[E]) -> list[E]:
    """Every event of ``event_type`` the shop dispatches, in order."""
    events: list[E] = []
    shop.subscribe(event_type, events.append)
    return events


def only_payment(shop: Shop, order_id: str) -> Payment:
    (payment,) = shop.payments.for_order(order_id)
    return payment


def authorization_of(payment: Payment) -> str:
    assert payment.authorization_id is not None
    return payment.authorization_id


def with_token(command: PlaceOrder, token: str, key: str | None = None) -> PlaceOrder:
    return attrs.evolve(command, payment_token=token, idempotency_key=key)


def stock_snapshot(shop: Shop) -> tuple[list[StockLevel], list[tuple[Any, ...]]]:
    """Levels and stock items (by value: a StockItem compares by identity) of both SKUs."""
    skus = ("SKU-1", "SKU-2")
    levels = [level for sku in skus for level in shop.inventory.levels(sku)]
    items = [_item_fields(shop.inventory.item(sku, WEST.id)) for sku in skus]
    return levels, items


def _item_fields(item: StockItem | None) -> tuple[Any, ...]:
    assert item is not None
    return (item.sku, item.location, item.on_hand, item.backorder_limit, dict(item.reservations))


def assert_nothing_stored(shop: Shop, would_be_order: str = "order-000001") -> None:
    assert list(shop.orders.list()) == []
    assert shop.payments.for_order(would_be_order) == []
    assert shop.payments.status(would_be_order) is PaymentStatus.UNPAID
    assert shop.store.outbox.pending() == 0


# -- 1. authorization at placement -------------------------------------------------------------


def test_placement_authorizes_the_order_total(
    open_shop: OpenShop, place_command: PlaceOrder
) -> None:
    shop = open_shop()
    gateway = gateway_of(shop)
    authorized = record(shop, PaymentAuthorized)
    captured = record(shop, PaymentCaptured)

    order = shop.orders.place(place_command)

    assert order.totals.total == TOTAL
    (event,) = authorized
    assert (event.order_id, event.amount) == (order.id, TOTAL)
    payment = only_payment(shop, order.id)
    assert payment.authorization_id == event.authorization_id
    assert (payment.amount, payment.state, payment.token) == (
        TOTAL,
        "authorized",
        "tok_visa_1a2b3c",
    )
    assert shop.payments.status(order.id) is PaymentStatus.AUTHORIZED
    assert gateway.authorization_count() == 1
    assert gateway.captured(event.authorization_id) == ZERO
    assert captured == []
    assert shop.store.outbox.pending() == 0


def test_on_placement_captures_the_total_right_away(
    open_shop: OpenShop, place_command: PlaceOrder
) -> None:
    shop = open_shop(capture="on_placement")
    gateway = gateway_of(shop)
    authorized = record(shop, PaymentAuthorized)
    captured = record(shop, PaymentCaptured)

    order = shop.orders.place(place_command)

    assert shop.payments.status(order.id) is PaymentStatus.PAID
    payment = only_payment(shop, order.id)
    auth = authorization_of(payment)
    assert gateway.captured(auth) == TOTAL == payment.captured
    assert payment.state == PaymentState.CAPTURED.value
    assert len(authorized) == 1
    assert [(e.amount, e.reference) for e in captured] == [(TOTAL, "placement")]
    assert gateway.authorization_count() == 1


# -- 2. declines -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "reason"),
    [("tok_decline", "card_declined"), ("tok_insufficient_funds", "insufficient_funds")],
)
def test_declined_payment_stores_reserves_and_sends_nothing(
    open_shop: OpenShop, place_command: PlaceOrder, token: str, reason: str
) -> None:
    shop = open_shop(stock={"SKU-1": 5, "SKU-2": 3})
    gateway = gateway_of(shop)
    placed = record(shop, OrderPlaced)
    authorized = record(shop, PaymentAuthorized)
    before = stock_snapshot(shop)
    assert [lv.available for lv in before[0]] == [5, 3]
    command = with_token(place_command, token, key="checkout-declined")

    with pytest.raises(PaymentDeclined) as first:
        shop.orders.place(command)

    assert first.value.reason == reason
    assert reason in str(first.value)
    assert_nothing_stored(shop)
    assert stock_snapshot(shop) == before
    assert shop.inventory.reservations("order-000001") == []
    assert (placed, authorized) == ([], [])
    assert gateway.authorization_count() == 0

    with pytest.raises(PaymentDeclined) as again:
        shop.orders.place(command)

    assert again.value.reason == reason
    assert gateway.authorization_count() == 0
    assert_nothing_stored(shop, "order-000002")
    assert list(shop.orders.list()) == []
    assert stock_snapshot(shop) == before
    assert (placed, authorized) == ([], [])

    # the stock is still there for a customer whose card works
    order = shop.orders.place(with_token(place_command, "tok_visa_ok", key="checkout-ok"))
    assert [lv.reserved for lv in stock_snapshot(shop)[0]] == [2, 1]
    assert gateway.authorization_count() == 1
    assert shop.payments.status(order.id) is PaymentStatus.AUTHORIZED


# -- 3. timeouts and outages ---------------------------------------------------------------------


def test_timeout_after_success_is_retried_with_the_same_key(
    open_shop: OpenShop, place_command: PlaceOrder
) -> None:
    shop = open_shop(capture="manual")
    gateway = gateway_of(shop)

    order = shop.orders.place(with_token(place_command, "tok_timeout_after_success"))

    assert gateway.authorization_count() == 1
    (callback,) = gateway.take_callbacks()
    payment = only_payment(shop, order.id)
    assert payment.authorization_id == callback.authorization_id
    assert shop.payments.status(order.id) is PaymentStatus.AUTHORIZED

    # a capture times out after succeeding as well: its retry gets the one capture
    shop.payments.capture(order.id, reference="manual-1")
    payment = only_payment(shop, order.id)
    assert gateway.captured(callback.authorization_id) == TOTAL == payment.captured
    assert len(payment.captures) == 1
    assert [c.kind for c in gateway.take_callbacks()] == [GatewayEventKind.CAPTURED]
    assert shop.payments.status(order.id) is PaymentStatus.PAID


def test_gateway_down_stores_nothing_and_a_retry_authorizes_once(
    open_shop: OpenShop, place_command: PlaceOrder
) -> None:
    gateway = MemoryGateway(seed=3, unavailable_rate=1.0)
    shop = open_shop(gateway=gateway, stock={"SKU-1": 5, "SKU-2": 3})
    before = stock_snapshot(shop)
    command = attrs.evolve(place_command, idempotency_key="checkout-outage")

    with pytest.raises(GatewayUnavailable):
        shop.orders.place(command)

    assert gateway.calls == 3  # gateway_attempts, all with the same key
    assert gateway.authorization_count() == 0
    assert_nothing_stored(shop)
    assert stock_snapshot(shop) == before

    gateway.unavailable_rate = 0.0
    order = shop.orders.place(command)

    assert gateway.authorization_count() == 1
    assert [o.id for o in shop.orders.list()] == [order.id]
    assert shop.payments.status(order.id) is PaymentStatus.AUTHORIZED
    assert [lv.reserved for lv in stock_snapshot(shop)[0]] == [2, 1]


def test_timeout_without_retries_then_the_caller_retries_with_the_same_key(
    open_shop: OpenShop, place_command: PlaceOrder
) -> None:
    shop = open_shop(gateway_attempts=1)
    gateway = gateway_of(shop)
    command = with_token(place_command, "tok_timeout_after_success", key="checkout-timeout")

    with pytest.raises(GatewayUnavailable):
        shop.orders.place(command)

    # the gateway did authorize, but nobody heard: nothing is stored yet
    assert gateway.authorization_count() == 1
    (callback,) = gateway.take_callbacks()
    assert_nothing_stored(shop)

    order = shop.orders.place(command)

    assert gateway.authorization_count() == 1
    assert [o.id for o in shop.orders.list()] == [order.id]
    payment = only_payment(shop, order.id)
    assert payment.authorization_id == callback.authorization_id
    assert not gateway.is_voided(callback.authorization_id)
    assert shop.orders.place(command).id == order.id
    assert gateway.authorization_count() == 1


def test_placement_failing_after_the_authorization_voids_it(
    open_shop: OpenShop, place_command: PlaceOrder
) -> None:
    gateway = HookedGateway(seed=5)
    shop = open_shop(gateway=gateway, stock={"SKU-1": 2, "SKU-2": 1})
    # the stock goes between the pre-check (and the authorization) and the commit
    gateway.after_authorize = lambda: shop.inventory.adjust(
        "SKU-1", location=WEST.id, delta=-1, reason="damaged in the warehouse"
    )

    with pytest.raises(OutOfStock):
        shop.orders.place(attrs.evolve(place_command, idempotency_key="checkout-stock-went"))

    assert gateway.authorization_count() == 1
    authorized, voided = gateway.take_callbacks()
    assert (authorized.kind, voided.kind) == (GatewayEventKind.AUTHORIZED, GatewayEventKind.VOIDED)
    assert gateway.is_voided(authorized.authorization_id)
    # no order and no event; only the voided authorization is kept, so that a retry of
    # the request knows to ask the gateway for a fresh one
    assert list(shop.orders.list()) == []
    assert shop.store.outbox.pending() == 0
    (kept,) = shop.payments.for_order("order-000001")
    assert kept.state == "voided"
    assert kept.authorization_id == authorized.authorization_id
    assert kept.captured.is_zero()
    levels = stock_snapshot(shop)[0]
    assert [(lv.on_hand, lv.reserved) for lv in levels] == [(1, 0), (1, 0)]


def test_a_keyed_retry_after_a_voided_placement_gets_a_live_authorization(
    open_shop: OpenShop, place_command: PlaceOrder
) -> None:
    gateway = HookedGateway(seed=5)
    shop = open_shop(gateway=gateway, stock={"SKU-1": 2, "SKU-2": 1})
    gateway.after_authorize = lambda: shop.inventory.adjust(
        "SKU-1", location=WEST.id, delta=-1, reason="damaged in the warehouse"
    )
    command = attrs.evolve(place_command, idempotency_key="checkout-stock-went")
    with pytest.raises(OutOfStock):
        shop.orders.place(command)
    (first_authorization, _void) = gateway.take_callbacks()
    assert gateway.is_voided(first_authorization.authorization_id)
    shop.inventory.receive("SKU-1", location=WEST.id, quantity=1)  # back in stock

    order = shop.orders.place(command)  # the customer tries again; same checkout, same key

    auth = authorization_of(only_payment(shop, order.id))
    assert shop.payments.status(order.id) is PaymentStatus.AUTHORIZED
    # the retry must not reuse the authorization the failed attempt voided
    assert not gateway.is_voided(auth), "the order's payment holds a voided authorization"
    shop.payments.capture(order.id, reference="manual-1")
    assert gateway.captured(auth) == TOTAL


def test_a_long_idempotency_key_authorizes_once(
    open_shop: OpenShop, place_command: PlaceOrder
) -> None:
    shop = open_shop()
    gateway = gateway_of(shop)
    command = attrs.evolve(place_command, idempotency_key="k" * 64)  # the longest allowed

    order = shop.orders.place(command)
    again = shop.orders.place(command)

    assert again.id == order.id
    assert gateway.authorization_count() == 1
    assert shop.payments.status(order.id) is PaymentStatus.AUTHORIZED


# -- 4. idempotency storm ------------------------------------------------------------------------

STORM_THREADS = 16


class GatheringGateway(MemoryGateway):
    """Holds each authorization call until ``parties`` calls are in (or a few seconds
    passed), so that concurrent placements really meet at the gateway and at the commit."""

    def __init__(self, parties: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._gate = threading.Barrier(parties)

    def authorize(self, amount: Money, token: str, *, idempotency_key: str) -> Any:
        with contextlib.suppress(threading.BrokenBarrierError):  # fewer callers: go on
            self._gate.wait(timeout=3)
        return super().authorize(amount, token, idempotency_key=idempotency_key)


def storm(shop: Shop, command: PlaceOrder) -> list[str]:
    """Place ``command`` from STORM_THREADS threads at once; the order ids they got."""
    start = threading.Barrier(STORM_THREADS)
    ids: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def place() -> None:
        try:
            start.wait(timeout=10)
            order = shop.orders.place(command)
        except BaseException as error:  # reported by the test below
            with lock:
                errors.append(error)
        else:
            with lock:
                ids.append(order.id)

    threads = [threading.Thread(target=place, daemon=True) for _ in range(STORM_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    return ids


@pytest.mark.usefixtures("fast_switching")
@pytest.mark.parametrize("tracked", [False, True], ids=["untracked", "stock"])
def test_idempotency_storm_places_and_authorizes_once(
    open_shop: OpenShop, place_command: PlaceOrder, tracked: bool
) -> None:
    gateway = GatheringGateway(STORM_THREADS, seed=11)
    # with stock tracking, exactly the order's units: a second reservation could not fit
    shop = open_shop(gateway=gateway, stock={"SKU-1": 2, "SKU-2": 1} if tracked else None)
    placed = record(shop, OrderPlaced)
    authorized = record(shop, PaymentAuthorized)
    command = attrs.evolve(place_command, idempotency_key="checkout-storm")

    ids = storm(shop, command)

    print(
        f"\nstorm: {STORM_THREADS} threads, {gateway.calls} authorize calls, "
        f"{gateway.authorization_count()} authorization(s), {len(shop.orders.list())} order(s), "
        f"{len(shop.payments.for_order(ids[0]))} payment(s)"
    )
    assert gateway.calls == STORM_THREADS  # every thread got past the pre-check: a real race
    assert len(ids) == STORM_THREADS
    assert len(set(ids)) == 1
    (order,) = shop.orders.list()
    assert order.id == ids[0]
    assert gateway.authorization_count() == 1
    payment = only_payment(shop, order.id)
    auth = authorization_of(payment)
    assert not gateway.is_voided(auth)  # the one authorization is the stored order's
    assert [e.authorization_id for e in authorized] == [auth]
    assert [e.order_id for e in placed] == [order.id]
    if tracked:
        held = [
            (s, loc, r.line_id, r.quantity) for s, loc, r in shop.inventory.reservations(order.id)
        ]
        assert held == [("SKU-1", "west", "L1", 2), ("SKU-2", "west", "L2", 1)]
        levels = stock_snapshot(shop)[0]
        assert [(lv.on_hand, lv.reserved, lv.available) for lv in levels] == [(2, 2, 0), (1, 1, 0)]


# -- 5. gateway callbacks ------------------------------------------------------------------------


def money(units: int) -> Money:
    return Money.from_minor(units, "EUR")


@pytest.mark.parametrize(
    ("kind", "orders"), [("memory", 250), ("sqlite", 25)], ids=["memory-1000", "sqlite-100"]
)
def test_each_callback_takes_effect_once_however_often_and_in_whatever_order(
    shops: Shops, place_command: PlaceOrder, kind: str, orders: int
) -> None:
    started = time.perf_counter()
    shop = shops.open(kind, capture="manual")
    gateway = gateway_of(shop)
    captured_events = record(shop, PaymentCaptured)
    refunded_events = record(shop, PaymentRefunded)
    rng = random.Random(20260105)
    order_ids = [shop.orders.place(place_command).id for _ in range(orders)]
    at_placement = gateway.take_callbacks()
    assert {c.kind for c in at_placement} == {GatewayEventKind.AUTHORIZED}
    assert len(at_placement) == orders

    # Money moves at the gateway without the service (a dashboard, say); only callbacks tell.
    expected: dict[str, tuple[set[str], set[str]]] = {}
    for order_id in order_ids:
        auth = authorization_of(only_payment(shop, order_id))
        first = rng.randint(1, TOTAL.minor_units - 1)
        cap1 = gateway.capture(auth, money(first), idempotency_key=f"{auth}:c1")
        cap2 = gateway.capture(auth, money(TOTAL.minor_units - first), idempotency_key=f"{auth}:c2")
        re1 = gateway.refund(cap1.id, money(rng.randint(1, first)), idempotency_key=f"{auth}:r1")
        re2 = gateway.refund(
            cap2.id, money(rng.randint(1, TOTAL.minor_units - first)), idempotency_key=f"{auth}:r2"
        )
        expected[order_id] = ({cap1.id, cap2.id}, {re1.id, re2.id})
    events = gateway.take_callbacks()
    assert len(events) == 4 * orders
    assert len({e.id for e in events}) == len(events)

    deliveries = events * 3
    rng.shuffle(deliveries)
    outcomes = Counter(shop.payments.apply_payment_event(event) for event in deliveries)
    # the authorizations are already recorded (our own call got there first)
    known = Counter(shop.payments.apply_payment_event(event) for event in at_placement[:10])

    effects = 0
    for order_id, (capture_ids, refund_ids) in expected.items():
        payment = only_payment(shop, order_id)
        auth = authorization_of(payment)
        assert payment.parked_events == ()
        assert {c.id for c in payment.captures} == capture_ids
        assert {r.id for r in payment.refunds} == refund_ids
        assert payment.captured == gateway.captured(auth) == TOTAL
        assert payment.refunded == gateway.refunded(auth)
        assert shop.payments.status(order_id) is PaymentStatus.PARTIALLY_REFUNDED
        effects += len(payment.captures) + len(payment.refunds)
    elapsed = time.perf_counter() - started
    print(
        f"\ncallbacks ({kind}): {orders} payments, {len(events)} events, "
        f"{len(deliveries)} deliveries, outcomes {dict(outcomes)}, {effects} effects, "
        f"{elapsed:.1f} s"
    )
    assert effects == len(events)
    assert outcomes["duplicate"] == 2 * len(events)
    assert outcomes["applied"] + outcomes["parked"] == len(events)
    assert outcomes["known"] == 0
    assert sum(outcomes.values()) == len(deliveries)
    assert known == Counter({"known": 10})
    assert len(captured_events) + len(refunded_events) == len(events)
    assert len(captured_events) == 2 * orders
    assert {e.capture_id for e in captured_events} == set().union(
        *(c for c, _ in expected.values())
    )
    assert {e.refund_id for e in refunded_events} == set().union(*(r for _, r in expected.values()))
    assert shop.store.outbox.pending() == 0


def test_a_callback_for_an_unknown_authorization_is_not_found(open_shop: OpenShop) -> None:
    shop = open_shop()
    event = PaymentGatewayEvent(
        id="evt_unknown",
        kind=GatewayEventKind.CAPTURED,
        authorization_id="auth_nobody_holds",
        occurred_at=T0,
        operation_id="cap_unknown",
        amount=Money("1.00", "EUR"),
    )
    with pytest.raises(PaymentNotFound, match="auth_nobody_holds"):
        shop.payments.apply_payment_event(event)
    assert shop.store.outbox.pending() == 0


def test_callbacks_for_the_shop_s_own_operations_are_known_and_repeats_duplicate(
    open_shop: OpenShop, place_command: PlaceOrder
) -> None:
    shop = open_shop(capture="manual")
    gateway = gateway_of(shop)
    order = shop.orders.place(with_token(place_command, "tok_duplicate_callback_1"))
    shop.payments.capture(order.id, Money("20.00", "EUR"), reference="manual-1")
    shop.payments.refund(order.id, Money("5.00", "EUR"), reference="return-1")
    shop.payments.void(order.id)
    before = only_payment(shop, order.id)
    callbacks = gateway.take_callbacks()
    kinds = [GatewayEventKind.AUTHORIZED, GatewayEventKind.CAPTURED]
    kinds += [GatewayEventKind.REFUNDED, GatewayEventKind.VOIDED]
    assert [c.kind for c in callbacks] == [kind for kind in kinds for _ in range(2)]

    outcomes = [shop.payments.apply_payment_event(c) for c in callbacks]

    assert outcomes == ["known", "duplicate"] * 4
    payment = only_payment(shop, order.id)
    assert (len(payment.captures), len(payment.refunds)) == (1, 1)
    assert (payment.captured, payment.refunded, payment.voided) == (
        Money("20.00", "EUR"),
        Money("5.00", "EUR"),
        Money("32.04", "EUR"),
    )
    assert (payment.captures, payment.refunds, payment.void_record) == (
        before.captures,
        before.refunds,
        before.void_record,
    )
    assert shop.payments.status(order.id) is PaymentStatus.PARTIALLY_REFUNDED


def test_a_lost_capture_answer_recorded_by_its_callback_keeps_the_shipment_s_units(
    open_shop: OpenShop, place_command: PlaceOrder
) -> None:
    gateway = LossyGateway(seed=9)
    shop = open_shop(gateway=gateway, gateway_attempts=1)
    order = shop.orders.place(place_command)
    auth = authorization_of(only_payment(shop, order.id))
    gateway.take_callbacks()
    gateway.lose.add("capture")
    with pytest.raises(GatewayUnavailable):
        shop.payments.capture_lines(order.id, {"L1": 1}, reference="shipment-1")
    (callback,) = gateway.take_callbacks()
    assert shop.payments.apply_payment_event(callback) == "applied"  # the webhook came first

    payment = shop.payments.capture_lines(order.id, {"L1": 1}, reference="shipment-1")

    assert payment.captured == Money("16.25", "EUR") == gateway.captured(auth)
    shop.orders.acknowledge(order.id)
    shop.orders.transition(order.id, "start_fulfilment")
    shop.orders.transition(order.id, "mark_shipped")
    # Regression: the capture was first recorded from the callback (reference
    # "gateway:<event>", no units, no shipping); the retry's own record must relabel it, or
    # capture-on-shipment asks for the whole 52.04 with 35.79 capturable and dead-letters.
    payment = only_payment(shop, order.id)
    assert payment.captured == TOTAL == gateway.captured(auth)
    assert shop.payments.status(order.id) is PaymentStatus.PAID


def test_a_refund_retried_after_a_crash_halfway_refunds_once(
    open_shop: OpenShop, place_command: PlaceOrder
) -> None:
    gateway = LossyGateway(seed=9)
    shop = open_shop(gateway=gateway, capture="manual", gateway_attempts=1)
    order = shop.orders.place(place_command)
    auth = authorization_of(only_payment(shop, order.id))
    shop.payments.capture(order.id, Money("20.00", "EUR"), reference="manual-1")
    shop.payments.capture(order.id, reference="manual-2")
    amount = Money("30.00", "EUR")
    gateway.lose.add("refund")
    with pytest.raises(GatewayUnavailable):
        shop.payments.refund(order.id, amount, reference="return-1")
    assert gateway.refunded(auth) == Money("20.00", "EUR")  # the first part happened

    payment = shop.payments.refund(order.id, amount, reference="return-1")

    assert payment.refunded == amount == gateway.refunded(auth)
    assert [(r.amount, r.reference) for r in payment.refunds] == [
        (Money("20.00", "EUR"), "return-1"),
        (Money("10.00", "EUR"), "return-1"),
    ]


def test_a_refund_retried_after_its_first_part_s_callback_refunds_once(
    open_shop: OpenShop, place_command: PlaceOrder
) -> None:
    gateway = LossyGateway(seed=9)
    shop = open_shop(gateway=gateway, capture="manual", gateway_attempts=1)
    order = shop.orders.place(place_command)
    auth = authorization_of(only_payment(shop, order.id))
    shop.payments.capture(order.id, Money("20.00", "EUR"), reference="manual-1")
    shop.payments.capture(order.id, reference="manual-2")
    amount = Money("30.00", "EUR")
    gateway.take_callbacks()
    gateway.lose.add("refund")
    with pytest.raises(GatewayUnavailable):
        shop.payments.refund(order.id, amount, reference="return-1")
    (callback,) = gateway.take_callbacks()
    assert shop.payments.apply_payment_event(callback) == "applied"  # the webhook came first

    payment = shop.payments.refund(order.id, amount, reference="return-1")

    # Regression: the first part (20.00 from the first capture) was recorded by the callback
    # under "gateway:<event>"; a retry that re-planned from the records would refund 30.00
    # from the second capture as well. The plan is kept on the payment instead.
    assert gateway.refunded(auth) == amount, "money refunded twice"
    assert payment.refunded == amount


# -- 6. capture on shipment ----------------------------------------------------------------------


def test_capture_lines_charges_the_units_share_then_shipping_the_rest(
    open_shop: OpenShop, place_command: PlaceOrder
) -> None:
    shop = open_shop()  # capture="on_shipment", the default
    gateway = gateway_of(shop)
    captured = record(shop, PaymentCaptured)
    order = shop.orders.place(place_command)
    auth = authorization_of(only_payment(shop, order.id))

    payment = shop.payments.capture_lines(order.id, {"L1": 1}, reference="shipment-1")

    first = L1_FIRST_UNIT + SHIPPING
    assert first == Money("16.25", "EUR")
    assert payment.captured == first == gateway.captured(auth)
    assert shop.payments.status(order.id) is PaymentStatus.PARTIALLY_PAID

    again = shop.payments.capture_lines(order.id, {"L1": 1}, reference="shipment-1")

    assert again.captured == first == gateway.captured(auth)
    assert len(only_payment(shop, order.id).captures) == 1

    shop.orders.acknowledge(order.id)
    shop.orders.transition(order.id, "start_fulfilment")
    assert gateway.captured(auth) == first
    shop.orders.transition(order.id, "mark_shipped")

    payment = only_payment(shop, order.id)
    assert payment.captured == TOTAL == gateway.captured(auth)
    assert shop.payments.status(order.id) is PaymentStatus.PAID
    assert [(c.amount, c.reference) for c in payment.captures] == [
        (first, "shipment-1"),
        (TOTAL - first, "order-shipped"),
    ]
    assert TOTAL - first == Money("35.79", "EUR")
    assert [c.units for c in payment.captures] == [(("L1", 1),), (("L1", 1), ("L2", 1))]
    assert [e.amount for e in captured] == [first, TOTAL - first]


# -- 7. cancellation -----------------------------------------------------------------------------


def test_cancelling_an_authorized_order_voids_the_authorization(
    open_shop: OpenShop, place_command: PlaceOrder
) -> None:
    shop = open_shop()
    gateway = gateway_of(shop)
    voided = record(shop, PaymentVoided)
    order = shop.orders.place(place_command)
    auth = authorization_of(only_payment(shop, order.id))

    shop.orders.cancel(order.id, "customer changed their mind")

    assert gateway.is_voided(auth)
    assert gateway.captured(auth) == ZERO
    payment = only_payment(shop, order.id)
    assert payment.state == PaymentState.VOIDED.value
    assert payment.voided == TOTAL
    assert shop.payments.status(order.id) is PaymentStatus.UNPAID
    assert [e.amount for e in voided] == [TOTAL]


def test_cancelling_a_paid_order_refunds_it_in_full(
    open_shop: OpenShop, place_command: PlaceOrder
) -> None:
    shop = open_shop(capture="on_placement")
    gateway = gateway_of(shop)
    order = shop.orders.place(place_command)
    auth = authorization_of(only_payment(shop, order.id))
    assert shop.payments.status(order.id) is PaymentStatus.PAID

    shop.orders.cancel(order.id, "out of stock after all")

    payment = only_payment(shop, order.id)
    assert gateway.refunded(auth) == TOTAL == payment.refunded
    assert not gateway.is_voided(auth)
    assert shop.payments.status(order.id) is PaymentStatus.REFUNDED
    assert payment.state == PaymentState.REFUNDED.value


def test_cancelling_after_a_partial_capture_voids_the_rest_and_refunds_the_part(
    open_shop: OpenShop, place_command: PlaceOrder
) -> None:
    shop = open_shop()
    gateway = gateway_of(shop)
    order = shop.orders.place(place_command)
    auth = authorization_of(only_payment(shop, order.id))
    part = shop.payments.capture_lines(order.id, {"L1": 1}, reference="shipment-1").captured
    assert part == Money("16.25", "EUR")

    shop.orders.cancel(order.id, "the rest is lost")

    payment = only_payment(shop, order.id)
    assert gateway.is_voided(auth)
    assert gateway.captured(auth) == part == payment.captured
    assert gateway.refunded(auth) == part == payment.refunded
    assert payment.voided == TOTAL - part
    assert shop.payments.status(order.id) is PaymentStatus.REFUNDED


# -- 8. manual refunds ---------------------------------------------------------------------------


def test_a_refund_is_made_once_per_reference(
    open_shop: OpenShop, place_command: PlaceOrder
) -> None:
    shop = open_shop(capture="on_placement")
    gateway = gateway_of(shop)
    refunded = record(shop, PaymentRefunded)
    order = shop.orders.place(place_command)
    auth = authorization_of(only_payment(shop, order.id))
    amount = Money("10.00", "EUR")

    shop.payments.refund(order.id, amount, reference="return-1")
    payment = shop.payments.refund(order.id, amount, reference="return-1")

    assert gateway.refunded(auth) == amount == payment.refunded
    assert len(payment.refunds) == 1
    assert [(e.amount, e.reference) for e in refunded] == [(amount, "return-1")]
    assert shop.payments.status(order.id) is PaymentStatus.PARTIALLY_REFUNDED

    with pytest.raises(InvalidPaymentOperation):
        shop.payments.refund(order.id, TOTAL, reference="return-2")

    assert gateway.refunded(auth) == amount
    assert only_payment(shop, order.id).refunded == amount
    assert len(refunded) == 1


def test_refunding_more_than_captured_moves_nothing(
    open_shop: OpenShop, place_command: PlaceOrder
) -> None:
    shop = open_shop(capture="manual")
    gateway = gateway_of(shop)
    order = shop.orders.place(place_command)
    auth = authorization_of(only_payment(shop, order.id))
    shop.payments.capture(order.id, Money("20.00", "EUR"), reference="manual-1")

    with pytest.raises(InvalidPaymentOperation):
        shop.payments.refund(order.id, Money("20.01", "EUR"), reference="return-1")

    payment = only_payment(shop, order.id)
    assert payment.refunds == ()
    assert gateway.refunded(auth) == ZERO
    assert shop.payments.status(order.id) is PaymentStatus.PARTIALLY_PAID


def test_a_refund_spanning_two_captures_takes_the_oldest_first(
    open_shop: OpenShop, place_command: PlaceOrder
) -> None:
    shop = open_shop(capture="manual")
    gateway = gateway_of(shop)
    order = shop.orders.place(place_command)
    auth = authorization_of(only_payment(shop, order.id))
    shop.payments.capture(order.id, Money("20.00", "EUR"), reference="manual-1")
    shop.payments.capture(order.id, reference="manual-2")  # the rest: 32.04
    first, second = only_payment(shop, order.id).captures
    assert (first.amount, second.amount) == (Money("20.00", "EUR"), Money("32.04", "EUR"))

    amount = Money("30.00", "EUR")
    payment = shop.payments.refund(order.id, amount, reference="return-1")
    again = shop.payments.refund(order.id, amount, reference="return-1")

    assert [(r.capture_id, r.amount, r.reference) for r in payment.refunds] == [
        (first.id, Money("20.00", "EUR"), "return-1"),
        (second.id, Money("10.00", "EUR"), "return-1"),
    ]
    assert payment.refunded == amount == gateway.refunded(auth)
    assert again.refunded == amount
    assert len(again.refunds) == 2
    assert payment.refundable_of(first.id) == ZERO
    assert payment.refundable_of(second.id) == Money("22.04", "EUR")
    assert shop.payments.status(order.id) is PaymentStatus.PARTIALLY_REFUNDED


# -- 9. no gateway -------------------------------------------------------------------------------


def test_without_a_gateway_orders_are_placed_unpaid(
    open_shop: OpenShop, place_command: PlaceOrder
) -> None:
    shop = open_shop(gateway=None)
    authorized = record(shop, PaymentAuthorized)

    order = shop.orders.place(place_command)

    assert shop.orders.get(order.id).totals.total == TOTAL
    assert shop.payments.status(order.id) is PaymentStatus.UNPAID
    assert shop.payments.for_order(order.id) == []
    assert authorized == []


def test_without_a_gateway_money_commands_raise_payment_error(
    open_shop: OpenShop, place_command: PlaceOrder
) -> None:
    shop = open_shop(gateway=None)
    order = shop.orders.place(place_command)

    # Regression: the gateway is checked before the payment is looked up, so an order
    # placed unpaid gets PaymentError, not PaymentNotFound.
    with pytest.raises(PaymentError, match="no payment gateway"):
        shop.payments.capture(order.id, reference="manual-1")


# -- 10. card numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize("card", ["4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111"])
def test_a_card_number_is_rejected_and_never_echoed(
    place_command: PlaceOrder, caplog: pytest.LogCaptureFixture, card: str
) -> None:
    caplog.set_level(logging.DEBUG)
    fields = attrs.asdict(place_command, recurse=False)

    with pytest.raises(CardNumberRejected) as caught:
        PlaceOrder(**{**fields, "payment_token": card})

    error = caught.value
    assert error.field == "payment_token"
    shown = " ".join(
        [
            str(error),
            repr(error),
            repr(error.args),
            repr(error.value),
            *traceback.format_exception_only(type(error), error),
            caplog.text,
            *(record.getMessage() for record in caplog.records),
        ]
    )
    digits = card.replace(" ", "").replace("-", "")
    for secret in (card, digits, digits[:12], "1111 1111", "1111-1111"):
        assert secret not in shown
    assert "card number" in str(error)


def test_a_card_number_in_json_is_rejected_and_never_echoed(
    valid_payload: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    valid_payload["payment_token"] = "4111 1111 1111 1111"

    with pytest.raises(CardNumberRejected) as caught:
        PlaceOrder.from_json(json.dumps(valid_payload))

    shown = " ".join([str(caught.value), repr(caught.value), repr(caught.value.value), caplog.text])
    assert "4111" not in shown
    assert "1111 1111" not in shown


# -- 11. zero total ------------------------------------------------------------------------------


def test_a_zero_total_order_is_placed_without_a_payment(
    open_shop: OpenShop, place_command: PlaceOrder
) -> None:
    shop = open_shop()
    gateway = gateway_of(shop)
    free = LineItem("L1", "SKU-FREE", "Free sample", 1, Money("0.00", "EUR"))
    command = attrs.evolve(place_command, lines=[free], shipping_charge=None)

    order = shop.orders.place(command)

    assert order.totals.total == ZERO
    assert shop.orders.get(order.id).state == "placed"
    assert shop.payments.for_order(order.id) == []
    assert shop.payments.status(order.id) is PaymentStatus.UNPAID
    assert gateway.authorization_count() == 0
    assert gateway.calls == 0
