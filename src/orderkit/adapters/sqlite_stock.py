"""Stock on SQLite: every check and change is one conditional statement.

Changes are applied inside the unit of work's ``BEGIN IMMEDIATE`` transaction,
so a placement's reservations, its order row and its events commit together or
not at all. A reservation is ``UPDATE stock SET reserved = reserved + n WHERE
on_hand + backorder_limit - reserved >= n`` with the row count checked, once per
(SKU, location) for the order's total demand, in SKU-then-location order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from orderkit.adapters import sql
from orderkit.adapters.repository import StagedStock
from orderkit.adapters.sqlbase import SqlConnection, SqlStore
from orderkit.domain.inventory import (
    Location,
    Movement,
    MovementKind,
    Reservation,
    StockItem,
    StockLevel,
    check_backorder_limit,
    check_quantity,
    group_picks,
    removable_units,
)
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
from orderkit.errors import (
    OutOfStock,
    ReservationNotFound,
    UnknownLocation,
    UnknownSku,
)
from orderkit.serialization import dumps, loads

__all__ = ["SqliteStockRepository", "apply_stock_changes"]


def _ts(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _dt(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, timezone.utc)


class SqliteStockRepository(StagedStock):
    """Stock as one unit of work sees it: committed reads, changes staged for commit."""

    def __init__(self, store: SqlStore) -> None:
        super().__init__()
        self._store = store

    def locations(self) -> list[Location]:
        """Every location, by priority then id."""
        rows = self._store.connection().execute(sql.LIST_LOCATIONS)
        return [loads(document, Location) for (document,) in rows]

    def levels(self, skus: Iterable[str], now: datetime) -> dict[tuple[str, str], StockLevel]:
        """Availability per (sku, location), counting only active reservations."""
        conn = self._store.connection()
        levels: dict[tuple[str, str], StockLevel] = {}
        for sku in sorted(set(skus)):
            rows = conn.execute(sql.STOCK_LEVELS, {"sku": sku, "now": _ts(now)})
            for sku_, location, on_hand, limit, reserved in rows:
                available = None if limit is None else on_hand + limit - reserved
                levels[(sku_, location)] = StockLevel(sku_, location, on_hand, reserved, available)
        return levels

    def item(self, sku: str, location: str) -> StockItem | None:
        """One stock item with its reservations (expired ones included until purged)."""
        conn = self._store.connection()
        row = conn.execute(sql.SELECT_STOCK, {"sku": sku, "location": location}).fetchone()
        if row is None:
            return None
        on_hand, _, limit = row
        reservations = {
            (order_id, line_id): Reservation(order_id, line_id, quantity, _dt(expires), shipment)
            for order_id, line_id, quantity, expires, shipment in conn.execute(
                sql.STOCK_RESERVATIONS, {"sku": sku, "location": location}
            )
        }
        return StockItem(sku, location, on_hand, limit, reservations)

    def reservations(self, order_id: str) -> list[tuple[str, str, Reservation]]:
        """(sku, location, reservation) for each reservation the order holds."""
        rows = self._store.connection().execute(
            sql.ORDER_RESERVATIONS, {"order_id": order_id, "line_id": None}
        )
        return [
            (sku, location, Reservation(order_id, line_id, quantity, _dt(expires), shipment))
            for sku, location, line_id, quantity, expires, shipment in rows
        ]

    def movements(self, sku: str, location: str) -> list[Movement]:
        """The ledger of one stock item, oldest first."""
        rows = self._store.connection().execute(
            sql.SELECT_MOVEMENTS, {"sku": sku, "location": location}
        )
        return [
            Movement(
                sku_,
                loc,
                MovementKind(kind),
                quantity,
                _dt(at) or datetime.min,
                reason,
                order_id,
                line_id,
            )
            for sku_, loc, kind, quantity, at, reason, order_id, line_id in rows
        ]


def apply_stock_changes(conn: SqlConnection, changes: Iterable[StockChange]) -> None:
    """Apply staged changes inside the caller's write transaction; raise to roll back."""
    for change in changes:
        _APPLY[type(change)](conn, change)


def _move(
    conn: SqlConnection,
    sku: str,
    location: str,
    kind: MovementKind,
    quantity: int,
    at: datetime,
    reason: str,
    order_id: str | None = None,
    line_id: str | None = None,
) -> None:
    conn.execute(
        sql.INSERT_MOVEMENT,
        {
            "sku": sku,
            "location": location,
            "kind": kind.value,
            "quantity": quantity,
            "at": _ts(at),
            "reason": reason,
            "order_id": order_id,
            "line_id": line_id,
        },
    )


