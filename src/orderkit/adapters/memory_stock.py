"""Stock in memory: the reference implementation of the stock repository.

Changes are applied through :class:`~orderkit.domain.inventory.StockItem`'s own
methods, on copies, and installed only when every change of a commit holds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import datetime

from orderkit.adapters.repository import StagedStock
from orderkit.domain.inventory import Location, Movement, Reservation, StockItem, StockLevel
from orderkit.domain.stock_changes import (
    AddLocation,
    Adjust,
    Allocate,
    ExpireReservations,
    KeepReservations,
    Receive,
    Release,
    Reserve,
    Restock,
    SetBackorderLimit,
    Ship,
    StockChange,
)
from orderkit.errors import ReservationNotFound, UnknownLocation, UnknownSku

__all__ = ["MemoryStock", "MemoryStockRepository"]

Key = tuple[str, str]


def _copy(item: StockItem) -> StockItem:
    return StockItem(
        item.sku, item.location, item.on_hand, item.backorder_limit, dict(item.reservations)
    )


class MemoryStock:
    """Committed stock of a :class:`~orderkit.adapters.memory.MemoryStore` (guarded by its lock)."""

    def __init__(self, lock: threading.RLock | None = None) -> None:
        self.lock = lock or threading.RLock()
        self.locations: dict[str, Location] = {}
        self.items: dict[Key, StockItem] = {}
        self.ledger: list[Movement] = []

    def apply(self, changes: Sequence[StockChange]) -> None:
        """Apply ``changes`` all or none; the caller holds the store lock."""
        if not changes:
            return
        work = _Work(self)
        for change in changes:
            work.apply(change)
        self.locations.update(work.locations)
        self.items.update(work.items)
        self.ledger.extend(m for item in work.items.values() for m in item.pending_movements)
        for item in work.items.values():
            item.pending_movements.clear()


class _Work:
    """Copies of the stock items one commit touches."""

    def __init__(self, stock: MemoryStock) -> None:
        self.stock = stock
        self.locations: dict[str, Location] = {}
        self.items: dict[Key, StockItem] = {}

    def location_ids(self) -> set[str]:
        return set(self.stock.locations) | set(self.locations)

    def item(self, sku: str, location: str, *, create: bool = False) -> StockItem:
        key = (sku, location)
        if key not in self.items:
            current = self.stock.items.get(key)
            if current is not None:
                self.items[key] = _copy(current)
            elif location not in self.location_ids():
                raise UnknownLocation(location)
            elif not create:
                raise UnknownSku(sku)
            else:
                self.items[key] = StockItem(sku, location)
        return self.items[key]

    def holding(self, order_id: str, line_id: str | None) -> list[StockItem]:
        keys = {
            key
            for source in (self.stock.items, self.items)
            for key, item in source.items()
            if any(
                order == order_id and (line_id is None or line == line_id)
                for order, line in item.reservations
            )
        }
        return [self.item(*key) for key in sorted(keys)]

    def active_parts(
        self, order_id: str, line_id: str, now: datetime, location: str | None = None
    ) -> list[StockItem]:
        """The items (at ``location``, if given) holding an active part of a line (expired,
        unallocated parts are skipped); raises :class:`ReservationNotFound` when none."""
        parts = [
            item
            for item in self.holding(order_id, line_id)
            if item.reservations[(order_id, line_id)].is_active(now)
            and (location is None or item.location == location)
        ]
        if not parts:
            raise ReservationNotFound(None, None, order_id, line_id)
        return parts

    def apply(self, change: StockChange) -> None:
        if isinstance(change, AddLocation):
            self.locations[change.location.id] = change.location
        elif isinstance(change, Receive):
            self.item(change.sku, change.location, create=True).receive(
                change.quantity, change.at, change.reason
            )
        elif isinstance(change, Adjust):
            self.item(change.sku, change.location).adjust(change.delta, change.at, change.reason)
        elif isinstance(change, SetBackorderLimit):
            self.item(change.sku, change.location, create=True).set_backorder_limit(
                change.limit, change.at
            )
        elif isinstance(change, Reserve):
            grouped: dict[Key, list[Reservation]] = {}
            for pick in sorted(change.picks, key=lambda p: (p.sku, p.location, p.line_id)):
                grouped.setdefault((pick.sku, pick.location), []).append(
                    Reservation(change.order_id, pick.line_id, pick.quantity, change.expires_at)
                )
            for (sku, location), holds in grouped.items():
                self.item(sku, location).reserve(holds, change.now)
        elif isinstance(change, Release):
            for item in self.holding(change.order_id, change.line_id):
                item.release(change.order_id, change.line_id, change.include_allocated)
        elif isinstance(change, KeepReservations):
            for item in self.holding(change.order_id, None):
                item.keep(change.order_id, change.now)
        elif isinstance(change, ExpireReservations):
            for key, item in list(self.stock.items.items()):
                if any(not r.is_active(change.now) for r in item.reservations.values()):
                    self.item(*key).expire(change.now)
        elif isinstance(change, Allocate):
            parts = self.active_parts(change.order_id, change.line_id, change.now, change.location)
            for item in parts:
                item.allocate(change.order_id, change.line_id, change.shipment_id, change.now)
        elif isinstance(change, Ship):
            for item in self.active_parts(
                change.order_id, change.line_id, change.at, change.location
            ):
                item.ship(change.order_id, change.line_id, change.at)
        elif isinstance(change, Restock):
            self.item(change.sku, change.location).restock(
                change.quantity, change.at, change.order_id, change.line_id, change.reason
            )
        else:  # pragma: no cover - the union is closed
            raise TypeError(f"unknown stock change {change!r}")


def level(item: StockItem, now: datetime) -> StockLevel:
    """The availability view of a stock item at ``now``."""
    return StockLevel(
        item.sku, item.location, item.on_hand, item.reserved(now), item.available(now)
    )


class MemoryStockRepository(StagedStock):
    """Stock as seen by one unit of work: committed reads, staged changes."""

    def __init__(self, stock: MemoryStock) -> None:
        super().__init__()
        self._stock = stock

    def locations(self) -> list[Location]:
        """Every location, by priority then id."""
        with self._stock.lock:
            found = list(self._stock.locations.values())
        return sorted(found, key=lambda loc: (loc.priority, loc.id))

    def levels(self, skus: Iterable[str], now: datetime) -> dict[Key, StockLevel]:
        """Availability of ``skus`` at every location that stocks them."""
        wanted = set(skus)
        with self._stock.lock:
            return {
                key: level(item, now) for key, item in self._stock.items.items() if key[0] in wanted
            }

    def item(self, sku: str, location: str) -> StockItem | None:
        """A copy of one stock item with its reservations, or None."""
        with self._stock.lock:
            item = self._stock.items.get((sku, location))
            return None if item is None else _copy(item)

    def reservations(self, order_id: str) -> list[tuple[str, str, Reservation]]:
        """(sku, location, reservation) for every reservation an order holds."""
        with self._stock.lock:
            found = [
                (sku, location, reservation)
                for (sku, location), item in self._stock.items.items()
                for (order, _), reservation in item.reservations.items()
                if order == order_id
            ]
        return sorted(found, key=lambda row: (row[0], row[1], row[2].line_id))

    def movements(self, sku: str, location: str) -> list[Movement]:
        """The ledger of one stock item, oldest first."""
        with self._stock.lock:
            return [m for m in self._stock.ledger if m.sku == sku and m.location == location]
