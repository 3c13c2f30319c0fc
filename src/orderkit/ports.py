"""Ports: every outside thing the application layer talks to, as a ``typing.Protocol``.

Implement these to plug orderkit into your own storage, messaging or clock;
check an implementation with the contract suites in :mod:`orderkit.testing`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from types import TracebackType
from typing import Any, Protocol

from attrs import Factory, field, frozen

from orderkit.domain.carrier import Label, Rate, TrackingEvent
from orderkit.domain.events import DomainEvent
from orderkit.domain.inquiries import Inquiry
from orderkit.domain.inventory import Location, Movement, Reservation, StockItem, StockLevel
from orderkit.domain.order import Order
from orderkit.domain.payment import (
    GatewayAuthorization,
    GatewayCapture,
    GatewayRefund,
    GatewayVoid,
    Payment,
)
from orderkit.domain.returns import ReturnRequest
from orderkit.domain.shipment import Shipment
from orderkit.domain.stock_changes import StockChange
from orderkit.domain.values import ContactChannel
from orderkit.money import Money

__all__ = [
    "Carrier",
    "Clock",
    "DeadLetter",
    "IdSource",
    "InquiryRepository",
    "Notification",
    "Notifier",
    "OptOutList",
    "OrderRepository",
    "Outbox",
    "OutboxRecord",
    "PaymentGateway",
    "PaymentRepository",
    "ReturnRepository",
    "ShipmentRepository",
    "SmsSender",
    "StockRepository",
    "Store",
    "UnitOfWork",
    "UnitOfWorkFactory",
]


class OrderRepository(Protocol):
    """Orders as seen inside one unit of work.

    Changes (``add``, ``save``) become visible to other units of work only when
    the unit of work commits.
    """

    def add(self, order: Order) -> None:
        """Stage a new order. Commit raises :class:`~orderkit.errors.DuplicateKey`
        if its id or idempotency key is taken."""

    def get(self, order_id: str) -> Order:
        """The order with ``order_id``, as a private copy; raises :class:`OrderNotFound`."""
        ...

    def find_by_idempotency_key(self, key: str) -> Order | None:
        """The order placed with ``key``, or None."""
        ...

    def list(
        self,
        *,
        state: str | None = None,
        customer_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Sequence[Order]:
        """Orders matching the filters, oldest first (by ``placed_at``, then id), paged."""
        ...

    def save(self, order: Order) -> None:
        """Stage changes to a loaded order. Commit raises
        :class:`~orderkit.errors.ConcurrencyError` when someone else saved it since
        it was loaded, and raises ``order.version`` by one when it succeeds."""


class StockRepository(Protocol):
    """Stock as seen inside one unit of work: committed reads, and changes staged for commit.

    Commit applies the staged changes in order, all or none, each check and change
    as one atomic step; it raises :class:`~orderkit.errors.OutOfStock`,
    :class:`~orderkit.errors.UnknownSku`, :class:`~orderkit.errors.UnknownLocation` or
    :class:`~orderkit.errors.ReservationNotFound` when a change cannot hold.
    """

    def stage(self, change: StockChange) -> None:
        """Apply ``change`` at commit."""

    def locations(self) -> list[Location]:
        """Every location, by priority then id."""
        ...

    def levels(self, skus: Iterable[str], now: datetime) -> dict[tuple[str, str], StockLevel]:
        """Availability of ``skus`` at every location that stocks them, keyed by
        (sku, location); expired reservations do not count."""
        ...

    def item(self, sku: str, location: str) -> StockItem | None:
        """One stock item with its reservations (None if the location never had the SKU)."""
        ...

    def reservations(self, order_id: str) -> list[tuple[str, str, Reservation]]:
        """(sku, location, reservation) for each reservation the order holds."""
        ...

    def movements(self, sku: str, location: str) -> list[Movement]:
        """The movement ledger of one stock item, oldest first."""
        ...


class PaymentRepository(Protocol):
    """Payments as seen inside one unit of work (same staging rules as orders)."""

    def add(self, payment: Payment) -> None:
        """Stage a new payment. Commit raises :class:`~orderkit.errors.DuplicateKey`
        if its id or its authorization id is taken."""

    def get(self, payment_id: str) -> Payment:
        """The payment ``payment_id`` as a private copy; raises
        :class:`~orderkit.errors.PaymentNotFound`."""
        ...

    def for_order(self, order_id: str) -> Sequence[Payment]:
        """The payments of an order, oldest first (private copies)."""
        ...

    def by_authorization(self, authorization_id: str) -> Payment | None:
        """The payment holding the gateway authorization ``authorization_id``, or None."""
        ...

    def save(self, payment: Payment) -> None:
        """Stage changes to a loaded payment; commit checks and raises its version like
        :meth:`OrderRepository.save`."""


class ShipmentRepository(Protocol):
    """Shipments as seen inside one unit of work (same staging rules as orders)."""

    def add(self, shipment: Shipment) -> None:
        """Stage a new shipment. Commit raises :class:`~orderkit.errors.DuplicateKey`
        if its id or its tracking number is taken."""

    def get(self, shipment_id: str) -> Shipment:
        """The shipment ``shipment_id`` as a private copy; raises
        :class:`~orderkit.errors.ShipmentNotFound`."""
        ...

    def for_order(self, order_id: str) -> Sequence[Shipment]:
        """The order's shipments, oldest first (private copies)."""
        ...

    def by_tracking_number(self, tracking_number: str) -> Shipment | None:
        """The shipment labelled with ``tracking_number``, or None."""
        ...

    def list(
        self, *, state: str | None = None, limit: int = 50, offset: int = 0
    ) -> Sequence[Shipment]:
        """Shipments in ``state`` (any if None), oldest first, paged."""
        ...

    def save(self, shipment: Shipment) -> None:
        """Stage changes to a loaded shipment; commit checks and raises its version."""


