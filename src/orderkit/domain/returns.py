"""The ReturnRequest aggregate: units of a delivered order coming back, and how it ends.

A customer asks to return units of delivered lines, each with a reason. The shop
approves (with instructions) or rejects (with a reason); the customer may cancel
until the units arrive. Received units are inspected one by one: put back on
hand (restocked) or written off (damaged). The return then ends in a refund (the
units' share of what was paid, less any restocking fee, plus shipping if the shop
refunds it) or an exchange (an order for other variants, paid with that credit),
and is closed.

The amount due and the amount the gateway paid out are kept apart, and both are
visible: they differ when less was captured than is due, or when the shop has
no payment gateway and refunds by other means.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import Enum

from attrs import define, field, setters

from orderkit.domain.events import (
    DomainEvent,
)
from orderkit.domain.lifecycle import LifecycleDefinition, TransitionSpec
from orderkit.domain.return_events import (
    ReturnApproved,
    ReturnCancelled,
    ReturnClosed,
    ReturnExchanged,
    ReturnInspected,
    ReturnReceived,
    ReturnRefunded,
    ReturnRejected,
    ReturnRequested,
)
from orderkit.domain.return_values import (
    RETURN_REASONS,
    SHOP_FAULT_REASONS,
    Inspection,
    ReturnLine,
    check_units,
)
from orderkit.domain.values import MAX_ID_LENGTH, MAX_NOTE_LENGTH, check_text, text
from orderkit.errors import InvalidField, InvalidTransition, ReturnError
from orderkit.money import Money

__all__ = [
    "RETURN_LIFECYCLE",
    "RETURN_REASONS",
    "SHOP_FAULT_REASONS",
    "Inspection",
    "ReturnLine",
    "ReturnRequest",
    "ReturnState",
]


class ReturnState(str, Enum):
    """The states of a return's lifecycle. ``ReturnRequest.state`` holds the plain value."""

    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    RECEIVED = "received"
    INSPECTED = "inspected"
    REFUNDED = "refunded"
    EXCHANGED = "exchanged"
    CLOSED = "closed"
    CANCELLED = "cancelled"


_R = ReturnState
RETURN_LIFECYCLE = LifecycleDefinition(
    aggregate="return",
    states=[state.value for state in ReturnState],
    initial=_R.REQUESTED.value,
    final=[_R.REJECTED.value, _R.CLOSED.value, _R.CANCELLED.value],
    transitions=[
        TransitionSpec("approve", [_R.REQUESTED.value], _R.APPROVED.value),
        TransitionSpec("reject", [_R.REQUESTED.value], _R.REJECTED.value),
        TransitionSpec("cancel", [_R.REQUESTED.value, _R.APPROVED.value], _R.CANCELLED.value),
        TransitionSpec("receive", [_R.APPROVED.value], _R.RECEIVED.value),
        TransitionSpec("inspect", [_R.RECEIVED.value], _R.INSPECTED.value),
        TransitionSpec("refund", [_R.INSPECTED.value], _R.REFUNDED.value),
        TransitionSpec("exchange", [_R.INSPECTED.value], _R.EXCHANGED.value),
        # the exchange order was cancelled before it shipped: the credit is paid back
        TransitionSpec("cancel_exchange", [_R.EXCHANGED.value], _R.REFUNDED.value),
        TransitionSpec("close", [_R.REFUNDED.value, _R.EXCHANGED.value], _R.CLOSED.value),
    ],
)
"""The return graph: requested → approved or rejected; approved → received → inspected →
refunded or exchanged → closed; cancelled any time before the units are received; an
exchange whose order is cancelled before it ships ends refunded."""

_LIFECYCLE = RETURN_LIFECYCLE.build()
_VOID = frozenset({_R.REJECTED.value, _R.CANCELLED.value})
_BACK = frozenset(
    {_R.RECEIVED.value, _R.INSPECTED.value, _R.REFUNDED.value, _R.EXCHANGED.value, _R.CLOSED.value}
)


def _tuple(value: Iterable[object]) -> tuple[object, ...]:
    return tuple(value)


def _pairs(units: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(units.items()))


