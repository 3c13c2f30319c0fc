"""The inventory service: locations, receiving, counts, backorders, and the stock an order holds.

Reach it as ``shop.inventory``. Every command is one unit of work; stock changes
are checked and applied atomically at commit (see :mod:`orderkit.domain.stock_changes`).
Placement reserves and cancellation releases through :class:`OrderService`, using
:func:`reserve_for_order`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from orderkit.domain.inventory import (
    Location,
    Movement,
    Reservation,
    SourcingStrategy,
    StockDemand,
    StockItem,
    StockLevel,
    StockPick,
)
from orderkit.domain.order import Order
from orderkit.domain.stock_changes import (
    AddLocation,
    Adjust,
    Allocate,
    ExpireReservations,
    Receive,
    Reserve,
    Restock,
    SetBackorderLimit,
    Ship,
    StockChange,
)
from orderkit.domain.values import MAX_ID_LENGTH, MAX_NOTE_LENGTH, check_text
from orderkit.errors import InvalidField, InvalidSettings, UnknownSku
from orderkit.ports import Clock, StockRepository, UnitOfWork, UnitOfWorkFactory
from orderkit.service.transaction import run_command

__all__ = ["InventoryService", "check_cover", "reserve_for_order"]


def reserve_for_order(
    stock: StockRepository,
    order: Order,
    sourcing: SourcingStrategy,
    now: datetime,
    ttl: timedelta | None,
) -> None:
    """Stage the reservation of every line of ``order``: all lines or none.

    Raises :class:`UnknownSku` for a SKU no location stocks, and
    :class:`~orderkit.errors.OutOfStock` when the order's total demand per SKU
    cannot be met; commit re-checks each (SKU, location) atomically.
    """
    demands = [StockDemand(line.line_id, line.sku, line.quantity) for line in order.lines]
    levels = stock.levels({d.sku for d in demands}, now)
    stocked = {sku for sku, _ in levels}
    for index, demand in enumerate(demands):
        if demand.sku not in stocked:
            raise UnknownSku(demand.sku).at(f"lines[{index}]")
    picks = sourcing.source(demands, levels, stock.locations())
    check_cover(demands, picks)
    expires = None if ttl is None else now + ttl
    stock.stage(Reserve(order.id, tuple(picks), expires, now))


def check_cover(demands: list[StockDemand], picks: list[StockPick]) -> None:
    """A sourcing strategy must place every unit of every line, and nothing else."""
    wanted = {(d.line_id, d.sku): d.quantity for d in demands}
    got: dict[tuple[str, str], int] = {}
    for pick in picks:
        got[(pick.line_id, pick.sku)] = got.get((pick.line_id, pick.sku), 0) + pick.quantity
    if got != wanted:
        raise InvalidSettings(
            "the sourcing strategy's picks do not cover the order's lines exactly",
            field="sourcing",
            value=sorted(got.items()),
        )


class InventoryService:
    """Stock commands and queries. Quantities are whole units; ``reason`` is free text."""

    def __init__(self, uow: UnitOfWorkFactory, *, clock: Clock, retries: int = 3) -> None:
        self._uow = uow
        self._clock = clock
        self._retries = retries

    def _now(self) -> datetime:
        return self._clock.now().astimezone(timezone.utc)

    def _apply(self, *changes: StockChange) -> None:
        def work(uow: UnitOfWork, _now: datetime) -> None:
            for change in changes:
                uow.stock.stage(change)

        # re-run only when the database aborted the transaction (a deadlock): the changes
        # are absolute facts, staged again as they were
        run_command(self._uow, self._clock, work, retries=self._retries, retry_on=None)

    def add_location(self, location: Location) -> None:
        """Add a location (or replace the one with the same id)."""
        if not isinstance(location, Location):
            raise InvalidField("must be a Location", field="location", value=location)
        self._apply(AddLocation(location))

    def locations(self) -> list[Location]:
        """Every location, by priority then id."""
        with self._uow() as uow:
            return uow.stock.locations()

    def receive(self, sku: str, *, location: str, quantity: int, reason: str = "received") -> None:
        """Record that ``quantity`` units of ``sku`` arrived at ``location``.

        Raises :class:`~orderkit.errors.UnknownLocation` for a location not added.
        """
        _sku(sku)
        _note(reason)
        self._apply(Receive(sku, location, quantity, self._now(), reason))

    def adjust(self, sku: str, *, location: str, delta: int, reason: str) -> None:
        """Correct on hand by ``delta`` after a count.

        Raises :class:`~orderkit.errors.OutOfStock` when it would leave fewer units
        than active reservations hold (beyond the backorder limit), or below zero.
        """
        _sku(sku)
        _note(reason, required=True)
        self._apply(Adjust(sku, location, delta, self._now(), reason))

    def set_backorder_limit(self, sku: str, *, location: str, limit: int | None) -> None:
        """Backorder policy: 0 denies (the default), N allows N units beyond on hand,
        None allows any number."""
        _sku(sku)
        self._apply(SetBackorderLimit(sku, location, limit, self._now()))

    def levels(self, sku: str) -> list[StockLevel]:
        """On hand, reserved and available for ``sku`` at each location that stocks it."""
        with self._uow() as uow:
            return sorted(
                uow.stock.levels([sku], self._now()).values(), key=lambda level: level.location
            )

    def item(self, sku: str, location: str) -> StockItem | None:
        """The stock item with its reservations, or None."""
        with self._uow() as uow:
            return uow.stock.item(sku, location)

    def reservations(self, order_id: str) -> list[tuple[str, str, Reservation]]:
        """(sku, location, reservation) for each reservation an order holds."""
        with self._uow() as uow:
            return uow.stock.reservations(order_id)

    def movements(self, sku: str, location: str) -> list[Movement]:
        """The movement ledger of one stock item, oldest first."""
        with self._uow() as uow:
            return uow.stock.movements(sku, location)

    def expire_reservations(self) -> None:
        """Drop every expired reservation now (availability never counts them anyway)."""
        self._apply(ExpireReservations(self._now()))

    def allocate(self, order_id: str, line_id: str, shipment_id: str) -> None:
        """Commit a line's reservations to a shipment; they stop expiring.

        Raises :class:`~orderkit.errors.ReservationNotFound` when the line holds no
        active reservation.
        """
        check_text(shipment_id, field="shipment_id", limit=MAX_ID_LENGTH)
        self._apply(Allocate(order_id, line_id, shipment_id, self._now()))

    def ship(self, order_id: str, line_id: str) -> None:
        """The allocated units of a line leave: on hand goes down."""
        self._apply(Ship(order_id, line_id, self._now()))

    def restock(
        self,
        sku: str,
        *,
        location: str,
        quantity: int,
        order_id: str,
        line_id: str,
        reason: str = "returned",
    ) -> None:
        """Returned units of an order line go back on hand."""
        _note(reason)
        self._apply(Restock(sku, location, quantity, order_id, line_id, self._now(), reason))


def _sku(sku: object) -> None:
    check_text(sku, field="sku", limit=MAX_ID_LENGTH)


def _note(reason: object, *, required: bool = False) -> None:
    check_text(reason, field="reason", limit=MAX_NOTE_LENGTH, required=required)
