"""Inventory against a plain-Python model: a hypothesis state machine, on every store.

The machine receives, reserves (for a new order, or more for a line that holds
stock already), releases, expires, allocates, ships, adjusts (by a delta, or to
a count at the edge of what reservations need), restocks and sets backorder
limits in random order, for three SKUs at two locations (plus a location that
was never added), and moves a manual clock so that reservations expire.
Reservations and releases are staged through a unit of work
(``uow.stock.stage(Reserve(...))``), the rest goes through ``shop.inventory``;
one rule stages two or three changes in one commit, which must hold all or none.

The model below is written out by hand (dicts of on hand, backorder limits,
reservations with expiry, and the ledger); it does not use ``StockItem``. For
every step it decides whether the change must succeed or must fail, and with
which error (and, for ``OutOfStock``, which sku, location, quantity requested
and quantity available); the step asserts the same outcome from orderkit, and
that a refused change left every stock item, stored reservation, level and
ledger entry as it was. After every step, for every (sku, location):

* on hand is never negative, the ledger sums to on hand, reserved is at most on
  hand plus the backorder limit and available is on hand + limit - reserved
  (None: unlimited), reserved counts only the active reservations the item
  holds (an expired one never counts, cleaned up or not);
* on hand, the ledger (kind, quantity, order, line), the backorder limit and
  reserved equal the model's;
* the active reservations, item by item and order by order, equal the model's.

After ``expire_reservations`` no expired reservation is left.

Expired reservations are ignored everywhere: allocating a line allocates its
active reservations and is refused only when it has none; shipping a line ships
its active reservations, which must all be allocated. When two things are wrong
with one change (say, quantity 0 at a location never added), a store may report
either, so the model accepts either.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from orderkit import (
    InvalidQuantity,
    Location,
    OrderkitError,
    OutOfStock,
    Reservation,
    ReservationNotFound,
    Shop,
    UnknownLocation,
    UnknownSku,
)
from orderkit.adapters.memory import ManualClock, SequentialIds
from orderkit.domain.inventory import StockPick
from orderkit.domain.stock_changes import (
    Adjust,
    Allocate,
    ExpireReservations,
    Receive,
    Release,
    Reserve,
    Restock,
    SetBackorderLimit,
    Ship,
    StockChange,
)

SKUS = ("SKU-A", "SKU-B", "SKU-C")
LOCATIONS = ("WH-1", "WH-2")
NOWHERE = "WH-9"
"""A location the shop never added."""
LINES = ("L1", "L2", "L3")
NEVER_RESERVED = ("O-never", "L1")

Key = tuple[str, str]
"""(sku, location)"""
HoldKey = tuple[str, str, str, str]
"""(order, line, sku, location)"""
Entry = tuple[str, int, "str | None", "str | None"]
"""A ledger entry as the model keeps it: (kind, quantity, order, line)."""


# --------------------------------------------------------------------------- the model


class Refused(Exception):
    """The model's verdict: the change must fail with one of ``errors``; an
    :class:`OutOfStock` must carry the attributes in ``expect``."""

    def __init__(self, *errors: type[OrderkitError], **expect: object) -> None:
        super().__init__(errors, expect)
        self.errors = errors
        self.expect = expect


@dataclass
class Hold:
    """The model's reservation of one order line at one (sku, location)."""

    quantity: int
    expires_at: datetime | None
    shipment_id: str | None = None

    def active(self, now: datetime) -> bool:
        return self.shipment_id is not None or self.expires_at is None or now < self.expires_at


def is_active(reservation: Reservation, now: datetime) -> bool:
    """The model's own rule, applied to a reservation read back from orderkit."""
    return (
        reservation.shipment_id is not None
        or reservation.expires_at is None
        or now < reservation.expires_at
    )


def held(reservation: Reservation) -> tuple[int, datetime | None, str | None]:
    """What the invariants compare of a reservation (see :meth:`Model.active_holds`)."""
    allocated = reservation.shipment_id is not None
    return (
        reservation.quantity,
        None if allocated else reservation.expires_at,
        reservation.shipment_id,
    )


