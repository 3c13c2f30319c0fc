"""Returns and exchanges as a shop runs them, end to end through ``orderkit.Shop``:
request, approve or reject, cancel, receive, inspect (restock or write off), refund or
exchange, close; the customer's notifications; money against the in-memory gateway and
stock against the inventory ledger; bad input; retries after a crash; and line
cancellation before shipment. Every test runs on the memory store and on a SQLite file.

The order (``command()``), placed Monday 2026-01-05 09:00 UTC and delivered by the
in-memory carrier (standard service, Thursday 2026-01-08 14:00 UTC):

* L1: 3 x MUG-01 at 12.50, discount 0.50, tax 2.35: 39.35, split over its units by
  largest remainder as 13.12 + 13.12 + 13.11;
* L2: 1 x TEA-GR at 8.90;
* shipping 4.90; total 53.15, captured in full when the parcel ships.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pg
from orderkit import (
    RETURN_REASONS,
    SHOP_FAULT_REASONS,
    Address,
    Customer,
    FulfilmentError,
    IdSource,
    Inspection,
    InvalidField,
    InvalidInput,
    InvalidQuantity,
    InvalidTransition,
    LineItem,
    Location,
    Money,
    MovementKind,
    Notification,
    Order,
    OrderkitError,
    OrderNotFound,
    OrderState,
    OutOfStock,
    Parcel,
    Payment,
    PlaceOrder,
    Replacement,
    ReturnError,
    ReturnLine,
    ReturnNotFound,
    ReturnRequest,
    ReturnState,
    Shop,
    ShopSettings,
)
from orderkit.adapters.memory import ManualClock, MemoryNotifier, SequentialIds
from orderkit.adapters.memory_carrier import MemoryCarrier
from orderkit.adapters.memory_gateway import MemoryGateway
from orderkit.domain.returns import ReturnRequest as DomainReturnRequest
from orderkit.service.returns import ReturnService

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)  # a Monday
STORES = pg.full_stores()
EUR = "EUR"
ZERO = Money.zero(EUR)
BERLIN = Location("berlin", "Berlin", priority=1)
BOX = Parcel(weight_grams=900, length_mm=300, width_mm=200, height_mm=100)

EMAIL = "ada@example.com"
CUSTOMER = Customer("cust-ada", "Ada Lovelace", EMAIL)
ADDRESS = Address("Ada Lovelace", "12 Analytical Row", "London", "N1 9GU", "GB")

L1_TOTAL = Money("39.35", EUR)
L1_UNITS = [Money("13.12", EUR), Money("13.12", EUR), Money("13.11", EUR)]
L2_TOTAL = Money("8.90", EUR)
SHIPPING = Money("4.90", EUR)
TOTAL = Money("53.15", EUR)

# on hand before the order; MUG-05 is short on purpose (one unit)
STOCK = {"MUG-01": 10, "TEA-GR": 10, "MUG-02": 10, "MUG-03": 10, "MUG-04": 10, "MUG-05": 1}


def command(
    *,
    quantity: int = 3,
    unit_price: str = "12.50",
    discount: str = "0.50",
    tax: str = "2.35",
    key: str | None = None,
    customer: Customer = CUSTOMER,
) -> PlaceOrder:
    return PlaceOrder(
        customer=customer,
        shipping_address=ADDRESS,
        lines=[
            LineItem(
                "L1",
                "MUG-01",
                "Stoneware mug",
                quantity,
                Money(unit_price, EUR),
                discount=Money(discount, EUR),
                tax=Money(tax, EUR),
            ),
            LineItem("L2", "TEA-GR", "Green tea", 1, Money("8.90", EUR)),
        ],
        payment_token="tok_visa",
        shipping_charge=SHIPPING,
        idempotency_key=key,
    )


# -- the rig ---------------------------------------------------------------------------------


@dataclass
class Rig:
    """A shop and the outside things a test looks at."""

    shop: Shop
    clock: ManualClock
    gateway: MemoryGateway
    carrier: MemoryCarrier
    notifier: MemoryNotifier
    url: str
    settings: ShopSettings
    ids: IdSource


_FILE_NUMBERS = itertools.count(1)  # a fresh file per shop, hypothesis examples included


class Rigs:
    """Opens shops on fresh stores (memory, or a new SQLite file each) and closes them all."""

    def __init__(self, tmp_path: Path) -> None:
        self._tmp_path = tmp_path
        self._opened: list[Shop] = []

    def open(
        self, store: str, *, paid: bool = True, ids: IdSource | None = None, **shop_settings: Any
    ) -> Rig:
        """A shop on ``store`` ("memory" or "sqlite") stocking :data:`STOCK` at berlin,
        with a gateway (unless not ``paid``), a carrier, a notifier and sequential ids
        (repeatable runs) unless ``ids`` are given."""
        url = pg.store_url(store, self._tmp_path / f"returns-{next(_FILE_NUMBERS)}.db")
        clock = ManualClock(T0)
        gateway = MemoryGateway(seed=3, clock=clock)
        carrier = MemoryCarrier(clock=clock, seed=5)
        notifier = MemoryNotifier()
        settings = ShopSettings(gateway_retry_delay=timedelta(0), **shop_settings)
        ids = ids or SequentialIds()
        shop = Shop.open(
            url,
            settings=settings,
            clock=clock,
            ids=ids,
            gateway=gateway if paid else None,
            carriers=[carrier],
            notifier=notifier,
        )
        self._opened.append(shop)
        shop.inventory.add_location(BERLIN)
        for sku, quantity in STOCK.items():
            shop.inventory.receive(sku, location="berlin", quantity=quantity)
        return Rig(shop, clock, gateway, carrier, notifier, url, settings, ids)

    def reopen(self, rig: Rig) -> Rig:
        """Close the rig's shop and open its SQLite file again (same clock, gateway and
        carrier; a fresh notifier)."""
        rig.shop.close()
        notifier = MemoryNotifier()
        shop = Shop.open(
            rig.url,
            settings=rig.settings,
            clock=rig.clock,
            ids=rig.ids,
            gateway=rig.gateway,
            carriers=[rig.carrier],
            notifier=notifier,
        )
        self._opened.append(shop)
        return Rig(
            shop, rig.clock, rig.gateway, rig.carrier, notifier, rig.url, rig.settings, rig.ids
        )

    def close_all(self) -> None:
        for shop in self._opened:
            shop.close()


@pytest.fixture
def rigs(tmp_path: Path) -> Iterator[Rigs]:
    opened = Rigs(tmp_path)
    yield opened
    opened.close_all()


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- helpers ---------------------------------------------------------------------------------


def ship(rig: Rig, order_id: str) -> None:
    """Start fulfilment, pick, pack, label and hand over every shipment of the order."""
    for shipment in rig.shop.fulfilment.start(order_id):
        rig.shop.fulfilment.pick(shipment.id)
        rig.shop.fulfilment.pack(shipment.id, [BOX])
        rig.shop.shipping.buy_label(shipment.id)
        rig.shop.shipping.hand_over(shipment.id)


def poll_until_delivered(rig: Rig, order_id: str) -> Order:
    """Advance the clock six hours at a time and poll the carrier until the order is
    delivered; fail after two weeks."""
    for _ in range(4 * 14):
        order = rig.shop.orders.get(order_id)
        if order.state == OrderState.DELIVERED.value:
            return order
        rig.clock.advance(timedelta(hours=6))
        rig.shop.shipping.poll()
    raise AssertionError(f"order {order_id} was never delivered")


def delivered(rig: Rig, cmd: PlaceOrder | None = None) -> Order:
    """Place, acknowledge, ship and deliver an order; assert that it arrived in full."""
    order = rig.shop.orders.place(cmd or command())
    rig.shop.orders.acknowledge(order.id)
    ship(rig, order.id)
    order = poll_until_delivered(rig, order.id)
    shipments = rig.shop.fulfilment.shipments(order.id)
    assert shipments
    assert all(s.state == "delivered" and s.delivered_at is not None for s in shipments)
    assert rig.shop.returns.returnable(order.id) == {
        line.line_id: line.quantity for line in order.lines
    }
    return order


def inspected(
    rig: Rig,
    order_id: str,
    lines: Sequence[ReturnLine],
    results: Sequence[Inspection] | None = None,
) -> ReturnRequest:
    """Request, approve, receive (everything asked) and inspect a return."""
    request = rig.shop.returns.request(order_id, lines)
    rig.shop.returns.approve(request.id)
    rig.shop.returns.receive(request.id)
    return rig.shop.returns.inspect(request.id, results)


def payment_of(rig: Rig, order_id: str) -> Payment:
    (payment,) = rig.shop.payments.for_order(order_id)
    return payment


def authorization(payment: Payment) -> str:
    assert payment.authorization_id is not None
    return payment.authorization_id


def notices(rig: Rig, order_id: str, kind: str) -> list[Notification]:
    return [n for n in rig.notifier.for_order(order_id) if n.kind == kind]


def one_notice(rig: Rig, order_id: str, kind: str) -> Notification:
    (notice,) = notices(rig, order_id, kind)
    assert notice.recipient == EMAIL
    assert notice.channel.value == "email"
    return notice


def on_hand(rig: Rig, sku: str) -> tuple[int, int]:
    """(on hand, reserved) of ``sku`` at berlin."""
    (level,) = rig.shop.inventory.levels(sku)
    return level.on_hand, level.reserved


def assert_ledger_matches(rig: Rig, sku: str) -> None:
    item = rig.shop.inventory.item(sku, "berlin")
    assert item is not None
    assert sum(m.quantity for m in rig.shop.inventory.movements(sku, "berlin")) == item.on_hand


def history_kinds(rig: Rig, order_id: str) -> list[str]:
    return [entry.kind for entry in rig.shop.orders.history(order_id)]


def return_view(request: ReturnRequest) -> tuple[Any, ...]:
    """What a return is, by value (a ReturnRequest compares by identity)."""
    return (
        request.id,
        request.state,
        request.lines,
        request.received,
        request.inspections,
        request.amount_due,
        request.amount_refunded,
        request.exchange_order_id,
        request.version,
    )


def world(rig: Rig, order_id: str, *, returns: bool = True) -> tuple[Any, ...]:
    """Everything a refused command must leave as it was. Without ``returns``, the
    order's returns and the order's version (which a settlement decision, stored on the
    return, bumps to serialise the order's returns) are left out."""
    shop = rig.shop
    payment = payment_of(rig, order_id)
    return (
        [return_view(r) for r in shop.returns.for_order(order_id)] if returns else None,
        shop.returns.returnable(order_id),
        shop.orders.get(order_id).version if returns else None,
        len(shop.orders.list(limit=1000)),
        {sku: on_hand(rig, sku) for sku in STOCK},
        {sku: len(shop.inventory.movements(sku, "berlin")) for sku in STOCK},
        payment.state,
        payment.refunded,
        payment.version,
        rig.gateway.calls,
        rig.gateway.refunded(authorization(payment)),
        len(rig.notifier.sent),
        len(shop.orders.history(order_id)),
    )


# -- 1. refund: requested -> approved -> received -> inspected -> refunded -> closed ----------


def test_a_refunded_return_pays_back_restocks_and_tells_the_customer_each_step(
    rigs: Rigs, store: str
) -> None:
    rig = rigs.open(store, restocking_fee=Decimal("0.1"))
    shop = rig.shop
    order = delivered(rig)
    auth = authorization(payment_of(rig, order.id))
    assert payment_of(rig, order.id).captured == TOTAL == rig.gateway.captured(auth)
    assert on_hand(rig, "MUG-01") == (7, 0)
    assert on_hand(rig, "TEA-GR") == (9, 0)
    sent_before = len(rig.notifier.sent)

    request = shop.returns.request(
        order.id,
        [
            ReturnLine("L1", 2, "changed_mind", note="too small"),
            ReturnLine("L2", 1, "damaged"),
        ],
    )
    assert request.state == ReturnState.REQUESTED.value
    assert request.order_id == order.id
    assert shop.returns.returnable(order.id) == {"L1": 1}
    assert len(rig.notifier.sent) == sent_before  # the customer asked; nothing to tell them

    instructions = "Print the label we e-mailed and drop the parcel at any post office."
    approved = shop.returns.approve(request.id, instructions)
    assert (approved.state, approved.instructions) == ("approved", instructions)
    notice = one_notice(rig, order.id, "return_approved")
    assert instructions in notice.body
    assert request.id in notice.subject
    assert "Ada Lovelace" in notice.body

    received = shop.returns.receive(request.id)
    assert received.state == ReturnState.RECEIVED.value
    assert received.received_units() == {"L1": 2, "L2": 1}

    done = shop.returns.inspect(
        request.id, [Inspection("L1", restock=1, write_off=1), Inspection("L2", 0, write_off=1)]
    )
    assert done.state == ReturnState.INSPECTED.value
    assert (done.restocked_units(), done.written_off_units()) == ({"L1": 1}, {"L1": 1, "L2": 1})
    # restocked where the parcel shipped from
    assert [(i.line_id, i.location) for i in done.inspections if i.restock] == [("L1", "berlin")]
    # one mug back on hand, through the ledger; the written-off mug and tea are not
    assert on_hand(rig, "MUG-01") == (8, 0)
    assert on_hand(rig, "TEA-GR") == (9, 0)
    restocks = [
        m for m in shop.inventory.movements("MUG-01", "berlin") if m.kind is MovementKind.RESTOCKED
    ]
    assert [(m.quantity, m.order_id, m.line_id) for m in restocks] == [(1, order.id, "L1")]
    assert not [
        m for m in shop.inventory.movements("TEA-GR", "berlin") if m.kind is MovementKind.RESTOCKED
    ]
    assert_ledger_matches(rig, "MUG-01")
    assert_ledger_matches(rig, "TEA-GR")

    # two mugs (13.12 + 13.12) less 10 % for changing one's mind, the damaged tea in full
    quote = shop.returns.quote_refund(request.id)
    assert quote.items == Money("35.14", EUR)
    assert quote.restocking_fee == Money("2.62", EUR)
    assert quote.shipping == ZERO
    assert quote.due == Money("32.52", EUR)
    calls = rig.gateway.calls

    refunded = shop.returns.refund(request.id)

    # a refund settles the return: it closes at once
    assert refunded.state == ReturnState.CLOSED.value
    assert refunded.resolution == "refund"
    assert refunded.closed_at == rig.clock.now()
    assert not refunded.is_open
    assert refunded.amount_due == Money("32.52", EUR)
    assert refunded.amount_refunded == Money("32.52", EUR)
    assert refunded.restocking_fee == Money("2.62", EUR)
    payment = payment_of(rig, order.id)
    assert payment.refunded == Money("32.52", EUR) == rig.gateway.refunded(auth)
    assert [(r.amount, r.reference) for r in payment.refunds] == [
        (Money("32.52", EUR), f"return:{request.id}")
    ]
    assert rig.gateway.calls == calls + 1
    notice = one_notice(rig, order.id, "refund_issued")
    assert "32.52 EUR" in notice.body
    assert request.id in notice.subject
    assert "payment method" in notice.body

    assert shop.returns.quote_refund(request.id) == quote  # the decided quote stays
    with pytest.raises(InvalidTransition):
        shop.returns.close(request.id)
    assert shop.returns.returnable(order.id) == {"L1": 1}
    assert [r.id for r in shop.returns.list(state="closed")] == [request.id]
    kinds = history_kinds(rig, order.id)
    assert kinds[-7:] == [
        "ReturnRequested",
        "ReturnApproved",
        "ReturnReceived",
        "ReturnInspected",
        "PaymentRefunded",
        "ReturnRefunded",
        "ReturnClosed",
    ]
    # approved and refund issued; nothing for request, receipt, inspection or closing
    assert [n.kind for n in rig.notifier.sent[sent_before:]] == [
        "return_approved",
        "refund_issued",
    ]
    assert shop.store.outbox.pending() == 0


def test_approving_without_instructions_sends_the_shops_standard_ones(
    rigs: Rigs, store: str
) -> None:
    rig = rigs.open(store, return_instructions="Send it to Returns, 1 Dock Road, Berlin.")
    order = delivered(rig)
    request = rig.shop.returns.request(order.id, [ReturnLine("L2", 1, "other")])

    approved = rig.shop.returns.approve(request.id)

    assert approved.instructions == "Send it to Returns, 1 Dock Road, Berlin."
    assert (
        "Send it to Returns, 1 Dock Road, Berlin."
        in one_notice(rig, order.id, "return_approved").body
    )


def test_a_partial_receipt_refunds_only_what_arrived(rigs: Rigs, store: str) -> None:
    rig = rigs.open(store)
    order = delivered(rig)
    request = rig.shop.returns.request(order.id, [ReturnLine("L1", 3, "defective")])
    rig.shop.returns.approve(request.id)

    got = rig.shop.returns.receive(request.id, {"L1": 2})
    assert got.received_units() == {"L1": 2}
    # the unit that never came back can be returned again
    assert rig.shop.returns.returnable(order.id) == {"L1": 1, "L2": 1}
    done = rig.shop.returns.inspect(request.id)  # None: defective units are written off
    assert done.written_off_units() == {"L1": 2}
    refunded = rig.shop.returns.refund(request.id)

    assert on_hand(rig, "MUG-01") == (7, 0)
    assert refunded.amount_due == L1_UNITS[0] + L1_UNITS[1]
    assert payment_of(rig, order.id).refunded == Money("26.24", EUR)


@pytest.mark.parametrize("reason", RETURN_REASONS)
def test_by_default_broken_units_are_written_off_and_the_rest_restocked(
    rigs: Rigs, store: str, reason: str
) -> None:
    rig = rigs.open(store)
    order = delivered(rig)
    request = rig.shop.returns.request(order.id, [ReturnLine("L1", 2, reason)])
    rig.shop.returns.approve(request.id)
    rig.shop.returns.receive(request.id)

    done = rig.shop.returns.inspect(request.id)

    broken = reason in ("damaged", "defective")
    assert done.written_off_units() == ({"L1": 2} if broken else {})
    assert done.restocked_units() == ({} if broken else {"L1": 2})
    assert on_hand(rig, "MUG-01") == ((7, 0) if broken else (9, 0))
    assert_ledger_matches(rig, "MUG-01")


def test_a_return_carries_on_after_the_sqlite_file_is_reopened(rigs: Rigs) -> None:
    rig = rigs.open("sqlite", restocking_fee=Decimal("0.1"))
    order = delivered(rig)
    request = rig.shop.returns.request(
        order.id,
        [ReturnLine("L1", 2, "changed_mind", note="too small"), ReturnLine("L2", 1, "damaged")],
    )
    rig.shop.returns.approve(request.id, "Use the enclosed label.")
    rig.shop.returns.receive(request.id, {"L1": 2, "L2": 1})
    inspected_before = rig.shop.returns.inspect(
        request.id, [Inspection("L1", 1, 1), Inspection("L2", 0, 1)]
    )

    again = rigs.reopen(rig)

    reread = again.shop.returns.get(request.id)
    assert return_view(reread) == return_view(inspected_before)
    assert reread.lines[0].note == "too small"
    assert reread.instructions == "Use the enclosed label."
    assert reread.inspections == (
        Inspection("L1", 1, 1, location="berlin"),
        Inspection("L2", 0, 1),
    )
    assert again.shop.returns.returnable(order.id) == {"L1": 1}
    refunded = again.shop.returns.refund(request.id)
    assert refunded.state == ReturnState.CLOSED.value
    assert refunded.amount_due == Money("32.52", EUR) == refunded.amount_refunded
    assert again.shop.returns.get(request.id).restocking_fee == Money("2.62", EUR)
    assert (notice := one_notice(again, order.id, "refund_issued"))
    assert "32.52 EUR" in notice.body


def test_without_a_gateway_the_refund_is_recorded_as_due_and_paid_by_other_means(
    rigs: Rigs, store: str
) -> None:
    rig = rigs.open(store, paid=False)
    order = delivered(rig)
    assert rig.shop.payments.for_order(order.id) == []
    request = inspected(rig, order.id, [ReturnLine("L2", 1, "defective")])

    refunded = rig.shop.returns.refund(request.id, refund_shipping=True)

    assert refunded.amount_due == L2_TOTAL + SHIPPING
    assert refunded.amount_refunded == ZERO
    assert rig.gateway.calls == 0
    notice = one_notice(rig, order.id, "refund_issued")
    assert "13.80 EUR by separate payment" in notice.body


def test_a_customer_who_prefers_sms_hears_about_the_return_by_sms(rigs: Rigs, store: str) -> None:
    rig = rigs.open(store)
    texter = Customer(
        "cust-bo", "Bo Texter", "bo@example.com", phone="+447700900456", preferred_contact="sms"
    )
    order = delivered(rig, command(customer=texter))
    request = rig.shop.returns.request(order.id, [ReturnLine("L2", 1, "not_as_described")])
    rig.shop.returns.approve(request.id, "Drop it at any Parcel Point.")
    rig.shop.returns.receive(request.id)
    rig.shop.returns.inspect(request.id)
    rig.shop.returns.refund(request.id)

    sms = [n for n in rig.notifier.for_order(order.id) if n.kind.startswith(("return", "refund"))]
    assert [(n.kind, n.channel.value, n.recipient) for n in sms] == [
        ("return_approved", "sms", "+447700900456"),
        ("refund_issued", "sms", "+447700900456"),
    ]
    assert "Drop it at any Parcel Point." in sms[0].body
    assert "8.90 EUR" in sms[1].body
    assert "bo@example.com" not in "".join(n.recipient for n in sms)


# -- 2. rejected ---------------------------------------------------------------------------------


def test_a_rejected_return_tells_the_customer_why_and_frees_its_units(
    rigs: Rigs, store: str
) -> None:
    rig = rigs.open(store)
    shop = rig.shop
    order = delivered(rig)
    request = shop.returns.request(order.id, [ReturnLine("L1", 2, "changed_mind")])
    assert shop.returns.returnable(order.id) == {"L1": 1, "L2": 1}
    calls = rig.gateway.calls

    rejected = shop.returns.reject(request.id, "Mugs that were used cannot be taken back.")

    assert rejected.state == ReturnState.REJECTED.value
    assert rejected.rejection_reason == "Mugs that were used cannot be taken back."
    assert not rejected.is_open
    notice = one_notice(rig, order.id, "return_rejected")
    assert "Mugs that were used cannot be taken back." in notice.body
    assert request.id in notice.subject
    assert shop.returns.returnable(order.id) == {"L1": 3, "L2": 1}
    assert rig.gateway.calls == calls
    assert on_hand(rig, "MUG-01") == (7, 0)
    # the units can be asked for again, all of them
    again = shop.returns.request(order.id, [ReturnLine("L1", 3, "defective")])
    assert again.id != request.id
    # a rejected return goes nowhere
    steps: list[Callable[[], object]] = [
        lambda: shop.returns.approve(request.id),
        lambda: shop.returns.receive(request.id),
        lambda: shop.returns.cancel(request.id),
    ]
    for step in steps:
        with pytest.raises(InvalidTransition):
            step()
    assert shop.returns.get(request.id).version == rejected.version


# -- 3. cancelled ----------------------------------------------------------------------------


@pytest.mark.parametrize("approve_first", [False, True], ids=["requested", "approved"])
def test_the_customer_can_withdraw_a_return_until_it_arrives(
    rigs: Rigs, store: str, approve_first: bool
) -> None:
    rig = rigs.open(store)
    shop = rig.shop
    order = delivered(rig)
    request = shop.returns.request(order.id, [ReturnLine("L1", 1, "size_or_fit")])
    if approve_first:
        shop.returns.approve(request.id)
    sent = len(rig.notifier.sent)

    cancelled = shop.returns.cancel(request.id, "found a use for it")

    assert cancelled.state == ReturnState.CANCELLED.value
    assert cancelled.cancellation_reason == "found a use for it"
    assert shop.returns.get(request.id).state == ReturnState.CANCELLED.value
    assert shop.returns.returnable(order.id) == {"L1": 3, "L2": 1}
    assert history_kinds(rig, order.id)[-1] == "ReturnCancelled"
    assert len(rig.notifier.sent) == sent
    with pytest.raises(InvalidTransition):
        shop.returns.receive(request.id)


@pytest.mark.parametrize("stage", ["received", "inspected", "closed"])
def test_a_return_cannot_be_cancelled_once_its_units_arrived(
    rigs: Rigs, store: str, stage: str
) -> None:
    rig = rigs.open(store)
    shop = rig.shop
    order = delivered(rig)
    request = shop.returns.request(order.id, [ReturnLine("L1", 1, "size_or_fit")])
    shop.returns.approve(request.id)
    shop.returns.receive(request.id)
    if stage in ("inspected", "closed"):
        shop.returns.inspect(request.id)
    if stage == "closed":
        shop.returns.refund(request.id)
    before = world(rig, order.id)

    with pytest.raises(InvalidTransition) as caught:
        shop.returns.cancel(request.id, "changed my mind again")

    assert caught.value.state == stage
    assert caught.value.trigger == "cancel"
    assert request.id in str(caught.value)
    assert world(rig, order.id) == before
    assert shop.returns.get(request.id).cancellation_reason is None


# -- 4. exchanges ----------------------------------------------------------------------------


def exchange_order_of(rig: Rig, request: ReturnRequest) -> Order:
    assert request.exchange_order_id is not None
    order = rig.shop.orders.get(request.exchange_order_id)
    assert order.exchange_for == request.id
    return order


def deliver_exchange(rig: Rig, exchange: Order) -> Order:
    ship(rig, exchange.id)
    return poll_until_delivered(rig, exchange.id)


def test_an_exchange_for_a_dearer_variant_charges_the_difference_and_closes_on_delivery(
    rigs: Rigs, store: str
) -> None:
    rig = rigs.open(store, restocking_fee=Decimal("0.1"))  # never kept back on an exchange
    shop = rig.shop
    order = delivered(rig)
    original = authorization(payment_of(rig, order.id))
    request = inspected(rig, order.id, [ReturnLine("L1", 1, "size_or_fit")])
    assert on_hand(rig, "MUG-01") == (8, 0)
    auths = rig.gateway.authorization_count()

    exchanged = shop.returns.exchange(
        request.id, [Replacement("L1", "MUG-03", "Large mug", Money("20.00", EUR))]
    )

    assert exchanged.state == ReturnState.EXCHANGED.value
    assert exchanged.amount_due == L1_UNITS[0]  # the credit: the unit's share, no fee
    assert exchanged.exchange_charged == Money("6.88", EUR)
    assert exchanged.amount_refunded == ZERO
    new = exchange_order_of(rig, exchanged)
    assert new.state == OrderState.ACKNOWLEDGED.value
    assert new.customer.id == CUSTOMER.id
    (line,) = new.lines
    assert (line.sku, line.quantity, line.discount) == ("MUG-03", 1, L1_UNITS[0])
    assert new.totals.total == Money("6.88", EUR)
    # the difference is authorized on the customer's payment method; the original is untouched
    assert rig.gateway.authorization_count() == auths + 1
    new_payment = payment_of(rig, new.id)
    assert new_payment.authorized == Money("6.88", EUR)
    assert rig.gateway.captured(authorization(new_payment)) == ZERO
    assert payment_of(rig, order.id).refunded == ZERO == rig.gateway.refunded(original)
    assert on_hand(rig, "MUG-03") == (10, 1)
    assert not notices(rig, order.id, "refund_issued")
    one_notice(rig, new.id, "order_confirmation")

    arrived = deliver_exchange(rig, new)

    assert arrived.state == OrderState.DELIVERED.value
    (shipment,) = shop.fulfilment.shipments(new.id)
    assert shipment.tracking_number is not None
    notice = one_notice(rig, new.id, "exchange_shipped")
    assert shipment.tracking_number in notice.body
    assert request.id in notice.body
    assert not notices(rig, new.id, "shipped")
    closed = shop.returns.get(request.id)
    assert closed.state == ReturnState.CLOSED.value
    assert history_kinds(rig, order.id)[-1] == "ReturnClosed"
    assert payment_of(rig, new.id).captured == Money("6.88", EUR)
    assert rig.gateway.captured(authorization(new_payment)) == Money("6.88", EUR)
    assert on_hand(rig, "MUG-03") == (9, 0)


def test_an_exchange_for_a_cheaper_variant_refunds_the_credit_left_over(
    rigs: Rigs, store: str
) -> None:
    rig = rigs.open(store)
    shop = rig.shop
    order = delivered(rig)
    auth = authorization(payment_of(rig, order.id))
    request = inspected(rig, order.id, [ReturnLine("L1", 2, "size_or_fit")])
    auths = rig.gateway.authorization_count()

    exchanged = shop.returns.exchange(
        request.id, [Replacement("L1", "MUG-04", "Small mug", Money("9.00", EUR))]
    )

    credit = L1_UNITS[0] + L1_UNITS[1]  # 26.24
    assert exchanged.amount_due == credit
    assert exchanged.exchange_charged == ZERO
    assert exchanged.amount_refunded == Money("8.24", EUR)  # 26.24 - 2 x 9.00
    new = exchange_order_of(rig, exchanged)
    assert new.totals.total == ZERO
    assert shop.payments.for_order(new.id) == []  # nothing to pay, nothing authorized
    assert rig.gateway.authorization_count() == auths
    payment = payment_of(rig, order.id)
    assert payment.refunded == Money("8.24", EUR) == rig.gateway.refunded(auth)
    assert [r.reference for r in payment.refunds] == [f"return:{request.id}:credit"]
    notice = one_notice(rig, order.id, "refund_issued")
    assert "8.24 EUR" in notice.body
    assert new.id in notice.body

    deliver_exchange(rig, new)

    assert one_notice(rig, new.id, "exchange_shipped")
    assert shop.returns.get(request.id).state == ReturnState.CLOSED.value
    assert payment_of(rig, order.id).refunded == Money("8.24", EUR)


def test_an_exchange_for_a_variant_out_of_stock_is_refused_and_moves_nothing(
    rigs: Rigs, store: str
) -> None:
    rig = rigs.open(store)
    shop = rig.shop
    order = delivered(rig)
    request = inspected(rig, order.id, [ReturnLine("L1", 2, "size_or_fit")])
    before = world(rig, order.id, returns=False)
    auths = rig.gateway.authorization_count()

    with pytest.raises(OutOfStock) as caught:
        shop.returns.exchange(
            request.id, [Replacement("L1", "MUG-05", "Limited mug", Money("12.50", EUR))]
        )

    assert caught.value.sku == "MUG-05"
    assert (caught.value.requested, caught.value.available) == (2, 1)
    # nothing placed, reserved, authorized, refunded or sent
    assert world(rig, order.id, returns=False) == before
    after = shop.returns.get(request.id)
    assert after.state == ReturnState.INSPECTED.value
    assert (after.exchange_order_id, after.amount_refunded) == (None, None)
    assert not [o for o in shop.orders.list(limit=1000) if o.exchange_for is not None]
    assert rig.gateway.authorization_count() == auths
    # another variant can still be tried
    exchanged = shop.returns.exchange(
        request.id, [Replacement("L1", "MUG-02", "Blue mug", Money("12.50", EUR))]
    )
    assert exchanged.state == ReturnState.EXCHANGED.value
    new = exchange_order_of(rig, exchanged)
    assert [(line.sku, line.quantity) for line in new.lines] == [("MUG-02", 2)]
    assert on_hand(rig, "MUG-05") == (1, 0)
    assert on_hand(rig, "MUG-02") == (10, 2)


# -- 5. what a refund comes to -----------------------------------------------------------------


@pytest.mark.parametrize("reason", RETURN_REASONS)
def test_the_restocking_fee_is_kept_only_for_the_customers_own_reasons(
    rigs: Rigs, store: str, reason: str
) -> None:
    rig = rigs.open(store, restocking_fee=Decimal("0.1"))
    order = delivered(rig)
    request = inspected(rig, order.id, [ReturnLine("L2", 1, reason)])

    refunded = rig.shop.returns.refund(request.id)

    fee = ZERO if reason in SHOP_FAULT_REASONS else Money("0.89", EUR)
    assert refunded.restocking_fee == fee
    assert refunded.amount_due == L2_TOTAL - fee == refunded.amount_refunded
    assert payment_of(rig, order.id).refunded == L2_TOTAL - fee
    assert str(L2_TOTAL - fee) in one_notice(rig, order.id, "refund_issued").body


def test_shipping_is_refunded_once_per_order(rigs: Rigs, store: str) -> None:
    rig = rigs.open(store)
    shop = rig.shop
    order = delivered(rig)
    first = inspected(rig, order.id, [ReturnLine("L2", 1, "wrong_item")])
    second = inspected(rig, order.id, [ReturnLine("L1", 1, "wrong_item")])
    assert shop.returns.quote_refund(first.id).shipping == ZERO
    assert shop.returns.quote_refund(first.id, refund_shipping=True).shipping == SHIPPING

    one = shop.returns.refund(first.id, refund_shipping=True)
    assert one.shipping_refund == SHIPPING
    assert one.amount_due == L2_TOTAL + SHIPPING

    assert shop.returns.quote_refund(second.id, refund_shipping=True).shipping == ZERO
    two = shop.returns.refund(second.id, refund_shipping=True)
    assert two.shipping_refund == ZERO
    assert two.amount_due == L1_UNITS[0]
    payment = payment_of(rig, order.id)
    assert payment.refunded == L2_TOTAL + SHIPPING + L1_UNITS[0]
    assert payment.refunded == rig.gateway.refunded(authorization(payment))


def test_returns_of_one_line_unit_by_unit_add_up_to_the_line(rigs: Rigs, store: str) -> None:
    rig = rigs.open(store)
    order = delivered(rig)
    paid: list[Money] = []
    for _ in range(3):
        request = inspected(rig, order.id, [ReturnLine("L1", 1, "defective")])
        refunded = rig.shop.returns.refund(request.id).amount_refunded
        assert refunded is not None
        paid.append(refunded)

    assert paid == L1_UNITS
    assert Money.sum(paid, EUR) == L1_TOTAL
    assert rig.shop.returns.returnable(order.id) == {"L2": 1}
    payment = payment_of(rig, order.id)
    assert payment.refunded == L1_TOTAL == rig.gateway.refunded(authorization(payment))


@pytest.mark.parametrize("store_name", STORES)
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    quantity=st.integers(min_value=2, max_value=5),
    unit_minor=st.integers(min_value=101, max_value=4999),
    discount_minor=st.integers(min_value=0, max_value=100),
    tax_minor=st.integers(min_value=0, max_value=999),
    data=st.data(),
)
def test_any_split_of_a_line_into_returns_refunds_exactly_the_line(
    tmp_path: Path,
    store_name: str,
    quantity: int,
    unit_minor: int,
    discount_minor: int,
    tax_minor: int,
    data: st.DataObject,
) -> None:
    """Invariant: however a line's units are split over returns, and in whatever order the
    returns are settled, the refunds add up to the line total to the cent (largest
    remainder), each unit's share differs from another's by a cent at most, and the
    gateway agrees with the payment."""
    sizes: list[int] = []
    left = quantity
    while left:
        size = data.draw(st.integers(min_value=1, max_value=left), label="return size")
        sizes.append(size)
        left -= size
    order_of_refunds = data.draw(st.permutations(range(len(sizes))), label="refund order")
    opened = Rigs(tmp_path)
    try:
        rig = opened.open(store_name)
        cmd = command(
            quantity=quantity,
            unit_price=str(Money.from_minor(unit_minor, EUR).amount),
            discount=str(Money.from_minor(discount_minor, EUR).amount),
            tax=str(Money.from_minor(tax_minor, EUR).amount),
        )
        line_total = cmd.lines[0].total
        order = delivered(rig, cmd)
        requests = [inspected(rig, order.id, [ReturnLine("L1", size, "damaged")]) for size in sizes]
        paid: dict[int, Money] = {}
        for index in order_of_refunds:
            refunded = rig.shop.returns.refund(requests[index].id)
            assert refunded.amount_due is not None
            assert refunded.amount_refunded == refunded.amount_due
            paid[index] = refunded.amount_due
        assert Money.sum(paid.values(), EUR) == line_total
        low = line_total.minor_units // quantity
        for index, size in enumerate(sizes):
            assert low * size <= paid[index].minor_units <= (low + 1) * size
        payment = payment_of(rig, order.id)
        assert payment.refunded == line_total == rig.gateway.refunded(authorization(payment))
    finally:
        opened.close_all()


