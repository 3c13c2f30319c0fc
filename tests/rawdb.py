"""Raw sqlite3 access for tests that inspect or damage a database file behind orderkit's back."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def connect(path: str | Path) -> Iterator[sqlite3.Connection]:
    """A connection that commits on success and is always closed (sqlite3's own
    context manager commits but leaves the connection open)."""
    conn = sqlite3.connect(path)
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()
