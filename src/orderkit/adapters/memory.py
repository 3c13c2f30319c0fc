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
from typing import Any, ClassVar, Generic, TypeVar

from orderkit.adapters.memory_outbox import MemoryOutbox
from orderkit.adapters.memory_stock import MemoryStock, MemoryStockRepository
from orderkit.adapters.repository import (
    Aggregate,
    StagedInquiries,
    StagedOrders,
    StagedPayments,
    StagedReturns,
    StagedShipments,
    StagedUnitOfWork,
    check_page,
    private_copy,
)
from orderkit.domain.events import DomainEvent
from orderkit.domain.inquiries import Inquiry
from orderkit.domain.order import Order
from orderkit.domain.payment import Payment
from orderkit.domain.returns import ReturnRequest
from orderkit.domain.shipment import Shipment
from orderkit.errors import (
    ConcurrencyError,
    DuplicateKey,
    InquiryNotFound,
    InvalidField,
    NotFound,
    OrderNotFound,
    PaymentNotFound,
    ReturnNotFound,
    ShipmentNotFound,
)
from orderkit.ports import Notification

__all__ = [
    "ManualClock",
    "MemoryInquiryRepository",
    "MemoryNotifier",
    "MemoryOrderRepository",
    "MemoryPaymentRepository",
    "MemoryReturnRepository",
    "MemoryShipmentRepository",
    "MemoryStore",
    "MemoryUnitOfWork",
    "SequentialIds",
]


T = TypeVar("T", Order, Payment, Shipment, ReturnRequest, Inquiry)
D = TypeVar("D", Payment, Shipment, ReturnRequest, Inquiry)


class MemoryStore:
    """The committed state shared by every :class:`MemoryUnitOfWork` made from it.

    Call the store to get a new unit of work: ``with store() as uow: ...``.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.orders: dict[str, Order] = {}
        self.idempotency_keys: dict[str, str] = {}
        self.outbox = MemoryOutbox(self.lock)
        self.stock = MemoryStock(self.lock)
        self.payments: dict[str, Payment] = {}
        self.authorizations: dict[str, str] = {}
        self.shipments: dict[str, Shipment] = {}
        self.tracking_numbers: dict[str, str] = {}
        self.returns: dict[str, ReturnRequest] = {}
        self.inquiries: dict[str, Inquiry] = {}

    def __call__(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)

    def close(self) -> None:
        """Nothing to release; present for the Store protocol."""


class MemoryOrderRepository(StagedOrders):
    """The order repository of one :class:`MemoryUnitOfWork`."""

    def __init__(self, store: MemoryStore) -> None:
        super().__init__()
        self._store = store

    def get(self, order_id: str) -> Order:
        """A private copy of the committed order ``order_id``; raises OrderNotFound if absent."""
        with self._store.lock:  # never a half-applied commit
            stored = self._store.orders.get(order_id)
        if stored is None:
            raise OrderNotFound(order_id)
        return private_copy(stored)

    def find_by_idempotency_key(self, key: str) -> Order | None:
        """A private copy of the committed order placed with ``key``, or None."""
        with self._store.lock:
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
        """Private copies of matching committed orders, by ``placed_at`` then id, paged.

        Raises InvalidField when ``limit`` or ``offset`` is out of range."""
        check_page(limit, offset)
        with self._store.lock:
            matches = [
                order
                for order in self._store.orders.values()
                if (state is None or order.state == state)
                and (customer_id is None or order.customer.id == customer_id)
            ]
        matches.sort(key=lambda order: (order.placed_at, order.id))
        return [private_copy(order) for order in matches[offset : offset + limit]]


class _MemoryDocuments(Generic[D]):
    """Reads of one kind of order document (payments, shipments, returns, inquiries) from
    a :class:`MemoryStore`."""

    _table: ClassVar[str]
    _kind: ClassVar[str]
    _missing: ClassVar[type[NotFound]]
    _store: MemoryStore

    def _committed(self) -> dict[str, D]:
        table: dict[str, D] = getattr(self._store, self._table)
        return table

    def get(self, aggregate_id: str) -> D:
        """A private copy of the committed document; raises its NotFound error if absent."""
        with self._store.lock:
            stored = self._committed().get(aggregate_id)
        if stored is None:
            raise self._missing(f"no {self._kind} with id {aggregate_id!r}")
        return private_copy(stored)

    def for_order(self, order_id: str) -> Sequence[D]:
        """Private copies of the order's committed documents, oldest first."""
        with self._store.lock:
            found = [d for d in self._committed().values() if d.order_id == order_id]
        found.sort(key=lambda document: (document.created_at, document.id))
        return [private_copy(document) for document in found]

    def list(self, *, state: str | None = None, limit: int = 50, offset: int = 0) -> Sequence[D]:
        """Private copies of committed documents in ``state``, oldest first, paged."""
        check_page(limit, offset)
        with self._store.lock:
            found = [d for d in self._committed().values() if state is None or d.state == state]
        found.sort(key=lambda document: (document.created_at, document.id))
        return [private_copy(document) for document in found[offset : offset + limit]]


