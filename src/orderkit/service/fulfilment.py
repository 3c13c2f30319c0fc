"""The fulfilment service (stage 3): shipments from reserved stock, pick lists, packing.

Reach it as ``shop.fulfilment``. :meth:`FulfilmentService.start` turns an
acknowledged order's reservations into one shipment per location (a split when
the sourcing strategy spread the order over several), allocating the reserved
units to it in the same transaction. Only some lines may be started (a partial
shipment); the rest can follow later or be cancelled
(:meth:`~orderkit.service.orders.OrderService.cancel_lines`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from attrs import frozen

from orderkit.domain.carrier import Parcel
from orderkit.domain.inventory import StockDemand
from orderkit.domain.lifecycle import Lifecycle
from orderkit.domain.order import Order, OrderState
from orderkit.domain.shipment import Shipment, ShipmentLine, order_progress
from orderkit.domain.stock_changes import Allocate, Reserve
from orderkit.errors import FulfilmentError, InvalidField
from orderkit.ports import Clock, IdSource, UnitOfWork, UnitOfWorkFactory
from orderkit.service.dispatch import Dispatcher
from orderkit.service.inventory import check_cover
from orderkit.service.settings import ShopSettings
from orderkit.service.transaction import CommandRunner

__all__ = [
    "UNTRACKED_LOCATION",
    "FulfilmentService",
    "PickListLine",
    "follow_shipments",
    "shipped_units",
]

UNTRACKED_LOCATION = "-"
"""The location of shipments in a shop that does not track stock."""


@frozen
class PickListLine:
    """One row of a pick list: take ``quantity`` of ``sku`` from ``bin`` at ``location``."""

    location: str
    bin: str
    sku: str
    quantity: int
    shipment_id: str
    order_id: str
    line_id: str


def shipped_units(shipments: Iterable[Shipment]) -> dict[str, int]:
    """Units per order line in shipments that are under way or done (not cancelled)."""
    units: dict[str, int] = {}
    for shipment in shipments:
        if shipment.state == "cancelled":
            continue
        for line in shipment.lines:
            units[line.line_id] = units.get(line.line_id, 0) + line.quantity
    return units


def follow_shipments(
    uow: UnitOfWork,
    order: Order,
    now: datetime,
    lifecycle: Lifecycle,
    changed: Sequence[Shipment] = (),
) -> None:
    """Move ``order`` along with its shipments (shipped, then delivered), and stage it in
    ``uow`` whether it moved or not. ``changed`` are shipments staged in this unit of work
    but not committed."""
    mine = {shipment.id: shipment for shipment in changed}
    shipments = [mine.pop(s.id, s) for s in uow.shipments.for_order(order.id)]
    shipments.extend(mine.values())
    open_units = {line.line_id: line.quantity for line in order.open_lines}
    trigger = order_progress(open_units, shipments)
    steps = {"mark_shipped": ["mark_shipped"], "mark_delivered": ["mark_shipped", "mark_delivered"]}
    for step in steps.get(trigger or "", []):
        if lifecycle.can_fire(order, step):
            order.fire(step, now, lifecycle)
    # Saved even when it did not move: its version then serialises every change to its
    # shipments, so two parcels handed over at once cannot both miss being the last.
    uow.orders.save(order)


class FulfilmentService(CommandRunner):
    """Shipments, pick lists and packing. Reach it as ``shop.fulfilment``."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        *,
        clock: Clock,
        ids: IdSource,
        settings: ShopSettings,
        dispatcher: Dispatcher,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._ids = ids
        self._settings = settings
        self._dispatcher = dispatcher
        self._lifecycle = settings.order_lifecycle.build()

    def start(self, order_id: str, line_ids: Iterable[str] | None = None) -> list[Shipment]:
        """Start fulfilling the order's open lines (or only ``line_ids``): one shipment per
        location holding their reserved stock, which is allocated to it.

        The order moves to ``fulfilling`` (blocked while it is on hold). Raises
        :class:`FulfilmentError` when a line is already in a shipment or has no stock
        held any more (its reservation expired), and
        :class:`~orderkit.errors.InvalidTransition` /
        :class:`~orderkit.errors.TransitionBlocked` when the order cannot be fulfilled.
        """
        wanted = None if line_ids is None else list(dict.fromkeys(line_ids))

        def work(uow: UnitOfWork, now: datetime) -> list[Shipment]:
            order = uow.orders.get(order_id)
            uow.orders.save(order)  # always: its version serialises starts, cancels and shipping
            if order.state != OrderState.FULFILLING.value:
                order.start_fulfilment(now, self._lifecycle)
            started = shipped_units(uow.shipments.for_order(order_id))
            open_ids = [line.line_id for line in order.open_lines]
            chosen = [i for i in open_ids if i not in started] if wanted is None else wanted
            for line_id in chosen:
                order.line(line_id)
                if line_id not in open_ids:
                    raise FulfilmentError(f"order {order_id} line {line_id} is cancelled")
                if line_id in started:
                    raise FulfilmentError(f"order {order_id} line {line_id} is already shipping")
            if not chosen:
                raise FulfilmentError(f"order {order_id} has no line left to fulfil")
            shipments = self._shipments(uow, order, chosen, now)
            for shipment in shipments:
                uow.shipments.add(shipment)
            return shipments

        return self._run(work)

    def _shipments(
        self, uow: UnitOfWork, order: Order, line_ids: list[str], now: datetime
    ) -> list[Shipment]:
        by_location: dict[str, list[ShipmentLine]] = {}
        if not self._settings.track_stock:
            for line_id in line_ids:
                item = order.line(line_id)
                by_location.setdefault(UNTRACKED_LOCATION, []).append(
                    ShipmentLine(item.line_id, item.sku, item.quantity)
                )
        else:
            held: dict[tuple[str, str], int] = {}
            for _, location, reservation in uow.stock.reservations(order.id):
                if (
                    reservation.line_id in line_ids
                    and reservation.shipment_id is None
                    and reservation.is_active(now)
                ):
                    key = (location, reservation.line_id)
                    held[key] = held.get(key, 0) + reservation.quantity
                    by_location.setdefault(location, [])
            missing = []
            for line_id in line_ids:
                line = order.line(line_id)
                have = sum(qty for (_, lid), qty in held.items() if lid == line_id)
                if have < line.quantity:  # its reservation (or part of it) expired
                    missing.append(StockDemand(line_id, line.sku, line.quantity - have))
            if missing:
                # reserve again from what is available now; the commit checks it atomically
                levels = uow.stock.levels({d.sku for d in missing}, now)
                picks = self._settings.sourcing.source(missing, levels, uow.stock.locations())
                check_cover(missing, picks)
                uow.stock.stage(Reserve(order.id, tuple(picks), None, now))
                for pick in picks:
                    key = (pick.location, pick.line_id)
                    held[key] = held.get(key, 0) + pick.quantity
                    by_location.setdefault(pick.location, [])
            for line_id in line_ids:
                line = order.line(line_id)
                places = {loc: qty for (loc, lid), qty in held.items() if lid == line_id}
                for location, quantity in sorted(places.items()):
                    by_location[location].append(ShipmentLine(line_id, line.sku, quantity))
        shipments = []
        for location, lines in sorted(by_location.items()):  # one shipment per location
            shipment = Shipment.create(
                shipment_id=self._ids.new_id("shipment"),
                order_id=order.id,
                location=location,
                ship_to=order.shipping_address,
                lines=lines,
                at=now,
            )
            if self._settings.track_stock:
                for part in lines:
                    uow.stock.stage(Allocate(order.id, part.line_id, shipment.id, now, location))
            shipments.append(shipment)
        return shipments

    def pick_list(self, shipment_ids: Sequence[str]) -> list[PickListLine]:
        """What to take from where for these shipments, by location, bin, then SKU."""
        with self._uow() as uow:
            locations = {location.id: location for location in uow.stock.locations()}
            rows = []
            for shipment_id in shipment_ids:
                shipment = uow.shipments.get(shipment_id)
                place = locations.get(shipment.location)
                for line in shipment.lines:
                    rows.append(
                        PickListLine(
                            shipment.location,
                            place.bin_of(line.sku) if place else "",
                            line.sku,
                            line.quantity,
                            shipment.id,
                            shipment.order_id,
                            line.line_id,
                        )
                    )
        return sorted(rows, key=lambda r: (r.location, r.bin, r.sku, r.shipment_id, r.line_id))

    def pick(self, shipment_id: str) -> Shipment:
        """The shipment's units were picked."""
        return self._change(shipment_id, lambda shipment, now: shipment.pick(now))

    def pack(self, shipment_id: str, parcels: Iterable[Parcel]) -> Shipment:
        """The shipment was packed into ``parcels``."""
        boxes = list(parcels) if not isinstance(parcels, Parcel) else [parcels]
        return self._change(shipment_id, lambda shipment, now: shipment.pack(boxes, now))

    def get(self, shipment_id: str) -> Shipment:
        """The shipment; raises :class:`~orderkit.errors.ShipmentNotFound`."""
        with self._uow() as uow:
            return uow.shipments.get(shipment_id)

    def shipments(self, order_id: str) -> Sequence[Shipment]:
        """The order's shipments, oldest first."""
        with self._uow() as uow:
            return uow.shipments.for_order(order_id)

    def list(
        self, *, state: str | None = None, limit: int = 50, offset: int = 0
    ) -> Sequence[Shipment]:
        """Shipments in ``state`` (any when None), oldest first, paged."""
        with self._uow() as uow:
            return uow.shipments.list(state=state, limit=limit, offset=offset)

    def _change(self, shipment_id: str, change: Callable[[Shipment, datetime], None]) -> Shipment:
        if not isinstance(shipment_id, str):
            raise InvalidField("must be a shipment id", field="shipment_id", value=shipment_id)

        def work(uow: UnitOfWork, now: datetime) -> Shipment:
            shipment = uow.shipments.get(shipment_id)
            change(shipment, now)
            uow.shipments.save(shipment)
            return shipment

        return self._run(work)