def _require_location(conn: SqlConnection, location: str) -> None:
    if conn.execute(sql.LOCATION_EXISTS, {"location": location}).fetchone() is None:
        raise UnknownLocation(location)


def _stock_row(conn: SqlConnection, sku: str, location: str) -> tuple[int, int, int | None]:
    row = conn.execute(sql.SELECT_STOCK, {"sku": sku, "location": location}).fetchone()
    if row is None:
        _require_location(conn, location)
        raise UnknownSku(sku)
    return row  # type: ignore[no-any-return]


def _purge(conn: SqlConnection, sku: str, location: str, now: datetime) -> None:
    expired = conn.execute(
        sql.EXPIRED_OF_STOCK, {"sku": sku, "location": location, "now": _ts(now)}
    ).fetchall()
    for order_id, line_id, _quantity in expired:
        _drop(conn, sku, location, order_id, line_id)


def _drop(conn: SqlConnection, sku: str, location: str, order_id: str, line_id: str) -> None:
    """Delete one reservation and lower the stock's counter by what the row held, if the row
    was still there: a concurrent transaction that dropped it first (PostgreSQL) already
    gave its units back, and a quantity read earlier may be stale."""
    key = {"sku": sku, "location": location}
    row = conn.execute(
        sql.DROP_RESERVATION, {**key, "order_id": order_id, "line_id": line_id}
    ).fetchone()
    if row is not None:
        conn.execute(sql.TAKE_RESERVED, {**key, "quantity": row[0]})


def _add_location(conn: SqlConnection, change: AddLocation) -> None:
    conn.execute(
        sql.UPSERT_LOCATION,
        {
            "id": change.location.id,
            "document": dumps(change.location),
            "priority": change.location.priority,
        },
    )


def _receive(conn: SqlConnection, change: Receive) -> None:
    # Receive, Adjust and Restock validate their own fields when built.
    _require_location(conn, change.location)
    conn.execute(
        sql.ADD_STOCK, {"sku": change.sku, "location": change.location, "quantity": change.quantity}
    )
    _move(
        conn,
        change.sku,
        change.location,
        MovementKind.RECEIVED,
        change.quantity,
        change.at,
        change.reason,
    )


def _adjust(conn: SqlConnection, change: Adjust) -> None:
    on_hand, _, _ = _stock_row(conn, change.sku, change.location)
    _purge(conn, change.sku, change.location, change.at)
    params = {"sku": change.sku, "location": change.location, "delta": change.delta}
    if conn.execute(sql.ADJUST_IF_POSSIBLE, params).rowcount != 1:
        _, reserved, limit = _stock_row(conn, change.sku, change.location)
        raise OutOfStock(
            change.sku,
            -change.delta,
            removable_units(on_hand, reserved, limit),
            location=change.location,
        )
    _move(
        conn,
        change.sku,
        change.location,
        MovementKind.ADJUSTED,
        change.delta,
        change.at,
        change.reason,
    )


def _set_backorder(conn: SqlConnection, change: SetBackorderLimit) -> None:
    check_backorder_limit(change.limit)
    _require_location(conn, change.location)
    key = {"sku": change.sku, "location": change.location}
    conn.execute(sql.ENSURE_STOCK, key)
    _purge(conn, change.sku, change.location, change.at)
    if conn.execute(sql.SET_BACKORDER_IF_POSSIBLE, {**key, "limit": change.limit}).rowcount != 1:
        on_hand, reserved, _ = _stock_row(conn, change.sku, change.location)
        raise OutOfStock(
            change.sku, reserved, on_hand + (change.limit or 0), location=change.location
        )


def _reserve(conn: SqlConnection, change: Reserve) -> None:
    for (sku, location), picks in group_picks(change.picks).items():
        demand = 0
        for pick in picks:  # picks come from a pluggable strategy: checked here
            check_quantity(pick.quantity)
            demand += pick.quantity
        key = {"sku": sku, "location": location}
        _stock_row(conn, sku, location)
        _purge(conn, sku, location, change.now)
        if conn.execute(sql.RESERVE_IF_AVAILABLE, {**key, "quantity": demand}).rowcount != 1:
            on_hand, reserved, limit = _stock_row(conn, sku, location)
            available = on_hand + (limit or 0) - reserved
            raise OutOfStock(sku, demand, max(available, 0), location=location)
        for pick in picks:
            conn.execute(
                sql.UPSERT_RESERVATION,
                {
                    **key,
                    "order_id": change.order_id,
                    "line_id": pick.line_id,
                    "quantity": pick.quantity,
                    "expires_at": _ts(change.expires_at),
                },
            )


