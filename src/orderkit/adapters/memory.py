"""In-memory adapters: complete, thread-safe reference implementations of every port.

They are not mocks: the unit of work isolates uncommitted changes, checks
versions and unique keys on commit, and commits atomically under a lock, so
the same contract suites pass against them as against a database.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from types import TracebackType

import attrs

from orderkit.domain.events import DomainEvent
from orderkit.domain.order import Order
from orderkit.errors import ConcurrencyError, DuplicateKey, InvalidField, OrderNotFound
from orderkit.ports import Notification

__all__ = [
    "ManualClock",
    "MemoryNotifier",
    "MemoryOrderRepository",
    "MemoryStore",
    "MemoryUnitOfWork",
    "SequentialIds",
]


_ORDER_FIELDS = tuple(a.name for a in attrs.fields(Order) if a.name != "pending_events")


def _private_copy(order: Order) -> Order:
    """An isolated copy. Order fields are immutable values or tuples, so shallow is enough."""
    clone = object.__new__(Order)
    for name in _ORDER_FIELDS:
        object.__setattr__(clone, name, getattr(order, name))
    clone.pending_events = []
    return clone


def check_page(limit: int, offset: int) -> None:
    """Reject a page request outside 1 <= limit <= 1000 and offset >= 0."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise InvalidField("must be a whole number from 1 to 1000", field="limit", value=limit)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidField("must be a whole number >= 0", field="offset", value=offset)


class MemoryStore:
    """The committed state shared by every :class:`MemoryUnitOfWork` made from it.

    Call the store to get a new unit of work: ``with store() as uow: ...``.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.orders: dict[str, Order] = {}
        self.idempotency_keys: dict[str, str] = {}

    def __call__(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)


class MemoryOrderRepository:
    """The order repository of one :class:`MemoryUnitOfWork`."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.staged: dict[str, tuple[Order, bool]] = {}

    def add(self, order: Order) -> None:
        self.staged[order.id] = (order, True)

    def get(self, order_id: str) -> Order:
        stored = self._store.orders.get(order_id)
        if stored is None:
            raise OrderNotFound(order_id)
        return _private_copy(stored)

    def find_by_idempotency_key(self, key: str) -> Order | None:
        order_id = self._store.idempotency_keys.get(key)
        return None if order_id is None else self.get(order_id)

    def list(
        self,
        *,
        state: str | None = None,
        customer_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Sequence[Order]:
        check_page(limit, offset)
        with self._store.lock:
            matches = [
                order
                for order in self._store.orders.values()
                if (state is None or order.state == state)
                and (customer_id is None or order.customer.id == customer_id)
            ]
        matches.sort(key=lambda order: (order.placed_at, order.id))
        return [_private_copy(order) for order in matches[offset : offset + limit]]

    def save(self, order: Order) -> None:
        is_new = order.id in self.staged and self.staged[order.id][1]
        self.staged[order.id] = (order, is_new)


class MemoryUnitOfWork:
    """One transaction against a :class:`MemoryStore`."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.orders = MemoryOrderRepository(store)

    def __enter__(self) -> MemoryUnitOfWork:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.rollback()

    def commit(self) -> list[DomainEvent]:
        staged = list(self.orders.staged.values())
        store = self._store
        with store.lock:
            for order, is_new in staged:
                if is_new:
                    if order.id in store.orders:
                        raise DuplicateKey(f"an order with id {order.id!r} already exists")
                    key = order.idempotency_key
                    if key is not None and key in store.idempotency_keys:
                        raise DuplicateKey(f"idempotency key {key!r} is already used")
                else:
                    current = store.orders.get(order.id)
                    if current is None:
                        raise OrderNotFound(order.id)
                    if current.version != order.version:
                        raise ConcurrencyError(
                            f"order {order.id} was changed by someone else "
                            f"(version {current.version}, this copy has {order.version})"
                        )
            for order, is_new in staged:
                order.version += 1
                store.orders[order.id] = _private_copy(order)
                if is_new and order.idempotency_key is not None:
                    store.idempotency_keys[order.idempotency_key] = order.id
        events: list[DomainEvent] = []
        for order, _ in staged:
            events.extend(order.pending_events)
            order.pending_events.clear()
        self.orders.staged.clear()
        return events

    def rollback(self) -> None:
        self.orders.staged.clear()


class MemoryNotifier:
    """Keeps every notification it is asked to send, in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent: list[Notification] = []

    def send(self, notification: Notification) -> None:
        with self._lock:
            self.sent.append(notification)

    def for_order(self, order_id: str) -> list[Notification]:
        """The notifications sent about one order, oldest first."""
        with self._lock:
            return [n for n in self.sent if n.order_id == order_id]


class ManualClock:
    """A clock that moves only when told to: for tests and simulations."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
        if start.tzinfo is None:
            raise InvalidField("must be timezone-aware", field="start", value=start)
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by ``delta``."""
        if delta < timedelta(0):
            raise InvalidField("a clock cannot go backwards", field="delta", value=delta)
        self._now += delta

    def set(self, moment: datetime) -> None:
        """Jump to ``moment`` (timezone-aware)."""
        if moment.tzinfo is None:
            raise InvalidField("must be timezone-aware", field="moment", value=moment)
        self._now = moment


class SequentialIds:
    """Ids like ``order-000001``, counting up per kind; thread-safe and repeatable."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, itertools.count[int]] = {}

    def new_id(self, kind: str) -> str:
        with self._lock:
            counter = self._counters.setdefault(kind, itertools.count(1))
            return f"{kind}-{next(counter):06d}"
