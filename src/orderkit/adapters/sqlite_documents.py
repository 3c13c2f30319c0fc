"""SQLite rows of the document aggregates: payments, shipments, returns and inquiries
(one JSON document each, with indexed columns for lookups), and how a commit writes
them with version checks. Part of the SQLite store (:mod:`orderkit.adapters.sqlite`)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, ClassVar, Generic, TypeVar

from attrs import frozen

from orderkit.adapters import sql, sqlbase
from orderkit.adapters.repository import (
    StagedInquiries,
    StagedPayments,
    StagedReturns,
    StagedShipments,
    check_page,
    private_copy,
)
from orderkit.adapters.sqlbase import SqlConnection, SqlStore
from orderkit.domain.inquiries import Inquiry
from orderkit.domain.order import Order
from orderkit.domain.payment import Payment
from orderkit.domain.returns import ReturnRequest
from orderkit.domain.shipment import Shipment
from orderkit.errors import (
    ConcurrencyError,
    CorruptRecord,
    DuplicateKey,
    InquiryNotFound,
    NotFound,
    PaymentNotFound,
    ReturnNotFound,
    ShipmentNotFound,
)
from orderkit.serialization import dumps, loads

__all__ = [
    "INQUIRIES",
    "PAYMENTS",
    "RETURNS",
    "SHIPMENTS",
    "SqliteInquiryRepository",
    "SqlitePaymentRepository",
    "SqliteReturnRepository",
    "SqliteShipmentRepository",
    "load_document",
    "sortable",
    "write_document",
]


def sortable(moment: datetime) -> str:
    """A time as ISO text in UTC: the text sorts like the instants."""
    return moment.astimezone(timezone.utc).isoformat()


A = TypeVar("A", Order, Payment, Shipment, ReturnRequest, Inquiry)
D = TypeVar("D", ReturnRequest, Inquiry)


# Documents decoded lately, by their exact text: a command reads the same order, shipment
# or payment several times between writes (its handlers too), and decoding is the main
# cost of a read. A hit is a private copy of what the text decoded to.
_DECODED: OrderedDict[tuple[type[Any], str], Any] = OrderedDict()
_DECODED_LIMIT = 1024
_DECODED_LOCK = threading.Lock()


def load_document(row: tuple[int, str] | None, what: str, cls: type[A]) -> A | None:
    """The aggregate a row holds (None for no row), with its version; raises
    :class:`CorruptRecord` when its document cannot be read back."""
    if row is None:
        return None
    version, document = row
    key = (cls, document)
    with _DECODED_LOCK:
        decoded = _DECODED.get(key)
        if decoded is not None:
            _DECODED.move_to_end(key)
    if decoded is None:
        try:
            decoded = loads(document, cls)
        except Exception as error:
            kind = cls.__name__.lower()
            raise CorruptRecord(f"{kind} {what} cannot be read back: {error!r}") from None
        with _DECODED_LOCK:
            _DECODED[key] = decoded
            if len(_DECODED) > _DECODED_LIMIT:
                _DECODED.popitem(last=False)
    aggregate: A = private_copy(decoded)
    aggregate.version = version
    return aggregate


class SqlitePaymentRepository(StagedPayments):
    """Payments in SQLite; changes are staged and written by the unit of work's commit."""

    def __init__(self, store: SqlStore) -> None:
        super().__init__()
        self._sqlite = store

    def get(self, payment_id: str) -> Payment:
        """Read the committed payment; raises PaymentNotFound if absent, CorruptRecord if
        its document cannot be read back."""
        row = self._sqlite.connection().execute(sql.SELECT_PAYMENT, {"id": payment_id}).fetchone()
        payment = load_document(row, payment_id, Payment)
        if payment is None:
            raise PaymentNotFound(f"no payment with id {payment_id!r}")
        return payment

    def for_order(self, order_id: str) -> Sequence[Payment]:
        """The order's committed payments, oldest first."""
        rows = self._sqlite.connection().execute(sql.PAYMENTS_OF_ORDER, {"order_id": order_id})
        return [p for row in rows if (p := load_document(row, f"of order {order_id}", Payment))]

    def by_authorization(self, authorization_id: str) -> Payment | None:
        """The committed payment holding ``authorization_id``, or None."""
        row = (
            self._sqlite.connection()
            .execute(sql.PAYMENT_BY_AUTHORIZATION, {"authorization_id": authorization_id})
            .fetchone()
        )
        return load_document(row, f"with authorization {authorization_id!r}", Payment)


class SqliteShipmentRepository(StagedShipments):
    """Shipments in SQLite; changes are staged and written by the unit of work's commit."""

    def __init__(self, store: SqlStore) -> None:
        super().__init__()
        self._sqlite = store

    def get(self, shipment_id: str) -> Shipment:
        """Read the committed shipment; raises ShipmentNotFound if absent."""
        row = self._sqlite.connection().execute(sql.SELECT_SHIPMENT, {"id": shipment_id})
        shipment = load_document(row.fetchone(), shipment_id, Shipment)
        if shipment is None:
            raise ShipmentNotFound(f"no shipment with id {shipment_id!r}")
        return shipment

    def for_order(self, order_id: str) -> Sequence[Shipment]:
        """The order's committed shipments, oldest first."""
        rows = self._sqlite.connection().execute(sql.SHIPMENTS_OF_ORDER, {"order_id": order_id})
        return [s for row in rows if (s := load_document(row, f"of order {order_id}", Shipment))]

    def by_tracking_number(self, tracking_number: str) -> Shipment | None:
        """The committed shipment with that tracking number, or None."""
        row = self._sqlite.connection().execute(
            sql.SHIPMENT_BY_TRACKING, {"tracking_number": tracking_number}
        )
        return load_document(row.fetchone(), f"with tracking number {tracking_number!r}", Shipment)

    def list(
        self, *, state: str | None = None, limit: int = 50, offset: int = 0
    ) -> Sequence[Shipment]:
        """Committed shipments in ``state``, oldest first, paged in SQL."""
        check_page(limit, offset)
        rows = self._sqlite.connection().execute(
            sql.LIST_SHIPMENTS, {"state": state, "limit": limit, "offset": offset}
        )
        return [s for row in rows if (s := load_document(row, "in a list", Shipment))]


