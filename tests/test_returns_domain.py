"""ReturnRequest and Inquiry on their own (no shop, no store): lifecycles, unit and money
rules, line shares, refund quotes and documents.

* A hypothesis state machine fires every step of a return (approve, reject, cancel,
  receive, inspect, decide_refund, decide_exchange, withdraw_decision, mark_refunded,
  mark_exchanged, cancel_exchange, close) in any state, with good and bad input,
  against a plain model whose states come from :data:`RETURN_LIFECYCLE`'s transitions.
  A refused step raises (InvalidTransition when only the state is wrong) and leaves
  every field and the pending events as they were; an accepted step appends exactly one
  event of its kind (a decision, none); the unit and money rules hold after every step.
* The same for an :class:`Inquiry` (answer, reply, resolve; bad authors, blank text).
* :meth:`ReturnRequest.request` against ``returnable``; :func:`lines_share` over any
  split of an order's units into returns adds up to each line's total; and
  :func:`quote_return`, fed the units of the returns decided before (as
  ``ReturnService._quote`` does through :func:`settled_units`), follows that rule and
  keeps the restocking fee within the items, at zero for the shop's own faults.
* Documents: a return or an inquiry in any reachable state survives ``dumps``/``loads``
  field by field, its version kept; its events survive ``dumps_event``/``loads_event``.

Tests marked ``# BUG:`` show defects found here (strict xfail until they are fixed);
``# Regression:`` pins one that was fixed while these tests were written.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from orderkit import (
    INQUIRY_KINDS,
    INQUIRY_LIFECYCLE,
    RETURN_LIFECYCLE,
    RETURN_REASONS,
    SHOP_FAULT_REASONS,
    DomainEvent,
    Inquiry,
    InquiryAnswered,
    InquiryCustomerReplied,
    InquiryOpened,
    InquiryResolved,
    Inspection,
    InvalidField,
    InvalidInput,
    InvalidSettings,
    InvalidTransition,
    LineItem,
    Money,
    Order,
    ReturnApproved,
    ReturnCancelled,
    ReturnClosed,
    ReturnError,
    ReturnExchanged,
    ReturnInspected,
    ReturnLine,
    ReturnReceived,
    ReturnRefunded,
    ReturnRejected,
    ReturnRequest,
    ReturnRequested,
    ReturnState,
    SalesChannel,
    ShopSettings,
)
from orderkit.domain.inquiries import CUSTOMER
from orderkit.domain.payment import lines_share
from orderkit.domain.return_pricing import quote_return, settled_units
from orderkit.domain.values import MAX_NOTE_LENGTH, MAX_TEXT_LENGTH
from orderkit.serialization import dumps, dumps_event, loads, loads_event
from orderkit.testing import strategies as oks

AT = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
CURRENCIES = ("JPY", "EUR", "KWD")
"""0, 2 and 3 decimals."""
LINE_IDS = ("L1", "L2", "L3")
UNKNOWN_LINE = "L9"
"""A line no return in these tests asks for."""
LOCATIONS = ("main", "berlin-2")

_S = ReturnState
RETURN_EDGES = {
    (spec.trigger, source): spec.dest
    for spec in RETURN_LIFECYCLE.transitions
    for source in spec.sources
}
"""(trigger, from) -> to, for every transition of the return lifecycle."""
INQUIRY_EDGES = {
    (spec.trigger, source): spec.dest
    for spec in INQUIRY_LIFECYCLE.transitions
    for source in spec.sources
}
VOID = frozenset({_S.REJECTED.value, _S.CANCELLED.value})
BACK = frozenset(
    {_S.RECEIVED.value, _S.INSPECTED.value, _S.REFUNDED.value, _S.EXCHANGED.value, _S.CLOSED.value}
)
"""States in which the units have arrived."""
INSPECTED_OR_LATER = BACK - {_S.RECEIVED.value}

Refusal = tuple[type[Exception], ...]
"""What a step must raise (any of them); () when it must succeed."""


def fast(examples: int) -> settings:
    """Settings for a property: ``examples`` examples, no deadline (timings vary by machine)."""
    return settings(
        max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )


def snapshot(aggregate: object) -> dict[str, object]:
    """Every field of an attrs aggregate (the pending events copied), to compare before/after."""
    values: dict[str, object] = {}
    for attribute in attrs.fields(type(aggregate)):
        value = getattr(aggregate, attribute.name)
        values[attribute.name] = tuple(value) if isinstance(value, list) else value
    return values


def minor(units: int, currency: str) -> Money:
    return Money.from_minor(units, currency)


# -- input strategies ------------------------------------------------------------------------

WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz .,'", min_size=1, max_size=30).filter(
    lambda text: bool(text.strip())
)
"""Acceptable free text (no digits, so never a card number)."""
BAD_TEXT: tuple[object, ...] = (
    "",
    "   ",
    "\n\t",
    "x" * (MAX_NOTE_LENGTH + 1),
    "my card is 4111 1111 1111 1111",
    None,
    42,
)
"""Blank, oversized, a card number, not text."""


def notes(good: int = 2, bad: int = 1) -> st.SearchStrategy[tuple[Any, bool]]:
    """(text, acceptable): acceptable ``good`` times in ``good + bad``."""
    accepted = WORDS.map(lambda text: (text, True))
    refused = st.sampled_from(BAD_TEXT).map(lambda text: (text, False))
    return st.one_of([accepted] * good + [refused] * bad)


def authors() -> st.SearchStrategy[tuple[Any, bool]]:
    """(author of a shop answer, acceptable): the customer cannot answer their own inquiry."""
    good = st.sampled_from(["Grace", "support desk", "Linus T."]).map(lambda a: (a, True))
    bad = st.sampled_from(
        [CUSTOMER, "", "  ", "x" * (MAX_TEXT_LENGTH + 1), None, 7, "4111 1111 1111 1111"]
    ).map(lambda a: (a, False))
    return st.one_of(good, good, bad)


@st.composite
def return_lines(draw: st.DrawFn) -> list[ReturnLine]:
    """One to three lines of one to six units each, each with a reason."""
    ids = draw(st.lists(st.sampled_from(LINE_IDS), min_size=1, max_size=3, unique=True))
    return [
        ReturnLine(
            line_id,
            draw(st.integers(1, 6)),
            draw(st.sampled_from(RETURN_REASONS)),
            draw(st.sampled_from(["", "too small"])),
        )
        for line_id in ids
    ]


# -- 1. the return lifecycle against a model ----------------------------------------------------

RECEIPTS = ("all", "some", "some", "more than asked", "unknown line", "all zero", "negative")
"""How the units arrive: the first three are acceptable (unless "some" comes to nothing)."""
INSPECTIONS = (
    "split",
    "split",
    "split",
    "off by one",
    "line missing",
    "unknown line",
    "line twice",
    "restocked nowhere",
)
"""What the inspection says: only a "split" of every received line adds up."""
DECISIONS = ("fresh", "fresh", "again", "negative")
"""A refund or exchange decision: "again" after one was made is refused."""
PAYOUTS = ("nothing", "part", "all", "all", "more than due", "negative")
EXCHANGES = (
    "credit left",
    "credit left",
    "costs more",
    "costs more",
    "refund more than credit",
    "negative",
    "blank order id",
)
"""Only "credit left" and "costs more" are acceptable."""
PAYBACKS = ("the rest", "the rest", "part", "part", "nothing", "more than the rest", "negative")
"""What an exchange's cancellation pays back: the last two are refused."""