def test_a_refund_never_pays_back_more_than_was_captured(rigs: Rigs, store: str) -> None:
    rig = rigs.open(store, capture="manual")
    shop = rig.shop
    order = delivered(rig)
    auth = authorization(payment_of(rig, order.id))
    shop.payments.capture(order.id, Money("10.00", EUR), reference="deposit")
    assert rig.gateway.captured(auth) == Money("10.00", EUR)
    first = inspected(
        rig, order.id, [ReturnLine("L1", 1, "damaged"), ReturnLine("L2", 1, "damaged")]
    )
    # while the rest is only authorized, the shop must capture or void it first
    before = world(rig, order.id)
    with pytest.raises(ReturnError, match="authorized but not captured yet"):
        shop.returns.refund(first.id)
    assert world(rig, order.id) == before
    shop.payments.void(order.id)
    assert rig.gateway.is_voided(auth)

    partly = shop.returns.refund(first.id)

    assert partly.amount_due == L1_UNITS[0] + L2_TOTAL  # 22.02 is owed
    assert partly.amount_refunded == Money("10.00", EUR)  # all that was captured
    assert rig.gateway.refunded(auth) == Money("10.00", EUR) == payment_of(rig, order.id).refunded
    notice = one_notice(rig, order.id, "refund_issued")
    assert "22.02 EUR" in notice.body
    assert "10.00 EUR goes back to your payment method now" in notice.body

    second = inspected(rig, order.id, [ReturnLine("L1", 1, "damaged")])
    nothing_left = shop.returns.refund(second.id)

    assert nothing_left.amount_due == L1_UNITS[1]
    assert nothing_left.amount_refunded == ZERO
    assert rig.gateway.refunded(auth) == Money("10.00", EUR)
    last = notices(rig, order.id, "refund_issued")[-1]
    assert "13.12 EUR" in last.body
    assert "by separate payment" in last.body