@dataclass
class Model:
    """What the stock must be. Each change checks first and raises
    :class:`Refused` before touching anything."""

    on_hand: dict[Key, int] = field(default_factory=dict)
    limits: dict[Key, int | None] = field(default_factory=dict)
    holds: dict[HoldKey, Hold] = field(default_factory=dict)
    ledger: dict[Key, list[Entry]] = field(default_factory=dict)
    orders: list[str] = field(default_factory=list)

    def copy(self) -> Model:
        return copy.deepcopy(self)

    def reserved(self, key: Key, now: datetime) -> int:
        return sum(h.quantity for k, h in self.holds.items() if k[2:] == key and h.active(now))

    def active_holds(self, now: datetime) -> dict[HoldKey, tuple[int, datetime | None, str | None]]:
        """(quantity, expiry, shipment) of every active hold; an allocated hold
        never expires, so its expiry is not compared."""
        return {
            k: (h.quantity, None if h.shipment_id else h.expires_at, h.shipment_id)
            for k, h in self.holds.items()
            if h.active(now)
        }

    def live_lines(self, now: datetime, kind: str = "any") -> list[tuple[str, str]]:
        """(order, line) of the stored holds, oldest first: any; only "allocated"
        ones; or only "open" ones (active, not allocated)."""
        return list(
            dict.fromkeys(
                k[:2]
                for k, h in self.holds.items()
                if kind == "any"
                or (kind == "allocated" and h.shipment_id is not None)
                or (kind == "open" and h.shipment_id is None and h.active(now))
            )
        )

    def _line(self, order_id: str, line_id: str) -> list[HoldKey]:
        return sorted(k for k in self.holds if k[:2] == (order_id, line_id))

    def _stocked(self, sku: str, location: str) -> list[type[OrderkitError]]:
        if location not in LOCATIONS:
            return [UnknownLocation]
        if (sku, location) not in self.on_hand:
            return [UnknownSku]
        return []

    def _create(self, key: Key) -> None:
        self.on_hand.setdefault(key, 0)
        self.limits.setdefault(key, 0)
        self.ledger.setdefault(key, [])

    def receive(self, sku: str, location: str, quantity: int) -> None:
        problems = [UnknownLocation] if location not in LOCATIONS else []
        problems += [InvalidQuantity] if quantity < 1 else []
        if problems:
            raise Refused(*problems)
        key = (sku, location)
        self._create(key)
        self.on_hand[key] += quantity
        self.ledger[key].append(("received", quantity, None, None))

    def adjust(self, sku: str, location: str, delta: int, now: datetime) -> None:
        problems = self._stocked(sku, location) + ([InvalidQuantity] if delta == 0 else [])
        if problems:
            raise Refused(*problems)
        key = (sku, location)
        after = self.on_hand[key] + delta
        limit = self.limits[key]
        if after < 0 or (limit is not None and after + limit < self.reserved(key, now)):
            raise Refused(OutOfStock, sku=sku, location=location)
        self.on_hand[key] = after
        self.ledger[key].append(("adjusted", delta, None, None))

    def set_backorder_limit(
        self, sku: str, location: str, limit: int | None, now: datetime
    ) -> None:
        problems = [UnknownLocation] if location not in LOCATIONS else []
        problems += [InvalidQuantity] if limit is not None and limit < 0 else []
        if problems:
            raise Refused(*problems)
        key = (sku, location)
        on_hand, reserved = self.on_hand.get(key, 0), self.reserved(key, now)
        if limit is not None and on_hand + limit < reserved:
            raise Refused(
                OutOfStock,
                sku=sku,
                location=location,
                requested=reserved,
                available=on_hand + limit,
            )
        self._create(key)
        self.limits[key] = limit

    def reserve(
        self,
        order_id: str,
        picks: tuple[StockPick, ...],
        expires_at: datetime | None,
        now: datetime,
    ) -> None:
        groups: dict[Key, list[StockPick]] = {}
        for pick in sorted(picks, key=lambda p: (p.sku, p.location)):
            groups.setdefault((pick.sku, pick.location), []).append(pick)
        for (sku, location), group in groups.items():  # checked in (sku, location) order
            problems = self._stocked(sku, location)
            problems += [InvalidQuantity] if any(p.quantity < 1 for p in group) else []
            if problems:
                raise Refused(*problems)
            key = (sku, location)
            demand = sum(p.quantity for p in group)
            limit = self.limits[key]
            if limit is not None:
                available = self.on_hand[key] + limit - self.reserved(key, now)
                if demand > available:
                    raise Refused(
                        OutOfStock,
                        sku=sku,
                        location=location,
                        requested=demand,
                        available=max(available, 0),
                    )
        for k, hold in list(self.holds.items()):  # expired holds are dropped first
            if k[2:] in groups and not hold.active(now):
                del self.holds[k]
        for pick in picks:
            hold_key = (order_id, pick.line_id, pick.sku, pick.location)
            previous = self.holds.get(hold_key)
            if previous is None:
                self.holds[hold_key] = Hold(pick.quantity, expires_at)
            elif previous.shipment_id is None:  # more for a held line: added up, new expiry
                previous.quantity += pick.quantity
                previous.expires_at = expires_at
            else:  # more for an allocated line: added up, and it stays allocated
                previous.quantity += pick.quantity
        if order_id not in self.orders:
            self.orders.append(order_id)

    def release(self, order_id: str, line_id: str | None, include_allocated: bool) -> None:
        for k, hold in list(self.holds.items()):
            if (
                k[0] == order_id
                and (line_id is None or k[1] == line_id)
                and (include_allocated or hold.shipment_id is None)
            ):
                del self.holds[k]

    def expire(self, now: datetime) -> None:
        for k, hold in list(self.holds.items()):
            if not hold.active(now):
                del self.holds[k]

    def allocate(self, order_id: str, line_id: str, shipment_id: str, now: datetime) -> None:
        """Allocates the line's active holds; refused only when it has none (an
        expired hold, stored or cleaned up, neither counts nor blocks)."""
        keys = [k for k in self._line(order_id, line_id) if self.holds[k].active(now)]
        if not keys:
            raise Refused(ReservationNotFound)
        for k in keys:
            self.holds[k].shipment_id = shipment_id
            self.holds[k].expires_at = None

    def ship(self, order_id: str, line_id: str, now: datetime) -> None:
        """Ships the line's active holds, which must all be allocated (expired
        holds are ignored, as they are everywhere)."""
        keys = [k for k in self._line(order_id, line_id) if self.holds[k].active(now)]
        if not keys:
            raise Refused(ReservationNotFound)
        errors: list[type[OrderkitError]] = []
        expect: dict[str, object] = {}
        if any(self.holds[k].shipment_id is None for k in keys):
            errors.append(ReservationNotFound)
        short = [
            k
            for k in keys
            if self.holds[k].shipment_id is not None
            and self.holds[k].quantity > self.on_hand[k[2:]]
        ]
        if short:  # an allocated (backordered) part that on hand cannot cover
            sku, location = short[0][2:]
            errors.append(OutOfStock)
            expect = {
                "sku": sku,
                "location": location,
                "requested": self.holds[short[0]].quantity,
                "available": self.on_hand[(sku, location)],
            }
        if errors:  # both wrong: a store may report either
            raise Refused(*errors, **expect)
        for k in keys:
            quantity = self.holds.pop(k).quantity
            self.on_hand[k[2:]] -= quantity
            self.ledger[k[2:]].append(("shipped", -quantity, order_id, line_id))

    def restock(self, sku: str, location: str, quantity: int, order_id: str, line_id: str) -> None:
        problems = self._stocked(sku, location) + ([InvalidQuantity] if quantity < 1 else [])
        if problems:
            raise Refused(*problems)
        self.on_hand[(sku, location)] += quantity
        self.ledger[(sku, location)].append(("restocked", quantity, order_id, line_id))


