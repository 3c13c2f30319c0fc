"""The PostgreSQL server the tests use: ``$ORDERKIT_TEST_POSTGRES_URL``, else the
machine's own at 127.0.0.1:5432 (database ``test``). Each test gets a schema of its own."""

from __future__ import annotations

import contextlib
import os
import uuid
from urllib.parse import quote

import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
ENV = "ORDERKIT_TEST_POSTGRES_URL"
PREFIX = "okt_"
FULL_ENV = "ORDERKIT_PG_FULL"
"""Set (``nox -s postgres``) to run the long end-to-end suites on PostgreSQL as well."""


def full_stores() -> list[str]:
    """The stores the long end-to-end suites run on: PostgreSQL only with ``FULL_ENV``."""
    return ["memory", "sqlite", *(["postgres"] if os.environ.get(FULL_ENV) else [])]


def base_url() -> str:
    """The server's URL, or skip (no server and no URL given) / fail (a URL given that
    does not answer: CI sets it, and must not skip)."""
    url = os.environ.get(ENV) or DEFAULT_URL
    try:
        import psycopg
    except ImportError:  # pragma: no cover
        pytest.skip("psycopg is not installed (pip install 'orderkit[postgres]')")
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError as error:
        if os.environ.get(ENV):
            pytest.fail(f"{ENV}={url} does not answer: {error}")
        pytest.skip(f"no PostgreSQL answers at {DEFAULT_URL} and {ENV} is unset")
    return url


def schema_url(url: str, schema: str) -> str:
    """``url`` with ``search_path`` set to ``schema``."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


def new_schema(url: str) -> tuple[str, str]:
    """Create an empty schema; return its name and the URL that uses it."""
    import psycopg

    schema = PREFIX + uuid.uuid4().hex[:12]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return schema, schema_url(url, schema)


def drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


_MADE: list[tuple[str, str]] = []


def store_url(kind: str, sqlite_path: object) -> str:
    """The URL of a fresh store of ``kind``: "memory", "sqlite" (at ``sqlite_path``) or
    "postgres" (a new schema, dropped when the test process ends)."""
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return str(sqlite_path)
    base = base_url()
    schema, url = new_schema(base)
    if not _MADE:
        import atexit

        atexit.register(_drop_made)
    _MADE.append((base, schema))
    return url


def _drop_made() -> None:
    while _MADE:
        with contextlib.suppress(Exception):  # a server gone away took its schemas along
            drop_schema(*_MADE.pop())


def schema_of(url: str) -> str:
    """The schema a URL made by :func:`schema_url` names."""
    from urllib.parse import unquote

    return unquote(url).rpartition("search_path=")[2]
