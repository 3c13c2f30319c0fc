"""Behaviour every repository shares: staging changes until commit, and paging rules."""

from __future__ import annotations

import itertools
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

import attrs

from orderkit.domain.events import DomainEvent
from orderkit.domain.inquiries import Inquiry
from orderkit.domain.order import Order
from orderkit.domain.payment import Payment
from orderkit.domain.returns import ReturnRequest
from orderkit.domain.shipment import Shipment
from orderkit.domain.stock_changes import StockChange
from orderkit.errors import InvalidField

__all__ = [
    "Staged",
    "StagedInquiries",
    "StagedOrders",
    "StagedPayments",
    "StagedReturns",
    "StagedShipments",
    "StagedStock",
    "StagedUnitOfWork",
    "check_page",
    "private_copy",
]


class Aggregate(Protocol):
    """What staging needs of an aggregate: an id, a version and its new events."""

    id: str
    version: int
    pending_events: list[DomainEvent]


A = TypeVar("A", bound=Aggregate)
R = TypeVar("R", bound="StagedOrders")
S = TypeVar("S", bound="StagedStock")
P = TypeVar("P", bound="StagedPayments")
H = TypeVar("H", bound="StagedShipments")
U = TypeVar("U", bound="StagedUnitOfWork[Any, Any, Any, Any]")


_FIELDS = {
    cls: tuple(a.name for a in attrs.fields(cls) if a.name != "pending_events")
    for cls in (Order, Payment, Shipment, ReturnRequest, Inquiry)
}
T = TypeVar("T", Order, Payment, Shipment, ReturnRequest, Inquiry)


def private_copy(aggregate: T) -> T:
    """An isolated copy without pending events. Aggregate fields are immutable values or
    tuples, so a shallow copy is enough (and far cheaper than decoding or deep-copying)."""
    cls = type(aggregate)
    clone = object.__new__(cls)
    for name in _FIELDS[cls]:
        object.__setattr__(clone, name, getattr(aggregate, name))
    clone.pending_events = []
    return clone


def check_page(limit: int, offset: int) -> None:
    """Reject a page request outside 1 <= limit <= 1000 and offset >= 0."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise InvalidField("must be a whole number from 1 to 1000", field="limit", value=limit)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidField("must be a whole number >= 0", field="offset", value=offset)


# Numbers the first staging of each aggregate, across the repositories of a unit of work,
# so that its events reach the outbox cause first (the shipment handed over, then the order
# it completes), whatever repository each aggregate lives in.
_STAGING = itertools.count()


class Staged(Generic[A]):
    """Holds a unit of work's added and saved aggregates until it commits
    (id -> (aggregate, is_new)); ``first`` remembers when each was first staged."""

    def __init__(self) -> None:
        self.staged: dict[str, tuple[A, bool]] = {}
        self.first: dict[str, int] = {}

    def add(self, aggregate: A) -> None:
        """Stage a new aggregate."""
        self.staged[aggregate.id] = (aggregate, True)
        self.first.setdefault(aggregate.id, next(_STAGING))

    def save(self, aggregate: A) -> None:
        """Stage changes to a loaded (or just added) aggregate."""
        is_new = aggregate.id in self.staged and self.staged[aggregate.id][1]
        self.staged[aggregate.id] = (aggregate, is_new)
        self.first.setdefault(aggregate.id, next(_STAGING))


class StagedOrders(Staged[Order]):
    """The staged orders of a unit of work."""


class StagedPayments(Staged[Payment]):
    """The staged payments of a unit of work."""


class StagedShipments(Staged[Shipment]):
    """The staged shipments of a unit of work."""


class StagedReturns(Staged[ReturnRequest]):
    """The staged return requests of a unit of work."""


class StagedInquiries(Staged[Inquiry]):
    """The staged customer inquiries of a unit of work."""


class StagedStock:
    """Holds a unit of work's stock changes until it commits, in the order staged."""

    def __init__(self) -> None:
        self.staged: list[StockChange] = []

    def stage(self, change: StockChange) -> None:
        """Apply ``change`` at commit, after the changes staged before it."""
        self.staged.append(change)


class StagedUnitOfWork(Generic[R, S, P, H]):
    """A unit of work over staged repositories: leaving the ``with`` block without a
    commit discards what was staged."""

    orders: R
    stock: S
    payments: P
    shipments: H
    returns: StagedReturns
    inquiries: StagedInquiries

    def document_repositories(self) -> tuple[Staged[Any], ...]:
        """The repositories of aggregates (everything but stock)."""
        return (self.orders, self.shipments, self.payments, self.returns, self.inquiries)

    def __enter__(self: U) -> U:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.rollback()

    def staged_aggregates(self) -> list[tuple[Aggregate, bool]]:
        """Every staged (aggregate, is_new), in the order they were first staged."""
        ranked: list[tuple[int, tuple[Aggregate, bool]]] = []
        for repository in self.document_repositories():
            for aggregate_id, entry in repository.staged.items():
                ranked.append((repository.first[aggregate_id], entry))
        ranked.sort(key=lambda pair: pair[0])
        return [entry for _, entry in ranked]

    def rollback(self) -> None:
        """Discard every staged change."""
        for repository in self.document_repositories():
            repository.staged.clear()
            repository.first.clear()
        self.stock.staged.clear()

    def committed(self, staged: list[tuple[Aggregate, bool]]) -> None:
        """After a successful commit: clear the aggregates' events and what was staged."""
        for aggregate, _ in staged:
            aggregate.pending_events.clear()
        self.rollback()
