"""The PostgreSQL store: the contract suite, its dialect, migrations and concurrency."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import pg
from orderkit.ports import Store
from orderkit.testing.contracts import StoreContract

_SCHEMAS: list[tuple[str, str]] = []


@pytest.fixture(scope="module", autouse=True)
def _drop_schemas() -> Iterator[None]:
    yield
    while _SCHEMAS:
        pg.drop_schema(*_SCHEMAS.pop())


class TestPostgresStore(StoreContract):
    def make_store(self, tmp_path: Path) -> Store:
        from orderkit.adapters.postgres import PostgresStore

        base = pg.base_url()
        schema, url = pg.new_schema(base)
        _SCHEMAS.append((base, schema))
        return PostgresStore(url, max_size=4)
