"""The public testing kit: its strategies draw valid objects that round-trip through the
serializer, the aggregates they build keep their invariants, the messaging and system
contract suites pass on the reference adapters, and a user-style subclass of the
lifecycle machine runs on a fresh SQLite store."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import rule

import orderkit.testing as kit
from orderkit.adapters.memory import ManualClock, MemoryNotifier, SequentialIds
from orderkit.adapters.system import RandomIds, SystemClock
from orderkit.domain.inquiries import CUSTOMER, InquiryState
from orderkit.domain.inventory import Reservation, StockItem
from orderkit.domain.order import Order, OrderState
from orderkit.domain.payment import Payment, PaymentState
from orderkit.domain.returns import ReturnRequest, ReturnState
from orderkit.domain.shipment import Shipment, ShipmentState
from orderkit.domain.values import ContactChannel
from orderkit.notify import MemoryOptOuts, MemorySmsSender, PlainRenderer, SmsNotifier
from orderkit.ports import Clock, IdSource, Notifier, OptOutList, SmsSender
from orderkit.serialization import dumps, dumps_event, loads, loads_event
from orderkit.service.commands import PlaceOrder, RequestReturn
from orderkit.shop import Shop
from orderkit.testing import (
    ClockContract,
    Delivery,
    IdSourceContract,
    NotifierContract,
    OptOutListContract,
    OrderLifecycleMachine,
    SmsSenderContract,
)
from orderkit.testing import strategies as oks

FAST = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# one test per lifecycle state: 35 of them, so fewer examples each
PER_STATE = settings(FAST, max_examples=10)


def _round_trips(value: object) -> None:
    """``value`` survives dumps/loads: equal where the class compares by value, and
    always the same JSON text again."""
    text = dumps(value)
    back = loads(text, type(value))
    assert dumps(back) == text
    if type(value).__eq__ is not object.__eq__:
        assert back == value


# -- every strategy draws valid objects that round-trip -------------------------------------

VALUES: dict[str, st.SearchStrategy[Any]] = {
    "money": oks.money(oks.currencies()),
    "customers": oks.customers(),
    "addresses": oks.addresses(),
    "line_items": oks.line_items("JPY"),
    "holds": oks.holds(),
    "locations": oks.locations(),
    "parcels": oks.parcels(),
    "rates": oks.rates(currency="KWD"),
    "labels": oks.labels(),
    "tracking_events": oks.tracking_events(),
    "gateway_authorizations": oks.gateway_authorizations(),
    "gateway_captures": oks.gateway_captures("JPY"),
    "gateway_voids": oks.gateway_voids(),
    "gateway_refunds": oks.gateway_refunds(),
    "payment_gateway_events": oks.payment_gateway_events(),
    "notifications": oks.notifications(),
    "replacements": oks.replacements("L1", "EUR"),
    "return_lines": oks.request_return_commands().map(lambda command: command.lines[0]),
    "inspections": oks.inspections({"L1": 3, "L2": 1}).map(lambda found: found[0]),
}


@pytest.mark.parametrize("name", sorted(VALUES))
def test_value_strategies_round_trip(name: str) -> None:
    @FAST
    @given(VALUES[name])
    def check(value: object) -> None:
        _round_trips(value)

    check()


@FAST
@given(oks.place_order_commands(currency=None))
def test_place_order_commands_round_trip_and_pass_the_strict_path(command: PlaceOrder) -> None:
    _round_trips(command)
    assert PlaceOrder.from_json(dumps(command)) == command


@FAST
@given(oks.request_return_commands())
def test_request_return_commands_round_trip_and_pass_the_strict_path(
    command: RequestReturn,
) -> None:
    _round_trips(command)
    assert RequestReturn.from_json(dumps(command)) == command


@FAST
@given(oks.orders(), st.data())
def test_request_return_commands_for_an_order_name_its_lines(order: Order, data: Any) -> None:
    command = data.draw(oks.request_return_commands(order))
    assert command.order_id == order.id
    assert {line.line_id for line in command.lines} <= {line.line_id for line in order.lines}


def _events_round_trip(events: Sequence[Any]) -> None:
    for event in events:
        assert loads_event(dumps_event(event)) == event


# -- aggregates: in the state asked for, with their invariants ------------------------------


@pytest.mark.parametrize("state", [s.value for s in OrderState])
def test_orders_in_state(state: str) -> None:
    @PER_STATE
    @given(oks.orders_in_state(state))
    def check(order: Order) -> None:
        assert order.state == state
        _round_trips(order)
        _events_round_trip(order.pending_events)
        totals = order.totals
        assert totals.total == totals.subtotal - totals.discount + totals.tax + totals.shipping
        assert order.open_lines, "at least one line stays open"
        if state not in ("placed", "acknowledged"):
            assert not order.holds
        if state != "placed":
            assert order.promised_delivery is not None or state == "cancelled"

    check()


@pytest.mark.parametrize("state", [s.value for s in PaymentState])
def test_payments_in_state_keep_their_money_rules(state: str) -> None:
    @PER_STATE
    @given(oks.payments(state))
    def check(payment: Payment) -> None:
        assert payment.state == state
        assert payment.captured <= payment.authorized
        assert payment.refunded <= payment.captured
        for capture in payment.captures:
            assert not payment.refundable_of(capture.id).is_negative()
        if state in ("captured", "partially_refunded", "refunded"):
            assert payment.is_resolved
            assert payment.captured + payment.voided == payment.amount
        if state == "refunded":
            assert payment.refunded == payment.captured
        _round_trips(payment)
        _events_round_trip(payment.pending_events)

    check()


@pytest.mark.parametrize("state", [s.value for s in ShipmentState])
def test_shipments_in_state(state: str) -> None:
    @PER_STATE
    @given(oks.shipments(state))
    def check(shipment: Shipment) -> None:
        assert shipment.state == state
        if shipment.is_handed_over:
            assert shipment.label is not None
            assert shipment.handed_over_at is not None
            assert all(scan.tracking_number == shipment.tracking_number for scan in shipment.scans)
        if state == "delivered":
            assert shipment.delivered_at is not None
        _round_trips(shipment)
        _events_round_trip(shipment.pending_events)

    check()


@pytest.mark.parametrize("state", [s.value for s in ReturnState])
def test_return_requests_in_state(state: str) -> None:
    @PER_STATE
    @given(oks.return_requests(state))
    def check(request: ReturnRequest) -> None:
        assert request.state == state
        asked = request.requested_units()
        for line_id, count in request.received_units().items():
            assert 1 <= count <= asked[line_id]
        if request.inspections:
            restocked, written_off = request.restocked_units(), request.written_off_units()
            for line_id, count in request.received_units().items():
                assert restocked.get(line_id, 0) + written_off.get(line_id, 0) == count
        if request.amount_refunded is not None:
            assert request.amount_due is not None
            assert request.amount_refunded <= request.amount_due
        _round_trips(request)
        _events_round_trip(request.pending_events)

    check()


@pytest.mark.parametrize("state", [s.value for s in InquiryState])
def test_inquiries_in_state(state: str) -> None:
    @PER_STATE
    @given(oks.inquiries(state))
    def check(inquiry: Any) -> None:
        assert inquiry.state == state
        assert inquiry.messages[0].author == CUSTOMER
        if state == "answered":
            assert not inquiry.last_message.from_customer
        if state == "open" and len(inquiry.messages) > 1:
            assert inquiry.last_message.from_customer
        _round_trips(inquiry)
        _events_round_trip(inquiry.pending_events)

    check()


@FAST
@given(oks.stock_items(), st.data())
def test_stock_items_keep_their_ledger_and_limits(item: StockItem, data: Any) -> None:
    assert item.on_hand >= 0
    assert item.on_hand == sum(movement.quantity for movement in item.pending_movements)
    for movement in item.pending_movements:
        _round_trips(movement)
    for reservation in item.reservations.values():
        _round_trips(reservation)
        assert reservation.quantity >= 1
    last = max((m.at for m in item.pending_movements), default=None)
    if last is not None and item.backorder_limit is not None:
        assert item.reserved(last) <= item.on_hand + item.backorder_limit


def test_stock_items_round_trip() -> None:
    now = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    item = StockItem("MUG-01", "main")
    item.receive(2, now)
    item.reserve([Reservation("order-1", "L1", 1)], now)
    _round_trips(item)
    back = loads(dumps(item), StockItem)
    assert back.reservations == item.reservations  # keyed by (order, line) again


@given(oks.stock_items())
def test_any_stock_item_round_trips(item: StockItem) -> None:
    back = loads(dumps(item), StockItem)
    assert dumps(back) == dumps(item)
    assert back.reservations == item.reservations


def test_an_unknown_state_is_refused() -> None:
    from hypothesis.errors import InvalidArgument

    @given(oks.payments("paid"))
    def check(payment: Payment) -> None:
        raise AssertionError("drawn from an unknown state")

    with pytest.raises(InvalidArgument, match="no state 'paid'"):
        check()


# -- the messaging and system contract suites on the reference adapters ---------------------


class TestMemoryNotifierContract(NotifierContract):
    def make_notifier(self) -> Notifier:
        return MemoryNotifier()

    def delivered(self, notifier: Notifier) -> Sequence[Delivery]:
        assert isinstance(notifier, MemoryNotifier)
        return [Delivery(n.key, n.recipient) for n in notifier.sent]


class TestSmsNotifierContract(NotifierContract):
    """The SMS notifier on its own channel (its e-mail fallback: tests/test_sms.py)."""

    channels = (ContactChannel.SMS,)

    def make_notifier(self) -> Notifier:
        return SmsNotifier(MemorySmsSender(), renderer=PlainRenderer(), max_segments=10)

    def delivered(self, notifier: Notifier) -> Sequence[Delivery]:
        assert isinstance(notifier, SmsNotifier)
        assert isinstance(notifier.sender, MemorySmsSender)
        return [Delivery(sms.key, sms.to) for sms in notifier.sender.sent]

    def make_failing_notifier(self) -> Notifier | None:
        sender = MemorySmsSender()
        sender.available = False
        return SmsNotifier(sender, renderer=PlainRenderer())


class TestMemorySmsSenderContract(SmsSenderContract):
    def make_sender(self) -> SmsSender:
        return MemorySmsSender()

    def sent(self, sender: SmsSender) -> Sequence[tuple[str, str, str]]:
        assert isinstance(sender, MemorySmsSender)
        return [(sms.to, sms.text, sms.key) for sms in sender.sent]

    def set_available(self, sender: SmsSender, available: bool) -> bool:
        assert isinstance(sender, MemorySmsSender)
        sender.available = available
        return True


class TestMemoryOptOutsContract(OptOutListContract):
    def make_opt_outs(self) -> OptOutList:
        return MemoryOptOuts()


class TestManualClockContract(ClockContract):
    def make_clock(self) -> Clock:
        return ManualClock()


class TestSystemClockContract(ClockContract):
    def make_clock(self) -> Clock:
        return SystemClock()


class TestSequentialIdsContract(IdSourceContract):
    def make_ids(self) -> IdSource:
        return SequentialIds()


class TestRandomIdsContract(IdSourceContract):
    def make_ids(self) -> IdSource:
        return RandomIds()


def test_everything_public_is_exported_from_orderkit_testing() -> None:
    for name in kit.__all__:
        assert getattr(kit, name) is not None
    assert kit.StoreContract.__module__ == "orderkit.testing.contracts"
    assert callable(kit.strategies.payments)


# -- a user-style subclass of the lifecycle machine -----------------------------------------


class MySqliteLifecycle(OrderLifecycleMachine):
    """What a user writes: the machine pointed at their store (here a fresh SQLite file
    per example), with one rule of their own added to the inherited ones."""

    def make_shop(self) -> Shop:
        self.folder = tempfile.mkdtemp(prefix="orderkit-kit-")
        return Shop.open(
            f"sqlite:///{self.folder}/shop.db", clock=ManualClock(), ids=SequentialIds()
        )

    def teardown(self) -> None:
        self.shop.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    @rule(order_id=OrderLifecycleMachine.orders)
    def listing_shows_the_order_in_its_state(self, order_id: str) -> None:
        state = self.model_state[order_id]
        listed = self.shop.orders.list(state=state, limit=1000)
        assert order_id in {order.id for order in listed}


MySqliteLifecycle.TestCase.settings = settings(
    max_examples=5,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestMySqliteLifecycle = MySqliteLifecycle.TestCase


def test_the_subclass_keeps_every_inherited_rule_and_adds_its_own() -> None:
    def names(machine: type[OrderLifecycleMachine]) -> set[str]:
        return {r.function.__name__ for r in machine.setup_state().rules}

    assert names(MySqliteLifecycle) == names(OrderLifecycleMachine) | {
        "listing_shows_the_order_in_its_state"
    }


# -- the lifecycle machine on an extended lifecycle ----------------------------------------------

from hypothesis import settings as _hypothesis_settings  # noqa: E402

import orderkit as ok  # noqa: E402
from orderkit.domain.lifecycle import TransitionSpec  # noqa: E402
from orderkit.domain.order import ORDER_LIFECYCLE  # noqa: E402
from orderkit.testing import EXPECTED_GRAPH, OrderLifecycleMachine  # noqa: E402

FRAUD_REVIEW = ORDER_LIFECYCLE.extend(
    states=["fraud_review"],
    transitions=[
        TransitionSpec("flag", ["placed"], "fraud_review"),
        TransitionSpec("clear", ["fraud_review"], "placed"),
        TransitionSpec("reject", ["fraud_review"], "cancelled"),
    ],
)


class FraudReviewLifecycle(OrderLifecycleMachine):
    """What a user writes to check their extended lifecycle: the graph they expect."""

    expected_graph = {  # noqa: RUF012  (a model, replaced per subclass)
        **EXPECTED_GRAPH,
        "flag": {"placed": "fraud_review"},
        "clear": {"fraud_review": "placed"},
        "reject": {"fraud_review": "cancelled"},
    }

    def make_shop(self) -> ok.Shop:
        settings = ok.ShopSettings(order_lifecycle=FRAUD_REVIEW, track_stock=False)
        return ok.Shop.open("memory://", settings=settings, clock=ManualClock())


TestFraudReviewLifecycle = FraudReviewLifecycle.TestCase
TestFraudReviewLifecycle.settings = _hypothesis_settings(
    max_examples=12, stateful_step_count=20, deadline=None
)


class WrongModel(FraudReviewLifecycle):
    """A model that misses an edge the shop has ('flag' from placed): the machine expects
    the shop to refuse a flag it accepts, and must say so."""

    expected_graph = {  # noqa: RUF012
        **FraudReviewLifecycle.expected_graph,
        "flag": {},
    }


class _Drawn:
    """Stands in for hypothesis' ``data`` argument: every draw gives ``value``."""

    def __init__(self, value: str) -> None:
        self.value = value

    def draw(self, strategy: object, label: object = None) -> str:
        return self.value


def _flag_then_clear(machine: OrderLifecycleMachine, command: ok.PlaceOrder) -> str:
    order_id = machine.place(command)
    machine.fire(order_id, _Drawn("flag"), "manual_review")
    machine.fire(order_id, _Drawn("clear"), "manual_review")
    machine.states_match_the_model()
    return machine.model_state[order_id]


def test_the_machine_follows_an_extended_graph_step_by_step(place_command: ok.PlaceOrder) -> None:
    assert _flag_then_clear(FraudReviewLifecycle(), place_command) == "placed"


def test_the_machine_catches_a_lifecycle_that_differs_from_the_model(
    place_command: ok.PlaceOrder,
) -> None:
    # the model misses the shop's 'flag' edge: the machine expects a refusal and says so
    with pytest.raises(AssertionError, match="expected InvalidTransition"):
        _flag_then_clear(WrongModel(), place_command)