@dataclass
class ReturnModel:
    """What a return should hold; amounts in minor units."""

    state: str
    requested: dict[str, int]
    events: list[type[DomainEvent]]
    received: dict[str, int] = field(default_factory=dict)
    received_at: datetime | None = None
    inspected: dict[str, tuple[int, int, str | None]] = field(default_factory=dict)
    instructions: object = None
    rejection_reason: object = None
    cancellation_reason: object = None
    resolution: str | None = None
    due: int | None = None
    fee: int | None = None
    shipping: int | None = None
    refunded: int | None = None
    charged: int | None = None
    exchange_order_id: str | None = None
    closed_at: datetime | None = None


class ReturnLifecycleMachine(RuleBasedStateMachine):
    """One return; every step is fired in any state, with good and bad input."""

    @initialize(currency=st.sampled_from(CURRENCIES), lines=return_lines(), spare=st.integers(0, 2))
    def request_return(self, currency: str, lines: list[ReturnLine], spare: int) -> None:
        self.currency = currency
        self.ticks = itertools.count(1)
        self.now = AT
        returnable = {line.line_id: line.quantity + spare for line in lines}
        self.request = ReturnRequest.request(
            return_id="ret-1", order_id="ord-1", lines=lines, returnable=returnable, at=AT
        )
        self.model = ReturnModel(
            state=_S.REQUESTED.value,
            requested={line.line_id: line.quantity for line in lines},
            events=[ReturnRequested],
        )
        (event,) = self.request.pending_events
        assert isinstance(event, ReturnRequested)
        assert event.lines == tuple((line.line_id, line.quantity, line.reason) for line in lines)

    # -- helpers --

    def _tick(self) -> datetime:
        self.now = AT + timedelta(minutes=next(self.ticks))
        return self.now

    def _money(self, units: int | None) -> Money | None:
        return None if units is None else minor(units, self.currency)

    def _legal(self, trigger: str) -> bool:
        return (trigger, self.model.state) in RETURN_EDGES

    def _expect(self, trigger: str, acceptable: bool) -> Refusal:
        """What firing ``trigger`` now, with input that is (or not) acceptable, must raise."""
        legal = self._legal(trigger)
        if acceptable:
            return () if legal else (InvalidTransition,)
        if legal:
            return (InvalidInput, ReturnError)
        return (InvalidInput, ReturnError, InvalidTransition)

    def _step(
        self,
        refusal: Refusal,
        change: Callable[[ReturnRequest], object],
        event_class: type[DomainEvent] | None,
        trigger: str | None,
    ) -> Any:
        """Make the change; it must raise ``refusal`` and change nothing, or succeed."""
        request = self.request
        before = snapshot(request)
        if refusal:
            with pytest.raises(refusal):
                change(request)
            assert snapshot(request) == before, "a refused step changed the return"
            return None
        change(request)
        source = str(before["state"])
        if trigger is None:
            assert request.state == source
        else:
            assert request.state == RETURN_EDGES[(trigger, source)]
            self.model.state = request.state
        assert request.version == before["version"]
        earlier = before["pending_events"]
        assert isinstance(earlier, tuple)
        assert tuple(request.pending_events[: len(earlier)]) == earlier
        new = request.pending_events[len(earlier) :]
        if event_class is None:
            assert new == []
            return None
        assert len(new) == 1, f"{trigger} appended {len(new)} events"
        (event,) = new
        assert type(event) is event_class
        assert (event.occurred_at, event.order_id, event.return_id) == (self.now, "ord-1", "ret-1")
        self.model.events.append(event_class)
        return event

    def _unsettled_refusal(self, trigger: str, inputs_ok: bool) -> Refusal:
        """A settlement step of the other resolution, or of none: today the return says it
        has no such decision (ReturnError); where the state is wrong too, the lifecycle
        rule asks for InvalidTransition (see the BUG test below)."""
        if inputs_ok and self._legal(trigger):
            return (ReturnError,)
        return (ReturnError, InvalidInput, InvalidTransition)

    # -- the customer's and the shop's steps --

    @rule(note=notes())
    def approve(self, note: tuple[Any, bool]) -> None:
        text, acceptable = note
        at = self._tick()
        refusal = self._expect("approve", acceptable)
        event = self._step(refusal, lambda r: r.approve(text, at), ReturnApproved, "approve")
        if event is not None:
            assert event.instructions == text
            self.model.instructions = text

    # rejecting and cancelling end a return: mostly refused text, so that runs get deeper
    @rule(note=notes(good=1, bad=4))
    def reject(self, note: tuple[Any, bool]) -> None:
        text, acceptable = note
        at = self._tick()
        refusal = self._expect("reject", acceptable)
        event = self._step(refusal, lambda r: r.reject(text, at), ReturnRejected, "reject")
        if event is not None:
            assert event.reason == text
            self.model.rejection_reason = text

    @rule(note=notes(good=1, bad=4))
    def cancel(self, note: tuple[Any, bool]) -> None:
        text, acceptable = note
        at = self._tick()
        refusal = self._expect("cancel", acceptable)
        event = self._step(refusal, lambda r: r.cancel(text, at), ReturnCancelled, "cancel")
        if event is not None:
            assert event.reason == text
            self.model.cancellation_reason = text

    @rule(data=st.data(), kind=st.sampled_from(RECEIPTS))
    def receive(self, data: st.DataObject, kind: str) -> None:
        asked = self.model.requested
        units: dict[str, int] | None
        if kind == "all":
            units = None
        elif kind == "some":
            units = {
                line: data.draw(st.integers(0, count), label=f"{line} arrived")
                for line, count in asked.items()
            }
        elif kind == "more than asked":
            line = data.draw(st.sampled_from(sorted(asked)), label="line")
            units = {**asked, line: asked[line] + data.draw(st.integers(1, 3), label="extra")}
        elif kind == "unknown line":
            units = {**asked, UNKNOWN_LINE: data.draw(st.integers(0, 1), label="unknown units")}
        elif kind == "all zero":
            units = data.draw(st.sampled_from([{}, dict.fromkeys(asked, 0)]), label="zeros")
        else:
            line = data.draw(st.sampled_from(sorted(asked)), label="line")
            units = {**asked, line: -1}
        got = dict(asked) if units is None else {k: n for k, n in units.items() if n > 0}
        acceptable = kind in ("all", "some") and bool(got)
        at = self._tick()
        refusal = self._expect("receive", acceptable)
        event = self._step(refusal, lambda r: r.receive(units, at), ReturnReceived, "receive")
        if event is not None:
            assert event.units == tuple(sorted(got.items()))
            self.model.received, self.model.received_at = got, at

    @rule(data=st.data(), kind=st.sampled_from(INSPECTIONS))
    def inspect(self, data: st.DataObject, kind: str) -> None:
        got = self.model.received
        if not got and kind != "unknown line":
            kind = "split"  # nothing received: the only split is none at all
        results: list[Inspection] = []
        for line, count in sorted(got.items()):
            restock = data.draw(st.integers(0, count), label=f"{line} restocked")
            location = data.draw(
                st.sampled_from(LOCATIONS if restock else (None, *LOCATIONS)), label="location"
            )
            results.append(Inspection(line, restock, count - restock, location))
        if results and kind in ("off by one", "line missing", "line twice", "restocked nowhere"):
            index = data.draw(st.integers(0, len(results) - 1), label="which line")
            result = results[index]
            if kind == "off by one":
                wrong = [
                    attrs.evolve(result, restock=result.restock + 1, location="main"),
                    attrs.evolve(result, write_off=result.write_off + 1),
                ]
                if result.restock:
                    wrong.append(attrs.evolve(result, restock=result.restock - 1))
                if result.write_off:
                    wrong.append(attrs.evolve(result, write_off=result.write_off - 1))
                results[index] = data.draw(st.sampled_from(wrong), label="wrong count")
            elif kind == "line missing":
                del results[index]
            elif kind == "line twice":
                results.append(result)
            else:
                total = result.restock + result.write_off
                results[index] = Inspection(result.line_id, total, 0, None)
        elif kind == "unknown line":
            results.append(Inspection(UNKNOWN_LINE, 1, 0, "main"))
        results = list(data.draw(st.permutations(results), label="order of results"))
        acceptable = kind == "split"
        at = self._tick()
        refusal = self._expect("inspect", acceptable)
        event = self._step(refusal, lambda r: r.inspect(results, at), ReturnInspected, "inspect")
        if event is not None:
            inspected = {r.line_id: (r.restock, r.write_off, r.location) for r in results}
            assert event.restocked == tuple(
                sorted((k, n) for k, (n, _, _) in inspected.items() if n)
            )
            assert event.written_off == tuple(
                sorted((k, n) for k, (_, n, _) in inspected.items() if n)
            )
            self.model.inspected = inspected

    def _decide(self, data: st.DataObject, kind: str, resolution: str) -> None:
        """decide_refund or decide_exchange: not lifecycle triggers; they fix the amounts of
        an inspected return once, and append no event."""
        model = self.model
        amounts = list(
            data.draw(
                st.tuples(st.integers(0, 10**5), st.integers(0, 10**4), st.integers(0, 2000)),
                label="due, fee, shipping",
            )
        )
        if resolution == "exchange":
            amounts[2] = 0
        if kind == "negative":
            amounts[data.draw(st.integers(0, 1), label="which is negative")] = -1
        due, fee, shipping = (minor(units, self.currency) for units in amounts)
        refusal: Refusal
        if model.state != _S.INSPECTED.value:
            refusal = (ReturnError,)
        elif min(amounts) < 0:
            refusal = (InvalidField,)
        elif model.resolution is not None:
            refusal = (ReturnError,)  # deciding again, the same or otherwise
        else:
            refusal = ()
        if resolution == "refund":
            self._step(refusal, lambda r: r.decide_refund(due, fee, shipping), None, None)
        else:
            self._step(refusal, lambda r: r.decide_exchange(due, fee), None, None)
        if not refusal:
            model.resolution = resolution
            model.due, model.fee, model.shipping = amounts

    @rule(data=st.data(), kind=st.sampled_from(DECISIONS))
    def decide_refund(self, data: st.DataObject, kind: str) -> None:
        self._decide(data, kind, "refund")

    @rule(data=st.data(), kind=st.sampled_from(DECISIONS))
    def decide_exchange(self, data: st.DataObject, kind: str) -> None:
        self._decide(data, kind, "exchange")

    @rule()
    def withdraw_decision(self) -> None:
        """An exchange decided but not placed is forgotten; nothing else can be withdrawn."""
        model = self.model
        undoable = model.state == _S.INSPECTED.value and model.resolution == "exchange"
        refusal: Refusal = () if undoable else (ReturnError,)
        self._step(refusal, lambda r: r.withdraw_decision(), None, None)
        if undoable:
            model.resolution = model.due = model.fee = model.shipping = None

    @rule(data=st.data(), kind=st.sampled_from(PAYOUTS))
    def mark_refunded(self, data: st.DataObject, kind: str) -> None:
        model = self.model
        due = model.due if model.due is not None else 100
        if kind == "nothing":
            paid_units = 0
        elif kind == "part":
            paid_units = data.draw(st.integers(0, due), label="paid")
        elif kind == "all":
            paid_units = due
        elif kind == "more than due":
            paid_units = due + data.draw(st.integers(1, 50), label="over")
        else:
            paid_units = -1
        paid = minor(paid_units, self.currency)
        inputs_ok = 0 <= paid_units <= due
        refusal: Refusal
        if model.resolution != "refund":
            refusal = self._unsettled_refusal("refund", inputs_ok)
        elif not inputs_ok:
            refusal = (
                (InvalidField,) if self._legal("refund") else (InvalidField, InvalidTransition)
            )
        else:
            refusal = self._expect("refund", True)
        at = self._tick()
        event = self._step(refusal, lambda r: r.mark_refunded(paid, at), ReturnRefunded, "refund")
        if event is not None:
            assert (event.due, event.paid) == (self._money(model.due), paid)
            model.refunded = paid_units

    @rule(data=st.data(), kind=st.sampled_from(EXCHANGES))
    def mark_exchanged(self, data: st.DataObject, kind: str) -> None:
        model = self.model
        credit = model.due if model.due is not None else 100
        charged = refunded = 0
        exchange_id: Any = "ord-x"
        if kind == "credit left":
            refunded = data.draw(st.integers(0, credit), label="refunded")
        elif kind == "costs more":
            charged = data.draw(st.integers(1, 10**4), label="charged")
        elif kind == "refund more than credit":
            refunded = credit + data.draw(st.integers(1, 100), label="over")
        elif kind == "negative":
            if data.draw(st.booleans(), label="charged negative"):
                charged = -1
            else:
                refunded = -1
        else:
            exchange_id = data.draw(st.sampled_from(["", "   ", None]), label="order id")
        charged_money, refunded_money = (
            minor(charged, self.currency),
            minor(refunded, self.currency),
        )
        inputs_ok = kind in ("credit left", "costs more")  # the others are refused
        refusal: Refusal
        if model.resolution != "exchange":
            refusal = self._unsettled_refusal("exchange", inputs_ok)
        else:
            refusal = self._expect("exchange", inputs_ok)
        at = self._tick()

        def change(r: ReturnRequest) -> None:
            r.mark_exchanged(exchange_id, charged_money, refunded_money, at)

        event = self._step(refusal, change, ReturnExchanged, "exchange")
        if event is not None:
            assert (event.exchange_order_id, event.charged, event.refunded) == (
                exchange_id,
                charged_money,
                refunded_money,
            )
            model.exchange_order_id = exchange_id
            model.charged, model.refunded = charged, refunded

    @rule(data=st.data(), kind=st.sampled_from(PAYBACKS))
    def cancel_exchange(self, data: st.DataObject, kind: str) -> None:
        """The exchange order was cancelled before it shipped: the credit it used is paid
        back, and the return ends refunded."""
        model = self.model
        rest = (model.due or 0) - (model.refunded or 0)
        back = {
            "the rest": rest,
            "nothing": 0,
            "negative": -1,
        }.get(kind)
        if kind == "part":
            back = data.draw(st.integers(0, max(rest, 0)), label="paid back")
        elif kind == "more than the rest":
            back = rest + data.draw(st.integers(1, 20), label="over")
        assert back is not None
        paid_back = minor(back, self.currency)
        inputs_ok = 0 <= back <= rest
        refusal: Refusal
        if model.due is None or model.refunded is None:
            refusal = (
                (ReturnError,)
                if self._legal("cancel_exchange")
                else (
                    ReturnError,
                    InvalidTransition,
                )
            )
        else:
            refusal = self._expect("cancel_exchange", inputs_ok)
        at = self._tick()
        event = self._step(
            refusal, lambda r: r.cancel_exchange(paid_back, at), ReturnRefunded, "cancel_exchange"
        )
        if event is not None:
            assert model.refunded is not None
            model.refunded += back
            assert (event.due, event.paid) == (self._money(model.due), self._money(model.refunded))

    @rule()
    def close(self) -> None:
        at = self._tick()
        event = self._step(
            self._expect("close", True), lambda r: r.close(at), ReturnClosed, "close"
        )
        if event is not None:
            self.model.closed_at = at

    @rule(data=st.data())
    def advance(self, data: st.DataObject) -> None:
        """Fire a step that can move the return on from where it is, with any input (mostly
        good): runs get past the first states and dwell where bad input matters most. The
        other rules fire their step in any state."""
        state = self.model.state
        if state == _S.REQUESTED.value:
            self.approve(data.draw(notes(good=3, bad=1), label="instructions"))
        elif state == _S.APPROVED.value:
            self.receive(data, data.draw(st.sampled_from(RECEIPTS), label="receipt"))
        elif state == _S.RECEIVED.value:
            self.inspect(data, data.draw(st.sampled_from(INSPECTIONS), label="inspection"))
        elif state == _S.INSPECTED.value:
            # the decision, then the settlement it calls for (the other rules try the others)
            resolution = self.model.resolution
            if resolution is None:
                kind = data.draw(st.sampled_from(DECISIONS), label="decision")
                if data.draw(st.booleans(), label="decide an exchange"):
                    self.decide_exchange(data, kind)
                else:
                    self.decide_refund(data, kind)
            elif resolution == "refund":
                self.mark_refunded(data, data.draw(st.sampled_from(PAYOUTS), label="payout"))
            else:
                self.mark_exchanged(data, data.draw(st.sampled_from(EXCHANGES), label="exchange"))
        elif state == _S.EXCHANGED.value:
            ending = data.draw(st.sampled_from(["exchange cancelled", "closed"]), label="ending")
            if ending == "closed":
                self.close()
            else:
                self.cancel_exchange(data, data.draw(st.sampled_from(PAYBACKS), label="payback"))
        elif state == _S.REFUNDED.value:
            self.close()

    # advancing is as likely as three other steps together, so that most runs reach a
    # settlement; each alias is one more chance for hypothesis to pick it
    @rule(data=st.data())
    def advance_again(self, data: st.DataObject) -> None:
        self.advance(data)

    @rule(data=st.data())
    def advance_once_more(self, data: st.DataObject) -> None:
        self.advance(data)

    # -- invariants --

    @invariant()
    def the_return_agrees_with_the_model(self) -> None:
        request, model = self.request, self.model
        assert request.state == model.state
        assert request.state in RETURN_LIFECYCLE.states
        assert request.is_open == (model.state not in RETURN_LIFECYCLE.final)
        assert request.requested_units() == model.requested
        assert request.received_units() == model.received
        assert request.received_at == model.received_at
        assert {
            i.line_id: (i.restock, i.write_off, i.location) for i in request.inspections
        } == model.inspected
        assert request.instructions == model.instructions
        assert request.rejection_reason == model.rejection_reason
        assert request.cancellation_reason == model.cancellation_reason
        assert request.resolution == model.resolution
        assert request.amount_due == self._money(model.due)
        assert request.restocking_fee == self._money(model.fee)
        assert request.shipping_refund == self._money(model.shipping)
        assert request.amount_refunded == self._money(model.refunded)
        assert request.exchange_charged == self._money(model.charged)
        assert request.exchange_order_id == model.exchange_order_id
        assert request.closed_at == model.closed_at
        assert request.version == 0
        assert [type(event) for event in request.pending_events] == model.events
        assert all(
            (event.order_id, event.return_id) == ("ord-1", "ret-1")  # type: ignore[attr-defined]
            for event in request.pending_events
        )

    @invariant()
    def units_and_money_stay_within_bounds(self) -> None:
        request = self.request
        asked = request.requested_units()
        got = request.received_units()
        for line, count in got.items():
            assert line in asked
            assert 0 < count <= asked[line]
        assert bool(got) == (request.state in BACK)
        if request.state in INSPECTED_OR_LATER:
            assert [i.line_id for i in request.inspections] == sorted(got)
            restocked, written_off = request.restocked_units(), request.written_off_units()
            for line, count in got.items():
                assert restocked.get(line, 0) + written_off.get(line, 0) == count
            assert all(i.location is not None for i in request.inspections if i.restock)
        else:
            assert request.inspections == ()
        # a settlement needs its decision, and a decision its inspection
        assert (request.resolution is None) == (request.amount_due is None)
        if request.resolution is not None:
            assert request.state in INSPECTED_OR_LATER
        if request.state == _S.EXCHANGED.value:
            assert request.resolution == "exchange"
            assert request.exchange_order_id is not None
        if request.state == _S.REFUNDED.value:
            assert request.resolution is not None
            assert request.amount_refunded is not None
        if request.amount_refunded is not None:
            assert request.amount_due is not None
            assert request.amount_refunded <= request.amount_due
        if request.state in VOID:
            assert request.units() == {}
        elif request.state in BACK:
            assert request.units() == got
        else:
            assert request.units() == asked


ReturnLifecycleMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestReturnLifecycle = ReturnLifecycleMachine.TestCase


def inspected_return(currency: str = "EUR") -> ReturnRequest:
    """A return of 2 units of L1 (changed mind) and 1 of L2 (damaged), received and inspected."""
    request = ReturnRequest.request(
        return_id="ret-1",
        order_id="ord-1",
        lines=[ReturnLine("L1", 2, "changed_mind"), ReturnLine("L2", 1, "damaged")],
        returnable={"L1": 2, "L2": 1},
        at=AT,
    )
    request.approve("Send it to the returns desk", AT)
    request.receive(None, AT)
    request.inspect([Inspection("L1", 2, 0, "main"), Inspection("L2", 0, 1)], AT)
    return request


def eur(units: int) -> Money:
    return minor(units, "EUR")


def test_a_walk_through_every_state_of_a_refunded_return() -> None:
    """The happy path, step by step, so that a failure names the step."""
    request = inspected_return()
    assert request.state == _S.INSPECTED.value
    assert request.restocked_units() == {"L1": 2}
    assert request.written_off_units() == {"L2": 1}
    request.decide_refund(eur(2500), eur(250), eur(0))
    assert (request.resolution, request.amount_due) == ("refund", eur(2500))
    request.mark_refunded(eur(2000), AT)
    request.close(AT)
    assert request.state == _S.CLOSED.value
    assert not request.is_open
    assert request.amount_refunded == eur(2000)
    assert [type(e) for e in request.pending_events] == [
        ReturnRequested,
        ReturnApproved,
        ReturnReceived,
        ReturnInspected,
        ReturnRefunded,
        ReturnClosed,
    ]


