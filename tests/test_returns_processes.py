"""Returns on one SQLite file from several processes: one winner per race, one refund.

The racers (tests/returns_worker.py) meet at a file barrier just before their first
commit, after each has read what it decides on, so every run is a real race rather
than processes that happen to take turns.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import children
import orderkit as ok
import rawdb
from orderkit.adapters.memory import ManualClock, MemoryStore
from orderkit.adapters.memory_carrier import MemoryCarrier
from orderkit.adapters.sqlite import SqliteStore
from orderkit.testing.return_store import make_return
from returns_worker import FileGateway

WORKER = str(Path(__file__).with_name("returns_worker.py"))
EUR = "EUR"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes")


def _race(action: str, path: Path, now: datetime, target: str, n: int, *extra: str) -> list[Any]:
    """Start ``n`` racers of ``action`` on ``target``; return what each printed."""
    barrier = str(path.with_name(f"{action}.barrier"))
    processes = []
    for number in range(n):
        args = [action, str(path), now.isoformat(), target, barrier, str(n), f"p{number}", *extra]
        processes.append(children.spawn(WORKER, *args))
    results = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        results.append(json.loads(out))
    return results


def _delivered_order(path: Path, gateway: FileGateway | None = None) -> tuple[str, datetime]:
    """A placed, shipped and delivered order of 2 x L1 at 12.50 EUR (plus 4.90 shipping),
    paid through ``gateway`` when given; returns its id and the shop's time."""
    clock = ManualClock()
    with ok.Shop.open(
        str(path), clock=clock, gateway=gateway, carriers=[MemoryCarrier(clock=clock, seed=1)]
    ) as shop:
        shop.inventory.add_location(ok.Location("berlin", "Berlin", priority=1))
        shop.inventory.receive("MUG-01", location="berlin", quantity=5)
        order = shop.orders.place(
            ok.PlaceOrder(
                customer=ok.Customer("cust-1", "Ada Lovelace", "ada@example.com"),
                shipping_address=ok.Address("Ada Lovelace", "12 Row", "London", "N1 9GU", "GB"),
                lines=[ok.LineItem("L1", "MUG-01", "Stoneware mug", 2, ok.Money("12.50", EUR))],
                payment_token="tok_visa",
                shipping_charge=ok.Money("4.90", EUR),
            )
        )
        shop.orders.acknowledge(order.id)
        for shipment in shop.fulfilment.start(order.id):
            shop.fulfilment.pick(shipment.id)
            shop.fulfilment.pack(shipment.id, [ok.Parcel(900, 300, 200, 100)])
            shop.shipping.buy_label(shipment.id)
            shop.shipping.hand_over(shipment.id)
        for _ in range(10):
            clock.advance(timedelta(days=1))
            shop.shipping.poll()
        assert shop.orders.get(order.id).state == "delivered"
        return order.id, clock.now()


def _events(path: Path, order_id: str, kind: str) -> list[dict[str, Any]]:
    with rawdb.connect(str(path)) as conn:
        rows = conn.execute(
            "SELECT payload FROM outbox WHERE aggregate_id = ? AND event_type = ? ORDER BY seq",
            (order_id, kind),
        ).fetchall()
    return [json.loads(row[0]) for row in rows]


def test_six_processes_ask_to_return_the_last_unit_and_exactly_one_gets_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shop.db"
    order_id, now = _delivered_order(path)
    with ok.Shop.open(str(path), clock=ManualClock(now)) as shop:
        first = shop.returns.request(order_id, [ok.ReturnLine("L1", 1, "damaged")])
        assert shop.returns.returnable(order_id) == {"L1": 1}
        version = shop.orders.get(order_id).version

    results = _race("request", path, now + timedelta(hours=1), order_id, 6)

    assert all(r["met"] == 1 for r in results), results  # all six read before any wrote
    winners = [r for r in results if r["outcome"] == "ok"]
    assert len(winners) == 1, results
    assert sorted(r["outcome"] for r in results if r not in winners) == ["ReturnError"] * 5
    assert all("0 can be returned" in r["message"] for r in results if r not in winners)
    assert sum(r["conflicts"] for r in results) == 5  # each loser's first commit was refused
    with ok.Shop.open(str(path), clock=ManualClock(now)) as shop:
        returns = shop.returns.for_order(order_id)
        assert [r.id for r in returns] == [first.id, winners[0]["return_id"]]
        assert [r.requested_units() for r in returns] == [{"L1": 1}, {"L1": 1}]
        assert shop.returns.returnable(order_id) == {}
        assert shop.orders.get(order_id).version == version + 1  # saved by the winner only
    assert len(_events(path, order_id, "ReturnRequested")) == 2


