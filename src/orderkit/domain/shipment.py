"""The Shipment aggregate: units of one order leaving one location, from pick list to door.

A shipment is created when fulfilment starts, allocated the order's reserved
stock at its location, then picked, packed into parcels, labelled with a bought
rate, handed over to the carrier (its stock leaves on hand then) and tracked.
Carrier scans (:class:`~orderkit.domain.carrier.TrackingEvent`) are applied at
most once each, and in whatever order they arrive the shipment ends where the
latest scan (by the time it happened) puts it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import date, datetime
from enum import Enum

from attrs import define, field, frozen, setters

from orderkit.domain.carrier import Label, Parcel, Rate, TrackingEvent, TrackingStatus
from orderkit.domain.events import (
    DomainEvent,
    ShipmentCancelled,
    ShipmentClaimResolved,
    ShipmentCreated,
    ShipmentDelivered,
    ShipmentDeliveryFailed,
    ShipmentEtaChanged,
    ShipmentHandedOver,
    ShipmentLabelled,
    ShipmentLost,
    ShipmentOutForDelivery,
    ShipmentPacked,
    ShipmentPicked,
    ShipmentReturnedToSender,
)
from orderkit.domain.lifecycle import LifecycleDefinition, TransitionSpec
from orderkit.domain.values import MAX_ID_LENGTH, MAX_NOTE_LENGTH, Address, check_text, text
from orderkit.errors import FulfilmentError, InvalidField

__all__ = [
    "CARRIER_TRIGGERS",
    "SHIPMENT_LIFECYCLE",
    "Shipment",
    "ShipmentLine",
    "ShipmentState",
    "arrived_units",
    "expected_delivery",
    "order_progress",
]


class ShipmentState(str, Enum):
    """The states of a shipment's lifecycle. ``Shipment.state`` holds the plain value."""

    PENDING = "pending"
    PICKED = "picked"
    PACKED = "packed"
    LABELLED = "labelled"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    DELIVERY_FAILED = "delivery_failed"
    LOST = "lost"
    RETURNED_TO_SENDER = "returned_to_sender"
    CANCELLED = "cancelled"


_S = ShipmentState
_MOVING = [_S.IN_TRANSIT.value, _S.OUT_FOR_DELIVERY.value, _S.DELIVERY_FAILED.value]
SHIPMENT_LIFECYCLE = LifecycleDefinition(
    aggregate="shipment",
    states=[state.value for state in ShipmentState],
    initial=_S.PENDING.value,
    final=[_S.DELIVERED.value, _S.RETURNED_TO_SENDER.value, _S.CANCELLED.value],
    transitions=[
        TransitionSpec("pick", [_S.PENDING.value], _S.PICKED.value),
        TransitionSpec("pack", [_S.PICKED.value], _S.PACKED.value),
        TransitionSpec("label", [_S.PACKED.value], _S.LABELLED.value),
        TransitionSpec("hand_over", [_S.LABELLED.value], _S.IN_TRANSIT.value),
        TransitionSpec("out_for_delivery", [_S.IN_TRANSIT.value], _S.OUT_FOR_DELIVERY.value),
        TransitionSpec("back_in_transit", [_S.OUT_FOR_DELIVERY.value], _S.IN_TRANSIT.value),
        TransitionSpec(
            "deliver", [_S.IN_TRANSIT.value, _S.OUT_FOR_DELIVERY.value], _S.DELIVERED.value
        ),
        TransitionSpec(
            "fail_delivery",
            [_S.IN_TRANSIT.value, _S.OUT_FOR_DELIVERY.value],
            _S.DELIVERY_FAILED.value,
        ),
        TransitionSpec("retry_delivery", [_S.DELIVERY_FAILED.value], _S.IN_TRANSIT.value),
        TransitionSpec("lose", _MOVING, _S.LOST.value),
        # a lost parcel can turn up again: the carrier scans it, and it may yet arrive
        TransitionSpec("found", [_S.LOST.value], _S.IN_TRANSIT.value),
        TransitionSpec("deliver_found", [_S.LOST.value], _S.DELIVERED.value),
        TransitionSpec("return_to_sender", [*_MOVING, _S.LOST.value], _S.RETURNED_TO_SENDER.value),
        TransitionSpec(
            "cancel",
            [_S.PENDING.value, _S.PICKED.value, _S.PACKED.value, _S.LABELLED.value],
            _S.CANCELLED.value,
        ),
    ],
)
"""The shipment graph: pending → picked → packed → labelled → in transit → out for
delivery → delivered, with delivery failed (and back into transit), lost (until it turns
up again), returned to sender, and cancelled before hand-over."""

