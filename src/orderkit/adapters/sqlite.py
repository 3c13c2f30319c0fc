"""The embedded durable default: SQLite through the standard library's ``sqlite3``.

* The schema is created and migrated by orderkit (``orderkit_schema`` holds its
  version). A file that is not an orderkit database, or one written by a newer
  orderkit, raises :class:`NotAnOrderkitDatabase` / :class:`SchemaTooNew` and
  is left exactly as it was.
* WAL journal. ``synchronous=NORMAL`` (the default) makes a commit durable
  against a crash of the process but, on a power loss, may lose the last
  transactions (never corrupts the file); ``synchronous="FULL"`` also survives
  power loss at the cost of an fsync per commit.
* Every write transaction is ``BEGIN IMMEDIATE`` with a busy timeout, so
  concurrent writers queue instead of failing with "database is locked".
  One command is one transaction: its orders and its events (the outbox).
* Orders are JSON documents (via :mod:`orderkit.serialization`) with indexed
  columns for lookups; versions are checked with ``UPDATE ... WHERE version = ?``.

One connection per thread and process; a store can be shared by threads.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from orderkit.adapters import sql, sqlbase
from orderkit.adapters.repository import (
    StagedOrders,
    StagedUnitOfWork,
    check_page,
)
from orderkit.adapters.sqlbase import SqlConnection, SqlStore
from orderkit.adapters.sqlite_documents import (
    INQUIRIES,
    PAYMENTS,
    RETURNS,
    SHIPMENTS,
    SqliteInquiryRepository,
    SqlitePaymentRepository,
    SqliteReturnRepository,
    SqliteShipmentRepository,
    load_document,
    sortable,
    write_document,
)
from orderkit.adapters.sqlite_stock import SqliteStockRepository, apply_stock_changes
from orderkit.domain.events import DomainEvent, aggregate_of
from orderkit.domain.order import Order
from orderkit.domain.stock_changes import StockChange
from orderkit.errors import (
    ConcurrencyError,
    CorruptRecord,
    DuplicateKey,
    InvalidSettings,
    NotAnOrderkitDatabase,
    OrderNotFound,
    SchemaTooNew,
    StorageError,
)
from orderkit.ports import DeadLetter, OutboxRecord
from orderkit.serialization import dumps, dumps_event, loads_event

__all__ = [
    "SqliteInquiryRepository",
    "SqliteOutbox",
    "SqlitePaymentRepository",
    "SqliteReturnRepository",
    "SqliteShipmentRepository",
    "SqliteStore",
    "SqliteUnitOfWork",
]

SCHEMA_VERSION = len(sql.MIGRATIONS)

log = logging.getLogger("orderkit.sqlite")


def _ts(moment: datetime) -> float:
    return moment.timestamp()


def _from_ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


class SqliteStore:
    """An orderkit database in one SQLite file; call it for a unit of work."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        busy_timeout: float = 30.0,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise InvalidSettings(
                "must be 'NORMAL' or 'FULL'", field="synchronous", value=synchronous
            )
        self.path = os.fspath(path)
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        # a store dropped without close() still closes its connections
        self._finalizer = weakref.finalize(self, _close_all, self._connections)
        self.outbox = SqliteOutbox(self)
        self._open_schema()

    def __call__(self) -> SqliteUnitOfWork:
        return SqliteUnitOfWork(self)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (made on first use, remade after a fork)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = self._connect()
            # WAL is the file's own setting, made once when the store opens; asking for it
            # again from many threads at once can fail at once with "database is locked"
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction, committed on success, rolled back on error."""
        conn = self.connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException as error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(error, sqlite3.OperationalError):
                # locked past the busy timeout, disk full, read-only file...
                raise StorageError(f"{self.path}: {error}") from error
            raise

    def before_writes(
        self, conn: SqlConnection, changes: Sequence[StockChange], events: Sequence[DomainEvent]
    ) -> None:
        """Nothing: ``BEGIN IMMEDIATE`` already made this the only writer."""

    def _open_schema(self) -> None:
        if Path(self.path).is_dir():
            raise NotAnOrderkitDatabase(f"{self.path} is a directory, not a database file")
        try:
            probe = self._connect()
        except sqlite3.Error as error:  # a missing folder, no permission...
            raise StorageError(f"{self.path}: cannot open the database ({error})") from None
        try:
            version = self._schema_version(probe)
            self._use_wal(probe)
            if version == SCHEMA_VERSION:
                return
            probe.execute("BEGIN IMMEDIATE")
            try:
                version = self._schema_version(probe)  # another process may have migrated
                for number in range(version, SCHEMA_VERSION):
                    for statement in sql.MIGRATIONS[number]:
                        probe.execute(statement)
                probe.execute(f"DELETE FROM {sql.SCHEMA_TABLE}")
                probe.execute(
                    f"INSERT INTO {sql.SCHEMA_TABLE} (version) VALUES (?)", (SCHEMA_VERSION,)
                )
                probe.execute("COMMIT")
            except BaseException:
                probe.execute("ROLLBACK")
                raise
        finally:
            probe.close()

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Put the file in WAL mode (it stays so); a busy moment is waited out."""
        for _ in range(50):
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error):
                    raise StorageError(f"{self.path}: {error}") from None
                time.sleep(0.1)
        raise StorageError(f"{self.path}: could not switch to WAL mode: the file stays locked")

    def _schema_version(self, conn: sqlite3.Connection) -> int:
        try:
            tables = {
                row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except sqlite3.DatabaseError as error:
            raise NotAnOrderkitDatabase(f"{self.path} is not a SQLite database ({error})") from None
        if not tables:
            return 0
        if sql.SCHEMA_TABLE not in tables:
            raise NotAnOrderkitDatabase(
                f"{self.path} is a SQLite database that orderkit did not create "
                f"(tables: {', '.join(sorted(tables)[:5])})"
            )
        row = conn.execute(f"SELECT MAX(version) FROM {sql.SCHEMA_TABLE}").fetchone()
        version = int(row[0] or 0)
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{self.path} has schema version {version}; this orderkit knows up to "
                f"{SCHEMA_VERSION}. Upgrade orderkit to open it."
            )
        return version

    def close(self) -> None:
        """Close every connection this store opened in this process (all threads)."""
        with self._connections_lock:
            _close_all(self._connections)
        self._local = threading.local()


