"""The order service as a shop uses it: ``shop.orders``, on the memory store."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import TypeVar

import attrs
import pytest
from hypothesis import given, settings

from orderkit import (
    ORDER_LIFECYCLE,
    ConcurrencyError,
    ContactChannel,
    DomainEvent,
    HoldError,
    IdempotencyConflict,
    InvalidField,
    InvalidTransition,
    Money,
    Order,
    OrderAcknowledged,
    OrderCancelled,
    OrderEvent,
    OrderHoldPlaced,
    OrderHoldReleased,
    OrderNotFound,
    OrderPlaced,
    OrderTransitioned,
    PlaceOrder,
    Shop,
    ShopSettings,
    TransitionBlocked,
    TransitionSpec,
)
from orderkit.adapters.memory import ManualClock, MemoryStore, MemoryUnitOfWork, SequentialIds
from orderkit.testing.strategies import place_order_commands

E = TypeVar("E", bound=DomainEvent)

MONDAY_9AM = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


def new_shop(**settings_kwargs: object) -> Shop:
    settings_ = ShopSettings(**{"track_stock": False, **settings_kwargs})
    return Shop.open("memory://", settings=settings_, clock=ManualClock(), ids=SequentialIds())


def record(shop: Shop, event_type: type[E]) -> list[E]:
    """Every event of ``event_type`` the shop dispatches, in order (one recorder per shop)."""
    events: list[E] = []
    shop.subscribe(event_type, events.append)
    return events


def for_customer(command: PlaceOrder, customer_id: str) -> PlaceOrder:
    return attrs.evolve(command, customer=attrs.evolve(command.customer, id=customer_id))


# --- placement -------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(place_order_commands())
def test_place_returns_a_placed_order_with_correct_totals(command: PlaceOrder) -> None:
    shop = new_shop()
    placed = record(shop, OrderPlaced)

    order = shop.orders.place(command)

    subtotal = sum((line.unit_price.amount * line.quantity for line in command.lines), Decimal(0))
    discounts = sum((line.discount.amount for line in command.lines), Decimal(0))
    taxes = sum((line.tax.amount for line in command.lines), Decimal(0))
    shipping = command.shipping_charge.amount if command.shipping_charge else Decimal(0)
    expected_total = subtotal - discounts + taxes + shipping

    assert order.state == "placed"
    assert order.version == 1
    assert order.currency == "EUR"
    assert order.lines == command.lines
    totals = order.totals
    assert totals.subtotal.amount == subtotal
    assert totals.discount.amount == discounts
    assert totals.tax.amount == taxes
    assert totals.shipping.amount == shipping
    assert totals.total.amount == expected_total
    assert {m.currency for m in attrs.astuple(totals, recurse=False)} == {"EUR"}
    stored = shop.orders.get(order.id)
    assert stored.totals == totals
    assert stored.version == 1
    assert [(e.order_id, e.total) for e in placed] == [(order.id, totals.total)]


def test_place_totals_of_a_known_order(shop: Shop, place_command: PlaceOrder) -> None:
    order = shop.orders.place(place_command)

    totals = order.totals
    assert totals.subtotal == Money("44.48", "EUR")
    assert totals.discount == Money("1.00", "EUR")
    assert totals.tax == Money("3.61", "EUR")
    assert totals.shipping == Money("4.95", "EUR")
    assert totals.total == Money("52.04", "EUR")
    assert order.placed_at == MONDAY_9AM
    assert order.id == "order-000001"
    assert order.promised_delivery is None


# --- idempotency -----------------------------------------------------------------------------


def test_same_key_same_request_places_once(shop: Shop, place_command: PlaceOrder) -> None:
    placed = record(shop, OrderPlaced)
    command = attrs.evolve(place_command, idempotency_key="checkout-42")
    again = attrs.evolve(place_command, idempotency_key="checkout-42")

    first = shop.orders.place(command)
    second = shop.orders.place(again)

    assert second.id == first.id
    assert second.version == 1
    assert [o.id for o in shop.orders.list()] == [first.id]
    assert len(placed) == 1


def test_same_key_same_request_with_explicit_zero_shipping_is_the_same_request(
    shop: Shop, place_command: PlaceOrder
) -> None:
    command = attrs.evolve(place_command, shipping_charge=None, idempotency_key="k")
    first = shop.orders.place(command)
    second = shop.orders.place(attrs.evolve(command, shipping_charge=Money("0", "EUR")))
    assert second.id == first.id
    assert len(shop.orders.list()) == 1


def test_same_key_different_request_conflicts(shop: Shop, place_command: PlaceOrder) -> None:
    placed = record(shop, OrderPlaced)
    first = shop.orders.place(attrs.evolve(place_command, idempotency_key="checkout-42"))
    different = attrs.evolve(
        place_command, idempotency_key="checkout-42", payment_token="tok_other_card"
    )

    with pytest.raises(IdempotencyConflict) as info:
        shop.orders.place(different)

    assert info.value.existing_id == first.id
    assert info.value.key == "checkout-42"
    assert [o.id for o in shop.orders.list()] == [first.id]
    assert shop.orders.get(first.id).payment_token == place_command.payment_token
    assert len(placed) == 1


def test_without_a_key_every_request_is_a_new_order(shop: Shop, place_command: PlaceOrder) -> None:
    first = shop.orders.place(place_command)
    second = shop.orders.place(place_command)
    assert first.id != second.id
    assert len(shop.orders.list()) == 2


def test_idempotent_replay_returns_the_order_as_it_is_now(
    shop: Shop, place_command: PlaceOrder
) -> None:
    command = attrs.evolve(place_command, idempotency_key="k-1")
    first = shop.orders.place(command)
    shop.orders.acknowledge(first.id)
    sent_before = len(shop.notifier.sent)

    replay = shop.orders.place(command)

    assert replay.id == first.id
    assert replay.state == "acknowledged"
    assert replay.version == 2
    assert len(shop.notifier.sent) == sent_before


# --- acknowledgement -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("placed_at", "promised"),
    [
        # before the 14:00 cut-off: ships Tue (1 handling day), +3 transit days -> Fri
        (MONDAY_9AM, date(2026, 1, 9)),
        # after the cut-off counts from Tue: ships Wed, delivered Mon (weekend skipped)
        (MONDAY_9AM.replace(hour=15), date(2026, 1, 12)),
        # Friday after the cut-off: counts from Mon, ships Tue, delivered Fri
        (datetime(2026, 1, 9, 15, 0, tzinfo=timezone.utc), date(2026, 1, 16)),
        # Saturday: counts from Mon
        (datetime(2026, 1, 10, 10, 0, tzinfo=timezone.utc), date(2026, 1, 16)),
    ],
)
def test_acknowledge_promises_delivery_and_emails_once(
    place_command: PlaceOrder, placed_at: datetime, promised: date
) -> None:
    clock = ManualClock(placed_at)
    shop = Shop.open(
        "memory://", clock=clock, ids=SequentialIds(), settings=ShopSettings(track_stock=False)
    )
    acknowledged = record(shop, OrderAcknowledged)
    order = shop.orders.place(place_command)
    clock.advance(timedelta(days=2))  # the promise counts from placement, not from now

    result = shop.orders.acknowledge(order.id)

    assert result.state == "acknowledged"
    assert result.promised_delivery == promised
    assert result.version == 2
    assert shop.orders.get(order.id).promised_delivery == promised
    assert len(acknowledged) == 1
    [sent] = shop.notifier.sent
    assert sent.order_id == order.id
    assert sent.kind == "order_confirmation"
    assert sent.channel is ContactChannel.EMAIL
    assert sent.recipient == "ada@example.com"
    assert sent.promised_delivery == promised
    assert promised.isoformat() in sent.body


def test_acknowledge_texts_a_customer_who_prefers_sms(
    shop: Shop, place_command: PlaceOrder
) -> None:
    customer = attrs.evolve(place_command.customer, preferred_contact=ContactChannel.SMS)
    order = shop.orders.place(attrs.evolve(place_command, customer=customer))

    shop.orders.acknowledge(order.id)

    [sent] = shop.notifier.sent
    assert sent.channel is ContactChannel.SMS
    assert sent.recipient == "+447700900123"
    assert sent.promised_delivery == date(2026, 1, 9)
    assert "2026-01-09" in sent.body


def test_acknowledge_twice_is_refused_and_sends_nothing_more(
    shop: Shop, place_command: PlaceOrder
) -> None:
    order = shop.orders.place(place_command)
    shop.orders.acknowledge(order.id)

    with pytest.raises(InvalidTransition):
        shop.orders.acknowledge(order.id)

    assert len(shop.notifier.sent) == 1
    assert shop.orders.get(order.id).version == 2


# --- cancellation, holds ---------------------------------------------------------------------


def test_cancel_records_the_reason(shop: Shop, place_command: PlaceOrder) -> None:
    cancelled = record(shop, OrderCancelled)
    order = shop.orders.place(place_command)
    shop.orders.acknowledge(order.id)

    result = shop.orders.cancel(order.id, "customer changed their mind")

    stored = shop.orders.get(order.id)
    for seen in (result, stored):
        assert seen.state == "cancelled"
        assert seen.cancellation_reason == "customer changed their mind"
        assert seen.version == 3
    [event] = cancelled
    assert event.reason == "customer changed their mind"
    assert event.previous_state == "acknowledged"


def test_cancel_is_refused_after_shipping(shop: Shop, place_command: PlaceOrder) -> None:
    order = shop.orders.place(place_command)
    shop.orders.acknowledge(order.id)
    shop.orders.transition(order.id, "start_fulfilment")
    shop.orders.transition(order.id, "mark_shipped")

    with pytest.raises(InvalidTransition) as info:
        shop.orders.cancel(order.id, "too late")

    assert info.value.state == "shipped"
    assert info.value.trigger == "cancel"
    stored = shop.orders.get(order.id)
    assert stored.state == "shipped"
    assert stored.cancellation_reason is None
    assert stored.version == 4


def test_hold_blocks_fulfilment_until_released(shop: Shop, place_command: PlaceOrder) -> None:
    events = record(shop, OrderEvent)
    order = shop.orders.place(place_command)
    shop.orders.acknowledge(order.id)

    held = shop.orders.hold(order.id, "manual_review", note="big first order")
    assert held.is_on_hold
    assert [(h.reason, h.note) for h in held.holds] == [("manual_review", "big first order")]
    assert shop.orders.get(order.id).holds == held.holds

    with pytest.raises(TransitionBlocked):
        shop.orders.transition(order.id, "start_fulfilment")
    with pytest.raises(HoldError):
        shop.orders.hold(order.id, "manual_review")
    assert shop.orders.get(order.id).state == "acknowledged"
    assert shop.orders.get(order.id).version == 3

    released = shop.orders.release(order.id, "manual_review")
    assert released.holds == ()
    assert shop.orders.transition(order.id, "start_fulfilment").state == "fulfilling"
    hold_events = [
        (type(e).__name__, e.reason)
        for e in events
        if isinstance(e, (OrderHoldPlaced, OrderHoldReleased))
    ]
    assert hold_events == [
        ("OrderHoldPlaced", "manual_review"),
        ("OrderHoldReleased", "manual_review"),
    ]
    assert shop.orders.get(order.id).version == 5


def test_release_without_hold_is_refused(shop: Shop, place_command: PlaceOrder) -> None:
    order = shop.orders.place(place_command)
    with pytest.raises(HoldError):
        shop.orders.release(order.id, "manual_review")
    assert shop.orders.get(order.id).version == 1


# --- queries ---------------------------------------------------------------------------------


def test_get_unknown_order(shop: Shop) -> None:
    with pytest.raises(OrderNotFound) as info:
        shop.orders.get("order-999999")
    assert info.value.order_id == "order-999999"
    assert "order-999999" in str(info.value)


def test_commands_on_unknown_order_raise_not_found(shop: Shop) -> None:
    with pytest.raises(OrderNotFound):
        shop.orders.acknowledge("nope")
    with pytest.raises(OrderNotFound):
        shop.orders.hold("nope", "manual_review")
    assert shop.notifier.sent == []


@pytest.fixture
def three_orders(shop: Shop, place_command: PlaceOrder) -> list[Order]:
    """Orders of ada (10:00), bob (11:00) and ada (08:00, placed last), the bob one acknowledged."""
    clock = shop.clock
    assert isinstance(clock, ManualClock)
    clock.set(MONDAY_9AM.replace(hour=10))
    first = shop.orders.place(for_customer(place_command, "ada"))
    clock.set(MONDAY_9AM.replace(hour=11))
    second = shop.orders.place(for_customer(place_command, "bob"))
    clock.set(MONDAY_9AM.replace(hour=8))
    earliest = shop.orders.place(for_customer(place_command, "ada"))
    shop.orders.acknowledge(second.id)
    return [first, second, earliest]


def ids(orders: Sequence[Order]) -> list[str]:
    return [order.id for order in orders]


def test_list_is_oldest_first_and_pages(shop: Shop, three_orders: list[Order]) -> None:
    first, second, earliest = three_orders
    everything = [earliest.id, first.id, second.id]

    assert ids(shop.orders.list()) == everything
    assert ids(shop.orders.list(limit=2)) == everything[:2]
    assert ids(shop.orders.list(limit=2, offset=2)) == everything[2:]
    assert ids(shop.orders.list(limit=1, offset=1)) == [first.id]
    assert ids(shop.orders.list(offset=3)) == []


def test_list_by_state_and_customer(shop: Shop, three_orders: list[Order]) -> None:
    first, second, earliest = three_orders

    assert ids(shop.orders.list(state="placed")) == [earliest.id, first.id]
    assert ids(shop.orders.list(state="acknowledged")) == [second.id]
    assert ids(shop.orders.list(customer_id="ada")) == [earliest.id, first.id]
    assert ids(shop.orders.list(customer_id="ada", limit=1, offset=1)) == [first.id]
    assert ids(shop.orders.list(customer_id="bob", state="placed")) == []
    assert ids(shop.orders.list(customer_id="nobody")) == []


def test_listed_orders_are_private_copies(shop: Shop, three_orders: list[Order]) -> None:
    listed = shop.orders.list()[0]
    listed.state = "completed"
    assert shop.orders.get(listed.id).state == "placed"


@pytest.mark.parametrize(
    ("limit", "offset", "field"),
    [
        (0, 0, "limit"),
        (1001, 0, "limit"),
        (-5, 0, "limit"),
        (True, 0, "limit"),
        ("10", 0, "limit"),
        (10, -1, "offset"),
        (10, 1.5, "offset"),
    ],
)
def test_list_rejects_a_bad_page(
    shop: Shop, three_orders: list[Order], limit: object, offset: object, field: str
) -> None:
    with pytest.raises(InvalidField) as info:
        shop.orders.list(limit=limit, offset=offset)
    assert info.value.field == field
    assert field in str(info.value)


# --- optimistic concurrency ------------------------------------------------------------------


def _stored_order(store: MemoryStore, command: PlaceOrder) -> Order:
    order = Order.place(
        order_id="order-1",
        customer=command.customer,
        shipping_address=command.shipping_address,
        channel=command.channel,
        currency=command.currency,
        lines=command.lines,
        shipping_charge=command.shipping,
        payment_token=command.payment_token,
        placed_at=MONDAY_9AM,
    )
    with store() as uow:
        uow.orders.add(order)
        uow.commit()
    return order


def test_of_two_writers_of_one_order_the_second_commit_fails(place_command: PlaceOrder) -> None:
    store = MemoryStore()
    _stored_order(store, place_command)
    with store() as first, store() as second:
        mine = first.orders.get("order-1")
        theirs = second.orders.get("order-1")
        assert mine.version == theirs.version == 1
        mine.hold("manual_review", MONDAY_9AM)
        theirs.hold("payment_problem", MONDAY_9AM)
        first.orders.save(mine)
        second.orders.save(theirs)

        events = first.commit()
        assert [type(e) for e in events] == [OrderHoldPlaced]
        with pytest.raises(ConcurrencyError):
            second.commit()

    with store() as uow:
        stored = uow.orders.get("order-1")
    assert stored.version == 2
    assert [h.reason for h in stored.holds] == ["manual_review"]


def test_a_stale_save_after_a_winning_one_still_fails(place_command: PlaceOrder) -> None:
    store = MemoryStore()
    _stored_order(store, place_command)
    with store() as slow:
        stale = slow.orders.get("order-1")
        for reason in ("a", "b"):
            with store() as fast:
                fresh = fast.orders.get("order-1")
                fresh.hold(reason, MONDAY_9AM)
                fast.orders.save(fresh)
                fast.commit()
        stale.hold("c", MONDAY_9AM)
        slow.orders.save(stale)
        with pytest.raises(ConcurrencyError):
            slow.commit()
    with store() as uow:
        assert uow.orders.get("order-1").version == 3


class RivalBeforeFirstCommits:
    """A unit-of-work factory on ``store`` where, once armed, the next ``conflicts``
    commits that change something find a rival change committed just before them."""

    def __init__(self, store: MemoryStore, order_id: str) -> None:
        self.store = store
        self.order_id = order_id
        self.conflicts = 0
        self.commits = 0

    def _rival(self) -> None:
        with self.store() as rival:
            order = rival.orders.get(self.order_id)
            order.hold(f"rival-{self.conflicts}", MONDAY_9AM)
            rival.orders.save(order)
            rival.commit()

    def __call__(self) -> MemoryUnitOfWork:
        uow = self.store()
        real_commit = uow.commit

        def commit() -> list[DomainEvent]:
            if uow.orders.staged:
                self.commits += 1
                if self.conflicts:
                    self._rival()
                    self.conflicts -= 1
            return real_commit()

        uow.commit = commit
        return uow

    def __getattr__(self, name: str) -> object:
        # everything else a shop may need of its store (an outbox, close) is the store's
        return getattr(self.store, name)


def _shop_with_rival(
    place_command: PlaceOrder, retries: int
) -> tuple[Shop, RivalBeforeFirstCommits, Order]:
    store = MemoryStore()
    factory = RivalBeforeFirstCommits(store, "order-000001")
    shop = Shop(
        factory,
        settings=ShopSettings(concurrency_retries=retries, track_stock=False),
        clock=ManualClock(),
        ids=SequentialIds(),
    )
    order = shop.orders.place(place_command)
    assert order.id == factory.order_id
    factory.commits = 0
    return shop, factory, order


def test_service_retries_a_command_that_lost_a_race(place_command: PlaceOrder) -> None:
    shop, factory, order = _shop_with_rival(place_command, retries=3)
    holds = record(shop, OrderHoldPlaced)
    factory.conflicts = 1

    result = shop.orders.hold(order.id, "manual_review")

    assert factory.commits == 2  # the lost attempt and the retry
    stored = shop.orders.get(order.id)
    assert stored.version == 3  # placed 1, rival 2, ours 3
    assert result.version == 3
    assert {h.reason for h in stored.holds} == {"rival-1", "manual_review"}
    # our command's event is delivered once, although the command ran twice
    assert [e.reason for e in holds].count("manual_review") == 1


def test_service_gives_up_after_the_configured_retries(place_command: PlaceOrder) -> None:
    shop, factory, order = _shop_with_rival(place_command, retries=2)
    holds = record(shop, OrderHoldPlaced)
    factory.conflicts = 3

    with pytest.raises(ConcurrencyError):
        shop.orders.hold(order.id, "manual_review")

    assert factory.commits == 3  # first try and two retries
    stored = shop.orders.get(order.id)
    assert stored.version == 4  # placed, then three rival changes; ours never landed
    assert "manual_review" not in {h.reason for h in stored.holds}
    assert "manual_review" not in [e.reason for e in holds]


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads very often so that concurrent commands really interleave."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


@pytest.mark.usefixtures("busy_switching")
def test_concurrent_commands_on_one_order_lose_no_update(place_command: PlaceOrder) -> None:
    threads_count, commands_each = 8, 25
    shop = new_shop(concurrency_retries=100)
    changes = record(shop, DomainEvent)
    order = shop.orders.place(place_command)
    changes.clear()
    start = threading.Barrier(threads_count)
    lock = threading.Lock()
    succeeded = 0
    conflicts = 0
    unexpected: list[BaseException] = []
    still_held: set[str] = set()

    def worker(number: int) -> None:
        nonlocal succeeded, conflicts
        reason = f"worker-{number}"
        held = False
        start.wait()
        for _ in range(commands_each):
            try:
                if held:
                    shop.orders.release(order.id, reason)
                else:
                    shop.orders.hold(order.id, reason)
            except ConcurrencyError:
                with lock:
                    conflicts += 1
                continue
            except BaseException as error:  # reported below, not swallowed
                unexpected.append(error)
                return
            held = not held
            with lock:
                succeeded += 1
        if held:
            with lock:
                still_held.add(reason)

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads_count)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in workers)

    assert unexpected == []
    assert succeeded + conflicts == threads_count * commands_each
    stored = shop.orders.get(order.id)
    assert stored.version == 1 + succeeded
    assert {h.reason for h in stored.holds} == still_held
    assert len(changes) == succeeded
    assert all(isinstance(e, (OrderHoldPlaced, OrderHoldReleased)) for e in changes)


# --- extended lifecycle ----------------------------------------------------------------------

FRAUD_REVIEW = ORDER_LIFECYCLE.extend(
    states=["flagged"],
    transitions=[
        TransitionSpec("flag", ["placed", "acknowledged"], "flagged"),
        TransitionSpec("clear_flag", ["flagged"], "placed"),
    ],
)


def test_extended_lifecycle_trigger_through_the_service(place_command: PlaceOrder) -> None:
    shop = new_shop(order_lifecycle=FRAUD_REVIEW)
    transitioned = record(shop, OrderTransitioned)
    order = shop.orders.place(place_command)

    flagged = shop.orders.transition(order.id, "flag")

    assert flagged.state == "flagged"
    assert flagged.version == 2
    assert shop.orders.get(order.id).state == "flagged"
    [event] = transitioned
    assert (event.trigger, event.source, event.dest) == ("flag", "placed", "flagged")
    with pytest.raises(InvalidTransition):
        shop.orders.acknowledge(order.id)
    # holds still work: start_fulfilment lies ahead of "flagged"
    assert shop.orders.hold(order.id, "manual_review").is_on_hold
    assert shop.orders.transition(order.id, "clear_flag").state == "placed"
    assert shop.orders.acknowledge(order.id).state == "acknowledged"


def test_default_lifecycle_has_no_flag_trigger(shop: Shop, place_command: PlaceOrder) -> None:
    order = shop.orders.place(place_command)
    with pytest.raises(InvalidTransition) as info:
        shop.orders.transition(order.id, "flag")
    assert info.value.trigger == "flag"
    assert shop.orders.get(order.id).version == 1
    assert shop.orders.get(order.id).state == "placed"


def test_transition_refuses_triggers_that_need_arguments(
    shop: Shop, place_command: PlaceOrder
) -> None:
    order = shop.orders.place(place_command)
    for trigger in ("acknowledge", "cancel"):
        with pytest.raises(InvalidField):
            shop.orders.transition(order.id, trigger)
    assert shop.orders.get(order.id).version == 1