def _rows(conn: SqlConnection, order_id: str, line_id: str | None) -> list[tuple]:  # type: ignore[type-arg]
    return conn.execute(
        sql.ORDER_RESERVATIONS, {"order_id": order_id, "line_id": line_id}
    ).fetchall()


def _release(conn: SqlConnection, change: Release) -> None:
    for sku, location, line_id, _quantity, _, shipment in _rows(
        conn, change.order_id, change.line_id
    ):
        if shipment is None or change.include_allocated:
            _drop(conn, sku, location, change.order_id, line_id)


def _keep(conn: SqlConnection, change: KeepReservations) -> None:
    conn.execute(sql.KEEP_RESERVATIONS, {"order_id": change.order_id, "now": _ts(change.now)})


def _expire(conn: SqlConnection, change: ExpireReservations) -> None:
    for sku, location, order_id, line_id, _quantity in conn.execute(
        sql.EXPIRED_ALL, {"now": _ts(change.now)}
    ).fetchall():
        _drop(conn, sku, location, order_id, line_id)


def _active_rows(
    conn: SqlConnection,
    order_id: str,
    line_id: str,
    now: datetime,
    location: str | None = None,
) -> list[tuple]:  # type: ignore[type-arg]
    """A line's reservation rows (at ``location``, if given), less its expired
    unallocated parts; none raises."""
    moment = now.timestamp()
    rows = [
        row
        for row in _rows(conn, order_id, line_id)
        if (row[5] is not None or row[4] is None or row[4] > moment)
        and (location is None or row[1] == location)
    ]
    if not rows:
        raise ReservationNotFound(None, None, order_id, line_id)
    return rows


def _allocate(conn: SqlConnection, change: Allocate) -> None:
    for sku, location, line_id, _, _, _ in _active_rows(
        conn, change.order_id, change.line_id, change.now, change.location
    ):
        conn.execute(
            sql.ALLOCATE_RESERVATION,
            {
                "shipment_id": change.shipment_id,
                "order_id": change.order_id,
                "line_id": line_id,
                "sku": sku,
                "location": location,
            },
        )


def _ship(conn: SqlConnection, change: Ship) -> None:
    rows = _active_rows(conn, change.order_id, change.line_id, change.at, change.location)
    unallocated = [row for row in rows if row[5] is None]
    if unallocated:
        sku, location, line_id, *_ = unallocated[0]
        raise ReservationNotFound(sku, location, change.order_id, line_id)
    for sku, location, line_id, quantity, _, _ in rows:
        key = {"sku": sku, "location": location}
        if conn.execute(sql.SHIP_STOCK, {**key, "quantity": quantity}).rowcount != 1:
            on_hand, _, _ = _stock_row(conn, sku, location)
            raise OutOfStock(sku, quantity, on_hand, location=location)
        conn.execute(
            sql.DELETE_RESERVATION, {**key, "order_id": change.order_id, "line_id": line_id}
        )
        _move(
            conn,
            sku,
            location,
            MovementKind.SHIPPED,
            -quantity,
            change.at,
            "shipped",
            change.order_id,
            line_id,
        )


def _restock(conn: SqlConnection, change: Restock) -> None:
    _stock_row(conn, change.sku, change.location)
    conn.execute(
        sql.ADD_STOCK, {"sku": change.sku, "location": change.location, "quantity": change.quantity}
    )
    _move(
        conn,
        change.sku,
        change.location,
        MovementKind.RESTOCKED,
        change.quantity,
        change.at,
        change.reason,
        change.order_id,
        change.line_id,
    )


_APPLY: dict[type, Callable[[SqlConnection, Any], None]] = {
    AddLocation: _add_location,
    Receive: _receive,
    Adjust: _adjust,
    SetBackorderLimit: _set_backorder,
    Reserve: _reserve,
    Release: _release,
    ExpireReservations: _expire,
    KeepReservations: _keep,
    Allocate: _allocate,
    Ship: _ship,
    Restock: _restock,
}