class MemoryPaymentRepository(_MemoryDocuments[Payment], StagedPayments):
    """The payment repository of one :class:`MemoryUnitOfWork`."""

    _table = "payments"
    _kind = "payment"
    _missing = PaymentNotFound

    def __init__(self, store: MemoryStore) -> None:
        super().__init__()
        self._store = store

    def by_authorization(self, authorization_id: str) -> Payment | None:
        """A private copy of the committed payment holding ``authorization_id``, or None."""
        with self._store.lock:
            payment_id = self._store.authorizations.get(authorization_id)
            return None if payment_id is None else self.get(payment_id)


class MemoryShipmentRepository(_MemoryDocuments[Shipment], StagedShipments):
    """The shipment repository of one :class:`MemoryUnitOfWork`."""

    _table = "shipments"
    _kind = "shipment"
    _missing = ShipmentNotFound

    def __init__(self, store: MemoryStore) -> None:
        super().__init__()
        self._store = store

    def by_tracking_number(self, tracking_number: str) -> Shipment | None:
        """A private copy of the committed shipment with that tracking number, or None."""
        with self._store.lock:
            shipment_id = self._store.tracking_numbers.get(tracking_number)
            return None if shipment_id is None else self.get(shipment_id)


class MemoryReturnRepository(_MemoryDocuments[ReturnRequest], StagedReturns):
    """The return repository of one :class:`MemoryUnitOfWork`."""

    _table = "returns"
    _kind = "return"
    _missing = ReturnNotFound

    def __init__(self, store: MemoryStore) -> None:
        super().__init__()
        self._store = store


class MemoryInquiryRepository(_MemoryDocuments[Inquiry], StagedInquiries):
    """The inquiry repository of one :class:`MemoryUnitOfWork`."""

    _table = "inquiries"
    _kind = "inquiry"
    _missing = InquiryNotFound

    def __init__(self, store: MemoryStore) -> None:
        super().__init__()
        self._store = store