# -- 6. the return window --------------------------------------------------------------------


def test_a_request_after_the_return_window_is_refused_and_stores_nothing(
    rigs: Rigs, store: str
) -> None:
    rig = rigs.open(store, return_window=timedelta(days=14))
    shop = rig.shop
    order = delivered(rig)
    (shipment,) = shop.fulfilment.shipments(order.id)
    assert shipment.delivered_at is not None
    closes = shipment.delivered_at + timedelta(days=14)
    rig.clock.set(closes + timedelta(seconds=1))
    assert shop.returns.returnable(order.id) == {}  # nothing can be asked for any more
    before = world(rig, order.id)

    with pytest.raises(ReturnError, match=r"return window closed on " + closes.date().isoformat()):
        shop.returns.request(order.id, [ReturnLine("L1", 1, "changed_mind")])

    assert world(rig, order.id) == before
    assert shop.returns.for_order(order.id) == []
    assert "ReturnRequested" not in history_kinds(rig, order.id)


def test_a_request_on_the_last_moment_of_the_window_is_taken(rigs: Rigs, store: str) -> None:
    rig = rigs.open(store, return_window=timedelta(days=14))
    order = delivered(rig)
    (shipment,) = rig.shop.fulfilment.shipments(order.id)
    assert shipment.delivered_at is not None
    rig.clock.set(shipment.delivered_at + timedelta(days=14))

    request = rig.shop.returns.request(order.id, [ReturnLine("L1", 1, "changed_mind")])

    assert [r.id for r in rig.shop.returns.for_order(order.id)] == [request.id]