class _SqliteDocuments(Generic[D]):
    """Reads of one kind of plain order document (returns, inquiries) from SQLite."""

    _statements: ClassVar[sql.DocumentStatements]
    _class: ClassVar[type[Any]]
    _kind: ClassVar[str]
    _missing: ClassVar[type[NotFound]]
    _sqlite: SqlStore

    def _read(self, row: tuple[int, str] | None, what: str) -> D | None:
        loaded: D | None = load_document(row, what, self._class)
        return loaded

    def get(self, aggregate_id: str) -> D:
        """Read the committed document; raises its NotFound error if absent."""
        row = self._sqlite.connection().execute(self._statements.select, {"id": aggregate_id})
        found = self._read(row.fetchone(), aggregate_id)
        if found is None:
            raise self._missing(f"no {self._kind} with id {aggregate_id!r}")
        return found

    def for_order(self, order_id: str) -> Sequence[D]:
        """The order's committed documents, oldest first."""
        rows = self._sqlite.connection().execute(self._statements.of_order, {"order_id": order_id})
        return [d for row in rows if (d := self._read(row, f"of order {order_id}")) is not None]

    def list(self, *, state: str | None = None, limit: int = 50, offset: int = 0) -> Sequence[D]:
        """Committed documents in ``state``, oldest first, paged in SQL."""
        check_page(limit, offset)
        rows = self._sqlite.connection().execute(
            self._statements.list, {"state": state, "limit": limit, "offset": offset}
        )
        return [d for row in rows if (d := self._read(row, "in a list")) is not None]


class SqliteReturnRepository(_SqliteDocuments[ReturnRequest], StagedReturns):
    """Return requests in SQLite; changes are staged and written by the commit."""

    _statements = sql.RETURNS
    _class = ReturnRequest
    _kind = "return"
    _missing = ReturnNotFound

    def __init__(self, store: SqlStore) -> None:
        super().__init__()
        self._sqlite = store


class SqliteInquiryRepository(_SqliteDocuments[Inquiry], StagedInquiries):
    """Customer inquiries in SQLite; changes are staged and written by the commit."""

    _statements = sql.INQUIRIES
    _class = Inquiry
    _kind = "inquiry"
    _missing = InquiryNotFound

    def __init__(self, store: SqlStore) -> None:
        super().__init__()
        self._sqlite = store


@frozen
class _Table:
    """How one kind of document aggregate (payment, shipment) is written: its statements,
    its unique lookup column and the error for a missing row."""

    kind: str
    insert: str
    update: str
    exists: str
    unique: str | None  # the column besides the id that must be unique, if any
    missing: type[NotFound]


PAYMENTS = _Table(
    "payment",
    sql.INSERT_PAYMENT,
    sql.UPDATE_PAYMENT,
    sql.PAYMENT_EXISTS,
    "authorization_id",
    PaymentNotFound,
)
SHIPMENTS = _Table(
    "shipment",
    sql.INSERT_SHIPMENT,
    sql.UPDATE_SHIPMENT,
    sql.SHIPMENT_EXISTS,
    "tracking_number",
    ShipmentNotFound,
)


RETURNS = _Table(
    "return", sql.RETURNS.insert, sql.RETURNS.update, sql.RETURNS.exists, None, ReturnNotFound
)
INQUIRIES = _Table(
    "inquiry",
    sql.INQUIRIES.insert,
    sql.INQUIRIES.update,
    sql.INQUIRIES.exists,
    None,
    InquiryNotFound,
)


def write_document(
    conn: SqlConnection,
    table: _Table,
    aggregate: Payment | Shipment | ReturnRequest | Inquiry,
    unique: str | None,
    is_new: bool,
) -> None:
    """Insert or version-checked update of one document row; the unit of work has
    already raised ``aggregate.version``."""
    params: dict[str, Any] = {
        "id": aggregate.id,
        "version": aggregate.version,
        "state": aggregate.state,
        "document": dumps(aggregate),
    }
    if table.unique is not None:
        params[table.unique] = unique
    try:
        if is_new:
            params.update(order_id=aggregate.order_id, created_at=sortable(aggregate.created_at))
            conn.execute(table.insert, params)
            return
        params["expected"] = aggregate.version - 1
        updated = conn.execute(table.update, params).rowcount
    except sqlbase.INTEGRITY_ERRORS as error:
        unique_column = table.unique or "id"
        what = unique_column.replace("_", " ") if unique_column in str(error) else "id"
        raise DuplicateKey(
            f"a {table.kind} with this {what} already exists ({aggregate.id})"
        ) from None
    if updated != 1:
        if conn.execute(table.exists, {"id": aggregate.id}).fetchone() is None:
            raise table.missing(f"no {table.kind} with id {aggregate.id!r}")
        raise ConcurrencyError(
            f"{table.kind} {aggregate.id} was changed by someone else since version "
            f"{aggregate.version - 1}"
        )
