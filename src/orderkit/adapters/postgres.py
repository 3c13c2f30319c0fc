"""PostgreSQL: one database shared by many application processes and dispatch workers.

Selected by a ``postgresql://`` URL (``Shop.open("postgresql://user@host/db")``); needs
the extra ``orderkit[postgres]`` (psycopg 3 and psycopg_pool). The repositories, the
unit of work and the outbox are the SQLite adapter's, on the same statements
(:mod:`orderkit.adapters.sql`) and the same migrations; this module adds what many
concurrent writers need:

* **Connections** come from a ``psycopg_pool.ConnectionPool`` (``max_size`` per
  process). Reads run in autocommit; each write is one transaction.
* **Stock**: a unit of work first locks every stock row it will touch with
  ``SELECT ... FOR UPDATE`` in (SKU, location) order, so two commands never wait on
  each other in a circle; every check is then the same conditional ``UPDATE`` as on
  SQLite, under the lock.
* **Events of one order commit in seq order**: a unit of work takes a transaction
  advisory lock per order it writes events for (in id order), so no worker can see a
  later event of an order before an earlier one has committed.
* **Deadlocks and serialization failures** (SQLSTATE 40P01, 40001) roll back and raise
  :class:`~orderkit.errors.ConcurrencyError`, on which the services re-run the whole
  command (``ShopSettings.concurrency_retries``); versions are optimistic as on SQLite.
* **Outbox**: workers claim the first undelivered event of each order with
  ``FOR UPDATE SKIP LOCKED`` (so they never block each other and never take an
  order's events out of order) and a lease (a killed worker's events come back when it
  ends). Commits ``NOTIFY orderkit_outbox``; idle workers ``LISTEN`` instead of polling
  (:meth:`PostgresOutbox.wait_for_events`).
* **Migrations**: the SQLite adapter's, translated (``BIGINT`` identities), applied under
  an advisory lock so that processes starting together migrate once.

Use a schema of its own per shop (``?options=-csearch_path%3Dshop``) if the database
holds other applications' tables.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any

from orderkit.adapters import sql, sqlbase
from orderkit.adapters.sqlbase import SqlConnection
from orderkit.adapters.sqlite import SqliteOutbox, SqliteUnitOfWork
from orderkit.domain.events import DomainEvent, aggregate_of
from orderkit.domain.stock_changes import (
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
    InvalidSettings,
    MissingExtra,
    SchemaTooNew,
    StorageError,
    TransactionAborted,
)
from orderkit.ports import OutboxRecord
from orderkit.serialization import loads_event

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as missing:  # pragma: no cover - exercised without the extra
    raise MissingExtra(
        f"PostgreSQL needs psycopg 3 and psycopg_pool ({missing.name} is not installed); "
        "install them with: pip install 'orderkit[postgres]'"
    ) from None

__all__ = ["CHANNEL", "CLAIM_EVENTS", "PostgresOutbox", "PostgresStore", "migration_statements"]

log = logging.getLogger("orderkit.postgres")

sqlbase.INTEGRITY_ERRORS = (*sqlbase.INTEGRITY_ERRORS, pg_errors.UniqueViolation)

CHANNEL = "orderkit_outbox"
"""The ``LISTEN/NOTIFY`` channel a commit with events notifies."""

_MIGRATION_LOCK = 0x6F726465726B6974  # "orderkit": one advisory lock key for migrations

CLAIM_EVENTS = """
SELECT seq, aggregate_id FROM outbox o
WHERE o.dispatched_at IS NULL
  AND o.available_at <= :now
  AND (o.lease_until IS NULL OR o.lease_until <= :now)
  AND o.seq = (
    SELECT MIN(p.seq) FROM outbox p
    WHERE p.aggregate_id = o.aggregate_id AND p.dispatched_at IS NULL
  )
ORDER BY seq LIMIT :limit
FOR UPDATE OF o SKIP LOCKED
"""
"""The due events that are first in their order's queue, skipping rows another worker
is claiming. Only a queue's head can start a claim, so two workers never hold events of
one order at once, and an order's events are never taken out of order."""

_QUEUES = """
SELECT seq, aggregate_id, payload, attempts, available_at, lease_until FROM outbox
WHERE aggregate_id = ANY(:aggregates) AND dispatched_at IS NULL
ORDER BY aggregate_id, seq
FOR UPDATE
"""
_LEASE_EVENTS = """
UPDATE outbox SET lease_owner = :worker, lease_until = :until WHERE seq = ANY(:seqs)
"""