def test_an_exchange_cancelled_before_it_ships_ends_refunded() -> None:
    request = inspected_return()
    request.decide_exchange(eur(3000), eur(0))
    request.mark_exchanged("ord-x", eur(0), eur(500), AT)
    assert request.state == _S.EXCHANGED.value
    request.cancel_exchange(eur(2500), AT)
    assert request.state == _S.REFUNDED.value
    assert request.amount_refunded == request.amount_due == eur(3000)
    assert request.pending_events[-1] == ReturnRefunded(AT, "ord-1", "ret-1", eur(3000), eur(3000))
    before = snapshot(request)
    with pytest.raises(InvalidTransition):
        request.cancel_exchange(eur(0), AT)
    assert snapshot(request) == before


def approved_return(lines: list[ReturnLine]) -> ReturnRequest:
    request = ReturnRequest.request(
        return_id="ret-1",
        order_id="ord-1",
        lines=lines,
        returnable={line.line_id: line.quantity for line in lines},
        at=AT,
    )
    request.approve("Send it", AT)
    return request


@fast(200)
@given(lines=return_lines(), data=st.data())
def test_an_approved_return_receives_exactly_the_units_that_can_arrive(
    lines: list[ReturnLine], data: st.DataObject
) -> None:
    """Any count per line from nothing to what was asked, at least one unit in all; more
    than asked, a negative count or a line not in the return is refused, changing nothing."""
    request = approved_return(lines)
    asked = request.requested_units()
    units = {k: data.draw(st.integers(-1, n + 2), label=f"{k} arrived") for k, n in asked.items()}
    if data.draw(st.integers(0, 4), label="unknown line") == 0:
        units[UNKNOWN_LINE] = data.draw(st.integers(0, 2), label="unknown units")
    arrived = {k: n for k, n in units.items() if n > 0}
    fits = all(k in asked and 0 <= n <= asked[k] for k, n in units.items())
    before = snapshot(request)
    if fits and arrived:
        request.receive(units, AT)
        assert request.received_units() == request.units() == arrived
        assert request.pending_events[-1] == ReturnReceived(
            AT, "ord-1", "ret-1", tuple(sorted(arrived.items()))
        )
    else:
        with pytest.raises((InvalidInput, ReturnError)):
            request.receive(units, AT)
        assert snapshot(request) == before


