"""Inventory: stock of a SKU at a location, reservations with expiry, and a movement ledger.

A :class:`StockItem` holds ``on_hand`` (what is physically there), the
reservations made against it (keyed by order and line), and its backorder
policy. Its invariants:

* ``on_hand`` never goes below zero, and always equals the sum of the
  :class:`Movement` ledger (every change of ``on_hand`` is a movement);
* reserved never exceeds ``on_hand`` unless the SKU allows backorders, and then
  by at most its ``backorder_limit`` (``None``: no limit);
* a reservation past its expiry never counts against availability, whether
  or not a clean-up has removed it yet.

Methods check first and change nothing when they raise. Storage adapters apply
the same rules; on SQL the check and the change are one conditional statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, time
from enum import Enum
from typing import Any, Protocol

import attrs
from attrs import Attribute, define, field, frozen

from orderkit.domain.values import (
    MAX_ID_LENGTH,
    MAX_NOTE_LENGTH,
    MAX_TEXT_LENGTH,
    check_text,
    text,
)
from orderkit.errors import InvalidField, InvalidQuantity, OutOfStock, ReservationNotFound

__all__ = [
    "Location",
    "Movement",
    "MovementKind",
    "PriorityThenSplit",
    "Reservation",
    "SourcingStrategy",
    "StockDemand",
    "StockItem",
    "StockLevel",
    "StockPick",
]


def at_least(minimum: int) -> Any:
    """An attrs validator: a whole number (not a bool) of at least ``minimum``."""

    def check(_instance: object, attribute: Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise InvalidQuantity(
                f"must be a whole number >= {minimum}", field=attribute.name, value=value
            )

    return check


def optional_limit(_instance: object, attribute: Attribute[Any], value: object) -> None:
    """An attrs validator: None (no limit) or a whole number >= 0."""
    if value is not None:
        at_least(0)(_instance, attribute, value)


def removable_units(on_hand: int, held: int, backorder_limit: int | None) -> int:
    """How many units a count correction may take away without breaking the reservations."""
    if backorder_limit is None:
        return on_hand
    return max(0, min(on_hand, on_hand + backorder_limit - held))


def _time(_instance: object, attribute: Attribute[Any], value: object) -> None:
    if not isinstance(value, time):
        raise InvalidField(
            "must be a datetime.time such as time(14, 0)", field=attribute.name, value=value
        )


def _bins(value: Mapping[str, str] | Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    pairs = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((str(sku), str(place)) for sku, place in pairs))


def _check_bins(_instance: object, attribute: Attribute[Any], value: object) -> None:
    for sku, place in value:  # type: ignore[attr-defined]
        check_text(sku, field=f"{attribute.name}.sku", limit=MAX_ID_LENGTH)
        check_text(place, field=f"{attribute.name}[{sku}]", limit=MAX_ID_LENGTH)


@frozen
class Location:
    """A place stock is kept and shipped from. Lower ``priority`` is preferred.

    ``bins`` maps a SKU to the bin it is picked from (pick lists are sorted by bin).
    """

    id: str = field(validator=text(MAX_ID_LENGTH))
    name: str = field(validator=text(MAX_TEXT_LENGTH))
    priority: int = field(default=100, validator=at_least(0))
    handling_days: int = field(default=1, validator=at_least(0))
    cutoff: time = field(default=time(14, 0), validator=_time)
    bins: tuple[tuple[str, str], ...] = field(default=(), converter=_bins, validator=_check_bins)

    def bin_of(self, sku: str) -> str:
        """The bin ``sku`` is picked from here ("" when none is set)."""
        return dict(self.bins).get(sku, "")


class MovementKind(str, Enum):
    """Why ``on_hand`` changed."""

    RECEIVED = "received"
    ADJUSTED = "adjusted"
    SHIPPED = "shipped"
    RESTOCKED = "restocked"


@frozen
class Movement:
    """One immutable entry of the ledger: ``quantity`` (signed) moved in or out of on hand."""

    sku: str
    location: str
    kind: MovementKind
    quantity: int
    at: datetime
    reason: str = ""
    order_id: str | None = None
    line_id: str | None = None


@frozen
class Reservation:
    """Units held for one order line at one location until ``expires_at`` (None: no expiry).

    An allocated reservation (``shipment_id`` set) is committed to a shipment and
    does not expire.
    """

    order_id: str
    line_id: str
    quantity: int
    expires_at: datetime | None = None
    shipment_id: str | None = None

    def is_active(self, now: datetime) -> bool:
        """True unless the reservation has expired at ``now``."""
        return self.shipment_id is not None or self.expires_at is None or self.expires_at > now


def _key(order_id: str, line_id: str) -> tuple[str, str]:
    return (order_id, line_id)


@define(eq=False)
class StockItem:
    """Stock of one SKU at one location."""

    sku: str = field(validator=text(MAX_ID_LENGTH))
    location: str = field(validator=text(MAX_ID_LENGTH))
    on_hand: int = field(default=0, validator=at_least(0))
    backorder_limit: int | None = field(default=0, validator=optional_limit)
    reservations: dict[tuple[str, str], Reservation] = field(factory=dict)
    pending_movements: list[Movement] = field(factory=list, repr=False)

    def reserved(self, now: datetime) -> int:
        """Units held by active reservations at ``now``."""
        return sum(r.quantity for r in self.reservations.values() if r.is_active(now))

    def available(self, now: datetime) -> int | None:
        """Units that can still be reserved at ``now``; None when backorders are unlimited."""
        if self.backorder_limit is None:
            return None
        return self.on_hand + self.backorder_limit - self.reserved(now)

    def _move(
        self,
        kind: MovementKind,
        quantity: int,
        at: datetime,
        reason: str,
        order_id: str | None = None,
        line_id: str | None = None,
    ) -> None:
        self.on_hand += quantity
        self.pending_movements.append(
            Movement(self.sku, self.location, kind, quantity, at, reason, order_id, line_id)
        )

    def receive(self, quantity: int, at: datetime, reason: str = "received") -> None:
        """Add ``quantity`` units that arrived."""
        check_quantity(quantity)
        _reason(reason)
        self._move(MovementKind.RECEIVED, quantity, at, reason)

    def adjust(self, delta: int, at: datetime, reason: str) -> None:
        """Correct ``on_hand`` by ``delta`` after a count; ``reason`` is required.

        Raises :class:`OutOfStock` when the result would be negative or below what
        active reservations hold (beyond the backorder limit).
        """
        if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
            raise InvalidQuantity("must be a non-zero whole number", field="delta", value=delta)
        _reason(reason, required=True)
        after = self.on_hand + delta
        held = self.reserved(at)
        allowance = self.backorder_limit
        if after < 0 or (allowance is not None and after + allowance < held):
            raise OutOfStock(
                self.sku,
                -delta,
                removable_units(self.on_hand, held, allowance),
                location=self.location,
            )
        self.expire(at)
        self._move(MovementKind.ADJUSTED, delta, at, reason)

    def set_backorder_limit(self, limit: int | None, at: datetime) -> None:
        """Deny (0), allow up to ``limit`` units, or allow without limit (None)."""
        check_backorder_limit(limit)
        if limit is not None and self.on_hand + limit < self.reserved(at):
            raise OutOfStock(
                self.sku, self.reserved(at), self.on_hand + limit, location=self.location
            )
        self.expire(at)
        self.backorder_limit = limit

    def reserve(self, holds: Sequence[Reservation], now: datetime) -> None:
        """Hold every reservation in ``holds`` or none; checks their total against availability.

        Expired reservations are dropped first. Raises :class:`OutOfStock` naming the
        SKU, the quantity requested and the quantity available.
        """
        demand = 0
        for hold in holds:
            check_quantity(hold.quantity)
            demand += hold.quantity
        available = self.available(now)
        if available is not None and demand > available:
            raise OutOfStock(self.sku, demand, max(available, 0), location=self.location)
        self.expire(now)
        for hold in holds:
            key = _key(hold.order_id, hold.line_id)
            previous = self.reservations.get(key)
            if previous is None:
                self.reservations[key] = hold
            else:  # more units for the line; an allocated line stays allocated, unexpiring
                allocated = previous.shipment_id is not None
                self.reservations[key] = Reservation(
                    hold.order_id,
                    hold.line_id,
                    previous.quantity + hold.quantity,
                    None if allocated else hold.expires_at,
                    previous.shipment_id,
                )

    def release(
        self, order_id: str, line_id: str | None = None, include_allocated: bool = False
    ) -> int:
        """Drop the order's reservations (one line's, or all; allocated ones only if asked);
        return the units freed."""
        freed = 0
        for key, reservation in list(self.reservations.items()):
            if (
                key[0] == order_id
                and (line_id is None or key[1] == line_id)
                and (include_allocated or reservation.shipment_id is None)
            ):
                freed += reservation.quantity
                del self.reservations[key]
        return freed

    def expire(self, now: datetime) -> int:
        """Drop reservations that have expired at ``now``; return the units freed."""
        expired = [key for key, r in self.reservations.items() if not r.is_active(now)]
        freed = sum(self.reservations[key].quantity for key in expired)
        for key in expired:
            del self.reservations[key]
        return freed

    def keep(self, order_id: str, now: datetime) -> None:
        """Stop the order's active reservations here from expiring (expired ones stay so)."""
        for key, reservation in list(self.reservations.items()):
            if key[0] == order_id and reservation.is_active(now):
                self.reservations[key] = attrs.evolve(reservation, expires_at=None)

    def allocate(self, order_id: str, line_id: str, shipment_id: str, now: datetime) -> int:
        """Commit a line's active reservation to a shipment (it no longer expires).

        Raises :class:`ReservationNotFound` when there is none, or it has expired.
        """
        reservation = self.reservations.get(_key(order_id, line_id))
        if reservation is None or not reservation.is_active(now):
            raise ReservationNotFound(self.sku, self.location, order_id, line_id)
        check_text(shipment_id, field="shipment_id", limit=MAX_ID_LENGTH)
        self.reservations[_key(order_id, line_id)] = Reservation(
            order_id, line_id, reservation.quantity, None, shipment_id
        )
        return reservation.quantity

    def ship(self, order_id: str, line_id: str, at: datetime) -> int:
        """The allocated units leave: on hand goes down and the reservation is used up."""
        reservation = self.reservations.get(_key(order_id, line_id))
        if reservation is None or reservation.shipment_id is None:
            raise ReservationNotFound(self.sku, self.location, order_id, line_id)
        if reservation.quantity > self.on_hand:
            raise OutOfStock(self.sku, reservation.quantity, self.on_hand, location=self.location)
        del self.reservations[_key(order_id, line_id)]
        self._move(MovementKind.SHIPPED, -reservation.quantity, at, "shipped", order_id, line_id)
        return reservation.quantity

    def restock(
        self, quantity: int, at: datetime, order_id: str, line_id: str, reason: str = "returned"
    ) -> None:
        """Put returned units back on hand."""
        check_quantity(quantity)
        _reason(reason)
        self._move(MovementKind.RESTOCKED, quantity, at, reason, order_id, line_id)


