"""A transaction the database aborted to break a deadlock (TransactionAborted) re-runs the
whole command, whatever the command: placement, inventory, acknowledgement."""

from __future__ import annotations

from typing import Any

import pytest

import orderkit as ok
from orderkit.adapters.memory import ManualClock, MemoryStore, SequentialIds


class AbortingStore(MemoryStore):
    """A memory store whose next ``aborts`` commits fail as PostgreSQL's deadlock
    detector would make them fail: rolled back, ``TransactionAborted``."""

    def __init__(self) -> None:
        super().__init__()
        self.aborts = 0
        self.commits = 0

    def __call__(self) -> Any:
        unit = super().__call__()
        store = self
        real_commit = unit.commit

        def commit() -> Any:
            store.commits += 1
            if store.aborts:  # nothing written: the staged changes die with the unit
                store.aborts -= 1
                raise ok.TransactionAborted("40P01: deadlock detected (simulated)")
            return real_commit()

        unit.commit = commit
        return unit


@pytest.fixture
def shop_and_store() -> tuple[ok.Shop, AbortingStore]:
    store = AbortingStore()
    shop = ok.Shop(store, clock=ManualClock(), ids=SequentialIds())
    shop.inventory.add_location(ok.Location("main", "Main"))
    return shop, store


def test_an_aborted_inventory_command_runs_again(
    shop_and_store: tuple[ok.Shop, AbortingStore],
) -> None:
    shop, store = shop_and_store
    store.aborts = 2
    shop.inventory.receive("SKU-1", location="main", quantity=5)
    [level] = shop.inventory.levels("SKU-1")
    assert level.on_hand == 5  # once, not three times
    assert store.aborts == 0


def test_an_aborted_placement_runs_again_and_reserves_once(
    shop_and_store: tuple[ok.Shop, AbortingStore], place_command: ok.PlaceOrder
) -> None:
    shop, store = shop_and_store
    for line in place_command.lines:
        shop.inventory.receive(line.sku, location="main", quantity=10)
    store.aborts = 1
    order = shop.orders.place(place_command)
    assert shop.orders.get(order.id).state == "placed"
    held = {sku: r.quantity for sku, _, r in shop.inventory.reservations(order.id)}
    assert held == {line.sku: line.quantity for line in place_command.lines}
    assert len(shop.orders.list()) == 1


def test_aborted_past_the_retries_reaches_the_caller_and_changes_nothing(
    shop_and_store: tuple[ok.Shop, AbortingStore], place_command: ok.PlaceOrder
) -> None:
    shop, store = shop_and_store
    for line in place_command.lines:
        shop.inventory.receive(line.sku, location="main", quantity=10)
    order = shop.orders.place(place_command)
    store.aborts = shop.settings.concurrency_retries + 1
    with pytest.raises(ok.TransactionAborted):
        shop.orders.acknowledge(order.id)
    assert shop.orders.get(order.id).state == "placed"
    assert shop.orders.get(order.id).version == order.version