_STOCK_OF_ORDERS = """
SELECT DISTINCT sku, location FROM reservations WHERE order_id = ANY(:orders)
"""
_STOCK_OF_EXPIRED = """
SELECT DISTINCT sku, location FROM reservations
WHERE shipment_id IS NULL AND expires_at IS NOT NULL AND expires_at <= :now
"""
_LOCK_STOCK = """
SELECT 1 FROM stock s
JOIN unnest(CAST(:skus AS TEXT[]), CAST(:locations AS TEXT[])) AS k (sku, location)
  ON s.sku = k.sku AND s.location = k.location
ORDER BY s.sku, s.location
FOR UPDATE OF s
"""
_LOCK_AGGREGATE = "SELECT pg_advisory_xact_lock(hashtextextended(:aggregate_id, 0))"
_NOTIFY = f"SELECT pg_notify('{CHANNEL}', current_schema())"
"""The channel is the database's: the payload names the schema, so that shops in other
schemas of one database do not wake each other's workers."""


def _configure(conn: psycopg.Connection[Any]) -> None:
    """Every pooled connection runs at READ COMMITTED: the row locks and conditional updates
    are designed for it (a server default of SERIALIZABLE would fail contended commands)."""
    conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED


def migration_statements(statement: str) -> str:
    """A shared migration statement in PostgreSQL's dialect: 64-bit identity sequences."""
    statement = statement.replace(
        "seq INTEGER PRIMARY KEY", "seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    )
    return re.sub(r"\bseq INTEGER\b", "seq BIGINT", statement)


@lru_cache(maxsize=512)
def _pyformat(statement: str) -> str:
    return sql.pyformat(statement)


class _Rows:
    """A finished statement's rows and row count (the connection is back in the pool)."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return self._rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


class _Transaction:
    """A pooled connection inside a write transaction, speaking ``:name`` parameters."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(
        self, statement: str, parameters: Mapping[str, Any] | Sequence[Any] = (), /
    ) -> psycopg.Cursor[Any]:
        return self._conn.execute(_pyformat(statement), parameters or None)