@define(eq=False, on_setattr=setters.NO_OP)
class ReturnRequest:
    """A customer's request to send units of an order back. Create with :meth:`request`."""

    id: str = field(validator=text(MAX_ID_LENGTH))
    order_id: str
    lines: tuple[ReturnLine, ...] = field(converter=_tuple)
    created_at: datetime
    state: str = ReturnState.REQUESTED.value
    instructions: str | None = None
    rejection_reason: str | None = None
    cancellation_reason: str | None = None
    received: tuple[tuple[str, int], ...] = field(default=(), converter=_tuple)
    received_at: datetime | None = None
    inspections: tuple[Inspection, ...] = field(default=(), converter=_tuple)
    resolution: str | None = None
    amount_due: Money | None = None
    restocking_fee: Money | None = None
    shipping_refund: Money | None = None
    amount_refunded: Money | None = None
    exchange_order_id: str | None = None
    exchange_charged: Money | None = None
    closed_at: datetime | None = None
    version: int = 0
    pending_events: list[DomainEvent] = field(factory=list, repr=False)

    @classmethod
    def request(
        cls,
        *,
        return_id: str,
        order_id: str,
        lines: Iterable[ReturnLine],
        returnable: Mapping[str, int],
        at: datetime,
    ) -> ReturnRequest:
        """A requested return of ``lines``: at least one, each order line once, and no more
        units of a line than ``returnable`` (delivered minus already being returned).

        Raises :class:`InvalidField` for a malformed line and :class:`ReturnError` for
        more units than can be returned."""
        if isinstance(lines, (str, bytes)) or not isinstance(lines, Iterable):
            raise InvalidField("must be a list of ReturnLine", field="lines", value=lines)
        lines = tuple(lines)
        if not lines:
            raise InvalidField("a return needs at least one line", field="lines", value=[])
        seen: set[str] = set()
        for index, line in enumerate(lines):
            if not isinstance(line, ReturnLine):
                raise InvalidField("must be a ReturnLine", field=f"lines[{index}]", value=line)
            if line.line_id in seen:
                raise InvalidField(
                    "appears twice", field=f"lines[{index}].line_id", value=line.line_id
                )
            seen.add(line.line_id)
            left = returnable.get(line.line_id, 0)
            if line.quantity > left:
                raise ReturnError(
                    f"order {order_id} line {line.line_id}: {line.quantity} unit(s) asked, "
                    f"{left} can be returned (delivered, less those already returned)"
                )
        request = cls(id=return_id, order_id=order_id, lines=lines, created_at=at)
        request.pending_events.append(
            ReturnRequested(
                at,
                order_id,
                return_id,
                tuple((line.line_id, line.quantity, line.reason) for line in lines),
            )
        )
        return request

    # -- derived --------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """True until the return is rejected, cancelled or closed."""
        return not _LIFECYCLE.is_final(self.state)

    def requested_units(self) -> dict[str, int]:
        """Units asked for, per order line."""
        return {line.line_id: line.quantity for line in self.lines}

    def received_units(self) -> dict[str, int]:
        """Units that arrived, per order line (empty before they arrive)."""
        return dict(self.received)

    def units(self) -> dict[str, int]:
        """The units this return takes out of what can still be returned: none once
        rejected or cancelled, those received once they arrived, else those asked for."""
        if self.state in _VOID:
            return {}
        if self.state in _BACK:
            return self.received_units()
        return self.requested_units()

    def restocked_units(self) -> dict[str, int]:
        """Units put back on hand, per line."""
        return {i.line_id: i.restock for i in self.inspections if i.restock}

    def written_off_units(self) -> dict[str, int]:
        """Units written off as damaged, per line."""
        return {i.line_id: i.write_off for i in self.inspections if i.write_off}

    # -- the shop's and the customer's steps ----------------------------------------------------

    def approve(self, instructions: str, at: datetime) -> None:
        """Agree to take the units back; ``instructions`` tell the customer how to send them."""
        check_text(instructions, field="instructions", limit=MAX_NOTE_LENGTH)
        _LIFECYCLE.fire(self, "approve")
        self.instructions = instructions
        self.pending_events.append(ReturnApproved(at, self.order_id, self.id, instructions))

    def reject(self, reason: str, at: datetime) -> None:
        """Refuse the return, telling the customer why."""
        check_text(reason, field="reason", limit=MAX_NOTE_LENGTH)
        _LIFECYCLE.fire(self, "reject")
        self.rejection_reason = reason
        self.pending_events.append(ReturnRejected(at, self.order_id, self.id, reason))

    def cancel(self, reason: str, at: datetime) -> None:
        """Withdraw the return; only before the units are received."""
        check_text(reason, field="reason", limit=MAX_NOTE_LENGTH)
        _LIFECYCLE.fire(self, "cancel")
        self.cancellation_reason = reason
        self.pending_events.append(ReturnCancelled(at, self.order_id, self.id, reason))

    def receive(self, units: Mapping[str, int] | None, at: datetime) -> None:
        """Units arrived (``None``: all that were asked for). Each line may bring fewer
        than asked, none more; at least one unit must arrive."""
        asked = self.requested_units()
        got = dict(asked) if units is None else check_units(units, "units")
        for line_id, count in got.items():
            if line_id not in asked:
                raise InvalidField("is not in this return", field="units", value=line_id)
            if count > asked[line_id]:
                raise ReturnError(
                    f"return {self.id} line {line_id}: {count} unit(s) received, "
                    f"{asked[line_id]} were asked for"
                )
        got = {line_id: count for line_id, count in got.items() if count}
        if not got:
            raise InvalidField("at least one unit must arrive", field="units", value=units)
        _LIFECYCLE.fire(self, "receive")
        self.received = _pairs(got)
        self.received_at = at
        self.pending_events.append(ReturnReceived(at, self.order_id, self.id, self.received))

    def inspect(self, results: Iterable[Inspection], at: datetime) -> None:
        """Record each received line's inspection: restocked plus written off must be the
        units received, for every received line, and restocked units need the location
        they go back to."""
        if isinstance(results, (str, bytes)) or not isinstance(results, Iterable):
            raise InvalidField("must be a list of Inspection", field="results", value=results)
        results = tuple(results)
        got = self.received_units()
        by_line: dict[str, Inspection] = {}
        for result in results:
            if not isinstance(result, Inspection):
                raise InvalidField("must be an Inspection", field="results", value=result)
            if result.line_id not in got:
                raise InvalidField("received no units", field="results", value=result.line_id)
            if result.line_id in by_line:
                raise InvalidField("appears twice", field="results", value=result.line_id)
            by_line[result.line_id] = result
        for line_id, count in got.items():
            found = by_line.get(line_id)
            if found is None or found.restock + found.write_off != count:
                raise ReturnError(
                    f"return {self.id} line {line_id}: {count} unit(s) received; restocked "
                    "plus written off must come to that"
                )
        unplaced = next((r for r in results if r.restock and r.location is None), None)
        if unplaced is not None:
            raise InvalidField(
                "restocked units need a location", field="location", value=unplaced.line_id
            )
        _LIFECYCLE.fire(self, "inspect")
        self.inspections = tuple(sorted(results, key=lambda r: r.line_id))
        self.pending_events.append(
            ReturnInspected(
                at,
                self.order_id,
                self.id,
                _pairs(self.restocked_units()),
                _pairs(self.written_off_units()),
            )
        )

    def decide_refund(self, due: Money, fee: Money, shipping: Money) -> None:
        """Fix what the refund comes to before any money moves (so a retry pays the same):
        ``due`` in all, of which ``fee`` was kept back and ``shipping`` added. Only an
        inspected return without an exchange decided can; deciding again is refused."""
        self._decide("refund", due, fee, shipping)

    def decide_exchange(self, credit: Money, fee: Money) -> None:
        """Fix the ``credit`` an exchange is paid with (``fee`` kept back on units not
        exchanged) before the exchange order is placed. Only an inspected return without
        a refund decided can; deciding again is refused."""
        if not isinstance(credit, Money):
            raise InvalidField("must be Money, not negative", field="credit", value=credit)
        self._decide("exchange", credit, fee, Money.zero(credit.currency))

    def _decide(self, resolution: str, due: Money, fee: Money, shipping: Money) -> None:
        if self.state != _R.INSPECTED.value:
            raise ReturnError(
                f"return {self.id} is {self.state!r}: only an inspected return is settled"
            )
        for name, amount in (("due", due), ("fee", fee), ("shipping", shipping)):
            if not isinstance(amount, Money) or amount.is_negative():
                raise InvalidField("must be Money, not negative", field=name, value=amount)
        if self.resolution is not None:
            raise ReturnError(
                f"return {self.id} is already to be settled by {self.resolution}, "
                f"for {self.amount_due}"
            )
        self.resolution = resolution
        self.amount_due, self.restocking_fee, self.shipping_refund = due, fee, shipping

    def withdraw_decision(self) -> None:
        """Forget an exchange decided but not placed (the replacement was out of stock, or
        the difference declined), so the return can be settled afresh."""
        if self.state != _R.INSPECTED.value or self.resolution != "exchange":
            raise ReturnError(f"return {self.id} has no exchange decision to withdraw")
        self.resolution = None
        self.amount_due = self.restocking_fee = self.shipping_refund = None

    def _require(self, trigger: str) -> None:
        """Raise :class:`InvalidTransition` now when ``trigger`` cannot fire, before any
        other check."""
        if not _LIFECYCLE.can_fire(self, trigger):
            raise InvalidTransition("return", self.id, self.state, trigger)

    def mark_refunded(self, paid: Money, at: datetime) -> None:
        """The decided refund went out: ``paid`` of the amount due (never more)."""
        self._require("refund")
        if self.resolution != "refund" or self.amount_due is None:
            raise ReturnError(f"return {self.id} has no refund decided")
        if not isinstance(paid, Money) or paid.is_negative() or paid > self.amount_due:
            raise InvalidField(
                f"must be Money from 0 to {self.amount_due}", field="paid", value=paid
            )
        _LIFECYCLE.fire(self, "refund")
        self.amount_refunded = paid
        self.pending_events.append(
            ReturnRefunded(at, self.order_id, self.id, self.amount_due, paid)
        )

    def mark_exchanged(
        self, exchange_order_id: str, charged: Money, refunded: Money, at: datetime
    ) -> None:
        """Settled by the exchange order ``exchange_order_id``, paid with the decided
        credit: ``charged`` is the difference the customer pays, ``refunded`` the credit
        left over and paid back."""
        self._require("exchange")
        check_text(exchange_order_id, field="exchange_order_id", limit=MAX_ID_LENGTH)
        if self.resolution != "exchange" or self.amount_due is None:
            raise ReturnError(f"return {self.id} has no exchange decided")
        for name, amount in (("charged", charged), ("refunded", refunded)):
            if not isinstance(amount, Money) or amount.is_negative():
                raise InvalidField("must be Money, not negative", field=name, value=amount)
        if refunded > self.amount_due:
            raise InvalidField(
                f"is more than the credit {self.amount_due}", field="refunded", value=refunded
            )
        _LIFECYCLE.fire(self, "exchange")
        self.exchange_order_id = exchange_order_id
        self.exchange_charged, self.amount_refunded = charged, refunded
        self.pending_events.append(
            ReturnExchanged(at, self.order_id, self.id, exchange_order_id, charged, refunded)
        )

    def cancel_exchange(self, paid_back: Money, at: datetime) -> None:
        """The exchange order was cancelled before it shipped: the credit it used,
        ``paid_back``, was refunded too (the return now ends refunded)."""
        self._require("cancel_exchange")
        if self.amount_due is None or self.amount_refunded is None:
            raise ReturnError(f"return {self.id} has no exchange to cancel")
        if not isinstance(paid_back, Money) or paid_back.is_negative():
            raise InvalidField("must be Money, not negative", field="paid_back", value=paid_back)
        total = self.amount_refunded + paid_back
        if total > self.amount_due:
            raise InvalidField(
                f"would refund {total} of a credit of {self.amount_due}",
                field="paid_back",
                value=paid_back,
            )
        _LIFECYCLE.fire(self, "cancel_exchange")
        self.amount_refunded = total
        self.pending_events.append(
            ReturnRefunded(at, self.order_id, self.id, self.amount_due, total)
        )

    def close(self, at: datetime) -> None:
        """Nothing more will happen: after the refund went out or the exchange was placed."""
        _LIFECYCLE.fire(self, "close")
        self.closed_at = at
        self.pending_events.append(ReturnClosed(at, self.order_id, self.id))