def test_nothing_can_be_returned_before_it_is_delivered(rigs: Rigs, store: str) -> None:
    rig = rigs.open(store)
    order = rig.shop.orders.place(command())
    rig.shop.orders.acknowledge(order.id)
    ship(rig, order.id)  # on its way, not there
    assert rig.shop.returns.returnable(order.id) == {}
    before = world(rig, order.id)

    with pytest.raises(ReturnError, match="0 can be returned"):
        rig.shop.returns.request(order.id, [ReturnLine("L1", 1, "changed_mind")])

    assert world(rig, order.id) == before


# -- 7. bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "error", "words"),
    [
        ([ReturnLine("L1", 4, "damaged")], ReturnError, "4 unit(s) asked, 3 can be returned"),
        ([ReturnLine("L9", 1, "damaged")], InvalidField, "has no such line"),
        (
            [ReturnLine("L1", 1, "damaged"), ReturnLine("L1", 1, "other")],
            InvalidField,
            "appears twice",
        ),
        ([], InvalidField, "at least one line"),
        ("L1", InvalidField, "must be a list"),
        ([("L1", 1, "damaged")], InvalidField, "must be a ReturnLine"),
    ],
    ids=["too-many", "unknown-line", "duplicate-line", "no-lines", "not-a-list", "not-a-line"],
)
def test_a_bad_request_is_refused_with_a_readable_error_and_stores_nothing(
    rigs: Rigs, store: str, lines: Any, error: type[OrderkitError], words: str
) -> None:
    rig = rigs.open(store)
    order = delivered(rig)
    before = world(rig, order.id)

    with pytest.raises(error) as caught:
        rig.shop.returns.request(order.id, lines)

    assert words in str(caught.value)
    assert world(rig, order.id) == before