# --------------------------------------------------------------------------- steps


@dataclass(frozen=True)
class DoReceive:
    sku: str
    location: str
    quantity: int


@dataclass(frozen=True)
class DoAdjust:
    sku: str
    location: str
    delta: int


@dataclass(frozen=True)
class DoSetLimit:
    sku: str
    location: str
    limit: int | None


@dataclass(frozen=True)
class DoReserve:
    """A fresh order reserves ``picks``, for ``ttl`` minutes (None: no expiry)."""

    picks: tuple[StockPick, ...]
    ttl: int | None


@dataclass(frozen=True)
class DoTopUp:
    """Reserve more for a held line (``target`` indexes the held lines) at
    ``picks``' (sku, location, quantity), for ``ttl`` minutes."""

    target: int
    picks: tuple[tuple[str, str, int], ...]
    ttl: int | None


@dataclass(frozen=True)
class DoRelease:
    """Release a held line (``target`` indexes the held lines; -1: one never reserved)."""

    target: int
    whole_order: bool
    include_allocated: bool


@dataclass(frozen=True)
class DoExpire:
    pass


@dataclass(frozen=True)
class DoAllocate:
    target: int


@dataclass(frozen=True)
class DoShip:
    target: int


@dataclass(frozen=True)
class DoRestock:
    sku: str
    location: str
    quantity: int
    target: int


