"""Event dispatch through the transactional outbox, on the memory and the SQLite store.

Every test runs twice: on a ``MemoryStore`` and on a ``SqliteStore`` in a fresh file. The
shop's clock is a ``ManualClock``, so retries and back-off are driven by moving it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

import orderkit as ok
import pg
from orderkit.adapters.memory import ManualClock, MemoryNotifier, MemoryStore, SequentialIds
from orderkit.ports import Store
from orderkit.service.dispatch import DispatchReport, handler_name
from orderkit.shop import Shop
from orderkit.shop import open_store as open_store_url

START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
SECOND = timedelta(seconds=1)
MS = timedelta(milliseconds=1)

StoreOpener = Callable[[], Store]
ShopMaker = Callable[..., Shop]


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreOpener]:
    """Opens "the" store: the same ``MemoryStore`` each time, or a new ``SqliteStore`` on one
    file or ``PostgresStore`` on one schema (like another process or a restart would)."""
    opened: list[Store] = []
    memory = MemoryStore()
    url = pg.store_url(request.param, tmp_path / "shop.db")

    def opener() -> Store:
        store: Store = memory if request.param == "memory" else open_store_url(url)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        store.close()


@pytest.fixture
def make_shop(open_store: StoreOpener) -> ShopMaker:
    """``make_shop(**settings)``: a shop on the store with a manual clock at ``START``."""

    def make(*, store: Store | None = None, **settings: Any) -> Shop:
        return Shop(
            store if store is not None else open_store(),
            clock=ManualClock(START),
            ids=SequentialIds(),
            settings=ok.ShopSettings(**{"track_stock": False, **settings}),
        )

    return make


def clock_of(shop: Shop) -> ManualClock:
    assert isinstance(shop.clock, ManualClock)
    return shop.clock


def sent_by(shop: Shop) -> MemoryNotifier:
    assert isinstance(shop.notifier, MemoryNotifier)
    return shop.notifier


def advance(shop: Shop, delta: timedelta) -> None:
    clock_of(shop).advance(delta)


def summary(events: list[Any]) -> list[tuple[str, str]]:
    return [(type(event).__name__, event.order_id) for event in events]


class Handler:
    """A subscriber that records every call (with the clock's time) and fails on demand.

    ``fail`` decides per call whether to raise; the error message counts the failures,
    so the error of a dead letter shows which attempt it came from.
    """

    def __init__(self, clock: ManualClock, fail: Callable[[Any], bool] = lambda _: False) -> None:
        self.clock = clock
        self.fail = fail
        self.calls: list[Any] = []
        self.times: list[datetime] = []
        self.handled: list[Any] = []
        self.failures = 0

    def __call__(self, event: Any) -> None:
        self.calls.append(event)
        self.times.append(self.clock.now())
        if self.fail(event):
            self.failures += 1
            raise RuntimeError(f"boom {self.failures}")
        self.handled.append(event)


def always(_event: object) -> bool:
    return True


def first_n(n: int) -> Callable[[object], bool]:
    """Fail the first ``n`` calls, then succeed."""
    seen = [0]

    def decide(_event: object) -> bool:
        seen[0] += 1
        return seen[0] <= n

    return decide


# --- inline dispatch -------------------------------------------------------------------------


def test_inline_handler_gets_the_committed_event_once(
    make_shop: ShopMaker, place_command: ok.PlaceOrder
) -> None:
    shop = make_shop()
    calls: list[ok.OrderPlaced] = []
    shop.subscribe(ok.OrderPlaced, calls.append, name="h")

    order = shop.orders.place(place_command)

    assert calls == [ok.OrderPlaced(START, order.id, "cust-ada", ok.Money("52.04", "EUR"))]
    assert shop.events.pending() == 0
    assert shop.store.outbox.is_processed("h", 1)
    assert shop.events.run_pending() == DispatchReport()
    assert len(calls) == 1


def test_inline_base_class_handler_receives_every_order_event(
    make_shop: ShopMaker, place_command: ok.PlaceOrder
) -> None:
    shop = make_shop()
    order_events: list[ok.OrderEvent] = []
    all_events: list[ok.DomainEvent] = []
    placed_only: list[ok.OrderPlaced] = []
    shop.subscribe(ok.OrderEvent, order_events.append, name="orders")
    shop.subscribe(ok.DomainEvent, all_events.append, name="all")
    shop.subscribe(ok.OrderPlaced, placed_only.append, name="placed")

    order = shop.orders.place(place_command)
    shop.orders.hold(order.id, "manual_review")
    shop.orders.release(order.id, "manual_review")
    shop.orders.acknowledge(order.id)
    shop.orders.cancel(order.id, "customer changed their mind")

    expected = [
        ("OrderPlaced", order.id),
        ("OrderHoldPlaced", order.id),
        ("OrderHoldReleased", order.id),
        ("OrderAcknowledged", order.id),
        ("OrderCancelled", order.id),
    ]
    assert summary(order_events) == expected
    assert all_events == order_events
    assert summary(placed_only) == [("OrderPlaced", order.id)]
    assert shop.events.pending() == 0


def test_an_idempotent_replay_dispatches_nothing_new(
    make_shop: ShopMaker, place_command: ok.PlaceOrder
) -> None:
    shop = make_shop()
    calls: list[ok.OrderPlaced] = []
    shop.subscribe(ok.OrderPlaced, calls.append, name="h")
    command = attrs.evolve(place_command, idempotency_key="key-1")

    first = shop.orders.place(command)
    again = shop.orders.place(command)

    assert again.id == first.id
    assert summary(calls) == [("OrderPlaced", first.id)]
    assert shop.events.pending() == 0


# --- worker mode -----------------------------------------------------------------------------


def test_worker_mode_waits_for_run_pending_then_delivers_in_commit_order(
    make_shop: ShopMaker, place_command: ok.PlaceOrder
) -> None:
    shop = make_shop(dispatch="worker")
    seen: list[ok.OrderEvent] = []
    shop.subscribe(ok.OrderEvent, seen.append, name="h")

    x = shop.orders.place(place_command)
    advance(shop, SECOND)
    y = shop.orders.place(place_command)
    advance(shop, SECOND)
    shop.orders.acknowledge(x.id)
    shop.orders.hold(y.id, "manual_review")

    assert seen == []
    assert sent_by(shop).sent == []
    assert shop.events.pending() == 4

    report = shop.events.run_pending()

    assert report == DispatchReport(delivered=4, retried=0, dead=0)
    assert summary(seen) == [
        ("OrderPlaced", x.id),
        ("OrderPlaced", y.id),
        ("OrderAcknowledged", x.id),
        ("OrderHoldPlaced", y.id),
    ]
    assert [event.occurred_at for event in seen] == [START, START + SECOND] + [
        START + 2 * SECOND
    ] * 2
    assert shop.events.pending() == 0
    assert len(sent_by(shop).for_order(x.id)) == 1

    assert shop.events.run_pending() == DispatchReport(delivered=0, retried=0, dead=0)
    assert len(seen) == 4
    assert len(sent_by(shop).sent) == 1


def test_events_committed_before_a_restart_are_delivered_by_the_next_shop(
    make_shop: ShopMaker, open_store: StoreOpener, place_command: ok.PlaceOrder
) -> None:
    first = make_shop(dispatch="worker")
    order = first.orders.place(place_command)
    first.orders.acknowledge(order.id)
    first.close()

    second = make_shop(store=open_store(), dispatch="worker")
    seen: list[ok.OrderEvent] = []
    second.subscribe(ok.OrderEvent, seen.append, name="h")
    assert second.events.pending() == 2

    assert second.events.run_pending() == DispatchReport(delivered=2)
    assert summary(seen) == [("OrderPlaced", order.id), ("OrderAcknowledged", order.id)]
    assert len(sent_by(second).for_order(order.id)) == 1


def test_events_leased_by_a_dead_worker_come_back_when_the_lease_ends(
    make_shop: ShopMaker, place_command: ok.PlaceOrder
) -> None:
    shop = make_shop(dispatch="worker")
    seen: list[ok.OrderPlaced] = []
    shop.subscribe(ok.OrderPlaced, seen.append, name="h")
    order = shop.orders.place(place_command)
    claimed = shop.store.outbox.claim(worker="dead", limit=10, lease_seconds=60, now=START)
    assert [record.aggregate_id for record in claimed] == [order.id]

    assert shop.events.run_pending(worker="alive") == DispatchReport()
    advance(shop, 59 * SECOND)
    assert shop.events.run_pending(worker="alive") == DispatchReport()
    assert seen == []
    advance(shop, SECOND)
    assert shop.events.run_pending(worker="alive") == DispatchReport(delivered=1)
    assert summary(seen) == [("OrderPlaced", order.id)]


# --- retries, back-off and dead letters ------------------------------------------------------


def test_a_failing_handler_backs_off_exponentially_then_becomes_a_dead_letter(
    make_shop: ShopMaker, place_command: ok.PlaceOrder
) -> None:
    shop = make_shop(dispatch="worker", handler_attempts=4, retry_delay=SECOND)
    flaky = Handler(clock_of(shop), fail=always)
    shop.subscribe(ok.OrderPlaced, flaky, name="flaky")
    order = shop.orders.place(place_command)

    assert shop.events.run_pending() == DispatchReport(retried=1)
    assert flaky.times == [START]
    assert shop.events.pending() == 1
    assert shop.events.dead_letters() == []

    # each wait doubles: 1 s, 2 s, 4 s; one millisecond early is too early
    for attempt, wait in [(2, 1), (3, 2), (4, 4)]:
        advance(shop, wait * SECOND - MS)
        assert shop.events.run_pending() == DispatchReport()
        assert len(flaky.calls) == attempt - 1
        advance(shop, MS)
        report = shop.events.run_pending()
        assert len(flaky.calls) == attempt
        if attempt < 4:
            assert report == DispatchReport(retried=1)
            assert shop.events.pending() == 1
            assert shop.events.dead_letters() == []
    assert report == DispatchReport(dead=1)
    assert flaky.times == [START, START + SECOND, START + 3 * SECOND, START + 7 * SECOND]

    assert shop.events.pending() == 0
    [letter] = shop.events.dead_letters()
    assert letter.handler == "flaky"
    assert letter.event == ok.OrderPlaced(START, order.id, "cust-ada", ok.Money("52.04", "EUR"))
    assert letter.event == flaky.calls[0]
    assert letter.error == repr(RuntimeError("boom 4"))
    assert letter.failed_at == START + 7 * SECOND
    assert not shop.store.outbox.is_processed("flaky", letter.seq)

    advance(shop, timedelta(hours=1))
    assert shop.events.run_pending() == DispatchReport()
    assert len(flaky.calls) == 4


def test_the_shops_retry_delay_setting_sets_the_back_off(
    make_shop: ShopMaker, place_command: ok.PlaceOrder
) -> None:
    shop = make_shop(retry_delay=timedelta(seconds=30))
    flaky = Handler(clock_of(shop), fail=first_n(2))
    shop.subscribe(ok.OrderPlaced, flaky, name="flaky")
    shop.orders.place(place_command)  # inline: the first attempt fails during the command

    advance(shop, 29 * SECOND)
    assert shop.events.run_pending() == DispatchReport()
    advance(shop, SECOND)
    assert shop.events.run_pending() == DispatchReport(retried=1)
    advance(shop, 59 * SECOND)
    assert shop.events.run_pending() == DispatchReport()
    advance(shop, SECOND)
    assert shop.events.run_pending() == DispatchReport(delivered=1)
    assert flaky.times == [START, START + 30 * SECOND, START + 90 * SECOND]
    assert shop.events.pending() == 0


def test_with_one_attempt_the_first_failure_is_a_dead_letter(
    make_shop: ShopMaker, place_command: ok.PlaceOrder
) -> None:
    shop = make_shop(dispatch="worker", handler_attempts=1)
    flaky = Handler(clock_of(shop), fail=always)
    shop.subscribe(ok.OrderPlaced, flaky, name="flaky")
    shop.orders.place(place_command)

    assert shop.events.run_pending() == DispatchReport(dead=1)
    assert [letter.handler for letter in shop.events.dead_letters()] == ["flaky"]
    assert shop.events.pending() == 0


def test_a_retry_reruns_only_the_handler_that_failed(
    make_shop: ShopMaker, place_command: ok.PlaceOrder
) -> None:
    shop = make_shop(dispatch="worker")
    a = Handler(clock_of(shop))
    b = Handler(clock_of(shop), fail=first_n(2))
    shop.subscribe(ok.OrderPlaced, a, name="A")
    shop.subscribe(ok.OrderPlaced, b, name="B")
    shop.orders.place(place_command)

    assert shop.events.run_pending() == DispatchReport(retried=1)
    advance(shop, SECOND)
    assert shop.events.run_pending() == DispatchReport(retried=1)
    advance(shop, 2 * SECOND)
    assert shop.events.run_pending() == DispatchReport(delivered=1)

    assert len(a.calls) == 1
    assert len(b.calls) == 3
    assert b.handled == a.handled
    assert shop.store.outbox.is_processed("A", 1)
    assert shop.store.outbox.is_processed("B", 1)
    assert shop.events.pending() == 0


def test_dead_letters_name_only_the_handlers_that_failed(
    make_shop: ShopMaker, place_command: ok.PlaceOrder
) -> None:
    shop = make_shop(dispatch="worker", handler_attempts=2)
    a = Handler(clock_of(shop))
    b = Handler(clock_of(shop), fail=always)
    shop.subscribe(ok.OrderPlaced, a, name="A")
    shop.subscribe(ok.OrderPlaced, b, name="B")
    shop.orders.place(place_command)

    shop.events.run_pending()
    advance(shop, SECOND)
    assert shop.events.run_pending() == DispatchReport(dead=1)

    assert [letter.handler for letter in shop.events.dead_letters()] == ["B"]
    assert len(a.calls) == 1
    assert len(b.calls) == 2


def test_events_of_an_order_wait_behind_its_retry_while_other_orders_move_on(
    make_shop: ShopMaker, place_command: ok.PlaceOrder
) -> None:
    shop = make_shop(dispatch="worker")
    x = shop.orders.place(place_command)
    shop.orders.acknowledge(x.id)
    shop.orders.hold(x.id, "manual_review")
    y = shop.orders.place(place_command)
    shop.orders.acknowledge(y.id)
    failed: list[str] = []

    def fails_once_on_x_placed(event: ok.OrderEvent) -> bool:
        if isinstance(event, ok.OrderPlaced) and event.order_id == x.id and not failed:
            failed.append(event.order_id)
            return True
        return False

    handler = Handler(clock_of(shop), fail=fails_once_on_x_placed)
    shop.subscribe(ok.OrderEvent, handler, name="h")

    assert shop.events.run_pending() == DispatchReport(delivered=2, retried=1)
    assert summary(handler.handled) == [("OrderPlaced", y.id), ("OrderAcknowledged", y.id)]
    assert shop.events.pending() == 3
    assert sent_by(shop).for_order(x.id) == []
    assert len(sent_by(shop).for_order(y.id)) == 1

    advance(shop, SECOND - MS)
    assert shop.events.run_pending() == DispatchReport()
    assert len(handler.handled) == 2

    advance(shop, MS)
    assert shop.events.run_pending() == DispatchReport(delivered=3)
    assert summary(handler.handled[2:]) == [
        ("OrderPlaced", x.id),
        ("OrderAcknowledged", x.id),
        ("OrderHoldPlaced", x.id),
    ]
    assert len(sent_by(shop).for_order(x.id)) == 1
    assert shop.events.pending() == 0


def test_inline_commands_on_a_waiting_order_queue_behind_its_retry(
    make_shop: ShopMaker, place_command: ok.PlaceOrder
) -> None:
    shop = make_shop()
    handler = Handler(clock_of(shop), fail=first_n(1))
    shop.subscribe(ok.OrderEvent, handler, name="h")

    x = shop.orders.place(place_command)  # the handler fails on X's OrderPlaced
    shop.orders.acknowledge(x.id)
    y = shop.orders.place(place_command)
    shop.orders.acknowledge(y.id)

    assert summary(handler.calls) == [
        ("OrderPlaced", x.id),
        ("OrderPlaced", y.id),
        ("OrderAcknowledged", y.id),
    ]
    assert shop.events.pending() == 2
    assert sent_by(shop).for_order(x.id) == []

    advance(shop, SECOND)
    assert shop.events.run_pending() == DispatchReport(delivered=2)
    assert summary(handler.handled) == [
        ("OrderPlaced", y.id),
        ("OrderAcknowledged", y.id),
        ("OrderPlaced", x.id),
        ("OrderAcknowledged", x.id),
    ]
    assert len(sent_by(shop).for_order(x.id)) == 1
    assert shop.events.pending() == 0


def test_after_a_dead_letter_later_events_of_the_order_move_on(
    make_shop: ShopMaker, place_command: ok.PlaceOrder
) -> None:
    shop = make_shop(dispatch="worker", handler_attempts=1)
    handler = Handler(clock_of(shop), fail=lambda event: isinstance(event, ok.OrderPlaced))
    shop.subscribe(ok.OrderEvent, handler, name="h")
    x = shop.orders.place(place_command)
    shop.orders.acknowledge(x.id)

    assert shop.events.run_pending() == DispatchReport(delivered=1, dead=1)
    assert summary(handler.handled) == [("OrderAcknowledged", x.id)]
    assert shop.events.pending() == 0


# --- retrying dead letters -------------------------------------------------------------------


def test_retry_dead_letter_keeps_the_letter_on_failure_and_removes_it_on_success(
    make_shop: ShopMaker, place_command: ok.PlaceOrder
) -> None:
    shop = make_shop(dispatch="worker", handler_attempts=1)
    broken = [True]
    handler = Handler(clock_of(shop), fail=lambda _: broken[0])
    shop.subscribe(ok.OrderPlaced, handler, name="crm")
    order = shop.orders.place(place_command)
    assert shop.events.run_pending() == DispatchReport(dead=1)
    [letter] = shop.events.dead_letters()
    assert letter.error == repr(RuntimeError("boom 1"))

    advance(shop, 5 * SECOND)
    assert shop.events.retry_dead_letter(letter) is False
    [kept] = shop.events.dead_letters()
    assert (kept.handler, kept.seq, kept.event) == (letter.handler, letter.seq, letter.event)
    assert kept.error == repr(RuntimeError("boom 2"))
    assert kept.failed_at == START + 5 * SECOND
    assert not shop.store.outbox.is_processed("crm", letter.seq)

    broken[0] = False
    advance(shop, 5 * SECOND)
    assert shop.events.retry_dead_letter(kept) is True
    assert shop.events.dead_letters() == []
    assert shop.store.outbox.is_processed("crm", letter.seq)
    assert summary(handler.handled) == [("OrderPlaced", order.id)]
    assert len(handler.calls) == 3

    assert shop.events.run_pending() == DispatchReport()
    assert len(handler.calls) == 3


def test_retrying_an_already_resolved_dead_letter_does_not_redeliver_the_event(
    make_shop: ShopMaker, place_command: ok.PlaceOrder
) -> None:
    """A stale letter (say, from a list fetched before someone else retried it) must not
    hand the event again to a handler that has processed it: per-handler de-duplication."""
    shop = make_shop(dispatch="worker", handler_attempts=1)
    broken = [True]
    handler = Handler(clock_of(shop), fail=lambda _: broken[0])
    shop.subscribe(ok.OrderPlaced, handler, name="crm")
    shop.orders.place(place_command)
    shop.events.run_pending()
    [letter] = shop.events.dead_letters()
    broken[0] = False
    assert shop.events.retry_dead_letter(letter) is True
    assert len(handler.handled) == 1

    broken[0] = True  # the outside system is down again
    shop.events.retry_dead_letter(letter)

    assert len(handler.calls) == 2, "the processed event was given to the handler again"
    assert shop.events.dead_letters() == []
    assert shop.store.outbox.is_processed("crm", letter.seq)


def test_retry_dead_letter_of_an_unsubscribed_handler_is_refused(
    make_shop: ShopMaker, place_command: ok.PlaceOrder
) -> None:
    shop = make_shop(dispatch="worker", handler_attempts=1)
    shop.subscribe(ok.OrderPlaced, Handler(clock_of(shop), fail=always), name="crm")
    shop.orders.place(place_command)
    shop.events.run_pending()
    [letter] = shop.events.dead_letters()

    with pytest.raises(ok.InvalidSettings):
        shop.events.retry_dead_letter(attrs.evolve(letter, handler="nobody"))
    assert shop.events.dead_letters() == [letter]


# --- handler names ---------------------------------------------------------------------------


def test_unnamed_lambdas_are_all_called_and_numbered(
    make_shop: ShopMaker, place_command: ok.PlaceOrder
) -> None:
    shop = make_shop(handler_attempts=1)
    seen: list[tuple[str, str]] = []

    def explode(event: ok.OrderPlaced) -> None:
        seen.append(("second", event.order_id))
        raise RuntimeError("second lambda failed")

    first = lambda event: seen.append(("first", event.order_id))  # noqa: E731
    shop.subscribe(ok.OrderPlaced, first)
    shop.subscribe(ok.OrderPlaced, lambda event: explode(event))

    order = shop.orders.place(place_command)

    assert sorted(seen) == [("first", order.id), ("second", order.id)]
    base = handler_name(first)
    assert base.endswith("<lambda>")
    [letter] = shop.events.dead_letters()
    assert letter.handler == f"{base}#2"
    assert shop.store.outbox.is_processed(base, letter.seq)


def test_two_handlers_under_one_explicit_name_are_refused(
    make_shop: ShopMaker, place_command: ok.PlaceOrder
) -> None:
    shop = make_shop()
    kept: list[ok.OrderPlaced] = []
    refused: list[ok.OrderPlaced] = []
    shop.subscribe(ok.OrderPlaced, kept.append, name="crm")

    with pytest.raises(ok.InvalidSettings):
        shop.subscribe(ok.OrderPlaced, refused.append, name="crm")
    with pytest.raises(ok.InvalidSettings):
        shop.subscribe(ok.OrderAcknowledged, refused.append, name="orderkit.order_confirmation")

    order = shop.orders.place(place_command)
    shop.orders.acknowledge(order.id)
    assert summary(kept) == [("OrderPlaced", order.id)]
    assert refused == []
    assert len(sent_by(shop).for_order(order.id)) == 1


@pytest.mark.parametrize(
    "not_an_event_type",
    [
        int,
        str,
        object,
        "OrderPlaced",
        ok.Order,
        ok.OrderPlaced(START, "o-1", "c-1", ok.Money(1, "EUR")),
    ],
)
def test_subscribing_to_something_that_is_not_an_event_class_is_a_type_error(
    make_shop: ShopMaker, not_an_event_type: Any
) -> None:
    shop = make_shop()
    with pytest.raises(TypeError):
        shop.subscribe(not_an_event_type, lambda event: None)


# --- handlers and commands -------------------------------------------------------------------


def test_a_raising_handler_does_not_undo_the_command(
    make_shop: ShopMaker, place_command: ok.PlaceOrder
) -> None:
    shop = make_shop()
    handler = Handler(clock_of(shop), fail=always)
    shop.subscribe(ok.OrderEvent, handler, name="broken")

    order = shop.orders.place(place_command)
    assert order.state == "placed"
    assert shop.orders.get(order.id).state == "placed"
    assert [o.id for o in shop.orders.list()] == [order.id]

    acknowledged = shop.orders.acknowledge(order.id)
    stored = shop.orders.get(order.id)
    assert acknowledged.state == stored.state == "acknowledged"
    assert stored.promised_delivery is not None
    assert summary(handler.calls) == [("OrderPlaced", order.id)]  # its acknowledgement waits
    assert shop.events.pending() == 2


def test_a_handler_that_runs_a_command_sees_its_events_dispatched_in_order(
    make_shop: ShopMaker, place_command: ok.PlaceOrder
) -> None:
    shop = make_shop()
    seen: list[ok.OrderEvent] = []
    shop.subscribe(
        ok.OrderPlaced, lambda event: shop.orders.acknowledge(event.order_id), name="auto"
    )
    shop.subscribe(ok.OrderEvent, seen.append, name="rec")

    order = shop.orders.place(place_command)

    assert shop.orders.get(order.id).state == "acknowledged"
    assert summary(seen) == [("OrderPlaced", order.id), ("OrderAcknowledged", order.id)]
    assert len(sent_by(shop).for_order(order.id)) == 1
    assert shop.events.pending() == 0


# --- the confirmation notification -----------------------------------------------------------


def test_confirmation_is_sent_once_per_acknowledgement_however_often_dispatch_runs(
    make_shop: ShopMaker, place_command: ok.PlaceOrder
) -> None:
    shop = make_shop(dispatch="worker")
    x = shop.orders.place(place_command)
    y = shop.orders.place(place_command)
    shop.orders.acknowledge(x.id)
    shop.orders.acknowledge(y.id)
    assert sent_by(shop).sent == []

    for _ in range(3):
        shop.events.run_pending()
        advance(shop, SECOND)

    sent = sent_by(shop).sent
    assert sorted(n.order_id for n in sent) == [x.id, y.id]
    assert {n.kind for n in sent} == {"order_confirmation"}


def test_confirmation_is_not_resent_when_another_handler_retries_the_event(
    make_shop: ShopMaker, place_command: ok.PlaceOrder
) -> None:
    shop = make_shop()
    flaky = Handler(clock_of(shop), fail=first_n(2))
    shop.subscribe(ok.OrderAcknowledged, flaky, name="erp")
    order = shop.orders.place(place_command)
    shop.orders.acknowledge(order.id)
    assert len(sent_by(shop).for_order(order.id)) == 1
    assert shop.events.pending() == 1

    for _ in range(5):
        advance(shop, 2 * SECOND)
        shop.events.run_pending()

    assert len(flaky.calls) == 3
    assert summary(flaky.handled) == [("OrderAcknowledged", order.id)]
    assert shop.events.pending() == 0
    [confirmation] = sent_by(shop).for_order(order.id)
    assert confirmation.kind == "order_confirmation"
    assert confirmation.promised_delivery == shop.orders.get(order.id).promised_delivery


def test_no_confirmation_for_an_order_cancelled_before_dispatch(
    make_shop: ShopMaker, place_command: ok.PlaceOrder
) -> None:
    shop = make_shop(dispatch="worker")
    order = shop.orders.place(place_command)
    shop.orders.acknowledge(order.id)
    shop.orders.cancel(order.id, "changed their mind")
    shop.events.run_pending()
    # no "confirmed" message, only the cancellation
    assert [n.kind for n in sent_by(shop).sent] == ["order_cancelled"]
    assert shop.events.pending() == 0