def test_a_return_of_an_unknown_order_is_refused(rigs: Rigs, store: str) -> None:
    rig = rigs.open(store)

    with pytest.raises(OrderNotFound, match="order_nope"):
        rig.shop.returns.request("order_nope", [ReturnLine("L1", 1, "damaged")])
    with pytest.raises(OrderNotFound):
        rig.shop.returns.returnable("order_nope")

    assert rig.shop.returns.list() == []
    assert rig.gateway.calls == 0


def test_blank_instructions_and_reasons_are_refused_and_change_nothing(
    rigs: Rigs, store: str
) -> None:
    rig = rigs.open(store)
    order = delivered(rig)
    request = rig.shop.returns.request(order.id, [ReturnLine("L1", 1, "damaged")])
    before = world(rig, order.id)

    with pytest.raises(InvalidInput, match="instructions"):
        rig.shop.returns.approve(request.id, "  ")
    with pytest.raises(InvalidInput, match="reason"):
        rig.shop.returns.reject(request.id, "")
    with pytest.raises(InvalidInput, match="reason"):
        rig.shop.returns.cancel(request.id, "")

    assert world(rig, order.id) == before


def test_more_units_than_are_left_after_an_earlier_return_are_refused(
    rigs: Rigs, store: str
) -> None:
    rig = rigs.open(store)
    order = delivered(rig)
    rig.shop.returns.request(order.id, [ReturnLine("L1", 2, "damaged")])
    before = world(rig, order.id)

    with pytest.raises(ReturnError, match="2 unit\\(s\\) asked, 1 can be returned"):
        rig.shop.returns.request(order.id, [ReturnLine("L1", 2, "damaged")])

    assert world(rig, order.id) == before


@pytest.mark.parametrize(
    ("build", "error", "field"),
    [
        (lambda: ReturnLine("L1", 0, "damaged"), InvalidQuantity, "quantity"),
        (lambda: ReturnLine("L1", -1, "damaged"), InvalidQuantity, "quantity"),
        (lambda: ReturnLine("L1", True, "damaged"), InvalidQuantity, "quantity"),
        (lambda: ReturnLine("L1", 1, "bored"), InvalidField, "reason"),
        (lambda: ReturnLine("", 1, "damaged"), InvalidInput, "line_id"),
        (lambda: Inspection("L1", -1), InvalidQuantity, "restock"),
        (lambda: Inspection("L1", 1, write_off=-2), InvalidQuantity, "write_off"),
    ],
    ids=["zero", "negative", "bool", "unknown-reason", "blank-line", "neg-restock", "neg-off"],
)
def test_a_malformed_line_is_refused_where_it_is_built(
    build: Callable[[], object], error: type[InvalidInput], field: str
) -> None:
    with pytest.raises(error) as caught:
        build()
    assert caught.value.field == field
    assert field in str(caught.value)