@frozen
class _FieldName:
    """Stands in for an attrs Attribute when a validator runs outside construction."""

    name: str


_LIMIT: Any = _FieldName("backorder_limit")
_QUANTITY: Any = _FieldName("quantity")


def check_backorder_limit(limit: object) -> None:
    """Raise :class:`InvalidQuantity` unless ``limit`` is None or a whole number >= 0."""
    optional_limit(None, _LIMIT, limit)


def check_quantity(quantity: object) -> None:
    """Raise :class:`InvalidQuantity` unless ``quantity`` is a whole number >= 1."""
    at_least(1)(None, _QUANTITY, quantity)


def _reason(reason: object, *, required: bool = False) -> None:
    if (
        not isinstance(reason, str)
        or len(reason) > MAX_NOTE_LENGTH
        or (required and not reason.strip())
    ):
        raise InvalidField(
            f"must be text of at most {MAX_NOTE_LENGTH} characters"
            + (", not empty" if required else ""),
            field="reason",
            value=reason,
        )


@frozen
class StockDemand:
    """What one order line needs: ``quantity`` units of ``sku``."""

    line_id: str
    sku: str
    quantity: int


@frozen
class StockPick:
    """A sourcing decision: take ``quantity`` of a line's units from ``location``."""

    line_id: str
    sku: str
    location: str
    quantity: int