class MemoryUnitOfWork(
    StagedUnitOfWork[
        MemoryOrderRepository,
        MemoryStockRepository,
        MemoryPaymentRepository,
        MemoryShipmentRepository,
    ]
):
    """One transaction against a :class:`MemoryStore`."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.orders = MemoryOrderRepository(store)
        self.stock = MemoryStockRepository(store.stock)
        self.payments = MemoryPaymentRepository(store)
        self.shipments = MemoryShipmentRepository(store)
        self.returns: MemoryReturnRepository = MemoryReturnRepository(store)
        self.inquiries: MemoryInquiryRepository = MemoryInquiryRepository(store)

    def commit(self) -> list[DomainEvent]:
        """Check and apply every staged order and payment under the store lock; return
        their events.

        Raises DuplicateKey, OrderNotFound, PaymentNotFound or ConcurrencyError (stale
        version) before anything is applied. On success bumps versions and appends the
        events to the outbox."""
        staged = self.staged_aggregates()
        store = self._store
        with store.lock:
            for order, is_new in self.orders.staged.values():
                key = order.idempotency_key
                if is_new and key is not None and key in store.idempotency_keys:
                    raise DuplicateKey(f"idempotency key {key!r} is already used")
            for payment, _ in self.payments.staged.values():
                authorization = payment.authorization_id
                owner = store.authorizations.get(authorization or "", payment.id)
                if owner != payment.id:
                    raise DuplicateKey(f"authorization {authorization!r} belongs to {owner}")
            for shipment, _ in self.shipments.staged.values():
                tracking = shipment.tracking_number
                owner = store.tracking_numbers.get(tracking or "", shipment.id)
                if owner != shipment.id:
                    raise DuplicateKey(f"tracking number {tracking!r} belongs to {owner}")
            for aggregate, is_new in staged:
                self._check_version(aggregate, is_new)
            store.stock.apply(self.stock.staged)  # all or nothing; raises before any change
            events = [event for aggregate, _ in staged for event in aggregate.pending_events]
            for order, is_new in self.orders.staged.values():
                order.version += 1
                store.orders[order.id] = private_copy(order)
                if is_new and order.idempotency_key is not None:
                    store.idempotency_keys[order.idempotency_key] = order.id
            for payment, _ in self.payments.staged.values():
                payment.version += 1
                store.payments[payment.id] = private_copy(payment)
                if payment.authorization_id is not None:
                    store.authorizations[payment.authorization_id] = payment.id
            for shipment, _ in self.shipments.staged.values():
                shipment.version += 1
                store.shipments[shipment.id] = private_copy(shipment)
                if shipment.tracking_number is not None:
                    store.tracking_numbers[shipment.tracking_number] = shipment.id
            for request, _ in self.returns.staged.values():
                request.version += 1
                store.returns[request.id] = private_copy(request)
            for inquiry, _ in self.inquiries.staged.values():
                inquiry.version += 1
                store.inquiries[inquiry.id] = private_copy(inquiry)
            store.outbox.append(events)
        self.committed(staged)
        return events

    def _check_version(self, aggregate: Aggregate, is_new: bool) -> None:
        store = self._store
        tables: dict[type, tuple[dict[str, Any], str, type[NotFound]]] = {
            Order: (store.orders, "order", OrderNotFound),
            Payment: (store.payments, "payment", PaymentNotFound),
            Shipment: (store.shipments, "shipment", ShipmentNotFound),
            ReturnRequest: (store.returns, "return", ReturnNotFound),
            Inquiry: (store.inquiries, "inquiry", InquiryNotFound),
        }
        table, kind, missing = tables[type(aggregate)]
        current = table.get(aggregate.id)
        if is_new:
            if current is not None:
                raise DuplicateKey(f"a {kind} with id {aggregate.id!r} already exists")
            return
        if current is None:
            raise (
                OrderNotFound(aggregate.id)
                if kind == "order"
                else missing(f"no {kind} with id {aggregate.id!r}")
            )
        if current.version != aggregate.version:
            raise ConcurrencyError(
                f"{kind} {aggregate.id} was changed by someone else "
                f"(version {current.version}, this copy has {aggregate.version})"
            )


class MemoryNotifier:
    """Keeps every notification it is asked to send, in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent: list[Notification] = []

    def send(self, notification: Notification) -> None:
        """Append ``notification`` to :attr:`sent` instead of delivering it."""
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
        """The clock's time, changed only by :meth:`advance` and :meth:`set`."""
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
        """The next id for ``kind``, such as ``order-000001`` (each kind counts from 1)."""
        with self._lock:
            counter = self._counters.setdefault(kind, itertools.count(1))
            return f"{kind}-{next(counter):06d}"
