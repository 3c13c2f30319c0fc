"""Tests for :class:`LifecycleDefinition`, :class:`Lifecycle` and the order's use of them."""

from __future__ import annotations

import copy
import gc
import weakref
from datetime import date, datetime, timedelta, timezone

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderkit.domain.events import (
    OrderAcknowledged,
    OrderCancelled,
    OrderFulfilmentStarted,
    OrderHoldPlaced,
    OrderHoldReleased,
    OrderTransitioned,
)
from orderkit.domain.lifecycle import Lifecycle, LifecycleDefinition, TransitionSpec
from orderkit.domain.order import ORDER_LIFECYCLE, Order, OrderState
from orderkit.domain.values import Address, Customer, LineItem, SalesChannel
from orderkit.errors import (
    HoldError,
    InvalidField,
    InvalidTransition,
    LifecycleDefinitionError,
    TransitionBlocked,
)
from orderkit.money import Money
from orderkit.testing.strategies import orders

AT = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
LATER = AT + timedelta(hours=1)
PROMISED = date(2026, 3, 6)

# The default order graph as DESIGN.md states it, written out independently of the code.
DEFAULT_EDGES = {
    ("placed", "acknowledge"): "acknowledged",
    ("acknowledged", "start_fulfilment"): "fulfilling",
    ("fulfilling", "mark_shipped"): "shipped",
    ("shipped", "mark_delivered"): "delivered",
    ("delivered", "complete"): "completed",
    ("placed", "cancel"): "cancelled",
    ("acknowledged", "cancel"): "cancelled",
    ("fulfilling", "cancel"): "cancelled",
}
ALL_STATES = [
    "placed",
    "acknowledged",
    "fulfilling",
    "shipped",
    "delivered",
    "completed",
    "cancelled",
]


def make_order(order_id: str = "o-1") -> Order:
    return Order.place(
        order_id=order_id,
        customer=Customer("c-1", "Ada Lovelace", "ada@example.com"),
        shipping_address=Address(
            recipient="Ada Lovelace",
            line1="Main Street 1",
            city="Berlin",
            postal_code="10115",
            country="DE",
        ),
        channel=SalesChannel.WEB,
        currency="EUR",
        lines=[
            LineItem(
                line_id="L1",
                sku="SKU-1",
                name="Widget",
                quantity=2,
                unit_price=Money("9.99", "EUR"),
            )
        ],
        shipping_charge=Money("4.90", "EUR"),
        payment_token="tok_abc",
        placed_at=AT,
    )


def snapshot(order: Order) -> dict[str, object]:
    """Every field of the order, with the event list copied."""
    return {f.name: copy.copy(getattr(order, f.name)) for f in attrs.fields(Order)}


def simple_definition(**overrides: object) -> LifecycleDefinition:
    """A valid three-state graph a -> b -> c; overrides make it invalid."""
    values: dict[str, object] = {
        "aggregate": "thing",
        "states": ["a", "b", "c"],
        "initial": "a",
        "final": ["c"],
        "transitions": [TransitionSpec("go", "a", "b"), TransitionSpec("finish", "b", "c")],
    }
    values.update(overrides)
    return LifecycleDefinition(**values)  # type: ignore[arg-type]


def fraud_definition() -> LifecycleDefinition:
    return ORDER_LIFECYCLE.extend(
        states=["fraud_review"],
        transitions=[
            TransitionSpec("flag", ["placed"], "fraud_review"),
            TransitionSpec("clear", ["fraud_review"], "placed"),
            TransitionSpec("reject", ["fraud_review"], "cancelled"),
        ],
    )


# --- building -------------------------------------------------------------------------------


def test_order_lifecycle_builds_once_and_is_cached():
    first = ORDER_LIFECYCLE.build()
    second = ORDER_LIFECYCLE.build()
    assert isinstance(first, Lifecycle)
    assert first is second
    assert first._machine is second._machine
    assert first.definition is ORDER_LIFECYCLE


