"""Changes to stock that a unit of work stages and its store applies at commit.

Every change is plain data. The in-memory store applies it through
:class:`~orderkit.domain.inventory.StockItem`'s methods; SQL stores apply the same
rules as conditional statements, so that checking and changing are one step.
A commit applies its changes in order and either all of them hold or none do.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from attrs import Attribute, field, frozen

from orderkit.domain.inventory import Location, StockPick, at_least
from orderkit.domain.values import MAX_ID_LENGTH, MAX_NOTE_LENGTH, text
from orderkit.errors import InvalidQuantity

_ID = text(MAX_ID_LENGTH)
_REASON = text(MAX_NOTE_LENGTH, required=False)
_REQUIRED_REASON = text(MAX_NOTE_LENGTH)


_units = at_least(1)


def _delta(_instance: object, attribute: Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value == 0:
        raise InvalidQuantity("must be a non-zero whole number", field=attribute.name, value=value)


__all__ = [
    "AddLocation",
    "Adjust",
    "Allocate",
    "ExpireReservations",
    "KeepReservations",
    "Receive",
    "Release",
    "Reserve",
    "Restock",
    "SetBackorderLimit",
    "Ship",
    "StockChange",
]


@frozen
class AddLocation:
    """Add (or update) a location."""

    location: Location


@frozen
class Receive:
    """``quantity`` units of ``sku`` arrived at ``location`` (the stock item is created if new)."""

    sku: str = field(validator=_ID)
    location: str = field(validator=_ID)
    quantity: int = field(validator=_units)
    at: datetime
    reason: str = field(default="received", validator=_REASON)


@frozen
class Adjust:
    """Correct on hand by ``delta`` after a count."""

    sku: str = field(validator=_ID)
    location: str = field(validator=_ID)
    delta: int = field(validator=_delta)
    at: datetime
    reason: str = field(validator=_REQUIRED_REASON)


@frozen
class SetBackorderLimit:
    """Deny (0), allow up to ``limit`` units, or allow unlimited (None) backorders."""

    sku: str
    location: str
    limit: int | None
    at: datetime


@frozen
class Reserve:
    """Hold stock for an order: every pick or none, total demand per SKU and location."""

    order_id: str
    picks: tuple[StockPick, ...]
    expires_at: datetime | None
    now: datetime


@frozen
class Release:
    """Drop an order's reservations (one line's, or all); ``allocated`` ones too if asked."""

    order_id: str
    line_id: str | None = None
    include_allocated: bool = False


@frozen
class KeepReservations:
    """The order was confirmed: its active reservations stop expiring (they are kept
    until allocated or released). Expired ones are not revived."""

    order_id: str
    now: datetime


@frozen
class ExpireReservations:
    """Drop every reservation that has expired at ``now``."""

    now: datetime


@frozen
class Allocate:
    """Commit a line's active reservations (at ``location``, or everywhere when None)
    to a shipment (they stop expiring)."""

    order_id: str
    line_id: str
    shipment_id: str
    now: datetime
    location: str | None = None


@frozen
class Ship:
    """A line's allocated units (at ``location``, or everywhere when None) leave: on hand
    goes down."""

    order_id: str
    line_id: str
    at: datetime
    location: str | None = None


@frozen
class Restock:
    """Returned units of an order line go back on hand at ``location``."""

    sku: str = field(validator=_ID)
    location: str = field(validator=_ID)
    quantity: int = field(validator=_units)
    order_id: str
    line_id: str
    at: datetime
    reason: str = field(default="returned", validator=_REASON)


StockChange = (
    AddLocation
    | Receive
    | Adjust
    | SetBackorderLimit
    | Reserve
    | Release
    | ExpireReservations
    | KeepReservations
    | Allocate
    | Ship
    | Restock
)
"""Any staged stock change."""