class _Reads:
    """Runs each read on a pooled connection in autocommit and returns its rows."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    def execute(
        self, statement: str, parameters: Mapping[str, Any] | Sequence[Any] = (), /
    ) -> _Rows:
        with self._store._translated(), self._store.pool.connection() as conn:
            cursor = conn.execute(_pyformat(statement), parameters or None)
            rows = cursor.fetchall() if cursor.description is not None else []
            return _Rows(rows, cursor.rowcount)


class PostgresStore:
    """An orderkit database in PostgreSQL; call it for a unit of work.

    ``url`` is a libpq connection URL (``postgresql://user:password@host:5432/db``);
    ``max_size`` bounds this process's pooled connections (a dispatch worker holds one
    more, for ``LISTEN``, at ``listen_url``: by default ``url``). Behind PgBouncer in
    transaction mode, pass ``prepare_threshold=None`` (no server-side prepared
    statements), set the schema with ``ALTER ROLE ... SET search_path`` rather than in the
    URL, and give a ``listen_url`` that reaches PostgreSQL directly. Transactions run at
    READ COMMITTED whatever the server's default: the locking is designed for it.

    A process forked after the store was opened (a pre-forking web server) gets a pool of
    its own on first use. Raises :class:`~orderkit.errors.StorageError` when the server
    cannot be reached within ``timeout`` seconds.
    """

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 8,
        timeout: float = 30.0,
        prepare_threshold: int | None = 5,
        listen_url: str | None = None,
    ) -> None:
        if not 1 <= min_size <= max_size:
            raise InvalidSettings(
                "need 1 <= min_size <= max_size", field="max_size", value=(min_size, max_size)
            )
        self.url = url
        self.listen_url = listen_url or url
        self.timeout = timeout
        self._pool_options: dict[str, Any] = {
            "min_size": min_size,
            "max_size": max_size,
            "timeout": timeout,
            "kwargs": {
                "autocommit": True,
                "application_name": "orderkit",
                "prepare_threshold": prepare_threshold,
            },
            "configure": _configure,
            "name": "orderkit",
        }
        self._pid = os.getpid()
        self._pool = self._open_pool()
        self._reads = _Reads(self)
        self.outbox = PostgresOutbox(self)
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    def __call__(self) -> SqliteUnitOfWork:
        return SqliteUnitOfWork(self)

    def _open_pool(self) -> ConnectionPool[Any]:
        pool: ConnectionPool[Any] = ConnectionPool(self.url, open=False, **self._pool_options)
        try:
            pool.open(wait=True, timeout=self.timeout)
        except PoolTimeout as error:
            pool.close()
            raise StorageError(
                f"{_safe(self.url)}: cannot connect to PostgreSQL ({error})"
            ) from None
        return pool

    @property
    def pool(self) -> ConnectionPool[Any]:
        """This process's connection pool (a forked child makes its own: the parent's
        connections are the parent's)."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._pool = self._open_pool()  # the inherited one is left alone, not closed
            self.outbox.forget_listener()
        return self._pool

    def __repr__(self) -> str:
        return f"PostgresStore({_safe(self.url)!r})"

    def connection(self) -> _Reads:
        """Reads of committed data, each on a pooled connection in autocommit."""
        return self._reads

    @contextmanager
    def write(self) -> Iterator[SqlConnection]:
        """One transaction on a pooled connection: committed on success, rolled back on
        error. Deadlocks and serialization failures become ConcurrencyError; a lost
        connection or an exhausted pool, StorageError."""
        with self._translated(), self.pool.connection() as conn, conn.transaction():
            yield _Transaction(conn)

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except (pg_errors.SerializationFailure, pg_errors.DeadlockDetected) as error:
            raise TransactionAborted(
                f"PostgreSQL rolled the transaction back ({error.sqlstate}: "
                f"{type(error).__name__}); commands run again on this"
            ) from error
        except PoolTimeout as error:
            raise StorageError(f"{_safe(self.url)}: no free connection ({error})") from error
        except psycopg.OperationalError as error:
            raise StorageError(f"{_safe(self.url)}: {error}") from error

    def before_writes(
        self, conn: SqlConnection, changes: Sequence[StockChange], events: Sequence[DomainEvent]
    ) -> None:
        """Lock the stock rows the changes touch, in (SKU, location) order, then the
        orders the events are about, in id order; tell listening workers on commit."""
        keys = self._stock_keys(conn, changes)
        if keys:
            ordered = sorted(keys)
            conn.execute(
                _LOCK_STOCK,
                {"skus": [k[0] for k in ordered], "locations": [k[1] for k in ordered]},
            ).fetchall()
        for aggregate_id in sorted({aggregate_of(event) for event in events}):
            conn.execute(_LOCK_AGGREGATE, {"aggregate_id": aggregate_id}).fetchall()
        if events:
            conn.execute(_NOTIFY).fetchall()

    @staticmethod
    def _stock_keys(conn: SqlConnection, changes: Sequence[StockChange]) -> set[tuple[str, str]]:
        keys: set[tuple[str, str]] = set()
        orders: set[str] = set()
        for change in changes:
            if isinstance(change, Receive | Adjust | SetBackorderLimit | Restock):
                keys.add((change.sku, change.location))
            elif isinstance(change, Reserve):
                keys.update((pick.sku, pick.location) for pick in change.picks)
            elif isinstance(change, Release | KeepReservations | Allocate | Ship):
                orders.add(change.order_id)
            elif isinstance(change, ExpireReservations):
                expired = conn.execute(_STOCK_OF_EXPIRED, {"now": change.now.timestamp()})
                keys.update((sku, location) for sku, location in expired.fetchall())
        if orders:
            rows = conn.execute(_STOCK_OF_ORDERS, {"orders": sorted(orders)}).fetchall()
            keys.update((sku, location) for sku, location in rows)
        return keys

    def _migrate(self) -> None:
        with self.write() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(:key)", {"key": _MIGRATION_LOCK})
            schema = conn.execute("SELECT current_schema()").fetchone()[0]
            if schema is None:
                raise StorageError(
                    f"{_safe(self.url)}: the search_path names no existing schema; "
                    "create it first (CREATE SCHEMA ...)"
                )
            # in this schema only: another schema's orderkit tables later on the
            # search_path must not be taken for ours
            exists = conn.execute(
                "SELECT to_regclass(format('%%I.%%I', CAST(:schema AS TEXT), CAST(:name AS TEXT)))",
                {"schema": schema, "name": sql.SCHEMA_TABLE},
            ).fetchone()[0]
            version = 0
            if exists is not None:
                row = conn.execute(f"SELECT MAX(version) FROM {sql.SCHEMA_TABLE}").fetchone()
                version = int(row[0] or 0)
            latest = len(sql.MIGRATIONS)
            if version > latest:
                raise SchemaTooNew(
                    f"{_safe(self.url)} has orderkit schema version {version}; this orderkit "
                    f"knows up to {latest}. Upgrade orderkit to open it."
                )
            for number in range(version, latest):
                for statement in sql.MIGRATIONS[number]:
                    conn.execute(migration_statements(statement))
            if version != latest:
                # the outbox grows fast and its claim plans need fresh statistics: analyse it
                # after 1 % of new rows rather than the default 10 %
                conn.execute(
                    "ALTER TABLE outbox SET (autovacuum_analyze_scale_factor = 0.01, "
                    "autovacuum_vacuum_scale_factor = 0.02)"
                )
            if version != latest:
                conn.execute(f"DELETE FROM {sql.SCHEMA_TABLE}")
                conn.execute(f"INSERT INTO {sql.SCHEMA_TABLE} (version) VALUES (:v)", {"v": latest})
                log.info("migrated %s from schema %s to %s", _safe(self.url), version, latest)

    def close(self) -> None:
        """Close the pool and the outbox's listening connection."""
        self.outbox.close()
        if self._pid == os.getpid():
            self._pool.close()