def test_unknown_returns_are_named_as_such(rigs: Rigs, store: str) -> None:
    rig = rigs.open(store)
    with pytest.raises(InvalidField, match="must be one of"):
        rig.shop.returns.list(state="lost")
    steps: list[Callable[[], object]] = [
        lambda: rig.shop.returns.get("return-nope"),
        lambda: rig.shop.returns.approve("return-nope"),
        lambda: rig.shop.returns.refund("return-nope"),
    ]
    for step in steps:
        with pytest.raises(ReturnNotFound):
            step()


@pytest.fixture
def received(rigs: Rigs, store: str) -> tuple[Rig, Order, ReturnRequest]:
    """A delivered order with a received return of 2 x L1 and 1 x L2."""
    rig = rigs.open(store)
    order = delivered(rig)
    request = rig.shop.returns.request(
        order.id, [ReturnLine("L1", 2, "damaged"), ReturnLine("L2", 1, "wrong_item")]
    )
    rig.shop.returns.approve(request.id)
    return rig, order, rig.shop.returns.receive(request.id)


@pytest.mark.parametrize(
    ("results", "error", "words"),
    [
        ([Inspection("L1", 1), Inspection("L2", 1)], ReturnError, "2 unit(s) received"),
        ([Inspection("L1", 2, 1), Inspection("L2", 1)], ReturnError, "restocked plus written off"),
        ([Inspection("L1", 2)], ReturnError, "line L2: 1 unit(s) received"),
        (
            [Inspection("L1", 2), Inspection("L2", 1), Inspection("L9", 1)],
            InvalidField,
            "received no units",
        ),
        (
            [Inspection("L1", 1, 1), Inspection("L1", 1, 1), Inspection("L2", 1)],
            InvalidField,
            "appears twice",
        ),
    ],
    ids=["too-few", "too-many", "line-missing", "unknown-line", "twice"],
)
def test_inspections_that_do_not_add_up_are_refused_and_restock_nothing(
    received: tuple[Rig, Order, ReturnRequest],
    results: list[Inspection],
    error: type[OrderkitError],
    words: str,
) -> None:
    rig, order, request = received
    before = world(rig, order.id)

    with pytest.raises(error) as caught:
        rig.shop.returns.inspect(request.id, results)

    assert words in str(caught.value)
    assert world(rig, order.id) == before


def test_restocking_to_an_unknown_location_is_refused_and_moves_nothing(
    received: tuple[Rig, Order, ReturnRequest],
) -> None:
    rig, order, request = received
    before = world(rig, order.id)

    with pytest.raises(InvalidInput, match="no such location") as caught:
        rig.shop.returns.inspect(request.id, location="nowhere")

    assert caught.value.value == "nowhere"
    assert world(rig, order.id) == before


@pytest.mark.parametrize(
    ("units", "error", "words"),
    [
        ({"L1": 3}, ReturnError, "3 unit(s) received, 2 were asked for"),
        ({"L9": 1}, InvalidField, "is not in this return"),
        ({"L1": 0, "L2": 0}, InvalidField, "at least one unit must arrive"),
        ({"L1": -1}, InvalidField, "whole number >= 0"),
        ({"L1": 1.0}, InvalidField, "whole number >= 0"),
    ],
    ids=["more-than-asked", "unknown-line", "none", "negative", "float"],
)
def test_receiving_what_was_not_asked_for_is_refused(
    rigs: Rigs, store: str, units: dict[str, Any], error: type[OrderkitError], words: str
) -> None:
    rig = rigs.open(store)
    order = delivered(rig)
    request = rig.shop.returns.request(
        order.id, [ReturnLine("L1", 2, "damaged"), ReturnLine("L2", 1, "wrong_item")]
    )
    rig.shop.returns.approve(request.id)
    before = world(rig, order.id)

    with pytest.raises(error) as caught:
        rig.shop.returns.receive(request.id, units)

    assert words in str(caught.value)
    assert world(rig, order.id) == before


def returned_up_to(rig: Rig, order_id: str, stage: str) -> ReturnRequest:
    """A return of 1 x L1 taken up to ``stage``: requested, approved or received."""
    request = rig.shop.returns.request(order_id, [ReturnLine("L1", 1, "damaged")])
    if stage != "requested":
        request = rig.shop.returns.approve(request.id)
    if stage == "received":
        request = rig.shop.returns.receive(request.id)
    return request


@pytest.mark.parametrize("stage", ["requested", "approved", "received"])
def test_only_an_inspected_return_is_refunded(rigs: Rigs, store: str, stage: str) -> None:
    rig = rigs.open(store)
    order = delivered(rig)
    request = returned_up_to(rig, order.id, stage)
    before = world(rig, order.id)

    with pytest.raises(ReturnError, match=f"is '{stage}': only an inspected return is"):
        rig.shop.returns.refund(request.id)
    with pytest.raises(InvalidTransition):
        rig.shop.returns.close(request.id)

    assert world(rig, order.id) == before
    assert rig.shop.returns.get(request.id).amount_due is None


@pytest.mark.parametrize("stage", ["requested", "approved", "received"])
def test_only_an_inspected_return_is_exchanged(rigs: Rigs, store: str, stage: str) -> None:
    rig = rigs.open(store)
    order = delivered(rig)
    request = returned_up_to(rig, order.id, stage)
    before = world(rig, order.id)
    auths = rig.gateway.authorization_count()

    with pytest.raises(ReturnError, match=f"is '{stage}': only an inspected return is"):
        rig.shop.returns.exchange(
            request.id, [Replacement("L1", "MUG-02", "Blue mug", Money("12.50", EUR))]
        )

    assert world(rig, order.id) == before
    assert rig.gateway.authorization_count() == auths
    assert not [o for o in rig.shop.orders.list(limit=1000) if o.exchange_for is not None]


@pytest.mark.parametrize(
    ("replacements", "words"),
    [
        ([], "name at least one replacement"),
        ([Replacement("L2", "TEA-BL", "Black tea", Money("8.90", EUR))], "received line"),
        (
            [
                Replacement("L1", "MUG-02", "Blue mug", Money("12.50", EUR)),
                Replacement("L1", "MUG-03", "Large mug", Money("20.00", EUR)),
            ],
            "received line of this return, once",
        ),
        (["MUG-02"], "must be a Replacement"),
        ("MUG-02", "must be a list"),
    ],
    ids=["none", "line-not-returned", "line-twice", "not-a-replacement", "not-a-list"],
)
def test_a_bad_exchange_is_refused_and_places_nothing(
    rigs: Rigs, store: str, replacements: Any, words: str
) -> None:
    rig = rigs.open(store)
    order = delivered(rig)
    request = inspected(rig, order.id, [ReturnLine("L1", 1, "size_or_fit")])
    before = world(rig, order.id)
    auths = rig.gateway.authorization_count()

    with pytest.raises(InvalidField) as caught:
        rig.shop.returns.exchange(request.id, replacements)

    assert words in str(caught.value)
    assert world(rig, order.id) == before
    assert rig.gateway.authorization_count() == auths


def test_an_exchange_in_another_currency_is_refused(rigs: Rigs, store: str) -> None:
    rig = rigs.open(store)
    order = delivered(rig)
    request = inspected(rig, order.id, [ReturnLine("L1", 1, "size_or_fit")])
    before = world(rig, order.id)

    with pytest.raises(InvalidInput):
        rig.shop.returns.exchange(
            request.id, [Replacement("L1", "MUG-02", "Blue mug", Money("12.50", "USD"))]
        )

    assert world(rig, order.id) == before


# -- 8. repeats and crashes --------------------------------------------------------------------


def test_refunding_twice_pays_once(rigs: Rigs, store: str) -> None:
    rig = rigs.open(store)
    order = delivered(rig)
    request = inspected(rig, order.id, [ReturnLine("L1", 1, "damaged")])
    first = rig.shop.returns.refund(request.id)
    calls = rig.gateway.calls

    again = rig.shop.returns.refund(request.id)

    assert (again.state, again.amount_refunded, again.version) == (
        first.state,
        first.amount_refunded,
        first.version,
    )
    assert rig.gateway.calls == calls
    payment = payment_of(rig, order.id)
    assert payment.refunded == L1_UNITS[0] == rig.gateway.refunded(authorization(payment))
    assert len(notices(rig, order.id, "refund_issued")) == 1
    assert again.state == ReturnState.CLOSED.value