def test_order_lifecycle_shape():
    assert ORDER_LIFECYCLE.aggregate == "order"
    assert list(ORDER_LIFECYCLE.states) == ALL_STATES
    assert [state.value for state in OrderState] == ALL_STATES
    assert ORDER_LIFECYCLE.initial == "placed"
    assert ORDER_LIFECYCLE.final == frozenset({"completed", "cancelled"})
    edges = {
        (source, spec.trigger): spec.dest
        for spec in ORDER_LIFECYCLE.transitions
        for source in spec.sources
    }
    assert edges == DEFAULT_EDGES
    assert ORDER_LIFECYCLE.triggers() == (
        "acknowledge",
        "start_fulfilment",
        "mark_shipped",
        "mark_delivered",
        "complete",
        "cancel",
    )


def test_machine_is_built_without_models_and_auto_transitions():
    lifecycle = ORDER_LIFECYCLE.build()
    assert lifecycle._machine.models == []
    assert set(lifecycle._machine.events) == set(ORDER_LIFECYCLE.triggers())
    assert not any(name.startswith("to_") for name in lifecycle._machine.events)


def test_a_simple_definition_builds():
    lifecycle = simple_definition().build()
    assert lifecycle.is_final("c")
    assert not lifecycle.is_final("a")
    assert lifecycle.triggers_from("a") == ("go",)
    assert lifecycle.leads_to("a", "finish")
    assert not lifecycle.leads_to("b", "go")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"transitions": [TransitionSpec("go", "a", "zzz")]}, "unknown state"),
        (
            {"transitions": [TransitionSpec("go", "zzz", "b"), TransitionSpec("finish", "b", "c")]},
            "unknown state",
        ),
        ({"initial": "zzz"}, "unknown state"),
        ({"final": ["zzz"]}, "unknown state"),
        (
            {
                "states": ["a", "b", "c", "d"],
                "transitions": [
                    TransitionSpec("go", "a", "b"),
                    TransitionSpec("finish", "b", "c"),
                    TransitionSpec("orphan", "d", "c"),
                ],
            },
            "unreachable",
        ),
        (
            {
                "states": ["a", "b", "c", "d"],
                "transitions": [
                    TransitionSpec("go", "a", "b"),
                    TransitionSpec("finish", "b", "c"),
                    TransitionSpec("trap", "a", "d"),
                ],
            },
            "never reach a final state",
        ),
        (
            {
                "states": ["a", "b", "c", "d"],
                "transitions": [
                    TransitionSpec("go", "a", "b"),
                    TransitionSpec("finish", "b", "c"),
                    TransitionSpec("trap", "a", "d"),
                    TransitionSpec("spin", "d", "d"),
                ],
            },
            "never reach a final state",
        ),
        (
            {
                "transitions": [
                    TransitionSpec("go", "a", "b"),
                    TransitionSpec("finish", "b", "c"),
                    TransitionSpec("reopen", "c", "a"),
                ]
            },
            "out of final state",
        ),
        ({"states": ["a", "b", "b", "c"]}, "twice"),
        ({"final": []}, "no final state"),
    ],
    ids=[
        "unknown-dest",
        "unknown-source",
        "unknown-initial",
        "unknown-final",
        "unreachable",
        "dead-end",
        "cycle-without-exit",
        "leaves-final",
        "duplicate-state",
        "no-final",
    ],
)
def test_invalid_definitions_are_refused_when_built(overrides, message):
    definition = simple_definition(**overrides)
    with pytest.raises(LifecycleDefinitionError, match=message):
        definition.build()


# --- extend ---------------------------------------------------------------------------------