Spec = (
    DoReceive
    | DoAdjust
    | DoSetLimit
    | DoReserve
    | DoTopUp
    | DoRelease
    | DoExpire
    | DoAllocate
    | DoShip
    | DoRestock
)

SKU = st.sampled_from(SKUS)
LOCATION = st.sampled_from(LOCATIONS)
SOME_LOCATION = st.sampled_from((*LOCATIONS * 8, NOWHERE))
LINE = st.sampled_from(LINES)
QUANTITY = st.sampled_from((1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 0, -1))
PICK_QUANTITY = st.sampled_from((1, 2, 3, 1, 2, 4, 5, 1, 2, 3, 0))
DELTA = st.integers(-6, 6)
LIMIT = st.sampled_from((0, 1, 3, None, 0, -1))
TTL = st.sampled_from((None, 60, 30, 10, 0))
TARGET = st.integers(-1, 12)
PICKS = st.lists(
    st.builds(StockPick, LINE, SKU, SOME_LOCATION, PICK_QUANTITY), min_size=1, max_size=3
).map(tuple)
TOP_UP = st.lists(st.tuples(SKU, LOCATION, PICK_QUANTITY), min_size=1, max_size=2).map(tuple)
SPECS: st.SearchStrategy[Spec] = st.one_of(
    st.builds(DoReceive, SKU, SOME_LOCATION, QUANTITY),
    st.builds(DoAdjust, SKU, LOCATION, DELTA),
    st.builds(DoSetLimit, SKU, LOCATION, LIMIT),
    st.builds(DoReserve, PICKS, TTL),
    st.builds(DoTopUp, TARGET, TOP_UP, TTL),
    st.builds(DoRelease, TARGET, st.booleans(), st.booleans()),
    st.builds(DoExpire),
    st.builds(DoAllocate, TARGET),
    st.builds(DoShip, TARGET),
    st.builds(DoRestock, SKU, LOCATION, QUANTITY, TARGET),
)


@dataclass(frozen=True)
class Step:
    """One change, resolved against the model: how the model takes it, how the
    public API makes it (``shop.inventory``, or a unit of work for reserve and
    release), and how to make it as a stock change to stage with others."""

    label: str
    on_model: Callable[[Model], None]
    via_service: Callable[[], None]
    change: Callable[[], StockChange]
    invalid_number: bool = False
    """A quantity or delta that no store accepts (it may be refused as soon as the
    change is made, before anything is staged)."""


# --------------------------------------------------------------------------- the machine


