"""Inline dispatch from inside a handler does not nest: the delivery already running picks
up the new events, so a backlog cannot recurse one level per batch."""

from __future__ import annotations

from datetime import timedelta

import orderkit as ok
from orderkit.adapters.memory import ManualClock, MemoryStore, SequentialIds
from orderkit.service.dispatch import DispatchReport


def _command(number: int) -> ok.PlaceOrder:
    return ok.PlaceOrder(
        customer=ok.Customer(f"c{number}", "Ada", "ada@example.com"),
        shipping_address=ok.Address("Ada", "1 Row", "London", "N1", "GB"),
        lines=[ok.LineItem("L1", "MUG", "Mug", 1, ok.Money("10.00", "EUR"))],
        payment_token="tok_visa",
    )


def test_a_policy_dispatching_inline_inside_a_backlog_does_not_recurse() -> None:
    store, clock, ids = MemoryStore(), ManualClock(), SequentialIds()
    auto = ok.AutomationSettings(acknowledge=True)
    worker = ok.Shop(
        store,
        clock=clock,
        ids=ids,
        settings=ok.ShopSettings(track_stock=False, dispatch="worker", automation=auto),
    )
    for number in range(1200):  # a backlog of 12 batches: placed, not yet acknowledged
        worker.orders.place(_command(number))
    inline = ok.Shop(
        store,
        clock=clock,
        ids=ids,
        settings=ok.ShopSettings(track_stock=False, automation=auto),
    )
    nested: list[DispatchReport] = []
    inline.subscribe(
        ok.OrderAcknowledged, lambda _e: nested.append(inline.events.run_pending()), name="probe"
    )
    inline.orders.place(_command(9999))  # its dispatch delivers the whole backlog
    clock.advance(timedelta(seconds=1))
    assert inline.events.pending() == 0
    assert inline.events.dead_letters() == []
    assert len(inline.orders.list(state="acknowledged", limit=1000)) == 1000
    assert len(nested) == 1201
    assert set(nested) == {DispatchReport(0, 0, 0)}  # nested calls returned at once