_LIFECYCLE = SHIPMENT_LIFECYCLE.build()
_CLAIMABLE = frozenset({_S.LOST.value, _S.RETURNED_TO_SENDER.value, _S.DELIVERED.value})

CARRIER_TRIGGERS = frozenset(
    {
        "found",
        "deliver_found",
        "hand_over",
        "out_for_delivery",
        "back_in_transit",
        "deliver",
        "fail_delivery",
        "retry_delivery",
        "lose",
        "return_to_sender",
    }
)
"""The triggers a carrier's scans may fire (the others are the warehouse's)."""

_SCAN_STATE = {
    TrackingStatus.IN_TRANSIT: _S.IN_TRANSIT.value,
    TrackingStatus.OUT_FOR_DELIVERY: _S.OUT_FOR_DELIVERY.value,
    TrackingStatus.DELIVERED: _S.DELIVERED.value,
    TrackingStatus.DELIVERY_FAILED: _S.DELIVERY_FAILED.value,
    TrackingStatus.LOST: _S.LOST.value,
    TrackingStatus.RETURNED_TO_SENDER: _S.RETURNED_TO_SENDER.value,
}
# A scan's rank breaks ties between scans made at the same moment: the further along wins.
_RANK = {status: rank for rank, status in enumerate(TrackingStatus)}
_HANDED_OVER = frozenset(
    {
        _S.IN_TRANSIT.value,
        _S.OUT_FOR_DELIVERY.value,
        _S.DELIVERED.value,
        _S.DELIVERY_FAILED.value,
        _S.LOST.value,
        _S.RETURNED_TO_SENDER.value,
    }
)


def _carrier_edges() -> dict[str, list[tuple[str, str]]]:
    edges: dict[str, list[tuple[str, str]]] = {}
    for spec in SHIPMENT_LIFECYCLE.transitions:
        if spec.trigger in CARRIER_TRIGGERS:
            for source in spec.sources:
                edges.setdefault(source, []).append((spec.trigger, spec.dest))
    return edges


_EDGES = _carrier_edges()


def _path(source: str, target: str) -> list[str] | None:
    """The shortest run of carrier triggers from ``source`` to ``target`` (None if none)."""
    if source == target:
        return []
    queue: deque[tuple[str, list[str]]] = deque([(source, [])])
    seen = {source}
    while queue:
        state, path = queue.popleft()
        for trigger, dest in _EDGES.get(state, []):
            if dest == target:
                return [*path, trigger]
            if dest not in seen:
                seen.add(dest)
                queue.append((dest, [*path, trigger]))
    return None


@frozen
class ShipmentLine:
    """``quantity`` units of an order line (``line_id``, ``sku``) in this shipment."""

    line_id: str = field(validator=text(MAX_ID_LENGTH))
    sku: str = field(validator=text(MAX_ID_LENGTH))
    quantity: int


def _tuple(value: Iterable[object]) -> tuple[object, ...]:
    return tuple(value)