@frozen
class StockLevel:
    """Availability of a SKU at a location (``available`` None: unlimited backorders)."""

    sku: str
    location: str
    on_hand: int
    reserved: int
    available: int | None


class SourcingStrategy(Protocol):
    """Decides which locations serve an order's lines."""

    def source(
        self,
        demands: Sequence[StockDemand],
        levels: Mapping[tuple[str, str], StockLevel],
        locations: Sequence[Location],
    ) -> list[StockPick]:
        """Picks covering every demand, or raise :class:`OutOfStock`."""
        ...


class PriorityThenSplit:
    """The default: the first location by priority that can serve the whole order;
    otherwise each line from the locations in priority order, split where needed."""

    def source(
        self,
        demands: Sequence[StockDemand],
        levels: Mapping[tuple[str, str], StockLevel],
        locations: Sequence[Location],
    ) -> list[StockPick]:
        ordered = sorted(locations, key=lambda loc: (loc.priority, loc.id))
        totals: dict[str, int] = {}
        for demand in demands:
            totals[demand.sku] = totals.get(demand.sku, 0) + demand.quantity
        for location in ordered:
            if all(_fits(levels.get((sku, location.id)), need) for sku, need in totals.items()):
                return [StockPick(d.line_id, d.sku, location.id, d.quantity) for d in demands]
        left = {key: level.available for key, level in levels.items()}
        picks: list[StockPick] = []
        for demand in demands:
            need = demand.quantity
            for location in ordered:
                key = (demand.sku, location.id)
                if key not in left or need == 0:
                    continue
                free = left[key]
                take = need if free is None else min(need, max(free, 0))
                if take:
                    picks.append(StockPick(demand.line_id, demand.sku, location.id, take))
                    need -= take
                    if free is not None:
                        left[key] = free - take
            if need:
                available = sum(
                    max(level.available or 0, 0)
                    for (sku, _), level in levels.items()
                    if sku == demand.sku
                )
                raise OutOfStock(demand.sku, totals[demand.sku], available)
        return picks


def _fits(level: StockLevel | None, need: int) -> bool:
    return level is not None and (level.available is None or level.available >= need)


def group_picks(picks: Iterable[StockPick]) -> dict[tuple[str, str], list[StockPick]]:
    """Picks by (sku, location), in the fixed lock order: SKU, then location, ascending."""
    grouped: dict[tuple[str, str], list[StockPick]] = {}
    for pick in sorted(picks, key=lambda p: (p.sku, p.location, p.line_id)):
        grouped.setdefault((pick.sku, pick.location), []).append(pick)
    return grouped