class PostgresOutbox(SqliteOutbox):
    """The outbox of a :class:`PostgresStore`: the SQL outbox with ``SKIP LOCKED``
    claims, and :meth:`wait_for_events` on ``LISTEN``."""

    def __init__(self, store: PostgresStore) -> None:
        super().__init__(store)
        self._pg = store
        self._url = store.listen_url
        self._listener: psycopg.Connection[Any] | None = None
        self._schema: str | None = None
        self._lock = threading.Lock()

    def claim(
        self, *, worker: str, limit: int, lease_seconds: float, now: datetime
    ) -> Sequence[OutboxRecord]:
        """Lease up to ``limit`` due events to ``worker``, by seq, in one transaction.

        The heads of order queues are locked with ``SKIP LOCKED`` (a head another worker
        is claiming is passed over), then each locked queue's due events follow its head
        up to the first that is not due. An event that cannot be read back is set aside
        for an hour, as on SQLite."""
        moment = now.timestamp()
        with self._pg.write() as conn:
            heads = conn.execute(CLAIM_EVENTS, {"now": moment, "limit": limit}).fetchall()
            if not heads:
                return []
            queues = conn.execute(
                _QUEUES, {"aggregates": sorted({aggregate for _, aggregate in heads})}
            ).fetchall()
            taken: list[OutboxRecord] = []
            blocked: set[str] = set()
            for seq, aggregate_id, payload, attempts, available_at, lease_until in queues:
                if aggregate_id in blocked:
                    continue
                leased = lease_until is not None and lease_until > moment
                if available_at > moment or leased:
                    blocked.add(aggregate_id)  # later events wait behind this one
                    continue
                try:
                    event = loads_event(payload)
                except Exception as error:
                    log.error("outbox event %s cannot be read back: %r", seq, error)
                    conn.execute(sql.SET_ASIDE_EVENT, {"seq": seq, "until": moment + 3600})
                    blocked.add(aggregate_id)
                    continue
                taken.append(OutboxRecord(seq, aggregate_id, event, attempts))
            taken.sort(key=lambda record: record.seq)
            taken = taken[:limit]
            if taken:
                conn.execute(
                    _LEASE_EVENTS,
                    {
                        "worker": worker,
                        "until": moment + lease_seconds,
                        "seqs": [record.seq for record in taken],
                    },
                )
            return taken

    def wait_for_events(self, timeout: float) -> bool:
        """Return True when a commit with events in this store is notified, False after
        ``timeout`` seconds without one (retries that come due are found by the next claim
        then)."""
        deadline = time.monotonic() + timeout
        notified = False
        with self._lock:
            try:
                if self._listener is None or self._listener.closed:
                    self._listener = psycopg.connect(
                        self._url,
                        autocommit=True,
                        connect_timeout=10,
                        keepalives=1,
                        keepalives_idle=30,
                        application_name="orderkit-listen",
                    )
                    self._listener.execute(f"LISTEN {CHANNEL}")
                    row = self._listener.execute("SELECT current_schema()").fetchone()
                    self._schema = row[0] if row else None
                while (left := deadline - time.monotonic()) > 0:
                    woken = [
                        notice.payload
                        for notice in self._listener.notifies(timeout=left, stop_after=1)
                    ]
                    if self._schema in woken or not woken:
                        notified = bool(woken)
                        break  # a commit in our schema, or the timeout
                # notices of commits already waiting: one claim serves them all
                for _ in self._listener.notifies(timeout=0):
                    pass
            except psycopg.OperationalError as error:
                log.warning("LISTEN %s failed (%s); polling instead", CHANNEL, error)
                if self._listener is not None:
                    self._listener.close()
                self._listener = None
                threading.Event().wait(timeout)
        return notified

    def forget_listener(self) -> None:
        """Drop (without closing) a listening connection inherited from a parent process."""
        self._listener = None

    def close(self) -> None:
        """Close the listening connection, if one was opened."""
        with self._lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None


def _safe(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
