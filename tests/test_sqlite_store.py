"""The SQLite store on real files: schema, bad files, durability settings, URLs."""

from pathlib import Path

import pytest

import orderkit as ok
import rawdb
from orderkit.adapters.sqlite import SCHEMA_VERSION, SqliteStore
from orderkit.shop import STORE_ENV, open_store
from orderkit.testing.contracts import make_order


def _tables(path: Path) -> set[str]:
    with rawdb.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_new_file_gets_the_schema_and_orders_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    store = SqliteStore(path)
    with store() as uow:
        uow.orders.add(make_order("o-1", key="k"))
        uow.commit()
    store.close()
    assert {"orders", "outbox", "processed_events", "dead_letters", "orderkit_schema"} <= _tables(
        path
    )
    again = SqliteStore(path)
    with again() as uow:
        assert uow.orders.get("o-1").idempotency_key == "k"
    with rawdb.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM orderkit_schema").fetchall() == [(SCHEMA_VERSION,)]


def test_a_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    content = b"these are my notes, not a database\n" * 200
    path.write_bytes(content)
    with pytest.raises(ok.NotAnOrderkitDatabase, match="not a SQLite database"):
        SqliteStore(path)
    assert path.read_bytes() == content


def test_a_foreign_sqlite_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with rawdb.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers (name) VALUES ('x')")
    before = path.read_bytes()
    with pytest.raises(ok.NotAnOrderkitDatabase, match="did not create"):
        SqliteStore(path)
    assert path.read_bytes() == before
    assert _tables(path) == {"customers"}


def test_a_newer_schema_is_refused_and_nothing_is_lost(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    store = SqliteStore(path)
    with store() as uow:
        uow.orders.add(make_order("o-1"))
        uow.commit()
    store.close()
    with rawdb.connect(path) as conn:
        conn.execute("UPDATE orderkit_schema SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(ok.SchemaTooNew, match="Upgrade orderkit"):
        SqliteStore(path)
    with rawdb.connect(path) as conn:
        assert conn.execute("SELECT version FROM orderkit_schema").fetchone()[0] == (
            SCHEMA_VERSION + 1
        )
        assert conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 1


def test_a_corrupt_document_raises_corrupt_record_and_other_orders_still_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shop.db"
    store = SqliteStore(path)
    with store() as uow:
        uow.orders.add(make_order("o-1"))
        uow.orders.add(make_order("o-2"))
        uow.commit()
    with rawdb.connect(path) as conn:
        conn.execute("UPDATE orders SET document = '{\"id\": \"o-1\", bro' WHERE id = 'o-1'")
    with store() as uow:
        with pytest.raises(ok.CorruptRecord, match="o-1"):
            uow.orders.get("o-1")
        assert uow.orders.get("o-2").id == "o-2"
    with rawdb.connect(path) as conn:
        stored = conn.execute("SELECT document FROM orders WHERE id = 'o-1'").fetchone()[0]
    assert stored == '{"id": "o-1", bro'


def test_synchronous_full_is_applied(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "shop.db", synchronous="FULL")
    assert store.connection().execute("PRAGMA synchronous").fetchone()[0] == 2
    normal = SqliteStore(tmp_path / "other.db")
    assert normal.connection().execute("PRAGMA synchronous").fetchone()[0] == 1
    with pytest.raises(ok.InvalidSettings):
        SqliteStore(tmp_path / "x.db", synchronous="OFF")  # type: ignore[arg-type]


def test_store_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert type(open_store("memory://")).__name__ == "MemoryStore"
    relative = open_store("sqlite:///rel.db")
    assert isinstance(relative, SqliteStore)
    assert (tmp_path / "rel.db").exists()
    absolute = open_store(f"sqlite:///{tmp_path}/abs.db?synchronous=full")
    assert isinstance(absolute, SqliteStore)
    assert absolute.synchronous == "FULL"
    assert isinstance(open_store("plain.db"), SqliteStore)
    for bad in (
        "mysql://localhost/x",
        "sqlite://host/x.db",
        "sqlite:///",
        "sqlite:///x.db?synchronous=off",
    ):
        with pytest.raises(ok.UnsupportedStore):
            open_store(bad)
    monkeypatch.setenv(STORE_ENV, f"sqlite:///{tmp_path}/from-env.db")
    with ok.Shop.open() as shop:
        assert isinstance(shop.store, SqliteStore)
    assert (tmp_path / "from-env.db").exists()