@pytest.fixture(scope="module")
def refund_race(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two processes refund one inspected return at once, through one gateway that both
    see; both reach the gateway before either records anything."""
    tmp_path = tmp_path_factory.mktemp("refund")
    path, books = tmp_path / "shop.db", str(tmp_path / "gateway.db")
    order_id, now = _delivered_order(path, FileGateway(books))
    with ok.Shop.open(str(path), clock=ManualClock(now), gateway=FileGateway(books)) as shop:
        request = shop.returns.request(order_id, [ok.ReturnLine("L1", 1, "damaged")])
        shop.returns.approve(request.id)
        shop.returns.receive(request.id)
        shop.returns.inspect(request.id)
        quote = shop.returns.quote_refund(request.id)
        captured = shop.payments.for_order(order_id)[-1].captured
    results = _race("refund", path, now, request.id, 2, books)
    with ok.Shop.open(str(path), clock=ManualClock(now)) as shop:
        settled = shop.returns.get(request.id)
        payment = shop.payments.for_order(order_id)[-1]
    with rawdb.connect(books) as conn:
        calls = conn.execute("SELECT key FROM calls WHERE kind = 'refund'").fetchall()
        refunds = conn.execute("SELECT id, capture_id, amount FROM refunds").fetchall()
    return {
        "path": path,
        "order_id": order_id,
        "quote": quote,
        "captured": captured,
        "results": results,
        "settled": settled,
        "payment": payment,
        "calls": [key for (key,) in calls],
        "refunds": refunds,
    }


def test_two_processes_refunding_one_return_pay_it_back_once(refund_race: dict[str, Any]) -> None:
    results, quote = refund_race["results"], refund_race["quote"]
    assert quote.due == ok.Money("12.50", EUR)  # one damaged mug: no restocking fee
    assert refund_race["captured"] >= quote.due
    assert all(r["met"] == 2 for r in results), results  # raced at the store and at the gateway
    assert sum(r["conflicts"] for r in results) >= 1
    outcomes = [r["outcome"] for r in results]
    assert "ok" in outcomes, results
    assert set(outcomes) == {"ok"}, results  # the loser gets the settled return too
    # both called the gateway, with one key: one refund, of the amount due
    calls = refund_race["calls"]
    assert len(calls) == 2
    assert len(set(calls)) == 1
    assert [(amount,) for _, _, amount in refund_race["refunds"]] == [(1250,)]
    payment = refund_race["payment"]
    assert [(r.amount, r.reference) for r in payment.refunds] == [
        (quote.due, f"return:{refund_race['settled'].id}")
    ]
    assert payment.refunded == quote.due
    settled = refund_race["settled"]
    assert (settled.state, settled.amount_due, settled.amount_refunded) == (
        "closed",  # a refund closes the return
        quote.due,
        quote.due,
    )
    refunded = _events(refund_race["path"], refund_race["order_id"], "ReturnRefunded")
    assert len(refunded) == 1
    assert len(_events(refund_race["path"], refund_race["order_id"], "PaymentRefunded")) == 1


# The caller that loses the race to mark the return refunded gets the settled return back,
# as it would calling again later.
def test_both_concurrent_refund_callers_get_the_refunded_return(
    refund_race: dict[str, Any],
) -> None:
    results = refund_race["results"]
    assert [(r["outcome"], r.get("state")) for r in results] == [("ok", "closed")] * 2, results


# SQLite orders documents by the text of created_at: it is written in UTC, so a time with
# another UTC offset sorts by its instant.
def test_sqlite_orders_returns_by_instant_like_the_memory_store(tmp_path: Path) -> None:
    berlin = timezone(timedelta(hours=2))
    earlier = datetime(2026, 3, 2, 10, 30, tzinfo=berlin)  # 08:30 UTC
    later = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    orders = {}
    for store in (MemoryStore(), SqliteStore(tmp_path / "shop.db")):
        with store() as uow:
            uow.returns.add(make_return("ret-a", "ord-1", at=earlier))
            uow.returns.add(make_return("ret-b", "ord-1", at=later))
            uow.commit()
        with store() as uow:
            orders[type(store).__name__] = (
                [r.id for r in uow.returns.for_order("ord-1")],
                [r.id for r in uow.returns.list()],
            )
        store.close()
    assert orders["MemoryStore"] == (["ret-a", "ret-b"], ["ret-a", "ret-b"])
    assert orders["SqliteStore"] == orders["MemoryStore"]