def test_extend_with_fraud_review():
    before = (ORDER_LIFECYCLE.states, ORDER_LIFECYCLE.final, ORDER_LIFECYCLE.transitions)
    extended = fraud_definition()
    lifecycle = extended.build()
    assert "fraud_review" in extended.states
    assert {"flag", "clear", "reject"} <= set(extended.triggers())
    assert lifecycle.triggers_from("fraud_review") == ("clear", "reject")
    assert "flag" in lifecycle.triggers_from("placed")
    # the original definition and its lifecycle are untouched
    assert (ORDER_LIFECYCLE.states, ORDER_LIFECYCLE.final, ORDER_LIFECYCLE.transitions) == before
    assert "fraud_review" not in ORDER_LIFECYCLE.states
    assert "flag" not in ORDER_LIFECYCLE.triggers()
    assert "flag" not in ORDER_LIFECYCLE.build()._machine.events
    assert lifecycle is not ORDER_LIFECYCLE.build()
    assert extended.build() is lifecycle


def test_order_through_the_extended_lifecycle():
    lifecycle = fraud_definition().build()
    order = make_order()
    order.fire("flag", LATER, lifecycle)
    assert order.state == "fraud_review"
    assert order.pending_events[-1] == OrderTransitioned(
        LATER, order.id, "flag", "placed", "fraud_review"
    )
    # nothing of the default path is allowed from fraud review
    with pytest.raises(InvalidTransition):
        order.acknowledge(PROMISED, LATER, lifecycle)
    order.fire("clear", LATER, lifecycle)
    assert order.state == "placed"
    assert order.pending_events[-1] == OrderTransitioned(
        LATER, order.id, "clear", "fraud_review", "placed"
    )
    order.fire("flag", LATER, lifecycle)
    order.fire("reject", LATER, lifecycle)
    assert order.state == "cancelled"
    assert order.pending_events[-1].trigger == "reject"
    assert len(order.pending_events) == 5  # placed + four transitions


def test_the_default_lifecycle_refuses_the_extension_triggers():
    order = make_order()
    with pytest.raises(InvalidTransition):
        order.fire("flag", LATER)
    assert order.state == "placed"


def test_extend_refuses_a_state_added_twice():
    with pytest.raises(LifecycleDefinitionError, match="already has state"):
        ORDER_LIFECYCLE.extend(states=["placed"])


def test_extend_with_an_unreachable_state_fails_when_built():
    extended = ORDER_LIFECYCLE.extend(states=["limbo"])
    with pytest.raises(LifecycleDefinitionError, match="unreachable"):
        extended.build()


def test_extend_with_a_new_final_state():
    extended = ORDER_LIFECYCLE.extend(
        states=["written_off"],
        final=["written_off"],
        transitions=[TransitionSpec("write_off", ["shipped"], "written_off")],
    )
    lifecycle = extended.build()
    assert lifecycle.is_final("written_off")
    assert not ORDER_LIFECYCLE.build().is_final("written_off")


def test_guard_through_extend_blocks_with_its_docstring():
    def office_open(order: Order) -> bool:
        """the office is open.

        Longer explanation that must not appear in the message.
        """
        return False

    lifecycle = ORDER_LIFECYCLE.extend(guards={"acknowledge": [office_open]}).build()
    order = make_order()
    before = snapshot(order)
    with pytest.raises(TransitionBlocked) as excinfo:
        order.acknowledge(PROMISED, LATER, lifecycle)
    error = excinfo.value
    assert "the office is open" in str(error)
    assert "Longer explanation" not in str(error)
    assert error.guard == "the office is open"
    assert error.trigger == "acknowledge"
    assert error.state == "placed"
    assert isinstance(error, InvalidTransition)
    assert snapshot(order) == before
    assert not lifecycle.can_fire(order, "acknowledge")
    # the default lifecycle has no such guard
    order.acknowledge(PROMISED, LATER)
    assert order.state == "acknowledged"


def test_guard_without_docstring_is_named_by_its_function_name():
    def closed_for_inventory(order: Order) -> bool:
        return False

    lifecycle = ORDER_LIFECYCLE.extend(guards={"acknowledge": [closed_for_inventory]}).build()
    order = make_order()
    with pytest.raises(TransitionBlocked, match="closed_for_inventory"):
        order.acknowledge(PROMISED, LATER, lifecycle)


