"""Behaviour every order repository shares: staging changes until commit, and paging rules."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Generic, TypeVar

from orderkit.domain.order import Order
from orderkit.domain.stock_changes import StockChange
from orderkit.errors import InvalidField

__all__ = ["StagedOrders", "StagedStock", "StagedUnitOfWork", "check_page"]

R = TypeVar("R", bound="StagedOrders")
S = TypeVar("S", bound="StagedStock")
U = TypeVar("U", bound="StagedUnitOfWork[Any, Any]")


def check_page(limit: int, offset: int) -> None:
    """Reject a page request outside 1 <= limit <= 1000 and offset >= 0."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise InvalidField("must be a whole number from 1 to 1000", field="limit", value=limit)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidField("must be a whole number >= 0", field="offset", value=offset)


class StagedOrders:
    """Holds a unit of work's added and saved orders until it commits (id -> (order, is_new))."""

    def __init__(self) -> None:
        self.staged: dict[str, tuple[Order, bool]] = {}

    def add(self, order: Order) -> None:
        """Stage a new order."""
        self.staged[order.id] = (order, True)

    def save(self, order: Order) -> None:
        """Stage changes to a loaded (or just added) order."""
        is_new = order.id in self.staged and self.staged[order.id][1]
        self.staged[order.id] = (order, is_new)


class StagedStock:
    """Holds a unit of work's stock changes until it commits, in the order staged."""

    def __init__(self) -> None:
        self.staged: list[StockChange] = []

    def stage(self, change: StockChange) -> None:
        """Apply ``change`` at commit, after the changes staged before it."""
        self.staged.append(change)


class StagedUnitOfWork(Generic[R, S]):
    """A unit of work over a :class:`StagedOrders` repository: leaving the ``with``
    block without a commit discards what was staged."""

    orders: R
    stock: S

    def __enter__(self: U) -> U:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.rollback()

    def rollback(self) -> None:
        """Discard every staged change."""
        self.orders.staged.clear()
        self.stock.staged.clear()