def test_exchanging_twice_places_one_exchange_order(rigs: Rigs, store: str) -> None:
    rig = rigs.open(store)
    order = delivered(rig)
    request = inspected(rig, order.id, [ReturnLine("L1", 1, "size_or_fit")])
    swap = [Replacement("L1", "MUG-04", "Small mug", Money("9.00", EUR))]
    first = rig.shop.returns.exchange(request.id, swap)
    calls = rig.gateway.calls

    again = rig.shop.returns.exchange(request.id, swap)

    assert again.exchange_order_id == first.exchange_order_id
    exchanges = [o for o in rig.shop.orders.list(limit=1000) if o.exchange_for == request.id]
    assert [o.id for o in exchanges] == [first.exchange_order_id]
    assert rig.gateway.calls == calls
    assert payment_of(rig, order.id).refunded == L1_UNITS[0] - Money("9.00", EUR)
    assert on_hand(rig, "MUG-04") == (10, 1)


class Crash(Exception):
    """A process dying between two steps."""


def crash_once(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    """Make ``owner.name`` raise :class:`Crash` on its first call (after doing nothing),
    then behave; returns a list that counts the calls."""
    original = getattr(owner, name)
    calls: list[int] = []

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise Crash(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)
    return calls


def test_a_crash_after_the_gateway_refunded_but_before_anything_was_recorded_pays_once(
    rigs: Rigs, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = rigs.open(store)
    order = delivered(rig)
    auth = authorization(payment_of(rig, order.id))
    request = inspected(rig, order.id, [ReturnLine("L1", 2, "damaged")])
    real_refund = rig.gateway.refund
    answered: list[object] = []

    def refund_then_die(*args: Any, **kwargs: Any) -> Any:
        result = real_refund(*args, **kwargs)  # the money moves at the gateway ...
        answered.append(result)
        if len(answered) == 1:
            raise Crash("... and the process dies before the answer is recorded")
        return result

    monkeypatch.setattr(rig.gateway, "refund", refund_then_die)

    with pytest.raises(Crash):
        rig.shop.returns.refund(request.id)

    due = L1_UNITS[0] + L1_UNITS[1]
    assert rig.gateway.refunded(auth) == due
    half = rig.shop.returns.get(request.id)
    assert (half.state, half.amount_due, half.amount_refunded) == ("inspected", due, None)
    assert payment_of(rig, order.id).refunded == ZERO

    done = rig.shop.returns.refund(request.id)

    assert (done.state, done.amount_due, done.amount_refunded) == ("closed", due, due)
    assert rig.gateway.refunded(auth) == due  # once
    payment = payment_of(rig, order.id)
    assert payment.refunded == due
    assert len(payment.refunds) == 1
    assert len(notices(rig, order.id, "refund_issued")) == 1


def test_a_crash_after_the_payment_recorded_the_refund_but_before_the_return_did_pays_once(
    rigs: Rigs, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = rigs.open(store)
    order = delivered(rig)
    auth = authorization(payment_of(rig, order.id))
    request = inspected(rig, order.id, [ReturnLine("L2", 1, "damaged")])
    attempts = crash_once(monkeypatch, DomainReturnRequest, "mark_refunded")

    with pytest.raises(Crash):
        rig.shop.returns.refund(request.id)

    assert payment_of(rig, order.id).refunded == L2_TOTAL == rig.gateway.refunded(auth)
    assert rig.shop.returns.get(request.id).state == ReturnState.INSPECTED.value
    calls = rig.gateway.calls

    done = rig.shop.returns.refund(request.id)

    assert len(attempts) == 2
    assert (done.state, done.amount_refunded) == ("closed", L2_TOTAL)
    assert rig.gateway.refunded(auth) == L2_TOTAL
    assert rig.gateway.calls == calls  # the payment knew it was done: no second call
    assert len(payment_of(rig, order.id).refunds) == 1


def test_a_refund_retried_after_a_crash_pays_what_was_decided_even_if_settings_change(
    rigs: Rigs, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The amount is fixed before money moves: a retry asking for shipping too does not
    change what the first attempt decided."""
    rig = rigs.open(store)
    order = delivered(rig)
    auth = authorization(payment_of(rig, order.id))
    request = inspected(rig, order.id, [ReturnLine("L2", 1, "damaged")])
    crash_once(monkeypatch, DomainReturnRequest, "mark_refunded")
    with pytest.raises(Crash):
        rig.shop.returns.refund(request.id)

    done = rig.shop.returns.refund(request.id, refund_shipping=True)

    assert done.amount_due == L2_TOTAL == done.amount_refunded
    assert rig.gateway.refunded(auth) == L2_TOTAL


def test_an_exchange_retried_after_a_crash_places_one_order_and_refunds_once(
    rigs: Rigs, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = rigs.open(store)
    order = delivered(rig)
    auth = authorization(payment_of(rig, order.id))
    request = inspected(rig, order.id, [ReturnLine("L1", 1, "size_or_fit")])
    swap = [Replacement("L1", "MUG-04", "Small mug", Money("9.00", EUR))]
    crash_once(monkeypatch, DomainReturnRequest, "mark_exchanged")

    with pytest.raises(Crash):
        rig.shop.returns.exchange(request.id, swap)

    assert rig.shop.returns.get(request.id).state == ReturnState.INSPECTED.value
    credit_left = L1_UNITS[0] - Money("9.00", EUR)
    assert rig.gateway.refunded(auth) == credit_left

    done = rig.shop.returns.exchange(request.id, swap)

    assert done.state == ReturnState.EXCHANGED.value
    exchanges = [o for o in rig.shop.orders.list(limit=1000) if o.exchange_for == request.id]
    assert [o.id for o in exchanges] == [done.exchange_order_id]
    assert exchanges[0].state == OrderState.ACKNOWLEDGED.value
    assert rig.gateway.refunded(auth) == credit_left == done.amount_refunded
    assert on_hand(rig, "MUG-04") == (10, 1)
    assert len(notices(rig, done.exchange_order_id or "", "order_confirmation")) == 1


# -- 9. cancelling lines before they ship -------------------------------------------------------
# tests/test_fulfilment.py covers a line cancelled after the rest shipped (capture on
# shipment: the rest of the authorization voided). Here: a line cancelled before anything
# shipped, with capture on placement (its captured share refunded) and on shipment (its
# share voided when the rest ships).


def test_cancelling_a_line_of_a_paid_order_releases_its_stock_and_refunds_its_share(
    rigs: Rigs, store: str
) -> None:
    rig = rigs.open(store, capture="on_placement")
    shop = rig.shop
    order = shop.orders.place(command())
    shop.orders.acknowledge(order.id)
    auth = authorization(payment_of(rig, order.id))
    assert rig.gateway.captured(auth) == TOTAL
    assert on_hand(rig, "TEA-GR") == (10, 1)

    after = shop.orders.cancel_lines(order.id, ["L2"], "out of stock")

    assert after.cancelled_lines == ("L2",)
    assert on_hand(rig, "TEA-GR") == (10, 0)
    assert on_hand(rig, "MUG-01") == (10, 3)
    payment = payment_of(rig, order.id)
    assert payment.refunded == L2_TOTAL == rig.gateway.refunded(auth)
    assert [r.reference for r in payment.refunds] == ["lines-cancelled:L2"]
    # the rest ships and arrives; the cancelled line is not returnable
    ship(rig, order.id)
    poll_until_delivered(rig, order.id)
    assert shop.returns.returnable(order.id) == {"L1": 3}
    assert rig.gateway.refunded(auth) == L2_TOTAL
    with pytest.raises(ReturnError):
        shop.returns.request(order.id, [ReturnLine("L2", 1, "damaged")])


def test_cancelling_a_line_before_anything_shipped_voids_its_share_when_the_rest_ships(
    rigs: Rigs, store: str
) -> None:
    rig = rigs.open(store)  # capture on shipment
    shop = rig.shop
    order = shop.orders.place(command())
    shop.orders.acknowledge(order.id)
    auth = authorization(payment_of(rig, order.id))

    shop.orders.cancel_lines(order.id, ["L1"], "discontinued")

    assert on_hand(rig, "MUG-01") == (10, 0)
    assert shop.inventory.reservations(order.id)[0][2].line_id == "L2"
    assert rig.gateway.captured(auth) == ZERO
    assert not rig.gateway.is_voided(auth)
    ship(rig, order.id)
    payment = payment_of(rig, order.id)
    assert payment.captured == L2_TOTAL + SHIPPING == rig.gateway.captured(auth)
    assert rig.gateway.is_voided(auth)
    assert payment.voided == L1_TOTAL
    assert payment.refunded == ZERO
    assert on_hand(rig, "MUG-01") == (10, 0)


def test_a_line_in_a_shipment_cannot_be_cancelled_and_nothing_moves(rigs: Rigs, store: str) -> None:
    rig = rigs.open(store, capture="on_placement")
    order = rig.shop.orders.place(command())
    rig.shop.orders.acknowledge(order.id)
    rig.shop.fulfilment.start(order.id)
    calls = rig.gateway.calls
    stock = {sku: on_hand(rig, sku) for sku in STOCK}

    with pytest.raises(FulfilmentError, match="L2 is already in a shipment"):
        rig.shop.orders.cancel_lines(order.id, ["L2"], "too late")

    assert rig.gateway.calls == calls
    assert {sku: on_hand(rig, sku) for sku in STOCK} == stock
    assert rig.shop.orders.get(order.id).cancelled_lines == ()


# -- 10. defects of the first version, fixed since (kept as regressions) ---------------------


@pytest.mark.parametrize(
    ("sku", "price"), [("MUG-04", "9.00"), ("MUG-03", "20.00")], ids=["cheaper", "dearer"]
)
def test_returning_the_item_got_in_an_exchange_refunds_what_it_was_paid_with(
    rigs: Rigs, store: str, sku: str, price: str
) -> None:
    rig = rigs.open(store)
    shop = rig.shop
    order = delivered(rig)
    first = inspected(rig, order.id, [ReturnLine("L1", 1, "size_or_fit")])
    exchanged = shop.returns.exchange(
        first.id, [Replacement("L1", sku, "Other mug", Money(price, EUR))]
    )
    new = exchange_order_of(rig, exchanged)
    deliver_exchange(rig, new)
    # the customer paid for the new mug with the old one's credit (and the difference, if any)
    worth = Money(price, EUR)

    back = inspected(rig, new.id, [ReturnLine("L1", 1, "defective")])

    assert shop.returns.quote_refund(back.id).due == worth
    refunded = shop.returns.refund(back.id)
    assert refunded.amount_due == worth == refunded.amount_refunded
    # in all, everything the customer paid for the unit went back to them
    paid_in = L1_UNITS[0] + (exchanged.exchange_charged or ZERO)
    refunds = [
        rig.gateway.refunded(authorization(p))
        for o in (order.id, new.id)
        for p in shop.payments.for_order(o)
    ]
    assert Money.sum(refunds, EUR) == paid_in


def test_units_of_a_split_order_go_back_where_each_line_shipped_from(
    rigs: Rigs, store: str
) -> None:
    rig = rigs.open(store)
    shop = rig.shop
    shop.inventory.add_location(Location("hamburg", "Hamburg", priority=2))
    shop.inventory.adjust("TEA-GR", location="berlin", delta=-10, reason="moved to Hamburg")
    shop.inventory.receive("TEA-GR", location="hamburg", quantity=5)
    order = delivered(rig)
    assert sorted((s.location, tuple(s.units())) for s in shop.fulfilment.shipments(order.id)) == [
        ("berlin", ("L1",)),
        ("hamburg", ("L2",)),
    ]
    request = shop.returns.request(
        order.id, [ReturnLine("L1", 1, "size_or_fit"), ReturnLine("L2", 1, "wrong_item")]
    )
    shop.returns.approve(request.id)
    shop.returns.receive(request.id)

    done = shop.returns.inspect(request.id)  # not broken: restocked where each line shipped from

    levels = {
        (lv.sku, lv.location): lv.on_hand
        for sku in ("MUG-01", "TEA-GR")
        for lv in shop.inventory.levels(sku)
    }
    assert levels[("MUG-01", "berlin")] == 8
    assert levels[("TEA-GR", "hamburg")] == 5
    assert levels[("TEA-GR", "berlin")] == 0
    assert {(i.line_id, i.location) for i in done.inspections} == {
        ("L1", "berlin"),
        ("L2", "hamburg"),
    }


def test_two_returns_refunded_at_once_refund_shipping_and_each_unit_once(
    rigs: Rigs, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = rigs.open(store)
    shop = rig.shop
    order = delivered(rig, command(tax="2.34"))  # L1 39.34: 13.12 + 13.11 + 13.11
    requests = [inspected(rig, order.id, [ReturnLine("L1", 1, "damaged")]) for _ in range(2)]
    # Both clerks' quotes are read before either decision is saved: the interleaving two
    # clicks on "refund" at the same moment get. The decision saves the order, so one of
    # them loses the race, quotes again (without waiting) and sees the other's decision.
    barrier = threading.Barrier(2, timeout=3)
    real_quote = ReturnService._quote
    waited: set[int] = set()

    def quote_then_wait(self: ReturnService, *args: Any, **kwargs: Any) -> Any:
        quote = real_quote(self, *args, **kwargs)
        if threading.get_ident() not in waited:  # a retry after a lost race goes on
            waited.add(threading.get_ident())
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
        return quote

    monkeypatch.setattr(ReturnService, "_quote", quote_then_wait)
    errors: list[BaseException] = []

    def refund(return_id: str) -> None:
        try:
            shop.returns.refund(return_id, refund_shipping=True)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=refund, args=(r.id,)) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    monkeypatch.undo()
    assert errors == []
    third = inspected(rig, order.id, [ReturnLine("L1", 1, "damaged")])
    shop.returns.refund(third.id)

    settled = [shop.returns.get(r.id) for r in (*requests, third)]
    shipping = [r.shipping_refund for r in settled if r.shipping_refund]
    assert Money.sum(shipping, EUR) == SHIPPING
    items = [(r.amount_due or ZERO) - (r.shipping_refund or ZERO) for r in settled]
    assert Money.sum(items, EUR) == Money("39.34", EUR)
    payment = payment_of(rig, order.id)
    assert payment.refunded == Money("39.34", EUR) + SHIPPING


def test_cancelling_an_exchange_order_gives_the_customer_their_credit_back(
    rigs: Rigs, store: str
) -> None:
    rig = rigs.open(store)
    shop = rig.shop
    order = delivered(rig)
    auth = authorization(payment_of(rig, order.id))
    request = inspected(rig, order.id, [ReturnLine("L1", 1, "size_or_fit")])
    exchanged = shop.returns.exchange(
        request.id, [Replacement("L1", "MUG-03", "Large mug", Money("20.00", EUR))]
    )
    assert exchanged.exchange_order_id is not None

    shop.orders.cancel(exchanged.exchange_order_id, "the large mug was discontinued")

    # the difference was only authorized: it is released ...
    assert payment_of(rig, exchanged.exchange_order_id).voided == Money("6.88", EUR)
    # ... and the credit for the returned mug goes back to the customer
    after = shop.returns.get(request.id)
    assert after.state == ReturnState.CLOSED.value  # refunded, then closed
    assert after.amount_refunded == L1_UNITS[0]
    assert rig.gateway.refunded(auth) == L1_UNITS[0] == payment_of(rig, order.id).refunded
    assert [r.reference for r in payment_of(rig, order.id).refunds] == [
        f"return:{request.id}:exchange-cancelled"
    ]
    notice = notices(rig, order.id, "refund_issued")[-1]
    assert "13.12 EUR" in notice.body
    assert on_hand(rig, "MUG-03") == (10, 0)


# -- 11. defects found while these tests were written, fixed since ------------------------


class RandomLookingIds:
    """Sequential ids, except that returns get ``return_id``: an id shaped exactly like the
    default :class:`~orderkit.adapters.system.RandomIds` makes them (a UUID4's 32 hex
    digits), one that a real run of this suite drew."""

    def __init__(self, return_id: str) -> None:
        self._return_id = return_id
        self._others = SequentialIds()

    def new_id(self, kind: str) -> str:
        return self._return_id if kind == "return" else self._others.new_id(kind)


def test_a_return_whose_random_id_holds_a_long_digit_run_can_be_restocked(
    rigs: Rigs, store: str
) -> None:
    # "...abec713792257808b": 713792257808 is twelve digits that pass the Luhn check
    rig = rigs.open(store, ids=RandomLookingIds("return_ca87e2b654c24e4abec713792257808b"))
    order = delivered(rig)
    request = rig.shop.returns.request(order.id, [ReturnLine("L1", 1, "size_or_fit")])
    rig.shop.returns.approve(request.id)
    rig.shop.returns.receive(request.id)

    done = rig.shop.returns.inspect(request.id)

    assert done.state == ReturnState.INSPECTED.value
    assert on_hand(rig, "MUG-01") == (8, 0)


def test_a_return_whose_exchange_was_out_of_stock_can_be_refunded_instead(
    rigs: Rigs, store: str
) -> None:
    rig = rigs.open(store)
    shop = rig.shop
    order = delivered(rig)
    request = inspected(rig, order.id, [ReturnLine("L1", 2, "size_or_fit")])
    with pytest.raises(OutOfStock):
        shop.returns.exchange(
            request.id, [Replacement("L1", "MUG-05", "Limited mug", Money("12.50", EUR))]
        )

    refunded = shop.returns.refund(request.id)

    assert refunded.resolution == "refund"
    assert refunded.amount_refunded == L1_UNITS[0] + L1_UNITS[1]
