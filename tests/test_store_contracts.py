"""The store contract suite, run against every store this repository ships."""

from pathlib import Path

from orderkit.adapters.memory import MemoryStore
from orderkit.adapters.sqlite import SqliteStore
from orderkit.ports import Store
from orderkit.testing.contracts import StoreContract


class TestMemoryStore(StoreContract):
    def make_store(self, tmp_path: Path) -> Store:
        return MemoryStore()


class TestSqliteStore(StoreContract):
    def make_store(self, tmp_path: Path) -> Store:
        return SqliteStore(tmp_path / "shop.db")
