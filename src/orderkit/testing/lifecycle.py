"""A hypothesis state machine that checks the order lifecycle through a shop.

It places orders and fires every command of the default order lifecycle in
random order, against a plain-Python model of the graph written out by hand
(not derived from :data:`~orderkit.ORDER_LIFECYCLE`, so it checks it). After
each step it asserts:

* the state is always one the definition has, and equals the model's;
* an allowed command succeeds and raises the stored ``version`` by exactly one;
* an illegal command raises :class:`~orderkit.InvalidTransition` (or
  :class:`~orderkit.HoldError` for holds) and changes nothing: the stored order
  is identical, and the in-memory aggregate equals, field by field, its copy
  from before the attempt;
* acknowledging sends exactly one confirmation with the promised date;
* with stock tracked, a placed order holds exactly its lines' quantities and a
  cancelled one holds nothing;
* with a payment gateway (``Shop.open(..., gateway=...)``): a declined card
  places nothing; each order's payment keeps captured <= authorized and
  refunded <= captured; a cancelled order keeps no money (voided or refunded in
  full); under ``capture="on_shipment"`` a shipped order is paid in full; and,
  across the shop, captured minus refunded equals the totals of the orders
  that were paid and not cancelled. With a :class:`MemoryGateway`, the
  gateway's own books agree with every payment.

Run it against your own storage by overriding :meth:`OrderLifecycleMachine.make_shop`::

    class MyShopLifecycle(OrderLifecycleMachine):
        def make_shop(self) -> Shop:
            return Shop.open("memory://", clock=ManualClock(), ids=SequentialIds())

    TestMyShopLifecycle = MyShopLifecycle.TestCase

``make_shop`` may open any store (``Shop.open(f"sqlite:///{folder}/shop.db", ...)``,
your own) with your gateway, carriers and notifier; override ``teardown`` to close the
shop and remove what it left. Rules you add with ``@rule`` run beside the inherited
ones (take orders from the ``OrderLifecycleMachine.orders`` bundle, read the model in
``self.model_state``), and a method you define under an inherited rule's name replaces
that rule. Set ``MyShopLifecycle.TestCase.settings`` to size the run.

A lifecycle you extended (``ShopSettings(order_lifecycle=...)``) is checked by setting
``expected_graph`` to the extended graph, written out by hand (trigger -> {source:
destination}), and returning a shop with that lifecycle from ``make_shop``::

    class FraudReviewLifecycle(OrderLifecycleMachine):
        expected_graph = {
            **EXPECTED_GRAPH,
            "flag": {"placed": "fraud_review"},
            "clear": {"fraud_review": "placed"},
            "reject": {"fraud_review": "cancelled"},
        }

        def make_shop(self) -> Shop:
            settings = ShopSettings(order_lifecycle=my_definition, track_stock=False)
            return Shop.open("memory://", settings=settings, clock=ManualClock())

Every trigger of the graph is then fired at random (new ones through
``shop.orders.transition``), refused where the graph has no edge, and holds are allowed
wherever ``start_fulfilment`` still lies ahead in the graph. The library's own lifecycle
is never consulted for what to expect.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from orderkit.adapters.memory import ManualClock, MemoryNotifier, SequentialIds
from orderkit.adapters.memory_gateway import MemoryGateway
from orderkit.domain.inventory import Location
from orderkit.domain.order import Order
from orderkit.domain.payment import PaymentStatus
from orderkit.errors import HoldError, InvalidTransition, PaymentDeclined
from orderkit.money import Money
from orderkit.serialization import dumps
from orderkit.service.commands import PlaceOrder
from orderkit.shop import Shop
from orderkit.testing.strategies import place_order_commands

__all__ = ["EXPECTED_GRAPH", "OrderLifecycleMachine"]

EXPECTED_GRAPH: dict[str, dict[str, str]] = {
    "acknowledge": {"placed": "acknowledged"},
    "start_fulfilment": {"acknowledged": "fulfilling"},
    "mark_shipped": {"fulfilling": "shipped"},
    "mark_delivered": {"shipped": "delivered"},
    "complete": {"delivered": "completed"},
    "cancel": {"placed": "cancelled", "acknowledged": "cancelled", "fulfilling": "cancelled"},
}
"""The default order graph, written out by hand: trigger -> {source: destination}."""

LOCATION = "main"
_REASONS = st.sampled_from(["manual_review", "payment_problem", "address_check"])


def _fields(order: Order) -> dict[str, Any]:
    snapshot = attrs.asdict(order, recurse=False)
    snapshot["pending_events"] = list(order.pending_events)
    return snapshot


def _leads_to(graph: dict[str, dict[str, str]], state: str, trigger: str) -> bool:
    """True when ``trigger`` can fire from ``state`` or a state reachable from it, in
    ``graph`` (the machine's own model, not the library's lifecycle)."""
    seen, todo = {state}, [state]
    while todo:
        here = todo.pop()
        if here in graph.get(trigger, {}):
            return True
        for edges in graph.values():
            after = edges.get(here)
            if after is not None and after not in seen:
                seen.add(after)
                todo.append(after)
    return False


class OrderLifecycleMachine(RuleBasedStateMachine):
    """Random walks over the order lifecycle; see the module docstring for what is checked.

    ``expected_graph`` is the model the shop is checked against: a subclass checking an
    extended lifecycle (``ShopSettings(order_lifecycle=...)``) sets it to the extended
    graph, written out by hand (trigger -> {source: destination}); triggers, holds and
    refusals then follow it.
    """

    orders = Bundle("orders")
    expected_graph: ClassVar[dict[str, dict[str, str]]] = EXPECTED_GRAPH

    def __init__(self) -> None:
        super().__init__()
        self.shop = self.make_shop()
        self.model_state: dict[str, str] = {}
        self.model_holds: dict[str, set[str]] = {}
        self.versions: dict[str, int] = {}
        self.states = frozenset(self.shop.settings.order_lifecycle.states)
        self.lifecycle = self.shop.settings.order_lifecycle.build()
        self.tracks_stock = self.shop.settings.track_stock
        self.takes_payments = self.shop.payments.gateway is not None
        self.part_captures = 0
        if self.tracks_stock:
            self.shop.inventory.add_location(Location(LOCATION, "Test warehouse"))

    def make_shop(self) -> Shop:
        """The shop under test; override to test another store."""
        return Shop.open("memory://", clock=ManualClock(), ids=SequentialIds())

    def _advance(self) -> None:
        clock = self.shop.clock
        if isinstance(clock, ManualClock):
            clock.advance(timedelta(minutes=17))

    @rule(target=orders, command=place_order_commands(max_lines=3))
    def place(self, command: PlaceOrder) -> str:
        if self.tracks_stock:  # exactly enough: the placement must reserve all of it
            for line in command.lines:
                self.shop.inventory.receive(line.sku, location=LOCATION, quantity=line.quantity)
        order = self.shop.orders.place(attrs.evolve(command, idempotency_key=None))
        assert order.state == "placed"
        assert order.version == 1
        self.model_state[order.id] = "placed"
        self.model_holds[order.id] = set()
        self.versions[order.id] = 1
        return order.id

    def _expect(
        self, order_id: str, allowed: bool, command: Callable[[], Order], error: type[Exception]
    ) -> Order | None:
        before = dumps(self.shop.orders.get(order_id))
        self._advance()
        if allowed:
            order = command()
            self.versions[order_id] += 1
            assert order.version == self.versions[order_id]
            return order
        try:
            command()
        except error:
            pass
        else:
            raise AssertionError(f"expected {error.__name__} for order {order_id}")
        after = self.shop.orders.get(order_id)
        assert dumps(after) == before, "a refused command changed the stored order"
        assert after.version == self.versions[order_id]
        return None

    @rule(order_id=orders, data=st.data(), reason=_REASONS)
    def fire(self, order_id: str, data: st.DataObject, reason: str) -> None:
        trigger = data.draw(st.sampled_from(sorted(self.expected_graph)), label="trigger")
        state = self.model_state[order_id]
        target = self.expected_graph[trigger].get(state)
        allowed = target is not None
        if trigger == "start_fulfilment" and self.model_holds[order_id]:
            allowed = False
        service = self.shop.orders
        commands: dict[str, Callable[[], Order]] = {
            "acknowledge": lambda: service.acknowledge(order_id),
            "cancel": lambda: service.cancel(order_id, f"test: {reason}"),
        }
        command = commands.get(trigger, lambda: service.transition(order_id, trigger))
        sent_before = self._sent(order_id)
        order = self._expect(order_id, allowed, command, InvalidTransition)
        if order is not None:
            assert target is not None
            self.model_state[order_id] = target
            assert order.state == target
            if trigger == "acknowledge":
                sent = self._sent(order_id)
                assert sent == sent_before + 1
                assert order.promised_delivery is not None
            if trigger == "cancel":
                assert order.cancellation_reason == f"test: {reason}"

    def _sent(self, order_id: str) -> int:
        notifier = self.shop.notifier
        if isinstance(notifier, MemoryNotifier):
            return len(notifier.for_order(order_id))
        return 0

    @rule(command=place_order_commands(max_lines=2), reason=st.sampled_from(["decline", "funds"]))
    def place_with_a_declined_card(self, command: PlaceOrder, reason: str) -> None:
        """A declined card raises PaymentDeclined and changes nothing: no order, no
        reserved unit, no event."""
        lines_total = Money.sum((line.total for line in command.lines), command.currency)
        if not self.takes_payments or (lines_total + command.shipping).is_zero():
            return
        if self.tracks_stock:
            for line in command.lines:
                self.shop.inventory.receive(line.sku, location=LOCATION, quantity=line.quantity)
        skus = sorted({line.sku for line in command.lines})
        levels = [self.shop.inventory.levels(sku) for sku in skus] if self.tracks_stock else []
        stored = len(self.shop.orders.list(limit=1000))
        token = "tok_decline" if reason == "decline" else "tok_insufficient_funds"
        declined = attrs.evolve(command, payment_token=token, idempotency_key=None)
        expected = "card_declined" if reason == "decline" else "insufficient_funds"
        try:
            self.shop.orders.place(declined)
        except PaymentDeclined as error:
            refused_for = error.reason
        else:
            raise AssertionError("a declined card placed an order")
        assert refused_for == expected
        assert len(self.shop.orders.list(limit=1000)) == stored
        assert self.shop.events.pending() == 0
        if self.tracks_stock:
            assert [self.shop.inventory.levels(sku) for sku in skus] == levels

    @rule(order_id=orders, data=st.data())
    def capture_one_parcel(self, order_id: str, data: st.DataObject) -> None:
        """Under ``capture="on_shipment"``, capture the share of one unit of one line."""
        if not self.takes_payments or self.model_state[order_id] != "fulfilling":
            return
        payments = self.shop.payments.for_order(order_id)
        if not payments or self.shop.settings.capture != "on_shipment":
            return
        order = self.shop.orders.get(order_id)
        charged = payments[-1].captured_units()
        open_lines = [x for x in order.lines if charged.get(x.line_id, 0) < x.quantity]
        if not open_lines:
            return
        line = data.draw(st.sampled_from(open_lines))
        self.part_captures += 1
        before = payments[-1].captured
        payment = self.shop.payments.capture_lines(
            order_id, {line.line_id: 1}, reference=f"parcel-{self.part_captures}"
        )
        assert payment.captured >= before
        assert payment.captured_units()[line.line_id] == charged.get(line.line_id, 0) + 1

    @rule(order_id=orders, reason=_REASONS)
    def hold(self, order_id: str, reason: str) -> None:
        holds = self.model_holds[order_id]
        state = self.model_state[order_id]
        allowed = _leads_to(self.expected_graph, state, "start_fulfilment") and reason not in holds
        if self._expect(
            order_id, allowed, lambda: self.shop.orders.hold(order_id, reason), HoldError
        ):
            holds.add(reason)

    @rule(order_id=orders, reason=_REASONS)
    def release(self, order_id: str, reason: str) -> None:
        holds = self.model_holds[order_id]
        if self._expect(
            order_id,
            reason in holds,
            lambda: self.shop.orders.release(order_id, reason),
            HoldError,
        ):
            holds.discard(reason)

    @rule(order_id=orders, data=st.data())
    def illegal_trigger_leaves_aggregate_untouched(
        self, order_id: str, data: st.DataObject
    ) -> None:
        """On the aggregate itself: a refused trigger leaves every field as it was."""
        trigger = data.draw(st.sampled_from(sorted(self.expected_graph)), label="trigger")
        order = self.shop.orders.get(order_id)
        state = self.model_state[order_id]
        blocked = trigger == "start_fulfilment" and bool(self.model_holds[order_id])
        if state in self.expected_graph[trigger] and not blocked:
            return
        before = _fields(order)
        now = self.shop.clock.now()
        attempts: dict[str, Callable[[], None]] = {
            "acknowledge": lambda: order.acknowledge(order.placed_at.date(), now, self.lifecycle),
            "cancel": lambda: order.cancel("test", now, self.lifecycle),
        }
        attempt = attempts.get(trigger, lambda: order.fire(trigger, now, self.lifecycle))
        try:
            attempt()
        except InvalidTransition:
            pass
        else:
            raise AssertionError(f"{trigger} from {state} should have been refused")
        assert _fields(order) == before

    @invariant()
    def states_match_the_model(self) -> None:
        for order_id, expected in self.model_state.items():
            order = self.shop.orders.get(order_id)
            assert order.state in self.states
            assert order.state == expected
            assert {hold.reason for hold in order.holds} == self.model_holds[order_id]
            assert order.version == self.versions[order_id]
            if self.tracks_stock:
                held = sum(r.quantity for _, _, r in self.shop.inventory.reservations(order_id))
                expected_held = (
                    0 if expected == "cancelled" else sum(line.quantity for line in order.lines)
                )
                assert held == expected_held, (order_id, expected, held)
        assert not self.shop.events.dead_letters(), self.shop.events.dead_letters()
        assert self.shop.events.pending() == 0

    @invariant()
    def money_adds_up(self) -> None:
        if not self.takes_payments:
            return
        gateway = self.shop.payments.gateway
        kept = expected = Money.zero(self.shop.settings.currency)
        for order_id, state in self.model_state.items():
            order = self.shop.orders.get(order_id)
            payments = self.shop.payments.for_order(order_id)
            if order.totals.total.is_zero():
                assert not payments
                continue
            assert len(payments) == 1, (order_id, payments)
            payment = payments[0]
            assert payment.amount == order.totals.total
            assert payment.captured <= payment.authorized
            assert payment.refunded <= payment.captured
            kept += payment.captured - payment.refunded
            if isinstance(gateway, MemoryGateway) and payment.authorization_id:
                assert gateway.captured(payment.authorization_id) == payment.captured
                assert gateway.refunded(payment.authorization_id) == payment.refunded
            if state == "cancelled":
                assert payment.status in (PaymentStatus.UNPAID, PaymentStatus.REFUNDED)
                assert (payment.captured - payment.refunded).is_zero()
            elif payment.status is PaymentStatus.PAID:
                expected += order.totals.total
            shipped = state in ("shipped", "delivered", "completed")
            if shipped and self.shop.settings.capture == "on_shipment":
                assert payment.status is PaymentStatus.PAID, (order_id, payment)
            if self.shop.settings.capture == "on_placement" and state != "cancelled":
                assert payment.status is PaymentStatus.PAID
            if payment.status is PaymentStatus.PARTIALLY_PAID:
                expected += payment.captured
        assert kept == expected