@fast(200)
@given(lines=return_lines(), data=st.data())
def test_a_received_return_accepts_exactly_inspections_that_add_up(
    lines: list[ReturnLine], data: st.DataObject
) -> None:
    """Every received line once, restocked plus written off equal to its units, and a
    location for restocked units; anything else is refused and changes nothing."""
    request = approved_return(lines)
    asked = request.requested_units()
    arrived = {k: data.draw(st.integers(0, n), label=f"{k} arrived") for k, n in asked.items()}
    request.receive(arrived if any(arrived.values()) else None, AT)
    got = request.received_units()
    results = []
    for line, count in sorted(got.items()):
        restock = data.draw(st.integers(0, count), label=f"{line} restocked")
        places = LOCATIONS if restock else (None, *LOCATIONS)
        location = data.draw(st.sampled_from(places), label="location")
        results.append(Inspection(line, restock, count - restock, location))
    change = data.draw(
        st.sampled_from(["none", "none", "count", "drop", "twice", "unknown", "nowhere"]),
        label="change",
    )
    index = data.draw(st.integers(0, len(results) - 1), label="which")
    if change == "count":
        restock = results[index].restock + data.draw(st.sampled_from([-1, 1]), label="by")
        results[index] = attrs.evolve(results[index], restock=max(restock, 0), location="main")
    elif change == "drop":
        del results[index]
    elif change == "twice":
        results.append(results[index])
    elif change == "unknown":
        results.append(Inspection(UNKNOWN_LINE, 0, 1))
    elif change == "nowhere":
        results[index] = attrs.evolve(results[index], location=None)
    named = [r.line_id for r in results]
    adds_up = (
        sorted(named) == sorted(got)
        and all(r.restock + r.write_off == got[r.line_id] for r in results)
        and all(r.location is not None for r in results if r.restock)
    )
    before = snapshot(request)
    if adds_up:
        request.inspect(results, AT)
        assert request.state == _S.INSPECTED.value
        assert request.restocked_units() == {r.line_id: r.restock for r in results if r.restock}
        assert request.written_off_units() == {
            r.line_id: r.write_off for r in results if r.write_off
        }
    else:
        with pytest.raises((InvalidInput, ReturnError)):
            request.inspect(results, AT)
        assert snapshot(request) == before