def test_extra_guards_add_to_existing_ones():
    allowed = {"value": False}

    def warehouse_ready(order: Order) -> bool:
        """warehouse ready"""
        return allowed["value"]

    lifecycle = ORDER_LIFECYCLE.extend(guards={"start_fulfilment": [warehouse_ready]}).build()
    order = make_order()
    order.acknowledge(PROMISED, LATER, lifecycle)
    order.hold("manual_review", LATER, lifecycle=lifecycle)
    with pytest.raises(TransitionBlocked, match="no holds"):
        order.start_fulfilment(LATER, lifecycle)
    order.release("manual_review", LATER)
    with pytest.raises(TransitionBlocked, match="warehouse ready"):
        order.start_fulfilment(LATER, lifecycle)
    assert order.state == "acknowledged"
    allowed["value"] = True
    assert lifecycle.can_fire(order, "start_fulfilment")
    order.start_fulfilment(LATER, lifecycle)
    assert order.state == "fulfilling"
    assert isinstance(order.pending_events[-1], OrderFulfilmentStarted)


def test_guard_on_an_unknown_trigger_is_refused():
    with pytest.raises(LifecycleDefinitionError, match="teleport"):
        ORDER_LIFECYCLE.extend(guards={"teleport": [lambda order: True]})


def test_guard_on_a_trigger_added_in_the_same_extend():
    def two_reviewers(order: Order) -> bool:
        """two reviewers agreed"""
        return False

    definition = ORDER_LIFECYCLE.extend(
        states=["fraud_review"],
        transitions=[
            TransitionSpec("flag", ["placed"], "fraud_review"),
            TransitionSpec("clear", ["fraud_review"], "placed"),
        ],
        guards={"clear": [two_reviewers]},
    )
    lifecycle = definition.build()
    order = make_order()
    order.fire("flag", LATER, lifecycle)
    with pytest.raises(TransitionBlocked, match="two reviewers agreed"):
        order.fire("clear", LATER, lifecycle)
    assert order.state == "fraud_review"


# --- illegal triggers --------------------------------------------------------------------------


def test_illegal_trigger_names_everything_and_changes_nothing():
    order = make_order("order-42")
    before = snapshot(order)
    with pytest.raises(InvalidTransition) as excinfo:
        order.mark_shipped(LATER)
    error = excinfo.value
    assert (error.aggregate, error.aggregate_id, error.state, error.trigger) == (
        "order",
        "order-42",
        "placed",
        "mark_shipped",
    )
    message = str(error)
    for part in ("order", "order-42", "placed", "mark_shipped"):
        assert part in message
    assert not isinstance(error, TransitionBlocked)
    assert snapshot(order) == before


def test_illegal_acknowledge_and_cancel_change_nothing():
    order = make_order()
    order.acknowledge(PROMISED, LATER)
    order.start_fulfilment(LATER)
    order.mark_shipped(LATER)
    before = snapshot(order)
    with pytest.raises(InvalidTransition) as excinfo:
        order.cancel("changed my mind", LATER)
    assert excinfo.value.state == "shipped"
    assert excinfo.value.trigger == "cancel"
    with pytest.raises(InvalidTransition):
        order.acknowledge(PROMISED + timedelta(days=1), LATER)
    assert snapshot(order) == before
    assert order.cancellation_reason is None
    assert order.promised_delivery == PROMISED


def test_unknown_trigger():
    order = make_order()
    before = snapshot(order)
    with pytest.raises(InvalidTransition) as excinfo:
        order.fire("teleport", LATER)
    assert excinfo.value.trigger == "teleport"
    assert excinfo.value.state == "placed"
    with pytest.raises(InvalidTransition):
        ORDER_LIFECYCLE.build().fire(order, "teleport")
    assert snapshot(order) == before


def test_fire_refuses_triggers_that_need_arguments():
    order = make_order()
    with pytest.raises(InvalidField):
        order.fire("acknowledge", LATER)
    with pytest.raises(InvalidField):
        order.fire("cancel", LATER)
    assert order.state == "placed"


