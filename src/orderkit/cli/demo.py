"""``orderkit demo``: a simulated shop day on the embedded SQLite default."""

from __future__ import annotations

import contextlib
import random
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from orderkit.adapters.memory import ManualClock, MemoryNotifier
from orderkit.adapters.memory_carrier import MemoryCarrier
from orderkit.adapters.memory_gateway import MemoryGateway
from orderkit.cli import main
from orderkit.cli.aftercare import Aftercare, after_delivery
from orderkit.domain.carrier import Parcel
from orderkit.domain.inquiries import INQUIRY_LIFECYCLE
from orderkit.domain.inventory import Location
from orderkit.domain.order import ORDER_LIFECYCLE, OrderState
from orderkit.domain.payment import PaymentStatus
from orderkit.domain.returns import RETURN_LIFECYCLE
from orderkit.domain.shipment import SHIPMENT_LIFECYCLE, Shipment
from orderkit.domain.values import Address, ContactChannel, Customer, LineItem, SalesChannel
from orderkit.errors import (
    FulfilmentError,
    OrderkitError,
    OutOfStock,
    PaymentDeclined,
)
from orderkit.money import Money
from orderkit.service.automation import MANUAL_REVIEW, AutomationSettings, HoldRules
from orderkit.service.commands import PlaceOrder
from orderkit.service.settings import ShopSettings
from orderkit.shop import Shop

__all__ = ["demo"]

CATALOG = [
    ("MUG-01", "Stoneware mug", "12.50"),
    ("TEE-M", "Organic T-shirt, M", "24.00"),
    ("TEE-L", "Organic T-shirt, L", "24.00"),
    ("BAG-01", "Canvas tote bag", "18.90"),
    ("PEN-05", "Fountain pen", "39.00"),
    ("INK-BL", "Ink, blue", "6.40"),
    ("NOTE-A5", "A5 notebook", "9.95"),
    ("CAP-01", "Cap", "16.00"),
]
FIRST = ["Ada", "Ben", "Chloé", "Dmitri", "Eva", "Femi", "Grace", "Hiro", "Ines", "Jonas"]
CITIES = [("Berlin", "10115"), ("Hamburg", "20095"), ("Köln", "50667"), ("München", "80331")]


def _command(rng: random.Random, number: int, key: str) -> PlaceOrder:
    name = rng.choice(FIRST)
    sms = rng.random() < 0.3
    customer = Customer(
        id=f"cust-{rng.randrange(1, 120):04d}",
        name=name,
        email=f"{name.lower()}.{number}@example.com",
        phone=f"+49151{rng.randrange(10**7):07d}" if sms else None,
        preferred_contact=ContactChannel.SMS if sms else ContactChannel.EMAIL,
    )
    city, postal = rng.choice(CITIES)
    lines = []
    for index, (sku, title, price) in enumerate(rng.sample(CATALOG, rng.randint(1, 4))):
        quantity = rng.randint(1, 3)
        unit = Money(price, "EUR")
        discount = (unit * quantity * Decimal("0.10")) if rng.random() < 0.2 else Money.zero("EUR")
        tax = (unit * quantity - discount) * Decimal("0.19")
        lines.append(LineItem(f"L{index + 1}", sku, title, quantity, unit, discount, tax))
    return PlaceOrder(
        customer=customer,
        shipping_address=Address(name, f"{rng.randint(1, 200)} Hauptstraße", city, postal, "DE"),
        lines=lines,
        payment_token=_token(rng, number),
        channel=rng.choice(list(SalesChannel)),
        shipping_charge=Money("4.90", "EUR"),
        idempotency_key=key,
    )


def _token(rng: random.Random, number: int) -> str:
    """Mostly good cards; some declines, and a gateway that sometimes answers late."""
    draw = rng.random()
    if draw < 0.03:
        return f"tok_decline_{number}"
    if draw < 0.05:
        return f"tok_insufficient_funds_{number}"
    if draw < 0.07:
        return f"tok_timeout_after_success_{number}"
    return f"tok_demo_{number}"