class ReturnRepository(Protocol):
    """Return requests as seen inside one unit of work (same staging rules as orders)."""

    def add(self, request: ReturnRequest) -> None:
        """Stage a new return request. Commit raises :class:`~orderkit.errors.DuplicateKey`
        if its id is taken."""

    def get(self, return_id: str) -> ReturnRequest:
        """The return ``return_id`` as a private copy; raises
        :class:`~orderkit.errors.ReturnNotFound`."""
        ...

    def for_order(self, order_id: str) -> Sequence[ReturnRequest]:
        """The order's returns, oldest first (private copies)."""
        ...

    def list(
        self, *, state: str | None = None, limit: int = 50, offset: int = 0
    ) -> Sequence[ReturnRequest]:
        """Returns in ``state`` (any if None), oldest first, paged."""
        ...

    def save(self, request: ReturnRequest) -> None:
        """Stage changes to a loaded return; commit checks and raises its version."""


class InquiryRepository(Protocol):
    """Customer inquiries as seen inside one unit of work (same staging rules as orders)."""

    def add(self, inquiry: Inquiry) -> None:
        """Stage a new inquiry. Commit raises :class:`~orderkit.errors.DuplicateKey` if its
        id is taken."""

    def get(self, inquiry_id: str) -> Inquiry:
        """The inquiry ``inquiry_id`` as a private copy; raises
        :class:`~orderkit.errors.InquiryNotFound`."""
        ...

    def for_order(self, order_id: str) -> Sequence[Inquiry]:
        """The order's inquiries, oldest first (private copies)."""
        ...

    def list(
        self, *, state: str | None = None, limit: int = 50, offset: int = 0
    ) -> Sequence[Inquiry]:
        """Inquiries in ``state`` (any if None), oldest first, paged."""
        ...

    def save(self, inquiry: Inquiry) -> None:
        """Stage changes to a loaded inquiry; commit checks and raises its version."""


class UnitOfWork(Protocol):
    """One command's transaction: everything staged is committed together, or nothing.

    Use as a context manager; leaving the block without :meth:`commit` rolls back.
    """

    @property
    def orders(self) -> OrderRepository:
        """The orders of this unit of work."""
        ...

    @property
    def stock(self) -> StockRepository:
        """The stock of this unit of work."""
        ...

    @property
    def payments(self) -> PaymentRepository:
        """The payments of this unit of work."""
        ...

    @property
    def shipments(self) -> ShipmentRepository:
        """The shipments of this unit of work."""
        ...

    @property
    def returns(self) -> ReturnRepository:
        """The return requests of this unit of work."""
        ...

    @property
    def inquiries(self) -> InquiryRepository:
        """The customer inquiries of this unit of work."""
        ...

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> list[DomainEvent]:
        """Apply every staged change atomically; return the events the touched
        aggregates raised (and clear them from the aggregates)."""
        ...

    def rollback(self) -> None:
        """Discard every staged change."""