def test_the_happy_path_and_its_events():
    order = make_order()
    order.acknowledge(PROMISED, LATER)
    assert order.promised_delivery == PROMISED
    assert order.pending_events[-1] == OrderAcknowledged(LATER, order.id, PROMISED)
    for trigger, state in [
        ("start_fulfilment", "fulfilling"),
        ("mark_shipped", "shipped"),
        ("mark_delivered", "delivered"),
        ("complete", "completed"),
    ]:
        getattr(order, trigger)(LATER)
        assert order.state == state
    assert len(order.pending_events) == 6
    with pytest.raises(InvalidTransition):
        order.cancel("too late", LATER)


def test_cancel_records_the_reason_and_previous_state():
    order = make_order()
    order.acknowledge(PROMISED, LATER)
    order.cancel("customer asked", LATER)
    assert order.state == "cancelled"
    assert order.cancellation_reason == "customer asked"
    assert order.pending_events[-1] == OrderCancelled(
        LATER, order.id, "customer asked", "acknowledged"
    )


_TRIGGERS = [
    "acknowledge",
    "start_fulfilment",
    "mark_shipped",
    "mark_delivered",
    "complete",
    "cancel",
    "teleport",
]


def _apply(order: Order, trigger: str) -> None:
    if trigger == "acknowledge":
        order.acknowledge(order.placed_at.date(), LATER)
    elif trigger == "cancel":
        order.cancel("changed my mind", LATER)
    else:
        order.fire(trigger, LATER)


@settings(max_examples=40, deadline=None)
@given(order=orders(), triggers=st.lists(st.sampled_from(_TRIGGERS), max_size=12))
def test_every_trigger_follows_the_default_graph_or_changes_nothing(order, triggers):
    for trigger in triggers:
        source = order.state
        before = snapshot(order)
        expected = DEFAULT_EDGES.get((source, trigger))
        if expected is None:
            with pytest.raises(InvalidTransition) as excinfo:
                _apply(order, trigger)
            error = excinfo.value
            assert (error.state, error.trigger, error.aggregate_id) == (source, trigger, order.id)
            assert snapshot(order) == before
        else:
            _apply(order, trigger)
            assert order.state == expected
            assert len(order.pending_events) == len(before["pending_events"]) + 1
            assert order.pending_events[-1].order_id == order.id


# --- diagrams ----------------------------------------------------------------------------------


def test_to_mermaid():
    text = ORDER_LIFECYCLE.build().to_mermaid()
    lines = [line.strip() for line in text.splitlines()]
    assert lines[0] == "stateDiagram-v2"
    assert "[*] --> placed" in lines
    for (source, trigger), dest in DEFAULT_EDGES.items():
        assert any(line.startswith(f"{source} --> {dest} : {trigger}") for line in lines), (
            source,
            trigger,
            dest,
        )
    assert "acknowledged --> fulfilling : start_fulfilment [no holds]" in lines
    assert "completed --> [*]" in lines
    assert "cancelled --> [*]" in lines
    assert "placed --> [*]" not in lines


def test_to_mermaid_shows_extensions():
    def office_open(order: Order) -> bool:
        """office open"""
        return True

    text = fraud_definition().extend(guards={"flag": [office_open]}).build().to_mermaid()
    assert "placed --> fraud_review : flag [office open]" in text
    assert "fraud_review --> cancelled : reject" in text


def test_to_dot():
    text = ORDER_LIFECYCLE.build().to_dot()
    assert text.startswith('digraph "order" {')
    assert text.rstrip().endswith("}")
    for state in ALL_STATES:
        assert f'"{state}" [shape=' in text
    assert '"completed" [shape=doublecircle]' in text
    assert '"placed" [shape=circle]' in text
    assert '"__start" -> "placed"' in text
    for (source, _trigger), dest in DEFAULT_EDGES.items():
        assert f'"{source}" -> "{dest}"' in text
    assert 'label="start_fulfilment [no holds]"' in text


# --- no references kept ------------------------------------------------------------------------


def _blocked_start(order: Order) -> None:
    try:
        order.start_fulfilment(LATER)
    except TransitionBlocked:
        pass
    else:  # pragma: no cover - the test asserts this cannot happen
        raise AssertionError("start_fulfilment was not blocked")