@main.command()
@click.option(
    "--orders",
    "count",
    default=300,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="Orders to place.",
)
@click.option("--seed", default=7, show_default=True, help="Random seed of the simulation.")
@click.option(
    "--db",
    "--store",
    "store",
    default=None,
    help="Store URL, such as sqlite:///shop.db or memory:// "
    "[default: a temporary SQLite file, removed afterwards].",
)
def demo(count: int, seed: int, store: str | None) -> None:
    """Simulate a shop day with automation on: orders arrive on the web, by phone and in
    person (some cards declined); the policies hold large baskets for review, acknowledge
    and release the rest to fulfilment; the warehouse picks, packs, labels and ships
    (capturing each parcel's share); parcels are tracked to the door over the next days;
    the week after delivery brings returns, refunds, exchanges and customer questions; a
    month later delivered orders are completed. Then a summary."""
    console = Console()
    with tempfile.TemporaryDirectory(prefix="orderkit-demo-") as folder:
        url = store or f"sqlite:///{folder}/shop.db"
        console.print(f"Store: [bold]{url}[/bold]" + ("" if store else " (temporary)"))
        try:
            _simulate_day(console, url, count, seed)
        except OrderkitError as error:
            raise click.ClickException(str(error)) from None


def _simulate_day(console: Console, url: str, count: int, seed: int) -> None:
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:8]  # keys unique per run, so a kept store can host many days
    clock = ManualClock(datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc))
    notifier = MemoryNotifier()
    settings = ShopSettings(
        currency="EUR",
        shop_name="orderkit demo shop",
        capture="on_shipment",
        gateway_retry_delay=timedelta(milliseconds=1),
        restocking_fee=Decimal("0.10"),
        automation=AutomationSettings(
            holds=HoldRules(total_over=Money("250.00", "EUR")),
            acknowledge=True,
            release=True,
            complete_delivered=True,
        ),
    )
    # Gateway and carrier ids must be unique across runs on one kept store, like real ones.
    gateway = MemoryGateway(seed=int(run, 16), clock=clock)
    carrier = MemoryCarrier(
        clock=clock, seed=seed, ids_seed=int(run, 16), failed_delivery_rate=0.05, lost_rate=0.01
    )
    with Shop.open(
        url, settings=settings, notifier=notifier, clock=clock, gateway=gateway, carriers=[carrier]
    ) as shop:
        _stock_the_shop(shop, count)
        step = timedelta(seconds=12 * 3600 / count)
        started = time.perf_counter()
        placed: list[str] = []
        refused = 0
        declined: Counter[str] = Counter()
        with Progress(console=console, transient=False) as progress:
            task = progress.add_task("Simulating the shop day", total=count)
            for number in range(1, count + 1):
                clock.advance(step)
                command = _command(rng, number, f"demo-{run}-{number}")
                try:
                    # the policies hold, acknowledge and release it to fulfilment
                    order = shop.orders.place(command)
                except OutOfStock:
                    refused += 1
                    progress.advance(task)
                    continue
                except PaymentDeclined as error:
                    declined[error.reason] += 1
                    progress.advance(task)
                    continue
                placed.append(order.id)
                if rng.random() < 0.02:  # a double-click: the same request again
                    assert shop.orders.place(command).id == order.id
                if rng.random() < 0.03:
                    shop.orders.cancel(order.id, "customer changed their mind")
                progress.advance(task)
            held = [o for o in placed if shop.orders.get(o).is_on_hold]
            for order_id in held[::2]:  # reviewed and found fine: the policy releases it
                shop.orders.release(order_id, MANUAL_REVIEW)
            _ship_and_deliver(shop, clock, progress, placed)
            task = progress.add_task("Returns, exchanges and questions", total=len(placed))
            aftercare = after_delivery(
                shop, clock, rng, placed, _send, lambda: progress.advance(task)
            )
            progress.update(task, completed=len(placed))
            clock.advance(settings.return_window)  # a month on: the return windows close
            aftercare.completed = len(shop.automation.run_timers().completed)
        elapsed = time.perf_counter() - started
        _summary(console, shop, notifier, placed, refused, declined, elapsed, aftercare)


