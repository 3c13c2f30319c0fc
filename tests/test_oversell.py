"""No overselling, ever: concurrent reservations of one hot SKU, and multi-line orders
placed concurrently with their lines in opposite orders.

* SQLite, 8 processes x 250 attempts to take 1 of 100 units: exactly 100 succeed, and
  on hand, reserved, the reservations and the movement ledger all agree.
* The same in memory, with 8 threads on one shop.
* A deliberately naive SQLite adapter (the check is a committed SELECT, the write a
  later transaction) fails that same check: the test can catch the bug.
* 4 processes place 4-line orders of the same SKUs, two listing them A to D and two
  D to A: all finish, only OutOfStock refusals, no unit lost.

Run with ``-s`` for the figures. Knobs for a bigger run: ``ORDERKIT_OVERSELL_ATTEMPTS``
(per worker, default 250), ``ORDERKIT_OVERSELL_STOCK`` (default 100),
``ORDERKIT_OVERSELL_ROUNDS`` (repetitions of each oversell test, default 1) and
``ORDERKIT_DEADLOCK_ORDERS`` (per process, default 100).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import children
import orderkit as ok
import rawdb
from orderkit.adapters import sql
from orderkit.adapters.sqlite import SqliteStore, SqliteUnitOfWork, _write_order
from orderkit.adapters.sqlite_stock import apply_stock_changes
from orderkit.domain.events import DomainEvent, aggregate_of
from orderkit.domain.inventory import group_picks
from orderkit.domain.stock_changes import Reserve
from orderkit.serialization import dumps_event
from stock_worker import HOT_SKU, MULTI_SKUS, SETTINGS, order, quantities

WORKER = str(Path(__file__).with_name("stock_worker.py"))
WORKERS = 8
ATTEMPTS = int(os.environ.get("ORDERKIT_OVERSELL_ATTEMPTS", "250"))
STOCK = int(os.environ.get("ORDERKIT_OVERSELL_STOCK", "100"))
ROUNDS = int(os.environ.get("ORDERKIT_OVERSELL_ROUNDS", "1"))
DEADLOCK_WORKERS = 4
DEADLOCK_ORDERS = int(os.environ.get("ORDERKIT_DEADLOCK_ORDERS", "100"))
TIMEOUT = 120.0  # seconds for a whole run; far beyond a normal run, so a hang fails
HOT_LOCATION = "main"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX child processes")


# -- the deliberately naive adapter ------------------------------------------------------------


class NaiveSqliteStore(SqliteStore):
    """DELIBERATELY WRONG, to prove the oversell test catches the bug: see NaiveUnitOfWork."""

    # Seconds between the check and the write: an app's round trip or two. Margin only:
    # waiting for the write lock is a window of its own, and 0 oversells too.
    window = 0.003

    def __call__(self) -> NaiveUnitOfWork:
        return NaiveUnitOfWork(self)


class NaiveUnitOfWork(SqliteUnitOfWork):
    """Reserves the way many shops do: read availability (a SELECT, committed on its own),
    then write the reservation in a separate transaction, trusting that read.

    Everything else is as in SqliteUnitOfWork.commit: the order, its events and the
    reservation rows are written together in one ``BEGIN IMMEDIATE`` transaction.
    The only flaw is that the write does not re-check: ``reserved = reserved + n``
    without ``WHERE on_hand - reserved >= n``.
    """

    _store: NaiveSqliteStore

    def commit(self) -> list[DomainEvent]:
        reserves = [change for change in self.stock.staged if isinstance(change, Reserve)]
        if not reserves:
            return super().commit()
        # Step 1: the check, in its own read (autocommit: no transaction is held after it).
        conn = self._store.connection()
        for change in reserves:
            for (sku, location), picks in group_picks(change.picks).items():
                demand = sum(pick.quantity for pick in picks)
                [(on_hand, reserved, limit)] = conn.execute(
                    sql.SELECT_STOCK, {"sku": sku, "location": location}
                ).fetchall()
                available = on_hand + (limit or 0) - reserved
                if demand > available:
                    raise ok.OutOfStock(sku, demand, max(available, 0), location=location)
        time.sleep(self._store.window)
        # Step 2: the write, in a later transaction, trusting step 1.
        staged = list(self.orders.staged.values())
        events = [event for placed, _ in staged for event in placed.pending_events]
        others = [change for change in self.stock.staged if not isinstance(change, Reserve)]
        with self._store.write() as conn:
            apply_stock_changes(conn, others)
            for change in reserves:
                for (sku, location), picks in group_picks(change.picks).items():
                    key = {"sku": sku, "location": location}
                    conn.execute(
                        "UPDATE stock SET reserved = reserved + :quantity "
                        "WHERE sku = :sku AND location = :location",
                        {**key, "quantity": sum(pick.quantity for pick in picks)},
                    )
                    for pick in picks:
                        conn.execute(
                            sql.UPSERT_RESERVATION,
                            {
                                **key,
                                "order_id": change.order_id,
                                "line_id": pick.line_id,
                                "quantity": pick.quantity,
                                "expires_at": change.expires_at and change.expires_at.timestamp(),
                            },
                        )
            for placed, is_new in staged:
                placed.version += 1
                _write_order(conn, placed, is_new)
            for event in events:
                conn.execute(
                    sql.INSERT_EVENT,
                    {
                        "aggregate_id": aggregate_of(event),
                        "event_type": type(event).__name__,
                        "payload": dumps_event(event),
                        "now": event.occurred_at.timestamp(),
                    },
                )
        for placed, _ in staged:
            placed.pending_events.clear()
        self.orders.staged.clear()
        self.stock.staged.clear()
        return events


NAIVE = f"{Path(__file__).stem}:{NaiveSqliteStore.__name__}"


# -- child processes ---------------------------------------------------------------------------


def _run_together(go: Path, commands: list[list[str]]) -> tuple[list[str], float]:
    """Start one worker per command, release them together once all are ready, and return
    each one's stdout and the wall time from the release to the last exit.

    Every command is ``[action, db, worker, ...]``; GO is inserted where the worker wants it.
    """
    started = time.monotonic()
    processes = []
    for command in commands:
        processes.append(children.spawn(WORKER, *command))
    ready = [Path(f"{go}.{command[2]}.ready") for command in commands]
    while not all(path.exists() for path in ready):
        for process in processes:
            if process.poll() is not None:
                _, err = process.communicate()
                pytest.fail(f"a worker exited before the start (rc {process.returncode}):\n{err}")
        if time.monotonic() - started > TIMEOUT:
            pytest.fail(f"the workers were not ready after {TIMEOUT} s")
        time.sleep(0.005)
    released = time.perf_counter()
    go.touch()
    outputs = []
    for process in processes:
        left = max(TIMEOUT - (time.monotonic() - started), 0.1)
        try:
            out, err = process.communicate(timeout=left)
        except subprocess.TimeoutExpired:
            pytest.fail(f"a worker was still running after {TIMEOUT} s: deadlock or livelock")
        assert process.returncode == 0, err
        outputs.append(out)
    return outputs, time.perf_counter() - released


# -- the oversell check, shared by every adapter -----------------------------------------------


def _stock_hot(shop: ok.Shop) -> None:
    shop.inventory.add_location(ok.Location(HOT_LOCATION, "Main warehouse", priority=1))
    shop.inventory.receive(HOT_SKU, location=HOT_LOCATION, quantity=STOCK)


def _parse(outputs: list[str]) -> tuple[list[str], int, list[str]]:
    """(order ids sold, attempts refused with OutOfStock, other errors) from worker output."""
    sold, out, errors = [], 0, []
    for line in (line for text in outputs for line in text.splitlines()):
        if line.startswith("ok "):
            sold.append(line.split()[1])
        elif line == "out":
            out += 1
        else:
            errors.append(line)
    return sold, out, errors


def _hot_figures(shop: ok.Shop, path: Path | None = None) -> dict[str, Any]:
    """Every book that records the hot SKU, read through ``shop.inventory`` (and, on SQLite,
    straight from the tables)."""
    [level] = shop.inventory.levels(HOT_SKU)
    item = shop.inventory.item(HOT_SKU, HOT_LOCATION)
    assert item is not None
    figures: dict[str, Any] = {
        "on_hand": level.on_hand,
        "item_on_hand": item.on_hand,
        "reserved": level.reserved,
        "available": level.available,
        "ledger": sum(m.quantity for m in shop.inventory.movements(HOT_SKU, HOT_LOCATION)),
        "held": sum(r.quantity for r in item.reservations.values()),
        "holders": Counter(order_id for order_id, _ in item.reservations),
    }
    if path is not None:
        with rawdb.connect(path) as conn:
            [(figures["counter"], figures["table_on_hand"])] = conn.execute(
                "SELECT reserved, on_hand FROM stock WHERE sku = ? AND location = ?",
                (HOT_SKU, HOT_LOCATION),
            ).fetchall()
            [(figures["rows"], figures["row_sum"])] = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(quantity), 0) FROM reservations WHERE sku = ?",
                (HOT_SKU,),
            ).fetchall()
            figures["orders"] = {row[0] for row in conn.execute("SELECT id FROM orders")}
    return figures


def _assert_no_oversell(sold: list[str], figures: dict[str, Any]) -> None:
    assert len(sold) == STOCK, f"{len(sold)} reservations of {STOCK} units succeeded"
    assert len(set(sold)) == len(sold), "an order id was reported twice"
    assert figures["on_hand"] == figures["item_on_hand"] == STOCK
    assert figures["ledger"] == figures["on_hand"]
    assert figures["reserved"] == figures["held"] == len(sold)
    assert figures["available"] == 0
    assert figures["holders"] == Counter(sold)  # one 1-unit reservation per sold order
    if "counter" in figures:
        assert figures["counter"] == figures["reserved"]
        assert figures["table_on_hand"] == figures["on_hand"]
        assert figures["rows"] == figures["row_sum"] == len(sold)
        assert figures["orders"] == set(sold)


def _report(what: str, sold: list[str], out: int, figures: dict[str, Any], wall: float) -> None:
    print(
        f"\n{what}: {len(sold)} succeeded, {out} refused (OutOfStock) of "
        f"{WORKERS} x {ATTEMPTS} attempts on {STOCK} units; on hand {figures['on_hand']}, "
        f"reserved {figures['reserved']}, ledger {figures['ledger']}, "
        f"available {figures['available']}; wall {wall:.2f} s"
    )


def _oversell_on_sqlite(
    tmp_path: Path, *store: str, db: str | None = None
) -> tuple[list[str], int, list[str], float]:
    db = db or str(tmp_path / "shop.db")
    with ok.Shop.open(db, settings=SETTINGS) as shop:
        _stock_hot(shop)
    go = tmp_path / "go"
    commands = [["reserve", db, f"w{n}", str(ATTEMPTS), str(go), *store] for n in range(WORKERS)]
    outputs, wall = _run_together(go, commands)
    sold, out, errors = _parse(outputs)
    assert len(sold) + out + len(errors) == WORKERS * ATTEMPTS, "some attempts went unreported"
    return sold, out, errors, wall


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_sqlite_8_processes_never_oversell(tmp_path: Path, round_: int) -> None:
    sold, out, errors, wall = _oversell_on_sqlite(tmp_path)
    assert errors == []
    with ok.Shop.open(str(tmp_path / "shop.db"), settings=SETTINGS) as shop:
        figures = _hot_figures(shop, tmp_path / "shop.db")
    _report("oversell, SQLite, 8 processes", sold, out, figures, wall)
    _assert_no_oversell(sold, figures)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_postgres_8_processes_never_oversell(tmp_path: Path, pg_url: str, round_: int) -> None:
    sold, out, errors, wall = _oversell_on_sqlite(tmp_path, db=pg_url)
    assert errors == []
    with ok.Shop.open(pg_url, settings=SETTINGS) as shop:
        figures = _hot_figures(shop)
        figures.update(_pg_books(pg_url))
    _report("oversell, PostgreSQL, 8 processes", sold, out, figures, wall)
    _assert_no_oversell(sold, figures)


def _pg_books(url: str) -> dict[str, Any]:
    """The hot SKU's rows, read with psycopg straight from the tables."""
    import psycopg

    with psycopg.connect(url) as conn:
        [(counter, on_hand)] = conn.execute(
            "SELECT reserved, on_hand FROM stock WHERE sku = %s AND location = %s",
            (HOT_SKU, HOT_LOCATION),
        ).fetchall()
        [(rows, row_sum)] = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(quantity), 0) FROM reservations WHERE sku = %s",
            (HOT_SKU,),
        ).fetchall()
        orders = {row[0] for row in conn.execute("SELECT id FROM orders")}
    return {
        "counter": counter,
        "table_on_hand": on_hand,
        "rows": rows,
        "row_sum": row_sum,
        "orders": orders,
    }


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_memory_8_threads_never_oversell(round_: int) -> None:
    shop = ok.Shop.open("memory://", settings=SETTINGS)
    _stock_hot(shop)
    start = threading.Barrier(WORKERS)
    results: list[list[str]] = [[] for _ in range(WORKERS)]

    def attempt(worker: int) -> None:
        commands = [order(f"t{worker}", [(HOT_SKU, 1)]) for _ in range(ATTEMPTS)]
        start.wait()
        for command in commands:
            try:
                results[worker].append(f"ok {shop.orders.place(command).id}")
            except ok.OutOfStock:
                results[worker].append("out")
            except Exception as exc:
                results[worker].append(f"error {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=attempt, args=(n,), daemon=True) for n in range(WORKERS)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: more interleavings per attempt
    try:
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
            assert not thread.is_alive(), f"a thread was still running after {TIMEOUT} s"
        wall = time.perf_counter() - began
    finally:
        sys.setswitchinterval(interval)
    sold, out, errors = _parse(["\n".join(lines) for lines in results])
    assert len(sold) + out + len(errors) == WORKERS * ATTEMPTS
    assert errors == []
    figures = _hot_figures(shop)
    _report("oversell, memory, 8 threads", sold, out, figures, wall)
    _assert_no_oversell(sold, figures)
    assert {o.id for o in shop.orders.list(limit=1000)} == set(sold)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_a_naive_check_then_write_adapter_fails_the_oversell_test(
    tmp_path: Path, round_: int
) -> None:
    sold, out, errors, wall = _oversell_on_sqlite(tmp_path, NAIVE)
    assert errors == []
    with ok.Shop.open(str(tmp_path / "shop.db"), settings=SETTINGS) as shop:
        figures = _hot_figures(shop, tmp_path / "shop.db")
    _report("oversell, naive SQLite adapter, 8 processes", sold, out, figures, wall)
    with pytest.raises(AssertionError, match="reservations of"):
        _assert_no_oversell(sold, figures)
    # It oversold, and every book says so: this is not a lost write or a miscount.
    assert len(sold) > STOCK
    assert figures["reserved"] == figures["held"] == figures["counter"] == len(sold)
    assert figures["reserved"] > figures["on_hand"] == STOCK
    assert figures["orders"] == set(sold)


# -- multi-line orders, lines in opposite orders -----------------------------------------------

LOCATIONS = (ok.Location("east", "East", priority=1), ok.Location("west", "West", priority=2))


def _received(sku_index: int, location: str) -> int:
    """Units received per SKU and location. East is rich in the first two SKUs and poor in
    the last two, west the reverse: orders go whole to east, then whole to west, then split
    (first SKUs from east, last from west), and the 8 units of demand per order and SKU
    (2 units a line on average, 4 processes) meet 7 units of stock, so the last ones are
    refused."""
    rich = (sku_index < len(MULTI_SKUS) // 2) == (location == "east")
    return (5 if rich else 2) * DEADLOCK_ORDERS


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_multi_line_orders_in_opposite_orders_neither_deadlock_nor_lose_units(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    path = str(tmp_path / "shop.db") if backend == "sqlite" else request.getfixturevalue("pg_url")
    received = {
        (sku, loc.id): _received(index, loc.id)
        for index, sku in enumerate(MULTI_SKUS)
        for loc in LOCATIONS
    }
    with ok.Shop.open(path, settings=SETTINGS) as shop:
        for location in LOCATIONS:
            shop.inventory.add_location(location)
        for (sku, location_id), units in received.items():
            shop.inventory.receive(sku, location=location_id, quantity=units)
    go = tmp_path / "go"
    directions = ["asc", "desc"] * (DEADLOCK_WORKERS // 2)
    commands = [
        ["multiline", path, f"d{n}", str(DEADLOCK_ORDERS), direction, str(go)]
        for n, direction in enumerate(directions)
    ]
    outputs, wall = _run_together(go, commands)

    placed: dict[str, dict[str, int]] = {}
    refused: Counter[str] = Counter()
    errors: list[str] = []
    for n, text in enumerate(outputs):
        lines = text.splitlines()
        assert len(lines) == DEADLOCK_ORDERS, f"worker d{n} reported {len(lines)} orders"
        for number, line in enumerate(lines):
            kind, *rest = line.split()
            if kind == "ok":
                order_id, *picks = rest
                claimed = {sku: int(qty) for sku, qty in (p.split("=") for p in picks)}
                assert claimed == quantities(f"d{n}", number)
                listed = [p.split("=")[0] for p in picks]
                assert listed == sorted(listed, reverse=directions[n] == "desc")
                placed[order_id] = claimed
            elif kind == "out":
                refused[rest[0]] += 1
            else:
                errors.append(line)
    assert errors == []
    assert placed, "no order was placed"
    assert refused, "no order ran out of stock: the run did not reach the end of any stock"

    demand = {sku: sum(q[sku] for q in placed.values()) for sku in MULTI_SKUS}
    split = 0
    with ok.Shop.open(path, settings=SETTINGS) as shop:
        books = {}
        for sku in MULTI_SKUS:
            levels = {level.location: level for level in shop.inventory.levels(sku)}
            assert set(levels) == {loc.id for loc in LOCATIONS}
            for location_id, level in levels.items():
                ledger = shop.inventory.movements(sku, location_id)
                item = shop.inventory.item(sku, location_id)
                assert item is not None
                held = sum(r.quantity for r in item.reservations.values())
                assert level.on_hand == received[(sku, location_id)]  # nothing lost or made up
                assert sum(m.quantity for m in ledger) == level.on_hand
                assert level.reserved == held <= level.on_hand  # no oversell at any location
            books[sku] = sum(level.reserved for level in levels.values())
        assert books == demand  # every unit of every placed order is held, and nothing else
        for order_id, claimed in placed.items():
            stored = shop.orders.get(order_id)
            assert {line.sku: line.quantity for line in stored.lines} == claimed
            held_by_line: Counter[str] = Counter()
            places = set()
            for sku, location_id, reservation in shop.inventory.reservations(order_id):
                held_by_line[sku] += reservation.quantity
                places.add(location_id)
            assert dict(held_by_line) == claimed
            split += len(places) > 1
    if backend == "sqlite":
        with rawdb.connect(path) as conn:
            orders = {row[0] for row in conn.execute("SELECT id FROM orders")}
            counters = dict(conn.execute("SELECT sku, SUM(reserved) FROM stock GROUP BY sku"))
            rows = dict(conn.execute("SELECT sku, SUM(quantity) FROM reservations GROUP BY sku"))
    else:
        import psycopg

        with psycopg.connect(path) as pg_conn:
            orders = {row[0] for row in pg_conn.execute("SELECT id FROM orders")}
            counters = {
                sku: int(total)
                for sku, total in pg_conn.execute(
                    "SELECT sku, SUM(reserved) FROM stock GROUP BY sku"
                )
            }
            rows = {
                sku: int(total)
                for sku, total in pg_conn.execute(
                    "SELECT sku, SUM(quantity) FROM reservations GROUP BY sku"
                )
            }
    assert orders == set(placed)
    assert counters == rows == demand

    print(
        f"\ndeadlock, {backend}, {DEADLOCK_WORKERS} processes x {DEADLOCK_ORDERS} orders of "
        f"{len(MULTI_SKUS)} lines (2 listing A-D, 2 D-A): {len(placed)} placed "
        f"({split} split across locations), {sum(refused.values())} refused "
        f"(OutOfStock: {dict(sorted(refused.items()))}); received "
        f"{sum(received.values())}, on hand unchanged; reserved {demand}; wall {wall:.2f} s"
    )