@define(eq=False, on_setattr=setters.NO_OP)
class Shipment:
    """Units of one order from one location. Create with :meth:`create`."""

    id: str = field(validator=text(MAX_ID_LENGTH))
    order_id: str
    location: str
    ship_to: Address = field(repr=False)
    lines: tuple[ShipmentLine, ...] = field(converter=_tuple)
    created_at: datetime
    state: str = ShipmentState.PENDING.value
    parcels: tuple[Parcel, ...] = field(default=(), converter=_tuple)
    rate: Rate | None = None
    label: Label | None = field(default=None, repr=False)
    handed_over_at: datetime | None = None
    delivered_at: datetime | None = None
    eta: date | None = None
    problem: str | None = None
    claim: str | None = None
    scans: tuple[TrackingEvent, ...] = field(default=(), converter=_tuple, repr=False)
    version: int = 0
    pending_events: list[DomainEvent] = field(factory=list, repr=False)

    @classmethod
    def create(
        cls,
        *,
        shipment_id: str,
        order_id: str,
        location: str,
        ship_to: Address,
        lines: Iterable[ShipmentLine],
        at: datetime,
    ) -> Shipment:
        """A pending shipment of ``lines`` (at least one, each line once, quantities > 0)."""
        lines = tuple(lines)
        if not lines:
            raise InvalidField("a shipment needs at least one line", field="lines", value=[])
        seen: set[str] = set()
        for line in lines:
            if line.line_id in seen:
                raise InvalidField("appears twice", field="lines", value=line.line_id)
            seen.add(line.line_id)
            if isinstance(line.quantity, bool) or not isinstance(line.quantity, int):
                raise InvalidField("must be a whole number", field="quantity", value=line.quantity)
            if line.quantity < 1:
                raise InvalidField("must be at least 1", field="quantity", value=line.quantity)
        shipment = cls(
            id=shipment_id,
            order_id=order_id,
            location=location,
            ship_to=ship_to,
            lines=lines,
            created_at=at,
        )
        shipment.pending_events.append(
            ShipmentCreated(
                at,
                order_id,
                shipment_id,
                location,
                tuple((li.line_id, li.quantity) for li in lines),
            )
        )
        return shipment

    # -- derived --------------------------------------------------------------------------------

    @property
    def is_handed_over(self) -> bool:
        """True once the carrier has it (in transit or any state after)."""
        return self.state in _HANDED_OVER

    @property
    def arrived(self) -> bool:
        """True when the customer has its units: delivered, and no claim (a damaged
        parcel reshipped or refunded) settled on it."""
        return self.state == ShipmentState.DELIVERED.value and self.claim is None

    @property
    def reshipped(self) -> bool:
        """True when a claim was settled by sending its units again in another shipment."""
        return (self.claim or "").startswith("reship:")

    @property
    def tracking_number(self) -> str | None:
        """The label's tracking number, once labelled."""
        return self.label.tracking_number if self.label else None

    def units(self) -> dict[str, int]:
        """Units per order line in this shipment."""
        return {line.line_id: line.quantity for line in self.lines}

    # -- the warehouse's steps ------------------------------------------------------------------

    def pick(self, at: datetime) -> None:
        """The units were taken from their bins."""
        _LIFECYCLE.fire(self, "pick")
        self.pending_events.append(ShipmentPicked(at, self.order_id, self.id))

    def pack(self, parcels: Iterable[Parcel], at: datetime) -> None:
        """The units were packed into ``parcels`` (at least one)."""
        parcels = tuple(parcels)
        if not parcels or not all(isinstance(p, Parcel) for p in parcels):
            raise InvalidField("needs at least one Parcel", field="parcels", value=parcels)
        _LIFECYCLE.fire(self, "pack")
        self.parcels = parcels
        self.pending_events.append(ShipmentPacked(at, self.order_id, self.id, len(parcels)))

    def choose_rate(self, rate: Rate) -> None:
        """Decide which rate to buy, before asking the carrier (so that a retry buys the
        same one). Only a packed shipment without a label can; raises
        :class:`FulfilmentError` otherwise."""
        if not isinstance(rate, Rate):
            raise InvalidField("must be a Rate", field="rate", value=rate)
        if self.state != _S.PACKED.value or self.label is not None:
            raise FulfilmentError(
                f"shipment {self.id} is {self.state!r}: only a packed shipment gets a label"
            )
        self.rate = rate

    def forget_rate(self) -> None:
        """Drop the chosen rate after the carrier refused it for good (nothing was bought)."""
        if self.label is None:
            self.rate = None

    def attach_label(self, rate: Rate, label: Label, at: datetime) -> None:
        """Record the bought ``label`` for ``rate`` (the chosen rate, if one was chosen)."""
        if self.rate is not None and rate != self.rate:
            raise InvalidField("is not the rate chosen for this shipment", field="rate", value=rate)
        if label.carrier != rate.carrier:
            raise InvalidField(
                "is for another carrier than the rate", field="label", value=label.carrier
            )
        _LIFECYCLE.fire(self, "label")
        self.rate, self.label = rate, label
        self.pending_events.append(
            ShipmentLabelled(
                at, self.order_id, self.id, rate.carrier, rate.service, label.tracking_number
            )
        )

    def hand_over(self, at: datetime, eta: date | None) -> None:
        """The carrier took the parcels; ``eta`` is the expected delivery date."""
        self._carrier_step("hand_over", at, eta=eta)

    def cancel(self, reason: str, at: datetime) -> None:
        """Cancel before hand-over; the label (if any) is to be voided at the carrier."""
        check_text(reason, field="reason", limit=MAX_NOTE_LENGTH)
        _LIFECYCLE.fire(self, "cancel")
        self.problem = reason
        self.pending_events.append(
            ShipmentCancelled(at, self.order_id, self.id, reason, self.tracking_number)
        )

    def resolve_claim(self, resolution: str, at: datetime, replacement_id: str | None) -> None:
        """Settle a lost, returned or damaged (delivered) parcel: ``"reship"`` (with the
        new shipment's id) or ``"refund"``. Raises :class:`FulfilmentError` when the
        shipment is not in such a state or a claim was already settled."""
        if self.state not in _CLAIMABLE:
            raise FulfilmentError(
                f"shipment {self.id} is {self.state!r}: only a lost, returned or delivered "
                "(damaged) shipment can be claimed"
            )
        if self.claim is not None:
            raise FulfilmentError(f"shipment {self.id} already has a claim settled: {self.claim}")
        if resolution not in ("reship", "refund"):
            raise InvalidField("must be 'reship' or 'refund'", field="resolution", value=resolution)
        if (resolution == "reship") != (replacement_id is not None):
            raise InvalidField(
                "a reship names its new shipment, a refund none",
                field="replacement_id",
                value=replacement_id,
            )
        self.claim = f"reship:{replacement_id}" if replacement_id else "refund"
        self.pending_events.append(
            ShipmentClaimResolved(at, self.order_id, self.id, resolution, replacement_id)
        )

    # -- the carrier's scans --------------------------------------------------------------------

    def apply_scan(self, scan: TrackingEvent, at: datetime) -> str:
        """Apply a carrier scan at most once; returns ``"duplicate"``, ``"recorded"``
        (kept, but the state is already where the latest scan puts it, or cannot go
        there) or ``"moved"``.

        The shipment goes where the latest scan by ``occurred_at`` puts it (ties: the
        further along), so scans that arrive twice or out of order end the same.
        Raises :class:`InvalidField` for a scan of another tracking number.
        """
        if any(known.id == scan.id for known in self.scans):
            return "duplicate"
        if scan.tracking_number != self.tracking_number:
            raise InvalidField(
                f"is not shipment {self.id}'s tracking number",
                field="tracking_number",
                value=scan.tracking_number,
            )
        self.scans = tuple(
            sorted((*self.scans, scan), key=lambda s: (s.occurred_at, _RANK[s.status], s.id))
        )
        latest = self.scans[-1]
        dated = [s for s in self.scans if s.eta is not None]
        if dated and dated[-1].eta != self.eta:
            self.eta = dated[-1].eta
            self.pending_events.append(ShipmentEtaChanged(at, self.order_id, self.id, self.eta))
        path = _path(self.state, _SCAN_STATE[latest.status])
        if not path:
            self._redate()
            return "recorded"
        for trigger in path:
            self._carrier_step(trigger, at, latest.description, when=self._scanned(trigger))
        return "moved"

    def _redate(self) -> None:
        """A late scan may be earlier than what dated a step: keep the earliest times."""
        if self.is_handed_over and self.handed_over_at is not None:
            self.handed_over_at = min(self.handed_over_at, self.scans[0].occurred_at)
        if self.delivered_at is not None:
            self.delivered_at = min(self.delivered_at, self._scanned("deliver"))

    def _scanned(self, trigger: str) -> datetime:
        """When the carrier did what ``trigger`` records: the pick-up is the first scan;
        any other step, the first scan that put the parcel in its state (or the latest)."""
        if trigger == "hand_over":
            return self.scans[0].occurred_at
        dest = next(spec.dest for spec in SHIPMENT_LIFECYCLE.transitions if spec.trigger == trigger)
        times = [s.occurred_at for s in self.scans if _SCAN_STATE[s.status] == dest]
        return min(times) if times else self.scans[-1].occurred_at

    def _carrier_step(
        self,
        trigger: str,
        at: datetime,
        note: str | None = None,
        eta: date | None = None,
        *,
        when: datetime | None = None,
    ) -> None:
        """Fire ``trigger``; its event is dated ``at`` (when the shop learnt it), the
        shipment's own record (handed over, delivered) ``when`` the carrier did it."""
        _LIFECYCLE.fire(self, trigger)
        order, me = self.order_id, self.id
        happened = when or at
        event: DomainEvent
        if trigger in ("retry_delivery", "back_in_transit", "deliver", "found", "deliver_found"):
            self.problem = None  # the parcel moved on
        if trigger == "hand_over":
            self.handed_over_at = happened
            self.eta = eta or self.eta
            event = ShipmentHandedOver(at, order, me, self.tracking_number or "", self.eta)
        elif trigger == "out_for_delivery":
            event = ShipmentOutForDelivery(at, order, me)
        elif trigger in ("deliver", "deliver_found"):
            self.delivered_at = happened
            event = ShipmentDelivered(at, order, me)
        elif trigger == "fail_delivery":
            self.problem = note or "delivery failed"
            event = ShipmentDeliveryFailed(at, order, me, self.problem)
        elif trigger == "lose":
            event = ShipmentLost(at, order, me)
        elif trigger == "return_to_sender":
            event = ShipmentReturnedToSender(at, order, me)
        else:  # back_in_transit, retry_delivery: no news for the customer
            return
        self.pending_events.append(event)


