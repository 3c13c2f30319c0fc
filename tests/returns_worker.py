"""Child-process bodies for test_returns_processes.py (run as a script, not collected).

python tests/returns_worker.py request DB NOW ORDER_ID BARRIER PARTIES NAME
    ask to return one unit of line L1 of ORDER_ID
python tests/returns_worker.py refund DB NOW RETURN_ID BARRIER PARTIES NAME GATEWAY_DB
    refund RETURN_ID through the FileGateway kept in GATEWAY_DB

NOW is the shop's clock (ISO 8601). Each racer's first commit that writes a return waits
in the directory BARRIER until PARTIES racers are there: every racer has read the state
it decides on before any of them writes, so the race happens on every run. A refunding
racer also waits at the gateway (BARRIER.gateway) until every racer calls it. Prints one
JSON line: {"outcome": "ok" or the error's class, "message", "return_id", "state",
"conflicts": commits lost on a stale version, "met": barriers passed together}.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
import weakref
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orderkit as ok
from orderkit.adapters.memory import ManualClock
from orderkit.adapters.sqlite import SqliteStore, SqliteUnitOfWork
from orderkit.errors import IdempotencyConflict, InvalidPaymentOperation

BARRIER_TIMEOUT = 60.0


class FileBarrier:
    """``parties`` processes meet in ``directory``: each leaves a file named after itself,
    then waits until there are ``parties`` files. Raises RuntimeError after the timeout
    (a racer that never came) rather than hanging the test."""

    def __init__(self, directory: str, parties: int, name: str) -> None:
        self.directory = Path(directory)
        self.parties = parties
        self.name = name
        self.met = False

    def wait(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / self.name).touch()
        deadline = time.monotonic() + BARRIER_TIMEOUT
        while len(os.listdir(self.directory)) < self.parties:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: alone at {self.directory}")
            time.sleep(0.002)
        self.met = True


class RacingStore(SqliteStore):
    """A SQLite store whose first commit that writes a return waits at ``barrier``, and
    that counts the commits it lost on a stale version."""

    def __init__(self, path: str, barrier: FileBarrier) -> None:
        super().__init__(path)
        self.barrier: FileBarrier | None = barrier
        self.conflicts = 0

    def __call__(self) -> RacingUnitOfWork:
        return RacingUnitOfWork(self)


class RacingUnitOfWork(SqliteUnitOfWork):
    def __init__(self, store: RacingStore) -> None:
        super().__init__(store)
        self.racing = store

    def commit(self) -> list[ok.DomainEvent]:
        barrier = self.racing.barrier
        if barrier is not None and self.returns.staged:
            self.racing.barrier = None
            barrier.wait()
        try:
            return super().commit()
        except ok.ConcurrencyError:
            self.racing.conflicts += 1
            raise


class FileGateway:
    """A payment gateway whose books are a SQLite file, so every process sees one gateway.

    Each operation is one ``BEGIN IMMEDIATE`` transaction. A key seen before with the
    same request returns the first result and moves nothing; with another request it
    raises IdempotencyConflict. Captures never exceed the authorization, refunds never
    the capture. Every call is logged in ``calls`` (kind, key), repeats included.
    With ``refund_barrier``, the first refund call waits there first."""

    def __init__(self, path: str, *, refund_barrier: FileBarrier | None = None) -> None:
        self.conn = sqlite3.connect(path, timeout=60, isolation_level=None)
        # closed with the gateway (Python 3.13 warns about a connection left open)
        weakref.finalize(self, self.conn.close)
        self.refund_barrier = refund_barrier
        for statement in (
            "CREATE TABLE IF NOT EXISTS calls (seq INTEGER PRIMARY KEY, kind TEXT, key TEXT)",
            "CREATE TABLE IF NOT EXISTS operations "
            "(key TEXT PRIMARY KEY, kind TEXT, request TEXT, result TEXT)",
            "CREATE TABLE IF NOT EXISTS authorizations (id TEXT PRIMARY KEY, currency TEXT, "
            "amount INTEGER, captured INTEGER, voided INTEGER)",
            "CREATE TABLE IF NOT EXISTS captures "
            "(id TEXT PRIMARY KEY, authorization_id TEXT, amount INTEGER, refunded INTEGER)",
            "CREATE TABLE IF NOT EXISTS refunds "
            "(id TEXT PRIMARY KEY, capture_id TEXT, amount INTEGER)",
        ):
            self.conn.execute(statement)

    def _once(
        self,
        kind: str,
        key: str,
        request: list[Any],
        make: Callable[[sqlite3.Connection, str], dict[str, Any]],
    ) -> dict[str, Any]:
        conn = self.conn
        conn.execute("INSERT INTO calls (kind, key) VALUES (?, ?)", (kind, key))
        asked = json.dumps([kind, *request])
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT request, result FROM operations WHERE key = ?", (key,)
            ).fetchone()
            if row is not None:
                if row[0] != asked:
                    raise IdempotencyConflict(f"key {key!r} was used for {row[0]}, not {asked}")
                result: dict[str, Any] = json.loads(row[1])
            else:
                count = conn.execute(
                    "SELECT COUNT(*) FROM operations WHERE kind = ?", (kind,)
                ).fetchone()[0]
                result = make(conn, f"{kind}-{count + 1}")
                conn.execute(
                    "INSERT INTO operations VALUES (?, ?, ?, ?)",
                    (key, kind, asked, json.dumps(result)),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return result

    def authorize(
        self, amount: ok.Money, token: str, *, idempotency_key: str
    ) -> ok.GatewayAuthorization:
        def make(conn: sqlite3.Connection, new_id: str) -> dict[str, Any]:
            conn.execute(
                "INSERT INTO authorizations VALUES (?, ?, ?, 0, 0)",
                (new_id, amount.currency, amount.minor_units),
            )
            return {"id": new_id}

        done = self._once("auth", idempotency_key, [str(amount), token], make)
        return ok.GatewayAuthorization(done["id"], amount)

    def capture(
        self, authorization_id: str, amount: ok.Money, *, idempotency_key: str
    ) -> ok.GatewayCapture:
        def make(conn: sqlite3.Connection, new_id: str) -> dict[str, Any]:
            held, captured, voided = conn.execute(
                "SELECT amount, captured, voided FROM authorizations WHERE id = ?",
                (authorization_id,),
            ).fetchone()
            if voided or captured + amount.minor_units > held:
                raise InvalidPaymentOperation(f"cannot capture {amount} of {authorization_id}")
            conn.execute(
                "UPDATE authorizations SET captured = captured + ? WHERE id = ?",
                (amount.minor_units, authorization_id),
            )
            conn.execute(
                "INSERT INTO captures VALUES (?, ?, ?, 0)",
                (new_id, authorization_id, amount.minor_units),
            )
            return {"id": new_id}

        done = self._once("capture", idempotency_key, [authorization_id, str(amount)], make)
        return ok.GatewayCapture(done["id"], authorization_id, amount)

    def void(self, authorization_id: str, *, idempotency_key: str) -> ok.GatewayVoid:
        def make(conn: sqlite3.Connection, new_id: str) -> dict[str, Any]:
            currency, held, captured = conn.execute(
                "SELECT currency, amount, captured FROM authorizations WHERE id = ?",
                (authorization_id,),
            ).fetchone()
            conn.execute("UPDATE authorizations SET voided = 1 WHERE id = ?", (authorization_id,))
            return {"id": new_id, "currency": currency, "released": held - captured}

        done = self._once("void", idempotency_key, [authorization_id], make)
        released = ok.Money.from_minor(done["released"], done["currency"])
        return ok.GatewayVoid(done["id"], authorization_id, released)

    def refund(
        self, capture_id: str, amount: ok.Money, *, idempotency_key: str
    ) -> ok.GatewayRefund:
        if self.refund_barrier is not None:
            barrier, self.refund_barrier = self.refund_barrier, None
            barrier.wait()

        def make(conn: sqlite3.Connection, new_id: str) -> dict[str, Any]:
            captured, refunded = conn.execute(
                "SELECT amount, refunded FROM captures WHERE id = ?", (capture_id,)
            ).fetchone()
            if refunded + amount.minor_units > captured:
                raise InvalidPaymentOperation(f"cannot refund {amount} of {capture_id}")
            conn.execute(
                "UPDATE captures SET refunded = refunded + ? WHERE id = ?",
                (amount.minor_units, capture_id),
            )
            conn.execute(
                "INSERT INTO refunds VALUES (?, ?, ?)", (new_id, capture_id, amount.minor_units)
            )
            return {"id": new_id}

        done = self._once("refund", idempotency_key, [capture_id, str(amount)], make)
        return ok.GatewayRefund(done["id"], capture_id, amount)


def main() -> None:
    action, path, now, target, barrier_dir, parties, name = sys.argv[1:8]
    commit_barrier = FileBarrier(barrier_dir, int(parties), name)
    store = RacingStore(path, commit_barrier)
    met = [commit_barrier]
    gateway = None
    if action == "refund":
        gateway_barrier = FileBarrier(barrier_dir + ".gateway", int(parties), name)
        gateway = FileGateway(sys.argv[8], refund_barrier=gateway_barrier)
        met.append(gateway_barrier)
    settings = ok.ShopSettings(dispatch="worker")
    out: dict[str, Any] = {}
    with ok.Shop(
        store, clock=ManualClock(datetime.fromisoformat(now)), gateway=gateway, settings=settings
    ) as shop:
        try:
            if action == "request":
                request = shop.returns.request(target, [ok.ReturnLine("L1", 1, "changed_mind")])
            elif action == "refund":
                request = shop.returns.refund(target)
            else:
                raise SystemExit(f"unknown action {action}")
            out.update(outcome="ok", return_id=request.id, state=request.state)
        except ok.OrderkitError as error:
            out.update(outcome=type(error).__name__, message=str(error))
    out.update(conflicts=store.conflicts, met=sum(barrier.met for barrier in met))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