def _ship_and_deliver(
    shop: Shop, clock: ManualClock, progress: Progress, placed: list[str]
) -> None:
    """At the end of the day the warehouse picks, packs, labels and hands over every
    shipment the policies released; then the carrier is followed for a week."""
    waiting = [
        shipment
        for order_id in placed
        for shipment in shop.fulfilment.shipments(order_id)
        if shipment.state == "pending"
    ]
    task = progress.add_task("Picking, packing and shipping", total=len(waiting))
    for shipment in waiting:
        _send(shop, shipment)
        progress.advance(task)
    lost = []
    tracking = progress.add_task("Tracking parcels to the door", total=8)
    for _ in range(8):
        clock.advance(timedelta(days=1))
        shop.shipping.poll()
        for shipment in shop.fulfilment.list(state="lost", limit=1000):
            if shipment.claim is None and shipment.id not in lost:
                lost.append(shipment.id)
                try:
                    replacement = shop.shipping.resolve_claim(shipment.id, "reship")
                except (OutOfStock, FulfilmentError):  # nothing left to send: pay it back
                    shop.shipping.resolve_claim(shipment.id, "refund")
                    continue
                _send(shop, replacement)
        progress.advance(tracking)


def _send(shop: Shop, shipment: Shipment) -> None:
    """Pick, pack (one box sized by its units), label and hand over one shipment."""
    shop.fulfilment.pick(shipment.id)
    units = sum(line.quantity for line in shipment.lines)
    shop.fulfilment.pack(shipment.id, [Parcel(300 + 250 * units, 350, 250, 60 + 20 * units)])
    shop.shipping.buy_label(shipment.id)
    with contextlib.suppress(OutOfStock):  # backordered: it waits for the next delivery
        shop.shipping.hand_over(shipment.id)


