"""What the SQL repositories need from a relational store, whatever its driver.

The repositories, the unit of work and the outbox of :mod:`orderkit.adapters.sqlite`
are written against these protocols, with the statements of :mod:`orderkit.adapters.sql`;
:class:`~orderkit.adapters.sqlite.SqliteStore` and
:class:`~orderkit.adapters.postgres.PostgresStore` implement them, each adding what
its database needs (SQLite: one writer at a time; PostgreSQL: row locks in a fixed
order, ``SKIP LOCKED`` claims, ``LISTEN/NOTIFY``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from orderkit.domain.events import DomainEvent
from orderkit.domain.stock_changes import StockChange

__all__ = ["INTEGRITY_ERRORS", "SqlConnection", "SqlCursor", "SqlStore"]

INTEGRITY_ERRORS: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)
"""The drivers' unique-constraint errors (the PostgreSQL adapter adds psycopg's on import)."""


class SqlCursor(Protocol):
    """The part of a DB-API cursor the repositories use."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class SqlConnection(Protocol):
    """Runs one statement of :mod:`orderkit.adapters.sql` (``:name`` parameters)."""

    def execute(
        self, statement: str, parameters: Mapping[str, Any] | Sequence[Any] = ..., /
    ) -> SqlCursor: ...


class SqlStore(Protocol):
    """A relational store as the shared repositories see it."""

    def connection(self) -> SqlConnection:
        """A connection for reads of committed data, outside any transaction."""
        ...

    def write(self) -> AbstractContextManager[SqlConnection]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        ...

    def before_writes(
        self, conn: SqlConnection, changes: Sequence[StockChange], events: Sequence[DomainEvent]
    ) -> None:
        """Called first in a unit of work's write transaction (take locks here)."""