@fast(150)
@given(
    currency=st.sampled_from(CURRENCIES),
    due=st.integers(0, 10**6),
    offset=st.integers(-3, 3),
    data=st.data(),
)
def test_a_decided_refund_pays_out_from_nothing_to_the_amount_due(
    currency: str, due: int, offset: int, data: st.DataObject
) -> None:
    request = inspected_return()
    request.decide_refund(minor(due, currency), minor(0, currency), minor(0, currency))
    paid = data.draw(st.sampled_from([due + offset, offset, due // 2]), label="paid")
    before = snapshot(request)
    if 0 <= paid <= due:
        request.mark_refunded(minor(paid, currency), AT)
        assert request.state == _S.REFUNDED.value
        assert request.amount_refunded == minor(paid, currency)
    else:
        with pytest.raises(InvalidField):
            request.mark_refunded(minor(paid, currency), AT)
        assert snapshot(request) == before


# Regression: mark_exchanged was accepted after decide_refund (a refund possibly already on its
# way) and replaced amount_due; decisions are now made once, for one resolution.
def test_a_return_settles_only_the_way_it_was_decided() -> None:
    refunding = inspected_return()
    refunding.decide_refund(eur(2500), eur(250), eur(0))
    before = snapshot(refunding)
    with pytest.raises(ReturnError):
        refunding.decide_exchange(eur(2750), eur(0))
    with pytest.raises(ReturnError):
        refunding.decide_refund(eur(2500), eur(250), eur(0))  # even the same decision
    with pytest.raises(ReturnError):
        refunding.mark_exchanged("ord-x", eur(0), eur(0), AT)
    with pytest.raises(InvalidTransition):  # an inspected return has no exchange to cancel
        refunding.cancel_exchange(eur(0), AT)
    assert snapshot(refunding) == before

    exchanging = inspected_return()
    exchanging.decide_exchange(eur(2750), eur(0))
    before = snapshot(exchanging)
    with pytest.raises(ReturnError):
        exchanging.mark_refunded(eur(0), AT)
    with pytest.raises(ReturnError):
        exchanging.decide_refund(eur(2750), eur(0), eur(0))
    assert snapshot(exchanging) == before


def test_an_exchange_decision_can_be_withdrawn_and_the_return_refunded_instead() -> None:
    request = inspected_return()
    request.decide_exchange(eur(2750), eur(0))
    request.withdraw_decision()
    assert (request.resolution, request.amount_due, request.restocking_fee) == (None, None, None)
    request.decide_refund(eur(2500), eur(250), eur(0))
    before = snapshot(request)
    with pytest.raises(ReturnError):
        request.withdraw_decision()  # a refund decided may already be on its way
    assert snapshot(request) == before


# Regression: settling a return that is not inspected is an invalid transition
@pytest.mark.parametrize("state", ["requested", "approved", "received", "rejected", "cancelled"])
def test_refunding_a_return_that_is_not_inspected_is_an_invalid_transition(state: str) -> None:
    request = ReturnRequest.request(
        return_id="ret-1",
        order_id="ord-1",
        lines=[ReturnLine("L1", 1, "changed_mind")],
        returnable={"L1": 1},
        at=AT,
    )
    if state == "rejected":
        request.reject("outside the window", AT)
    elif state == "cancelled":
        request.cancel("kept it", AT)
    elif state != "requested":
        request.approve("Send it", AT)
        if state == "received":
            request.receive(None, AT)
    before = snapshot(request)
    with pytest.raises(InvalidTransition) as info:
        request.mark_refunded(eur(0), AT)
    assert (info.value.state, info.value.trigger) == (state, "refund")
    assert snapshot(request) == before


# Regression: an exchange credit that is not Money is refused as invalid input
@pytest.mark.parametrize("credit", [None, "10.00", 10])
def test_an_exchange_credit_that_is_not_money_is_refused_as_invalid_input(credit: Any) -> None:
    request = inspected_return()
    before = snapshot(request)
    with pytest.raises(InvalidField):
        request.decide_exchange(credit, eur(0))
    assert snapshot(request) == before


# -- 2. the inquiry lifecycle against a model ---------------------------------------------------


@dataclass
class InquiryModel:
    state: str
    messages: list[tuple[str, str, datetime]]
    events: list[type[DomainEvent]]
    resolution: str | None = None


class InquiryMachine(RuleBasedStateMachine):
    """One inquiry; answers, replies and resolutions fired in any state, some malformed."""

    @initialize(kind=st.sampled_from(INQUIRY_KINDS), subject=WORDS, message=WORDS)
    def open_inquiry(self, kind: str, subject: str, message: str) -> None:
        self.ticks = itertools.count(1)
        self.now = AT
        self.inquiry = Inquiry.open(
            inquiry_id="inq-1",
            order_id="ord-1",
            customer_id="cust-1",
            kind=kind,
            subject=subject,
            message=message,
            at=AT,
        )
        self.opened = (kind, subject)
        self.model = InquiryModel("open", [(CUSTOMER, message, AT)], [InquiryOpened])
        self.seen = self.inquiry.messages
        (event,) = self.inquiry.pending_events
        assert event == InquiryOpened(AT, "ord-1", "inq-1", kind, subject)

    def _tick(self) -> datetime:
        self.now = AT + timedelta(minutes=next(self.ticks))
        return self.now

    def _step(
        self,
        trigger: str,
        acceptable: bool,
        change: Callable[[Inquiry], object],
        event_class: type[DomainEvent],
    ) -> Any:
        inquiry, model = self.inquiry, self.model
        legal = (trigger, model.state) in INQUIRY_EDGES
        before = snapshot(inquiry)
        if not (acceptable and legal):
            refusal: Refusal = (
                (InvalidTransition,) if acceptable else (InvalidInput, InvalidTransition)
            )
            if not acceptable and legal:
                refusal = (InvalidInput,)
            with pytest.raises(refusal):
                change(inquiry)
            assert snapshot(inquiry) == before, "a refused step changed the inquiry"
            return None
        change(inquiry)
        assert inquiry.state == INQUIRY_EDGES[(trigger, model.state)]
        model.state = inquiry.state
        earlier = before["pending_events"]
        assert isinstance(earlier, tuple)
        new = inquiry.pending_events[len(earlier) :]
        assert len(new) == 1
        (event,) = new
        assert type(event) is event_class
        assert (event.occurred_at, event.order_id, event.inquiry_id) == (self.now, "ord-1", "inq-1")
        model.events.append(event_class)
        return event

    @rule(author=authors(), note=notes())
    def answer(self, author: tuple[Any, bool], note: tuple[Any, bool]) -> None:
        (name, good_name), (text, good_text) = author, note
        at = self._tick()
        event = self._step(
            "answer",
            good_name and good_text,
            lambda i: i.answer(name, text, at),
            InquiryAnswered,
        )
        if event is not None:
            self.model.messages.append((name, text, at))
            assert event.author == name
            assert event.message_index == len(self.model.messages) - 1
            assert self.inquiry.messages[event.message_index].text == text

    @rule(note=notes())
    def reply(self, note: tuple[Any, bool]) -> None:
        text, acceptable = note
        at = self._tick()
        event = self._step("reply", acceptable, lambda i: i.reply(text, at), InquiryCustomerReplied)
        if event is not None:
            self.model.messages.append((CUSTOMER, text, at))

    @rule(note=notes())
    def resolve(self, note: tuple[Any, bool]) -> None:
        text, acceptable = note
        at = self._tick()
        event = self._step("resolve", acceptable, lambda i: i.resolve(text, at), InquiryResolved)
        if event is not None:
            assert event.resolution == text
            self.model.resolution = text

    @invariant()
    def the_inquiry_agrees_with_the_model(self) -> None:
        inquiry, model = self.inquiry, self.model
        assert inquiry.state == model.state
        assert [(m.author, m.text, m.at) for m in inquiry.messages] == model.messages
        assert inquiry.messages[: len(self.seen)] == self.seen, "a message was changed or lost"
        self.seen = inquiry.messages
        assert inquiry.last_message == inquiry.messages[-1]
        assert inquiry.last_message.author == model.messages[-1][0]
        assert [m.from_customer for m in inquiry.messages] == [
            author == CUSTOMER for author, _, _ in model.messages
        ]
        assert inquiry.messages[0].from_customer
        if model.state == "open":
            assert inquiry.last_message.from_customer  # open: waiting for the shop
        elif model.state == "answered":
            assert not inquiry.last_message.from_customer
        assert inquiry.resolution == model.resolution
        assert (inquiry.resolution is not None) == (model.state == "resolved")
        assert (inquiry.kind, inquiry.subject) == self.opened
        assert inquiry.version == 0
        assert [type(e) for e in inquiry.pending_events] == model.events


InquiryMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestInquiryLifecycle = InquiryMachine.TestCase


@pytest.mark.parametrize(
    ("kind", "subject", "message"),
    [
        ("praise", "Hello", "Nice mug"),
        ("question", "", "Where is it?"),
        ("question", "   ", "Where is it?"),
        ("complaint", "Broken", "  "),
        ("complaint", "x" * (MAX_TEXT_LENGTH + 1), "Broken"),
        ("complaint", "Broken", "x" * (MAX_NOTE_LENGTH + 1)),
        ("complaint", "Broken", "my card 4111 1111 1111 1111"),
    ],
)
def test_an_inquiry_is_not_opened_with_an_unknown_kind_or_bad_text(
    kind: str, subject: str, message: str
) -> None:
    with pytest.raises(InvalidInput):
        Inquiry.open(
            inquiry_id="inq-1",
            order_id="ord-1",
            customer_id="cust-1",
            kind=kind,
            subject=subject,
            message=message,
            at=AT,
        )


# -- 3. requests, line shares and the refund quote -------------------------------------------


@fast(200)
@given(data=st.data())
def test_a_request_is_refused_past_what_is_returnable_and_accepted_within_it(
    data: st.DataObject,
) -> None:
    returnable = data.draw(
        st.dictionaries(st.sampled_from(LINE_IDS), st.integers(0, 12)), label="returnable"
    )
    ids = data.draw(
        st.lists(st.sampled_from((*LINE_IDS, UNKNOWN_LINE)), min_size=1, max_size=4, unique=True),
        label="lines",
    )
    lines = [
        ReturnLine(
            line_id,
            max(1, returnable.get(line_id, 0) + data.draw(st.integers(-3, 2), label="asked")),
            data.draw(st.sampled_from(RETURN_REASONS), label="reason"),
        )
        for line_id in ids
    ]
    too_many = [line for line in lines if line.quantity > returnable.get(line.line_id, 0)]

    def request() -> ReturnRequest:
        return ReturnRequest.request(
            return_id="ret-1", order_id="ord-1", lines=lines, returnable=returnable, at=AT
        )

    if too_many:
        with pytest.raises(ReturnError) as info:
            request()
        assert f"line {too_many[0].line_id}:" in str(info.value)
        return
    made = request()
    assert made.state == _S.REQUESTED.value
    assert made.is_open
    asked = {line.line_id: line.quantity for line in lines}
    assert made.requested_units() == made.units() == asked
    assert all(count <= returnable[line] for line, count in asked.items())
    assert made.received_units() == {}
    assert made.pending_events == [
        ReturnRequested(
            AT, "ord-1", "ret-1", tuple((li.line_id, li.quantity, li.reason) for li in lines)
        )
    ]


@pytest.mark.parametrize(
    "lines",
    [
        [],
        [ReturnLine("L1", 1, "damaged"), ReturnLine("L1", 1, "other")],
        [("L1", 1, "damaged")],
    ],
    ids=["no lines", "a line twice", "not a ReturnLine"],
)
def test_a_malformed_request_is_refused(lines: list[Any]) -> None:
    with pytest.raises(InvalidField):
        ReturnRequest.request(
            return_id="ret-1", order_id="ord-1", lines=lines, returnable={"L1": 5}, at=AT
        )


@pytest.mark.parametrize(
    "make",
    [
        lambda: ReturnLine("L1", 0, "damaged"),
        lambda: ReturnLine("L1", True, "damaged"),  # type: ignore[arg-type]
        lambda: ReturnLine("L1", 1, "bored"),
        lambda: ReturnLine("", 1, "damaged"),
        lambda: Inspection("L1", -1),
        lambda: Inspection("L1", 1, -1),
        lambda: Inspection("L1", 1, 0, ""),
        lambda: Inspection("L1", 1, 0, "x" * 65),
    ],
)
def test_malformed_return_lines_and_inspections_are_refused(make: Callable[[], object]) -> None:
    with pytest.raises(InvalidInput):
        make()


@st.composite
def orders_for_returns(draw: st.DrawFn) -> Order:
    """An order of one to three lines in JPY, EUR or KWD: 1 to 12 units each, a discount up
    to the line's subtotal, tax, and a shipping charge; some are exchange orders."""
    currency = draw(st.sampled_from(CURRENCIES))
    lines = []
    for index in range(draw(st.integers(1, 3), label="lines")):
        quantity = draw(st.integers(1, 12), label="quantity")
        price = draw(st.integers(0, 10**6), label="unit price")
        discount = draw(st.integers(0, price * quantity), label="discount")
        tax = draw(st.integers(0, 10**5), label="tax")
        lines.append(
            LineItem(
                f"L{index + 1}",
                f"SKU-{index + 1}",
                "Item",
                quantity,
                minor(price, currency),
                minor(discount, currency),
                minor(tax, currency),
            )
        )
    return Order.place(
        order_id="ord-1",
        customer=draw(oks.customers()),
        shipping_address=draw(oks.addresses()),
        channel=draw(st.sampled_from(SalesChannel)),
        currency=currency,
        lines=lines,
        shipping_charge=minor(draw(st.integers(0, 2000), label="shipping"), currency),
        payment_token="tok_test",
        placed_at=AT,
        exchange_for=draw(st.sampled_from([None, None, "ret-0"]), label="exchange for"),
    )


def split_into_returns(
    data: st.DataObject, order: Order, *, keep_some: bool
) -> list[dict[str, int]]:
    """Each unit of each line goes to one of up to five returns (or, with ``keep_some``,
    stays with the customer); returns that got nothing are dropped."""
    count = data.draw(st.integers(1, 5), label="returns")
    returns: list[dict[str, int]] = [{} for _ in range(count)]
    lowest = -1 if keep_some else 0
    for line in order.lines:
        homes = st.lists(
            st.integers(lowest, count - 1), min_size=line.quantity, max_size=line.quantity
        )
        for home in data.draw(homes, label=f"returns of {line.line_id}'s units"):
            if home >= 0:
                returns[home][line.line_id] = returns[home].get(line.line_id, 0) + 1
    return [units for units in returns if units]


@fast(150)
@given(order=orders_for_returns(), data=st.data())
def test_shares_of_any_split_of_a_line_into_returns_add_up_to_the_line_total(
    order: Order, data: st.DataObject
) -> None:
    """lines_share with ``already`` = the units of earlier returns: every unit's part is
    taken once, so the returns of a line add up to its total, to the minor unit."""
    returns = split_into_returns(data, order, keep_some=False)
    zero = Money.zero(order.currency)
    already: dict[str, int] = {}
    per_line = {line.line_id: zero for line in order.lines}
    for units in returns:
        share = lines_share(order, units, already=dict(already), include_shipping=False)
        parts = {
            line_id: lines_share(
                order, {line_id: count}, already=dict(already), include_shipping=False
            )
            for line_id, count in units.items()
        }
        assert share == Money.sum(parts.values(), order.currency)
        assert share.currency == order.currency
        assert not share.is_negative()
        for line_id, count in units.items():
            per_line[line_id] = per_line[line_id] + parts[line_id]
            already[line_id] = already.get(line_id, 0) + count
    for line in order.lines:
        assert per_line[line.line_id] == line.total, line.line_id
    assert Money.sum(per_line.values(), order.currency) == (
        order.totals.total - order.shipping_charge
    )


def worth(line: LineItem, exchange: bool) -> Money:
    """What a line's units are worth back: its total, but an exchange order's discount is
    the credit of the return it settled (a payment), so its units are worth full price."""
    return line.total + line.discount if exchange else line.total


@fast(120)
@given(
    order=orders_for_returns(),
    data=st.data(),
    rate=st.one_of(
        st.sampled_from([Decimal(0), Decimal(1), Decimal("0.5")]),
        st.decimals(min_value=0, max_value=1, places=4),
    ),
)
def test_quotes_of_an_orders_returns_follow_the_line_shares_and_keep_the_fee_within_items(
    order: Order, data: st.DataObject, rate: Decimal
) -> None:
    """Returns decided one after the other, each quoted after the units the others settled
    (settled_units, as ReturnService does): each quote's items are the next shares of its
    lines, so together they are the share of every unit received, and all the units of a
    line come to what the line is worth. The fee is ``rate`` of the items returned for the
    customer's own reasons, never more than the items, zero for the shop's faults and on
    lines exchanged."""
    exchange = order.exchange_for is not None
    splits = split_into_returns(data, order, keep_some=True)
    requests: list[ReturnRequest] = []
    for index, units in enumerate(splits):
        lines = [
            ReturnLine(line_id, count, data.draw(st.sampled_from(RETURN_REASONS), label="reason"))
            for line_id, count in units.items()
        ]
        request = ReturnRequest.request(
            return_id=f"ret-{index + 1}", order_id=order.id, lines=lines, returnable=units, at=AT
        )
        request.approve("Send it", AT)
        arrived = {k: data.draw(st.integers(0, n), label="arrived") for k, n in units.items()}
        request.receive(arrived if any(arrived.values()) else None, AT)
        request.inspect(
            [Inspection(k, n, 0, "main") for k, n in request.received_units().items()], AT
        )
        requests.append(request)
    zero = Money.zero(order.currency)
    decided: dict[str, int] = {}
    items_total = zero
    for request in requests:
        already = settled_units([r for r in requests if r.id != request.id], ())
        assert already == decided
        shipping = data.draw(st.booleans(), label="refund shipping")
        no_fee = data.draw(st.sets(st.sampled_from(LINE_IDS)), label="lines exchanged")
        quote = quote_return(
            order, request, already=already, fee_rate=rate, shipping=shipping, no_fee_lines=no_fee
        )
        got = request.received_units()
        priced = priced_order(order)
        assert quote.items == lines_share(priced, got, already=decided, include_shipping=False)
        reasons = {line.line_id: line.reason for line in request.lines}
        chargeable = {
            k: n for k, n in got.items() if reasons[k] not in SHOP_FAULT_REASONS and k not in no_fee
        }
        base = lines_share(priced, chargeable, already=decided, include_shipping=False)
        assert quote.restocking_fee == base * rate
        assert zero <= quote.restocking_fee <= quote.items
        if not chargeable or rate == 0:
            assert quote.restocking_fee == zero
        if rate == 1:
            assert quote.restocking_fee == base
        assert quote.shipping == (order.shipping_charge if shipping else zero)
        assert quote.due == quote.items - quote.restocking_fee + quote.shipping
        assert not quote.due.is_negative()
        if data.draw(st.booleans(), label="settled by exchange"):
            request.decide_exchange(quote.due, quote.restocking_fee)
        else:
            request.decide_refund(quote.due, quote.restocking_fee, quote.shipping)
        items_total = items_total + quote.items
        for line_id, count in got.items():
            decided[line_id] = decided.get(line_id, 0) + count
    assert settled_units(requests, ()) == decided
    assert items_total == lines_share(
        priced_order(order), decided, already={}, include_shipping=False
    )
    for line in order.lines:
        every_unit = {line.line_id: line.quantity}
        assert lines_share(priced_order(order), every_unit, already={}, include_shipping=False) == (
            worth(line, exchange)
        )
    if decided == {line.line_id: line.quantity for line in order.lines}:
        assert items_total == Money.sum((worth(li, exchange) for li in order.lines), order.currency)


def priced_order(order: Order) -> Order:
    """``order`` with an exchange order's discounts (the credit used) taken off."""
    if order.exchange_for is None:
        return order
    zero = Money.zero(order.currency)
    lines = tuple(attrs.evolve(line, discount=zero) for line in order.lines)
    return attrs.evolve(order, lines=lines, pending_events=[])


@fast(60)
@given(order=orders_for_returns(), data=st.data())
def test_a_return_of_every_unit_of_an_order_is_quoted_what_the_lines_are_worth(
    order: Order, data: st.DataObject
) -> None:
    """One return of everything, nothing settled before, no fee: the quote is every line's
    worth, plus the shipping charge when it is refunded."""
    units = {line.line_id: line.quantity for line in order.lines}
    request = ReturnRequest.request(
        return_id="ret-1",
        order_id=order.id,
        lines=[ReturnLine(k, n, "defective") for k, n in units.items()],
        returnable=units,
        at=AT,
    )
    request.approve("Send it", AT)
    request.receive(None, AT)
    request.inspect([Inspection(k, 0, n) for k, n in units.items()], AT)
    shipping = data.draw(st.booleans(), label="refund shipping")
    quote = quote_return(order, request, already={}, fee_rate=Decimal("0.2"), shipping=shipping)
    exchange = order.exchange_for is not None
    worth_all = Money.sum((worth(line, exchange) for line in order.lines), order.currency)
    assert quote.items == worth_all
    assert quote.restocking_fee == Money.zero(order.currency)  # all defective: the shop's fault
    assert quote.due == worth_all + (
        order.shipping_charge if shipping else Money.zero(order.currency)
    )
    if not exchange:
        assert quote.due == (
            order.totals.total if shipping else order.totals.total - order.shipping_charge
        )


@pytest.mark.parametrize("rate", [Decimal("-0.01"), Decimal("1.01"), Decimal("NaN")])
def test_a_restocking_fee_outside_zero_to_one_is_refused(rate: Decimal) -> None:
    with pytest.raises(InvalidSettings):
        ShopSettings(restocking_fee=rate)


# -- 4. documents ----------------------------------------------------------------------------

_IDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
_TIMES = st.datetimes(
    min_value=datetime(2020, 1, 1),
    max_value=datetime(2035, 1, 1),
    timezones=st.sampled_from(
        [timezone.utc, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
    ),
)


@st.composite
def returns_in_any_state(draw: st.DrawFn) -> ReturnRequest:
    """A return walked along legal steps to any state, with its events still pending."""
    currency = draw(st.sampled_from(CURRENCIES))
    lines = draw(return_lines())
    start = draw(_TIMES, label="requested at")
    hours = itertools.count(1)

    def later() -> datetime:
        return start + timedelta(hours=next(hours))

    def money(high: int) -> Money:
        return minor(draw(st.integers(0, high)), currency)

    request = ReturnRequest.request(
        return_id=draw(_IDS),
        order_id=draw(_IDS),
        lines=lines,
        returnable={line.line_id: line.quantity for line in lines},
        at=start,
    )
    target = draw(st.sampled_from(ReturnState), label="target")
    if target is _S.REJECTED:
        request.reject(draw(WORDS), later())
    elif target is _S.CANCELLED:
        if draw(st.booleans(), label="approved first"):
            request.approve(draw(WORDS), later())
        request.cancel(draw(WORDS), later())
    elif target is not _S.REQUESTED:
        request.approve(draw(WORDS), later())
    if target in (_S.REQUESTED, _S.REJECTED, _S.CANCELLED, _S.APPROVED):
        return _with_version(draw, request)
    asked = request.requested_units()
    arrived = {k: draw(st.integers(0, n), label="arrived") for k, n in asked.items()}
    request.receive(arrived if any(arrived.values()) else None, later())
    if target is _S.RECEIVED:
        return _with_version(draw, request)
    results = []
    for line_id, count in request.received_units().items():
        restock = draw(st.integers(0, count), label="restocked")
        places = LOCATIONS if restock else (None, *LOCATIONS)
        results.append(Inspection(line_id, restock, count - restock, draw(st.sampled_from(places))))
    request.inspect(results, later())
    settle = target
    if target is _S.CLOSED:
        settle = draw(st.sampled_from([_S.REFUNDED, _S.EXCHANGED]), label="settled by")
    if settle is _S.INSPECTED:
        decision = draw(st.sampled_from([None, "refund", "exchange"]), label="decided")
        if decision == "refund":
            request.decide_refund(money(10**6), money(10**4), money(10**3))
        elif decision == "exchange":
            request.decide_exchange(money(10**6), money(10**4))
    elif settle is _S.REFUNDED and draw(st.booleans(), label="by a refund"):
        due = money(10**6)
        request.decide_refund(due, money(10**4), money(10**3))
        request.mark_refunded(minor(draw(st.integers(0, due.minor_units)), currency), later())
    else:  # exchanged, or refunded because the exchange order was cancelled
        credit = money(10**6)
        request.decide_exchange(credit, money(10**4))
        refunded = draw(st.integers(0, credit.minor_units), label="refunded")
        request.mark_exchanged(draw(_IDS), money(10**5), minor(refunded, currency), later())
        if settle is _S.REFUNDED:
            back = draw(st.integers(0, credit.minor_units - refunded), label="paid back")
            request.cancel_exchange(minor(back, currency), later())
    if target is _S.CLOSED:
        request.close(later())
    assert request.state == target.value
    return _with_version(draw, request)


def _with_version(draw: st.DrawFn, aggregate: Any) -> Any:
    aggregate.version = draw(st.integers(0, 10**6), label="version")
    return aggregate


@st.composite
def inquiries_in_any_state(draw: st.DrawFn) -> Inquiry:
    start = draw(_TIMES, label="opened at")
    inquiry = Inquiry.open(
        inquiry_id=draw(_IDS),
        order_id=draw(_IDS),
        customer_id=draw(_IDS),
        kind=draw(st.sampled_from(INQUIRY_KINDS)),
        subject=draw(WORDS),
        message=draw(WORDS),
        at=start,
    )
    steps = draw(st.lists(st.sampled_from(["answer", "reply"]), max_size=6), label="steps")
    for index, step in enumerate(steps, start=1):
        at = start + timedelta(hours=index)
        if step == "answer":
            inquiry.answer(draw(st.sampled_from(["Grace", "support desk"])), draw(WORDS), at)
        else:
            inquiry.reply(draw(WORDS), at)
    if draw(st.booleans(), label="resolved"):
        inquiry.resolve(draw(WORDS), start + timedelta(days=1))
    return _with_version(draw, inquiry)


def assert_round_trip(aggregate: Any, cls: type[Any]) -> Any:
    """dumps/loads keeps every field (pending events are not part of the document)."""
    text = dumps(aggregate)
    loaded = loads(text, cls)
    assert type(loaded) is cls
    for attribute in attrs.fields(cls):
        name = attribute.name
        if name == "pending_events":
            assert loaded.pending_events == []
        else:
            assert getattr(loaded, name) == getattr(aggregate, name), name
    assert loaded.version == aggregate.version
    assert dumps(loaded) == text
    for event in aggregate.pending_events:
        assert loads_event(dumps_event(event)) == event
    return loaded


@fast(150)
@given(request=returns_in_any_state())
def test_a_return_in_any_state_survives_a_document_round_trip(request: ReturnRequest) -> None:
    loaded = assert_round_trip(request, ReturnRequest)
    assert loaded.units() == request.units()
    assert loaded.restocked_units() == request.restocked_units()
    assert loaded.is_open == request.is_open
    # the loaded return goes on as the original would: the same steps are allowed
    for trigger in ("approve", "cancel", "close"):
        assert ((trigger, loaded.state) in RETURN_EDGES) == (
            (trigger, request.state) in RETURN_EDGES
        )
    if loaded.state in (_S.REFUNDED.value, _S.EXCHANGED.value):
        loaded.close(AT)
        assert loaded.state == _S.CLOSED.value


@fast(100)
@given(inquiry=inquiries_in_any_state())
def test_an_inquiry_in_any_state_survives_a_document_round_trip(inquiry: Inquiry) -> None:
    loaded = assert_round_trip(inquiry, Inquiry)
    assert loaded.last_message == inquiry.last_message
    assert [m.from_customer for m in loaded.messages] == [m.from_customer for m in inquiry.messages]