def _close_all(connections: list[sqlite3.Connection]) -> None:
    while connections:
        connections.pop().close()


class SqliteOrderRepository(StagedOrders):
    """Orders in SQLite; changes are staged and written by the unit of work's commit."""

    def __init__(self, store: SqlStore) -> None:
        super().__init__()
        self._sqlite = store

    def get(self, order_id: str) -> Order:
        """Read the committed order ``order_id`` from the database.

        Raises OrderNotFound if absent, CorruptRecord if its document cannot be read back."""
        row = self._sqlite.connection().execute(sql.SELECT_ORDER, {"id": order_id}).fetchone()
        order = load_document(row, order_id, Order)
        if order is None:
            raise OrderNotFound(order_id)
        return order

    def find_by_idempotency_key(self, key: str) -> Order | None:
        """The committed order placed with ``key``, or None; raises CorruptRecord if unreadable."""
        row = self._sqlite.connection().execute(sql.SELECT_ORDER_BY_KEY, {"key": key}).fetchone()
        return load_document(row, f"with idempotency key {key!r}", Order)

    def list(
        self,
        *,
        state: str | None = None,
        customer_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Sequence[Order]:
        """Committed orders matching the filters, by ``placed_at`` then id, paged in SQL.

        Raises InvalidField for a bad ``limit``/``offset``, CorruptRecord for an unreadable row."""
        check_page(limit, offset)
        rows = self._sqlite.connection().execute(
            sql.LIST_ORDERS,
            {"state": state, "customer_id": customer_id, "limit": limit, "offset": offset},
        )
        return [
            order for row in rows if (order := load_document(row, "in a list", Order)) is not None
        ]


class SqliteUnitOfWork(
    StagedUnitOfWork[
        SqliteOrderRepository,
        SqliteStockRepository,
        SqlitePaymentRepository,
        SqliteShipmentRepository,
    ]
):
    """One ``BEGIN IMMEDIATE`` transaction at commit: stock, orders, payments, their events."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        self.orders = SqliteOrderRepository(store)
        self.stock = SqliteStockRepository(store)
        self.payments = SqlitePaymentRepository(store)
        self.shipments = SqliteShipmentRepository(store)
        self.returns: SqliteReturnRepository = SqliteReturnRepository(store)
        self.inquiries: SqliteInquiryRepository = SqliteInquiryRepository(store)

    def commit(self) -> list[DomainEvent]:
        """Write staged stock changes, orders and payments, then their events, in one
        ``BEGIN IMMEDIATE`` transaction.

        Returns the events ([] if nothing is staged). Raises DuplicateKey, OrderNotFound,
        PaymentNotFound, ConcurrencyError or StorageError; then the transaction and
        versions are rolled back."""
        staged = self.staged_aggregates()
        changes = list(self.stock.staged)
        if not staged and not changes:
            return []
        events = [event for aggregate, _ in staged for event in aggregate.pending_events]
        for aggregate, _ in staged:
            aggregate.version += 1
        try:
            with self._store.write() as conn:
                self._store.before_writes(conn, changes, events)
                apply_stock_changes(conn, changes)
                for order, is_new in self.orders.staged.values():
                    _write_order(conn, order, is_new)
                for shipment, is_new in self.shipments.staged.values():
                    write_document(conn, SHIPMENTS, shipment, shipment.tracking_number, is_new)
                for payment, is_new in self.payments.staged.values():
                    write_document(conn, PAYMENTS, payment, payment.authorization_id, is_new)
                for request, is_new in self.returns.staged.values():
                    write_document(conn, RETURNS, request, None, is_new)
                for inquiry, is_new in self.inquiries.staged.values():
                    write_document(conn, INQUIRIES, inquiry, None, is_new)
                for event in events:
                    conn.execute(
                        sql.INSERT_EVENT,
                        {
                            "aggregate_id": aggregate_of(event),
                            "event_type": type(event).__name__,
                            "payload": dumps_event(event),
                            "now": _ts(event.occurred_at),
                        },
                    )
        except BaseException:
            for aggregate, _ in staged:
                aggregate.version -= 1
            raise
        self.committed(staged)
        return events


def _write_order(conn: SqlConnection, order: Order, is_new: bool) -> None:
    params: dict[str, Any] = {
        "id": order.id,
        "version": order.version,
        "state": order.state,
        "document": dumps(order),
    }
    if is_new:
        params.update(
            customer_id=order.customer.id,
            placed_at=sortable(order.placed_at),
            idempotency_key=order.idempotency_key,
        )
        try:
            conn.execute(sql.INSERT_ORDER, params)
        except sqlbase.INTEGRITY_ERRORS as error:
            what = "idempotency key" if "idempotency_key" in str(error) else "id"
            raise DuplicateKey(f"an order with this {what} already exists ({order.id})") from None
        return
    params["expected"] = order.version - 1
    if conn.execute(sql.UPDATE_ORDER, params).rowcount != 1:
        if conn.execute(sql.ORDER_EXISTS, {"id": order.id}).fetchone() is None:
            raise OrderNotFound(order.id)
        raise ConcurrencyError(
            f"order {order.id} was changed by someone else since version {order.version - 1}"
        )


class SqliteOutbox:
    """The outbox tables of a :class:`SqliteStore` (and of other SQL stores)."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def claim(
        self, *, worker: str, limit: int, lease_seconds: float, now: datetime
    ) -> Sequence[OutboxRecord]:
        """Lease up to ``limit`` due events to ``worker``, by seq, in one write transaction.

        An event that cannot be read back is logged and set aside for an hour, not returned."""
        records: list[OutboxRecord] = []
        probe = {"now": _ts(now), "limit": 1}
        claim = sql.CLAIM_EVENTS
        if self._store.connection().execute(claim, probe).fetchone() is None:
            return records  # nothing due: no write transaction (the next claim looks again)
        with self._store.write() as conn:
            rows = conn.execute(claim, {"now": _ts(now), "limit": limit}).fetchall()
            until = _ts(now) + lease_seconds
            for seq, aggregate_id, payload, attempts in rows:
                try:
                    event = loads_event(payload)
                except Exception as error:
                    # Put it aside (later events of its aggregate wait behind it) instead of
                    # failing every claim; it is retried once the cause (say, an event class
                    # this process cannot import) is fixed.
                    log.error("outbox event %s cannot be read back: %r", seq, error)
                    conn.execute(sql.SET_ASIDE_EVENT, {"seq": seq, "until": _ts(now) + 3600})
                    continue
                conn.execute(sql.LEASE_EVENT, {"worker": worker, "until": until, "seq": seq})
                records.append(OutboxRecord(seq, aggregate_id, event, attempts))
        return records

    def renew(self, seq: int, *, worker: str, lease_seconds: float, now: datetime) -> bool:
        """Extend ``worker``'s lease on unfinished ``seq`` to ``now + lease_seconds``.

        Returns False when ``worker`` no longer holds it or it is already dispatched."""
        with self._store.write() as conn:
            cursor = conn.execute(
                sql.RENEW_LEASE,
                {"seq": seq, "worker": worker, "until": _ts(now) + lease_seconds},
            )
            return cursor.rowcount == 1

    def release(self, seqs: Sequence[int], *, worker: str) -> None:
        """Clear the lease on each of ``seqs`` that ``worker`` holds; others are left alone."""
        with self._store.write() as conn:
            for seq in seqs:
                conn.execute(sql.RELEASE_EVENT, {"seq": seq, "worker": worker})

    def is_processed(self, handler: str, seq: int) -> bool:
        """True when ``processed_events`` has a row for ``handler`` and ``seq``."""
        conn = self._store.connection()
        return (
            conn.execute(sql.IS_PROCESSED, {"handler": handler, "seq": seq}).fetchone() is not None
        )

    def mark_processed(self, handler: str, seq: int) -> None:
        """Insert a ``processed_events`` row for ``handler`` and ``seq`` (no-op if present)."""
        with self._store.write() as conn:
            conn.execute(sql.MARK_PROCESSED, {"handler": handler, "seq": seq})

    def finish(self, seq: int, *, worker: str, now: datetime) -> None:
        """Mark ``seq`` dispatched at ``now`` and clear its lease, if ``worker`` still holds it."""
        with self._store.write() as conn:
            conn.execute(sql.FINISH_EVENT, {"seq": seq, "now": _ts(now), "worker": worker})

    def postpone(self, seq: int, *, worker: str, until: datetime) -> None:
        """If ``worker`` holds ``seq``: count a failed attempt, release the lease and make
        the event due again at ``until``."""
        with self._store.write() as conn:
            conn.execute(sql.POSTPONE_EVENT, {"seq": seq, "worker": worker, "until": _ts(until)})

    def dead_letter(self, letter: DeadLetter) -> None:
        """Upsert ``letter``; an existing letter for the same handler and seq takes its error
        and time."""
        with self._store.write() as conn:
            conn.execute(
                sql.UPSERT_DEAD_LETTER,
                {
                    "handler": letter.handler,
                    "seq": letter.seq,
                    "error": letter.error,
                    "at": _ts(letter.failed_at),
                },
            )

    def dead_letters(self) -> Sequence[DeadLetter]:
        """Every dead letter with its event, by seq then handler.

        Raises CorruptRecord if an event cannot be read back."""
        rows = self._store.connection().execute(sql.LIST_DEAD_LETTERS).fetchall()
        return [
            DeadLetter(handler, seq, _event(payload, seq), error, _from_ts(failed_at))
            for handler, seq, payload, error, failed_at in rows
        ]

    def remove_dead_letter(self, handler: str, seq: int) -> None:
        """Delete the dead letter of ``handler`` for ``seq``, if there is one."""
        with self._store.write() as conn:
            conn.execute(sql.DELETE_DEAD_LETTER, {"handler": handler, "seq": seq})

    def pending(self) -> int:
        """How many outbox events are not yet dispatched."""
        row = self._store.connection().execute(sql.COUNT_PENDING).fetchone()
        return int(row[0])

    def history(self, aggregate_id: str) -> Sequence[OutboxRecord]:
        """Every committed event of ``aggregate_id``, dispatched or not, by seq.

        Raises CorruptRecord if an event cannot be read back."""
        rows = self._store.connection().execute(sql.HISTORY, {"aggregate_id": aggregate_id})
        return [OutboxRecord(seq, aggregate_id, _event(payload, seq)) for seq, payload in rows]


def _event(payload: str, seq: int) -> DomainEvent:
    try:
        return loads_event(payload)
    except Exception as error:
        raise CorruptRecord(f"outbox event {seq} cannot be read back: {error!r}") from None