def _stock_the_shop(shop: Shop, count: int) -> None:
    """Two warehouses with a day's stock, a little short on some SKUs so that splits and
    refusals happen; pens may be backordered."""
    shop.inventory.add_location(Location("berlin", "Berlin warehouse", priority=10))
    shop.inventory.add_location(Location("hamburg", "Hamburg warehouse", priority=20))
    per_sku = max(count * 6 // len(CATALOG), 10)
    for index, (sku, _, _) in enumerate(CATALOG):
        shop.inventory.receive(sku, location="berlin", quantity=per_sku * (2 + index % 3) // 6)
        shop.inventory.receive(sku, location="hamburg", quantity=per_sku // 3)
    shop.inventory.set_backorder_limit("PEN-05", location="berlin", limit=25)


_SHIPPED = (OrderState.SHIPPED.value, OrderState.DELIVERED.value, OrderState.COMPLETED.value)


def _summary(
    console: Console,
    shop: Shop,
    notifier: MemoryNotifier,
    placed: list[str],
    refused: int,
    declined: Counter[str],
    elapsed: float,
    aftercare: Aftercare,
) -> None:
    states: Counter[str] = Counter()
    paid: Counter[str] = Counter()
    zero = Money.zero(shop.settings.currency)
    money = {"authorized": zero, "captured": zero, "refunded": zero, "voided": zero}
    split = 0
    revenue = shipped_value = Money.zero(shop.settings.currency)
    promised: Counter[str] = Counter()
    parcels: Counter[str] = Counter()
    on_hold = 0
    for order_id in placed:
        order = shop.orders.get(order_id)
        states[order.state] += 1
        shipments = shop.fulfilment.shipments(order_id)
        split += len({shipment.location for shipment in shipments}) > 1
        parcels.update(shipment.state for shipment in shipments)
        on_hold += order.is_on_hold
        if order.state != OrderState.CANCELLED.value:
            revenue += order.totals.total
        if order.state in _SHIPPED:
            shipped_value += order.totals.total
        if order.promised_delivery:
            promised[order.promised_delivery.isoformat()] += 1
        for payment in shop.payments.for_order(order_id):
            paid[payment.status.value] += 1
            for what in money:
                money[what] += getattr(payment, what)
    table = Table(title="orderkit demo: a shop day, its deliveries and the month after")
    table.add_column("what")
    table.add_column("figure", justify="right")
    table.add_row("orders placed", f"{len(placed):,}")
    for state in ORDER_LIFECYCLE.states:
        if states[state]:
            table.add_row(f"  {state}", f"{states[state]:,}")
    table.add_row("refused: out of stock", f"{refused:,}")
    for reason, orders in sorted(declined.items()):
        table.add_row(f"refused: payment declined ({reason})", f"{orders:,}")
    for status in PaymentStatus:
        if paid[status.value]:
            table.add_row(f"  payment {status.value}", f"{paid[status.value]:,}")
    for what, amount in money.items():
        table.add_row(f"money {what}", f"{amount.amount:,} {amount.currency}")
    table.add_row("served from two warehouses", f"{split:,}")
    table.add_row("still on hold (manual review)", f"{on_hold:,}")
    table.add_row("completed a month later (exchange orders too)", f"{aftercare.completed:,}")
    table.add_row("order value (not cancelled)", f"{revenue.amount:,} {revenue.currency}")
    table.add_row("order value shipped", f"{shipped_value.amount:,} {shipped_value.currency}")
    for state in SHIPMENT_LIFECYCLE.states:
        if parcels[state]:
            # in the demo a parcel stays labelled only when its pens are backordered
            waiting = " (backordered: waiting for stock)" if state == "labelled" else ""
            table.add_row(f"shipments {state}{waiting}", f"{parcels[state]:,}")
    for state in RETURN_LIFECYCLE.states:
        if aftercare.returns[state]:
            table.add_row(f"returns {state}", f"{aftercare.returns[state]:,}")
    table.add_row(
        "returned units restocked / written off",
        f"{aftercare.restocked:,} / {aftercare.written_off:,}",
    )
    table.add_row("exchanges placed", f"{aftercare.exchanges:,}")
    table.add_row("exchanges out of stock (refunded)", f"{aftercare.exchanges_out_of_stock:,}")
    for what, owed in (("due", aftercare.due), ("paid out", aftercare.paid)):
        table.add_row(f"return refunds {what}", f"{owed.amount:,} {owed.currency}")
    for state in INQUIRY_LIFECYCLE.states:
        if aftercare.inquiries[state]:
            table.add_row(f"inquiries {state}", f"{aftercare.inquiries[state]:,}")
    channels = Counter(n.channel.value for n in notifier.sent if n.kind == "order_confirmation")
    for channel, sent in sorted(channels.items()):
        table.add_row(f"confirmations by {channel}", f"{sent:,}")
    kinds = Counter(n.kind for n in notifier.sent if n.kind != "order_confirmation")
    for kind, sent in sorted(kinds.items()):
        table.add_row(f"notifications: {kind}", f"{sent:,}")
    for day, orders in sorted(promised.items()):
        table.add_row(f"promised for {day}", f"{orders:,}")
    for location in shop.inventory.locations():
        here = [
            level
            for sku, _, _ in CATALOG
            for level in shop.inventory.levels(sku)
            if level.location == location.id
        ]
        reserved = sum(level.reserved for level in here)
        on_hand = sum(level.on_hand for level in here)
        table.add_row(f"units reserved / on hand, {location.name}", f"{reserved:,} / {on_hand:,}")
    table.add_row("events still in the outbox", f"{shop.events.pending():,}")
    table.add_row("dead letters", f"{len(shop.events.dead_letters()):,}")
    table.add_row("time taken (wall clock)", f"{elapsed:,.1f} s")
    table.add_row(
        "orders per second, placement to door (wall clock)", f"{len(placed) / elapsed:,.0f}"
    )
    console.print(table)