def order_progress(open_units: dict[str, int], shipments: Iterable[Shipment]) -> str | None:
    """Which order trigger its shipments call for: ``"mark_shipped"`` once every open
    unit is in a handed-over shipment, ``"mark_delivered"`` once, moreover, every
    shipment is delivered or its claim settled; None otherwise. ``open_units`` is the
    units per non-cancelled line. A reshipped shipment's units count through its
    replacement, which must itself ship and arrive."""
    live = [s for s in shipments if s.state != _S.CANCELLED.value]
    handed: dict[str, int] = {}
    for shipment in live:
        if shipment.is_handed_over and not shipment.reshipped:
            for line in shipment.lines:
                handed[line.line_id] = handed.get(line.line_id, 0) + line.quantity
    if any(handed.get(line_id, 0) < units for line_id, units in open_units.items()):
        return None
    waiting = any(not s.is_handed_over for s in live)
    arrived = all(s.state == _S.DELIVERED.value or s.claim is not None for s in live)
    return "mark_delivered" if arrived and not waiting else "mark_shipped"


def arrived_units(shipments: Iterable[Shipment]) -> dict[str, int]:
    """Units per order line that reached the customer (see :attr:`Shipment.arrived`)."""
    units: dict[str, int] = {}
    for shipment in shipments:
        if shipment.arrived:
            for line_id, count in shipment.units().items():
                units[line_id] = units.get(line_id, 0) + count
    return units


_NOT_COMING = frozenset(
    {_S.DELIVERED.value, _S.CANCELLED.value, _S.LOST.value, _S.RETURNED_TO_SENDER.value}
)


def expected_delivery(promised: date | None, shipments: Iterable[Shipment]) -> date | None:
    """When an order should arrive: the latest carrier ETA of its shipments still coming,
    else ``promised`` (the date given at acknowledgement)."""
    etas = [s.eta for s in shipments if s.eta is not None and s.state not in _NOT_COMING]
    return max(etas) if etas else promised