def test_the_machine_keeps_no_reference_to_orders():
    lifecycle = ORDER_LIFECYCLE.build()
    order = make_order("weak-1")
    ref = weakref.ref(order)
    lifecycle.fire(order, "acknowledge")
    assert order.state == "acknowledged"
    order.hold("manual_review", LATER)
    _blocked_start(order)
    order.release("manual_review", LATER)
    order.start_fulfilment(LATER)
    assert order.state == "fulfilling"
    del order
    gc.collect()
    assert ref() is None
    assert lifecycle._machine.models == []


def test_many_orders_share_one_machine_and_none_is_registered():
    lifecycle = ORDER_LIFECYCLE.build()
    batch = [make_order(f"o-{i}") for i in range(20)]
    refs = [weakref.ref(order) for order in batch]
    for order in batch:
        order.acknowledge(PROMISED, LATER)
    assert {order.state for order in batch} == {"acknowledged"}
    assert lifecycle._machine.models == []
    del batch, order
    gc.collect()
    assert all(ref() is None for ref in refs)


# --- holds -------------------------------------------------------------------------------------


def test_holding_twice_for_one_reason_is_refused():
    order = make_order()
    order.hold("manual_review", LATER, note="large order")
    assert order.is_on_hold
    assert order.pending_events[-1] == OrderHoldPlaced(LATER, order.id, "manual_review")
    before = snapshot(order)
    with pytest.raises(HoldError, match="manual_review"):
        order.hold("manual_review", LATER)
    assert snapshot(order) == before
    order.hold("payment_problem", LATER)
    assert [hold.reason for hold in order.holds] == ["manual_review", "payment_problem"]


def test_releasing_an_unknown_reason_is_refused():
    order = make_order()
    with pytest.raises(HoldError, match="manual_review"):
        order.release("manual_review", LATER)
    order.hold("payment_problem", LATER)
    before = snapshot(order)
    with pytest.raises(HoldError):
        order.release("manual_review", LATER)
    assert snapshot(order) == before


def test_start_fulfilment_is_blocked_while_on_hold():
    order = make_order()
    order.hold("manual_review", LATER)
    order.acknowledge(PROMISED, LATER)
    order.hold("payment_problem", LATER)
    lifecycle = ORDER_LIFECYCLE.build()
    assert not lifecycle.can_fire(order, "start_fulfilment")
    before = snapshot(order)
    with pytest.raises(TransitionBlocked) as excinfo:
        order.start_fulfilment(LATER)
    assert excinfo.value.guard == "no holds"
    assert "no holds" in str(excinfo.value)
    assert excinfo.value.state == "acknowledged"
    assert snapshot(order) == before
    order.release("manual_review", LATER)
    assert order.pending_events[-1] == OrderHoldReleased(LATER, order.id, "manual_review")
    with pytest.raises(TransitionBlocked):
        order.start_fulfilment(LATER)
    order.release("payment_problem", LATER)
    assert not order.is_on_hold
    assert lifecycle.can_fire(order, "start_fulfilment")
    order.start_fulfilment(LATER)
    assert order.state == "fulfilling"


@pytest.mark.parametrize("steps", [["start_fulfilment"], ["cancel"]])
def test_holding_after_fulfilment_started_or_when_final_is_refused(steps):
    order = make_order()
    order.acknowledge(PROMISED, LATER)
    for step in steps:
        if step == "cancel":
            order.cancel("customer asked", LATER)
        else:
            order.fire(step, LATER)
    before = snapshot(order)
    with pytest.raises(HoldError, match="can no longer be held"):
        order.hold("manual_review", LATER)
    assert snapshot(order) == before


def test_a_hold_is_still_possible_before_fulfilment_in_an_extended_lifecycle():
    lifecycle = fraud_definition().build()
    order = make_order()
    order.fire("flag", LATER, lifecycle)
    order.hold("manual_review", LATER, lifecycle=lifecycle)
    assert order.is_on_hold