class UnitOfWorkFactory(Protocol):
    """Makes a fresh unit of work per command."""

    def __call__(self) -> UnitOfWork: ...


def _default_key(notification: Notification) -> str:
    return f"{notification.kind}:{notification.order_id}"


@frozen
class Notification:
    """A message to a customer, ready to send on ``channel`` to ``recipient``.

    ``subject`` and ``body`` are orderkit's built-in plain rendering. Notifiers that
    render templates (:mod:`orderkit.notify`) use ``facts`` instead: the values the
    message is about (names, money, dates, tracking), by name. ``key`` is stable for
    one message: a notifier that is given the same key twice (a retry after a crash)
    sends it once, or marks it so that the receiving end can tell (the e-mail's
    ``Message-ID``, an SMS provider's idempotency key). ``email`` is the customer's
    address, for a notifier that falls back from SMS to e-mail; ``locale`` (such as
    ``"de-DE"``) is how the customer reads money and dates, when known.
    """

    order_id: str
    kind: str
    channel: ContactChannel
    recipient: str = field(repr=False)
    subject: str
    body: str = field(repr=False)
    promised_delivery: date | None = None
    key: str = field(default=Factory(_default_key, takes_self=True))
    facts: Mapping[str, Any] = field(factory=dict, repr=False, eq=False)
    email: str | None = field(default=None, repr=False)
    locale: str | None = None


class Notifier(Protocol):
    """Sends notifications (e-mail, SMS, ...). Called after commit, never inside a transaction."""

    def send(self, notification: Notification) -> None:
        """Deliver ``notification`` or raise."""


class SmsSender(Protocol):
    """Sends one text message through an SMS provider.

    ``key`` identifies the message: a provider that is given a key it has seen sends
    nothing again (pass it on as the provider's idempotency key or client reference).
    """

    def send_sms(self, to: str, text: str, *, key: str) -> None:
        """Send ``text`` to ``to`` (E.164, such as ``"+4915112345678"``), or raise."""


class OptOutList(Protocol):
    """The phone numbers and e-mail addresses that asked not to be messaged on a channel."""

    def is_opted_out(self, channel: ContactChannel, address: str) -> bool:
        """True when ``address`` opted out of ``channel``."""
        ...

    def opt_out(self, channel: ContactChannel, address: str) -> None:
        """Record that ``address`` wants no more messages on ``channel`` (idempotent)."""

    def opt_in(self, channel: ContactChannel, address: str) -> None:
        """Undo :meth:`opt_out` (idempotent)."""


class PaymentGateway(Protocol):
    """A payment service provider, called with idempotency keys.

    Every call with a key the gateway has seen, and the same arguments, returns
    the first call's result and moves no money again; with different arguments
    it raises :class:`~orderkit.errors.IdempotencyConflict`. Calls raise
    :class:`~orderkit.errors.PaymentDeclined` (with a reason) when refused,
    :class:`~orderkit.errors.GatewayUnavailable` when the outcome is unknown
    (retry with the same key), and :class:`~orderkit.errors.InvalidPaymentOperation`
    for an operation the gateway's own records forbid (over-capture, say).
    """

    def authorize(self, amount: Money, token: str, *, idempotency_key: str) -> GatewayAuthorization:
        """Hold ``amount`` on the payment method behind ``token``."""
        ...

    def capture(
        self, authorization_id: str, amount: Money, *, idempotency_key: str
    ) -> GatewayCapture:
        """Charge ``amount`` of an authorization (several partial captures are allowed)."""
        ...

    def void(self, authorization_id: str, *, idempotency_key: str) -> GatewayVoid:
        """Release what is left of an authorization; no capture is possible afterwards."""
        ...

    def refund(self, capture_id: str, amount: Money, *, idempotency_key: str) -> GatewayRefund:
        """Pay back ``amount`` of a capture (several partial refunds are allowed)."""
        ...