class InventoryMachine(RuleBasedStateMachine):
    """Random inventory operations on an in-memory shop, checked against :class:`Model`."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.shop = self.make_shop()
        self.model = Model()
        self.serial = 0
        for priority, location in enumerate(LOCATIONS):
            self.shop.inventory.add_location(
                Location(location, f"Warehouse {location}", priority=priority)
            )

    def make_shop(self) -> Shop:
        return Shop.open("memory://", clock=self.clock, ids=SequentialIds())

    def teardown(self) -> None:
        self.shop.close()

    # ------------------------------------------------------------------ helpers

    def _next(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    def _stage(self, *changes: StockChange) -> None:
        with self.shop.store() as uow:
            for change in changes:
                uow.stock.stage(change)
            uow.commit()

    def resolve(self, spec: Spec, model: Model, now: datetime) -> Step:
        inventory = self.shop.inventory
        # a target below 8 aims at a line the step can succeed on; 8 and up at any
        # held line (expired, not allocated...); -1 at a line never reserved
        kind = "any"
        if isinstance(spec, DoAllocate | DoShip) and spec.target < 8:
            kind = "open" if isinstance(spec, DoAllocate) else "allocated"
        lines = model.live_lines(now, kind)
        order_id, line_id = (
            lines[spec.target % len(lines)]
            if isinstance(spec, DoTopUp | DoRelease | DoAllocate | DoShip | DoRestock)
            and spec.target >= 0
            and lines
            else NEVER_RESERVED
        )
        if isinstance(spec, DoReceive):
            sku, location, quantity = spec.sku, spec.location, spec.quantity
            return Step(
                f"receive {quantity} {sku} at {location}",
                lambda m: m.receive(sku, location, quantity),
                lambda: inventory.receive(sku, location=location, quantity=quantity),
                lambda: Receive(sku, location, quantity, now),
                invalid_number=quantity < 1,
            )
        if isinstance(spec, DoAdjust):
            sku, location, delta = spec.sku, spec.location, spec.delta
            return Step(
                f"adjust {sku} at {location} by {delta}",
                lambda m: m.adjust(sku, location, delta, now),
                lambda: inventory.adjust(sku, location=location, delta=delta, reason="count"),
                lambda: Adjust(sku, location, delta, now, "count"),
                invalid_number=delta == 0,
            )
        if isinstance(spec, DoSetLimit):
            sku, location, limit = spec.sku, spec.location, spec.limit
            return Step(
                f"backorder limit of {sku} at {location} = {limit}",
                lambda m: m.set_backorder_limit(sku, location, limit, now),
                lambda: inventory.set_backorder_limit(sku, location=location, limit=limit),
                lambda: SetBackorderLimit(sku, location, limit, now),
            )
        if isinstance(spec, DoReserve | DoTopUp):
            if isinstance(spec, DoReserve):
                order_id, picks = self._next("O"), spec.picks
                label = f"reserve for {order_id}"
            else:
                if spec.target < 0 or not lines:
                    order_id, line_id = self._next("O"), "L1"
                picks = tuple(StockPick(line_id, sku, loc, n) for sku, loc, n in spec.picks)
                label = f"reserve more for {order_id}/{line_id}"
            expires = None if spec.ttl is None else now + timedelta(minutes=spec.ttl)

            def reserve() -> Reserve:
                return Reserve(order_id, picks, expires, now)

            return Step(
                f"{label}: {picks}, expiring {expires}",
                lambda m: m.reserve(order_id, picks, expires, now),
                lambda: self._stage(reserve()),
                reserve,
            )
        if isinstance(spec, DoRelease):
            line = None if spec.whole_order else line_id
            everything = spec.include_allocated

            def release() -> Release:
                return Release(order_id, line, everything)

            return Step(
                f"release {order_id}/{line or '*'}{' with allocated' if everything else ''}",
                lambda m: m.release(order_id, line, everything),
                lambda: self._stage(release()),
                release,
            )
        if isinstance(spec, DoExpire):
            return Step(
                "expire reservations",
                lambda m: m.expire(now),
                inventory.expire_reservations,
                lambda: ExpireReservations(now),
            )
        if isinstance(spec, DoAllocate):
            shipment = self._next("S")
            return Step(
                f"allocate {order_id}/{line_id} to {shipment}",
                lambda m: m.allocate(order_id, line_id, shipment, now),
                lambda: inventory.allocate(order_id, line_id, shipment),
                lambda: Allocate(order_id, line_id, shipment, now),
            )
        if isinstance(spec, DoShip):
            return Step(
                f"ship {order_id}/{line_id}",
                lambda m: m.ship(order_id, line_id, now),
                lambda: inventory.ship(order_id, line_id),
                lambda: Ship(order_id, line_id, now),
            )
        sku, location, quantity = spec.sku, spec.location, spec.quantity
        return Step(
            f"restock {quantity} {sku} at {location} from {order_id}/{line_id}",
            lambda m: m.restock(sku, location, quantity, order_id, line_id),
            lambda: inventory.restock(
                sku, location=location, quantity=quantity, order_id=order_id, line_id=line_id
            ),
            lambda: Restock(sku, location, quantity, order_id, line_id, now),
            invalid_number=quantity < 1,
        )

    def snapshot(self) -> dict[object, object]:
        """Everything a change could touch: levels, items with every stored
        reservation (expired ones too), ledgers."""
        inventory = self.shop.inventory
        state: dict[object, object] = {}
        for sku in SKUS:
            state[sku] = inventory.levels(sku)
            for location in LOCATIONS:
                item = inventory.item(sku, location)
                state[(sku, location)] = (
                    None
                    if item is None
                    else (item.on_hand, item.backorder_limit, sorted(item.reservations.items())),
                    inventory.movements(sku, location),
                )
        return state

    def attempt(
        self, label: str, run: Callable[[], None], expected: Model, refusal: Refused | None
    ) -> None:
        """Run a change and compare its outcome with the model's verdict."""
        before = None if refusal is None else self.snapshot()
        error: OrderkitError | None = None
        try:
            run()
        except OrderkitError as raised:
            error = raised
        if refusal is None:
            assert error is None, f"{label}: the model accepts it, orderkit refused: {error!r}"
            self.model = expected
            return
        names = [e.__name__ for e in refusal.errors]
        assert error is not None, f"{label}: must fail with {names}, orderkit accepted it"
        assert type(error) in refusal.errors, f"{label}: expected {names}, got {error!r}"
        for name, value in refusal.expect.items() if isinstance(error, OutOfStock) else ():
            assert getattr(error, name) == value, (
                f"{label}: {type(error).__name__}.{name} is {getattr(error, name)!r}, "
                f"expected {value!r}"
            )
        assert self.snapshot() == before, f"{label} was refused ({error!r}) but changed stock"

    def single(self, spec: Spec) -> None:
        now = self.clock.now()
        expected = self.model.copy()
        step = self.resolve(spec, expected, now)
        try:
            step.on_model(expected)
            refusal = None
        except Refused as verdict:
            refusal = verdict
        self.attempt(step.label, step.via_service, expected, refusal)

    # ------------------------------------------------------------------ rules

    @initialize(
        quantities=st.lists(st.integers(0, 4), min_size=6, max_size=6),
        limits=st.lists(st.sampled_from((0, 2, None, 0)), min_size=6, max_size=6),
    )
    def opening_stock(self, quantities: list[int], limits: list[int | None]) -> None:
        """Receive some stock of most (sku, location) (0 leaves one unstocked), and
        allow backorders on some."""
        pairs = [(sku, location) for sku in SKUS for location in LOCATIONS]
        for (sku, location), quantity, limit in zip(pairs, quantities, limits, strict=True):
            if quantity:
                self.single(DoReceive(sku, location, quantity))
            if limit != 0:
                self.single(DoSetLimit(sku, location, limit))

    @rule(sku=SKU, location=SOME_LOCATION, quantity=QUANTITY)
    def receive(self, sku: str, location: str, quantity: int) -> None:
        self.single(DoReceive(sku, location, quantity))

    @rule(picks=PICKS, ttl=TTL)
    def reserve(self, picks: tuple[StockPick, ...], ttl: int | None) -> None:
        self.single(DoReserve(picks, ttl))

    @rule(line=LINE, sku=SKU, location=LOCATION, quantity=st.integers(1, 3), ttl=TTL)
    def reserve_one_line(
        self, line: str, sku: str, location: str, quantity: int, ttl: int | None
    ) -> None:
        """The common checkout: one line, a few units (so reserving happens often)."""
        self.single(DoReserve((StockPick(line, sku, location, quantity),), ttl))

    @rule(which=st.integers(0, 12), picks=TOP_UP, ttl=TTL)
    def reserve_more(
        self, which: int, picks: tuple[tuple[str, str, int], ...], ttl: int | None
    ) -> None:
        """Reserve more for a line that holds stock (open, expired or allocated),
        at its location or another."""
        self.single(DoTopUp(which, picks, ttl))

    @rule(which=TARGET, whole_order=st.booleans(), include_allocated=st.booleans())
    def release(self, which: int, whole_order: bool, include_allocated: bool) -> None:
        self.single(DoRelease(which, whole_order, include_allocated))

    @rule()
    def expire_reservations(self) -> None:
        self.single(DoExpire())
        now = self.clock.now()
        for sku in SKUS:
            for location in LOCATIONS:
                item = self.shop.inventory.item(sku, location)
                left = [] if item is None else item.reservations.values()
                expired = [r for r in left if not is_active(r, now)]
                assert not expired, f"expired reservations kept after the clean-up: {expired}"

    @rule(minutes=st.sampled_from((5, 10, 30)))
    def advance_clock(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    @rule(which=TARGET)
    def allocate(self, which: int) -> None:
        self.single(DoAllocate(which))

    @rule(which=TARGET)
    def ship(self, which: int) -> None:
        self.single(DoShip(which))

    @precondition(lambda self: self.model.live_lines(self.clock.now(), "open"))
    @rule(which=st.integers(0, 7))
    def allocate_and_ship(self, which: int) -> None:
        """Allocate an open line, then ship it: two commands, each checked."""
        open_lines = self.model.live_lines(self.clock.now(), "open")
        self.single(DoAllocate(which))
        allocated = self.model.live_lines(self.clock.now(), "allocated")
        if open_lines and open_lines[which % len(open_lines)] in allocated:
            self.single(DoShip(allocated.index(open_lines[which % len(open_lines)])))

    @rule(sku=SKU, location=LOCATION, delta=DELTA)
    def adjust(self, sku: str, location: str, delta: int) -> None:
        self.single(DoAdjust(sku, location, delta))

    def busy_item(self, which: int, *, backordered: bool = False) -> Key:
        """A (sku, location) holding active reservations (more than on hand, if
        ``backordered``), if there is one; else any."""
        now, model = self.clock.now(), self.model
        busy = [key for key in model.on_hand if model.reserved(key, now)]
        over = [key for key in busy if model.reserved(key, now) > model.on_hand[key]]
        pairs = (backordered and over) or busy or [(s, loc) for s in SKUS for loc in LOCATIONS]
        return pairs[which % len(pairs)]

    # The next two aim at the edge: ``offset`` 0 leaves exactly what the active
    # reservations need, -1 one unit too few.

    def has_busy_item(self) -> bool:
        now = self.clock.now()
        return any(self.model.reserved(key, now) for key in self.model.on_hand)

    @precondition(has_busy_item)
    @rule(which=st.integers(0, 5), offset=st.integers(-2, 2))
    def count(self, which: int, offset: int) -> None:
        """A stock count of a busy item finds ``offset`` units more than its
        reservations need (beyond the backorder limit); adjust by the difference."""
        key = self.busy_item(which)
        on_hand, limit = self.model.on_hand.get(key, 0), self.model.limits.get(key, 0)
        needed = self.model.reserved(key, self.clock.now()) - (limit or 0)
        counted = max(needed + offset, 0)
        self.single(DoAdjust(*key, counted - on_hand))

    @precondition(has_busy_item)
    @rule(which=st.integers(0, 5), offset=st.none() | st.integers(-2, 2))
    def change_backorders_of_a_busy_item(self, which: int, offset: int | None) -> None:
        """Set the backorder limit of a backordered item to ``offset`` units more
        than its reservations need (None: unlimited; below 0: invalid)."""
        key = self.busy_item(which, backordered=True)
        needed = self.model.reserved(key, self.clock.now()) - self.model.on_hand.get(key, 0)
        limit = None if offset is None else needed + offset
        self.single(DoSetLimit(*key, limit))

    @rule(sku=SKU, location=LOCATION, quantity=QUANTITY, which=TARGET)
    def restock(self, sku: str, location: str, quantity: int, which: int) -> None:
        self.single(DoRestock(sku, location, quantity, which))

    @rule(sku=SKU, location=LOCATION, limit=LIMIT)
    def set_backorder_limit(self, sku: str, location: str, limit: int | None) -> None:
        self.single(DoSetLimit(sku, location, limit))

    @rule(specs=st.lists(SPECS, min_size=2, max_size=3))
    def several_in_one_commit(self, specs: list[Spec]) -> None:
        """Stage several changes in one unit of work: all hold, or none does."""
        now = self.clock.now()
        expected = self.model.copy()
        steps: list[Step] = []
        refusal: Refused | None = None
        for spec in specs:
            step = self.resolve(spec, expected, now)
            steps.append(step)
            if refusal is None:
                try:
                    step.on_model(expected)
                except Refused as verdict:
                    refusal = verdict
        if any(step.invalid_number for step in steps):
            # the changes are made before any is staged, and a change may refuse a
            # bad number as it is made: then that InvalidQuantity comes first
            errors, expect = (refusal.errors, refusal.expect) if refusal else ((), {})
            refusal = Refused(*errors, InvalidQuantity, **expect)
        label = "one commit of [" + "; ".join(step.label for step in steps) + "]"
        self.attempt(
            label, lambda: self._stage(*(step.change() for step in steps)), expected, refusal
        )

    # ------------------------------------------------------------------ invariants

    @invariant()
    def stock_matches_the_model(self) -> None:
        now = self.clock.now()
        inventory = self.shop.inventory
        model = self.model
        stored: dict[HoldKey, tuple[int, datetime | None, str | None]] = {}
        for sku in SKUS:
            levels = {level.location: level for level in inventory.levels(sku)}
            assert set(levels) == {loc for s, loc in model.on_hand if s == sku}, sku
            for location in LOCATIONS:
                key = (sku, location)
                item = inventory.item(sku, location)
                movements = inventory.movements(sku, location)
                if key not in model.on_hand:
                    assert item is None, key
                    assert movements == [], key
                    continue
                assert item is not None, key
                level = levels[location]
                # the store's own invariants first, then agreement with the model
                assert level.on_hand >= 0, (key, level)
                assert item.on_hand == level.on_hand, (key, item.on_hand, level)
                assert sum(m.quantity for m in movements) == level.on_hand, (key, movements)
                active = [r for r in item.reservations.values() if is_active(r, now)]
                assert level.reserved == sum(r.quantity for r in active), (  # expired: never
                    key,
                    level,
                    item.reservations,
                )
                if item.backorder_limit is None:
                    assert level.available is None, (key, level)
                else:
                    assert level.reserved <= level.on_hand + item.backorder_limit, (key, item)
                    assert level.available == (
                        level.on_hand + item.backorder_limit - level.reserved
                    ), (key, level, item.backorder_limit)
                assert level.on_hand == model.on_hand[key], (key, level, model.on_hand[key])
                ledger = [(m.kind.value, m.quantity, m.order_id, m.line_id) for m in movements]
                assert ledger == model.ledger[key], (key, ledger, model.ledger[key])
                assert item.backorder_limit == model.limits[key], (key, item, model.limits[key])
                assert level.reserved == model.reserved(key, now), (key, level, model.holds)
                for r in active:
                    stored[(r.order_id, r.line_id, sku, location)] = held(r)
        wanted = model.active_holds(now)
        assert stored == wanted, (stored, wanted)
        for order_id in model.orders:
            by_order = {
                (order_id, r.line_id, sku, location): held(r)
                for sku, location, r in inventory.reservations(order_id)
                if is_active(r, now)
            }
            assert by_order == {k: v for k, v in wanted.items() if k[0] == order_id}, order_id


class SqliteInventoryMachine(InventoryMachine):
    """The same walk on a real SQLite file, one fresh file per example."""

    def make_shop(self) -> Shop:
        self.folder = tempfile.mkdtemp(prefix="orderkit-inventory-")
        return Shop.open(f"{self.folder}/shop.db", clock=self.clock, ids=SequentialIds())

    def teardown(self) -> None:
        super().teardown()
        shutil.rmtree(self.folder, ignore_errors=True)


SETTINGS = settings(
    max_examples=50,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    # no "explain" phase: on a failure it spends minutes re-running this machine
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
InventoryMachine.TestCase.settings = SETTINGS
SqliteInventoryMachine.TestCase.settings = settings(SETTINGS, max_examples=20)
TestInventoryInMemory = InventoryMachine.TestCase
TestInventoryOnSqlite = SqliteInventoryMachine.TestCase


# --------------------------------------------------------------------------- replays
#
# Sequences the machine found, replayed step by step on both stores so that they
# fail (or pass) every time, not only when the random search comes across them.


def _allocate_a_line_with_an_expired_part(state: InventoryMachine) -> None:
    """L1 holds 1 unit at WH-1 (expired at once) and 1 at WH-2 (no expiry): the line
    holds an active reservation, so allocating it must succeed."""
    state.opening_stock(quantities=[1, 1, 0, 0, 0, 0], limits=[0] * 6)
    state.reserve_one_line(line="L1", sku="SKU-A", location="WH-1", quantity=1, ttl=0)
    state.stock_matches_the_model()
    state.reserve_more(which=0, picks=(("SKU-A", "WH-2", 1),), ttl=None)
    state.stock_matches_the_model()
    state.allocate(which=0)
    state.stock_matches_the_model()


def _ship_a_line_with_an_expired_part(state: InventoryMachine) -> None:
    """L1 is allocated at WH-2, then reserves 1 more at WH-1 that expires at once:
    the expired part must not stop the allocated units from shipping."""
    state.opening_stock(quantities=[1, 1, 0, 0, 0, 0], limits=[0] * 6)
    state.reserve_one_line(line="L1", sku="SKU-A", location="WH-2", quantity=1, ttl=None)
    state.stock_matches_the_model()
    state.allocate(which=0)
    state.stock_matches_the_model()
    state.reserve_more(which=0, picks=(("SKU-A", "WH-1", 1),), ttl=0)
    state.stock_matches_the_model()
    state.ship(which=0)
    state.stock_matches_the_model()


@pytest.mark.parametrize(
    "scenario",
    [_allocate_a_line_with_an_expired_part, _ship_a_line_with_an_expired_part],
    ids=["allocate", "ship"],
)
@pytest.mark.parametrize(
    "machine", [InventoryMachine, SqliteInventoryMachine], ids=["memory", "sqlite"]
)
def test_an_expired_part_of_a_line_is_ignored(
    machine: type[InventoryMachine], scenario: Callable[[InventoryMachine], None]
) -> None:
    """Found by the machine: a part of a line that has expired, but that no
    clean-up has removed yet, must not make allocate or ship refuse the line."""
    state = machine()
    try:
        scenario(state)
    finally:
        state.teardown()