class Carrier(Protocol):
    """A parcel carrier: quotes, labels, tracking.

    ``buy_label`` is idempotent per key (same key: the same label, bought once);
    ``track`` returns every scan so far, each with a stable id.
    """

    @property
    def name(self) -> str:
        """The carrier's id, as in :attr:`Rate.carrier`."""
        ...

    def quote(self, shipment: Shipment) -> Sequence[Rate]:
        """Rates for the packed ``shipment`` (its parcels, origin and ``ship_to``)."""
        ...

    def buy_label(self, shipment: Shipment, rate: Rate, *, idempotency_key: str) -> Label:
        """Buy the label for ``rate``; raises :class:`~orderkit.errors.CarrierError`
        when the rate is unknown or expired."""
        ...

    def track(self, tracking_number: str) -> Sequence[TrackingEvent]:
        """Every scan of the parcel so far, oldest first."""
        ...

    def cancel_label(self, tracking_number: str) -> None:
        """Void an unused label (idempotent); raises
        :class:`~orderkit.errors.CarrierError` once the parcel was scanned."""


class Clock(Protocol):
    """The current time. The domain never reads a clock; the service asks this port."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class IdSource(Protocol):
    """New unique ids."""

    def new_id(self, kind: str) -> str:
        """A new id for an aggregate of ``kind`` (such as ``"order"``)."""
        ...


@frozen
class OutboxRecord:
    """A committed event waiting in the outbox: ``seq`` orders all events of a store."""

    seq: int
    aggregate_id: str
    event: DomainEvent
    attempts: int = 0


@frozen
class DeadLetter:
    """An event a handler still failed on after its last retry."""

    handler: str
    seq: int
    event: DomainEvent
    error: str
    failed_at: datetime


class Outbox(Protocol):
    """The transactional outbox of a store: events saved by commits, awaiting dispatch.

    Units of work append events in their commit's transaction; the dispatcher
    claims them with a lease (so concurrent workers never take the same row and
    a dead worker's rows come back when its lease ends), records per-handler
    processing, and finishes, postpones or dead-letters them.
    """

    def claim(
        self, *, worker: str, limit: int, lease_seconds: float, now: datetime
    ) -> Sequence[OutboxRecord]:
        """Lease up to ``limit`` due events, oldest first; an event is due when it is
        not finished, not leased by a live lease, its retry time has come, and no
        earlier unfinished event of the same aggregate is held back."""
        ...

    def release(self, seqs: Sequence[int], *, worker: str) -> None:
        """Give back claimed events untouched (only those ``worker`` still holds)."""

    def renew(self, seq: int, *, worker: str, lease_seconds: float, now: datetime) -> bool:
        """Extend ``worker``'s lease on ``seq`` from ``now``; False when the worker no
        longer holds it (the lease ran out and another worker took it, or it is finished)."""
        ...

    def is_processed(self, handler: str, seq: int) -> bool:
        """True when ``handler`` has already processed event ``seq``."""
        ...

    def mark_processed(self, handler: str, seq: int) -> None:
        """Record that ``handler`` processed event ``seq`` (idempotent)."""

    def finish(self, seq: int, *, worker: str, now: datetime) -> None:
        """Mark event ``seq`` dispatched to every handler, if ``worker`` still holds it."""

    def postpone(self, seq: int, *, worker: str, until: datetime) -> None:
        """Count a failed attempt and make the event due again at ``until``."""

    def dead_letter(self, letter: DeadLetter) -> None:
        """Record that a handler gave up on an event (replaces an older letter)."""

    def dead_letters(self) -> Sequence[DeadLetter]:
        """Every dead letter, oldest event first."""
        ...

    def remove_dead_letter(self, handler: str, seq: int) -> None:
        """Forget a dead letter (after a successful retry)."""

    def pending(self) -> int:
        """How many events are not yet finished."""
        ...

    def history(self, aggregate_id: str) -> Sequence[OutboxRecord]:
        """Every committed event of ``aggregate_id`` (an order's id: its payments',
        shipments', returns' and inquiries' events too), finished or not, in commit
        order."""
        ...


class Store(Protocol):
    """A storage backend: makes units of work and owns the outbox."""

    @property
    def outbox(self) -> Outbox:
        """The store's outbox."""
        ...

    def __call__(self) -> UnitOfWork:
        """A new unit of work."""
        ...

    def close(self) -> None:
        """Release connections and files."""
