"""Fulfilment and shipping as a shop runs them: shipments from reserved stock (split over
locations, or partial), pick lists, packing, rates and labels, hand-over, tracking to the
door, failed deliveries, lost parcels and claims, cancellation, and bad input; with the
in-memory gateway (capture on shipment) and the in-memory carrier, on the memory and the
SQLite store.

The conftest order (``place_command``): L1 is 2 x SKU-1 for 22.59 (split per unit by
largest remainder as 11.30 + 11.29), L2 is 1 x SKU-2 for 24.50, shipping 4.95, total 52.04.
Placed on Monday 2026-01-05 09:00 UTC, it is promised for Friday 2026-01-09 (one handling
day, three transit days). The memory carrier's labels bought that Monday arrive on
Thursday 2026-01-08 (standard, 3 business days), Tuesday (express) or the Monday after
(economy).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderkit import (
    CarrierChoice,
    CarrierError,
    Fastest,
    FulfilmentError,
    InvalidField,
    InvalidPayload,
    InvalidTransition,
    Location,
    Money,
    MovementKind,
    Notification,
    Order,
    OrderState,
    Parcel,
    Payment,
    PaymentStatus,
    PickListLine,
    PlaceOrder,
    Reservation,
    Shipment,
    ShipmentNotFound,
    Shop,
    ShopSettings,
    TrackingEvent,
    TransitionBlocked,
    UnknownField,
)
from orderkit.adapters.memory import ManualClock, MemoryNotifier, SequentialIds
from orderkit.adapters.memory_carrier import MemoryCarrier
from orderkit.adapters.memory_gateway import MemoryGateway
from orderkit.notify.templates import MessageTemplates
from orderkit.serialization import dumps

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)  # a Monday
PROMISED = date(2026, 1, 9)
STANDARD_ETA = date(2026, 1, 8)
STORES = ["memory", "sqlite"]

WEST = Location("west", "West warehouse", priority=1, bins={"SKU-1": "B-07", "SKU-2": "A-03"})
EAST = Location("east", "East warehouse", priority=2, bins={"SKU-1": "A-01", "SKU-2": "C-02"})

EUR = "EUR"
TOTAL = Money("52.04", EUR)
SHIPPING = Money("4.95", EUR)
L1_TOTAL = Money("22.59", EUR)
L1_FIRST_UNIT = Money("11.30", EUR)
L1_SECOND_UNIT = Money("11.29", EUR)
L2_TOTAL = Money("24.50", EUR)
ZERO = Money.zero(EUR)

BOX = Parcel(weight_grams=1200, length_mm=300, width_mm=200, height_mm=100)  # 2 started kg

# Stock no single location can serve the conftest order from: the west has one SKU-1 and
# the SKU-2, the east has SKU-1 only. PriorityThenSplit sends L1 half from each.
SPLIT_STOCK = {("SKU-1", "west"): 1, ("SKU-2", "west"): 1, ("SKU-1", "east"): 5}
PLENTY = {("SKU-1", "west"): 5, ("SKU-2", "west"): 5}


@dataclass
class Rig:
    """A shop and the outside things a test looks at: clock, gateway, carriers, notifier."""

    shop: Shop
    clock: ManualClock
    gateway: MemoryGateway
    carriers: dict[str, MemoryCarrier]
    notifier: MemoryNotifier

    @property
    def carrier(self) -> MemoryCarrier:
        return next(iter(self.carriers.values()))


def open_rig(
    url: str,
    *,
    stock: dict[tuple[str, str], int] | None = None,
    lost_rate: float = 0.0,
    failed_delivery_rate: float = 0.0,
    extra_carriers: Sequence[str] = (),
    carrier_choice: CarrierChoice | None = None,
    **shop_settings: Any,
) -> Rig:
    """A shop on ``url`` tracking stock at WEST and EAST (``stock``: (sku, location) ->
    units), with a :class:`MemoryGateway`, a :class:`MemoryCarrier` ("memcarrier", with
    ``lost_rate`` and ``failed_delivery_rate``), reliable ``extra_carriers`` and
    ``shop_settings`` for :class:`ShopSettings`."""
    clock = ManualClock(T0)
    gateway = MemoryGateway(seed=7, clock=clock)
    carriers = {
        "memcarrier": MemoryCarrier(
            clock=clock, seed=11, lost_rate=lost_rate, failed_delivery_rate=failed_delivery_rate
        )
    }
    for number, name in enumerate(extra_carriers):
        carriers[name] = MemoryCarrier(name, clock=clock, seed=100 + number)
    notifier = MemoryNotifier()
    shop = Shop.open(
        url,
        settings=ShopSettings(gateway_retry_delay=timedelta(0), **shop_settings),
        clock=clock,
        ids=SequentialIds(),
        gateway=gateway,
        notifier=notifier,
        carriers=list(carriers.values()),
        carrier_choice=carrier_choice,
    )
    try:
        shop.inventory.add_location(WEST)
        shop.inventory.add_location(EAST)
        for (sku, location), quantity in (stock if stock is not None else PLENTY).items():
            shop.inventory.receive(sku, location=location, quantity=quantity)
    except BaseException:
        shop.close()
        raise
    return Rig(shop, clock, gateway, carriers, notifier)


class Rigs:
    """Opens rigs on fresh stores (memory, or a new SQLite file each) and closes them all."""

    def __init__(self, tmp_path: Path) -> None:
        self._tmp_path = tmp_path
        self._numbers = itertools.count(1)
        self._opened: list[Shop] = []

    def open(self, store: str, **options: Any) -> Rig:
        """A rig (see :func:`open_rig`) on ``store``: "memory" or "sqlite"."""
        url = (
            "memory://"
            if store == "memory"
            else str(self._tmp_path / f"shop-{next(self._numbers)}.db")
        )
        rig = open_rig(url, **options)
        self._opened.append(rig.shop)
        return rig

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


# -- helpers -----------------------------------------------------------------------------------


def acknowledged(shop: Shop, command: PlaceOrder) -> Order:
    order = shop.orders.place(command)
    return shop.orders.acknowledge(order.id)


def packed(shop: Shop, shipment_id: str) -> Shipment:
    shop.fulfilment.pick(shipment_id)
    return shop.fulfilment.pack(shipment_id, [BOX])


def labelled(shop: Shop, shipment_id: str, carrier: str | None = None) -> Shipment:
    """Pick, pack and buy the shop's choice of label (or ``carrier``'s standard rate)."""
    packed(shop, shipment_id)
    if carrier is None:
        return shop.shipping.buy_label(shipment_id)
    (rate,) = [
        r
        for r in shop.shipping.quote(shipment_id)
        if r.carrier == carrier and r.service == "standard"
    ]
    return shop.shipping.buy_label(shipment_id, rate)


def shipped(shop: Shop, shipment_id: str, carrier: str | None = None) -> Shipment:
    labelled(shop, shipment_id, carrier)
    return shop.shipping.hand_over(shipment_id)


def payment_of(shop: Shop, order_id: str) -> Payment:
    (payment,) = shop.payments.for_order(order_id)
    return payment


def authorization(payment: Payment) -> str:
    assert payment.authorization_id is not None
    return payment.authorization_id


def kinds(notifier: MemoryNotifier, order_id: str) -> list[str]:
    return [n.kind for n in notifier.for_order(order_id)]


def notices(notifier: MemoryNotifier, order_id: str, kind: str) -> list[Notification]:
    return [n for n in notifier.for_order(order_id) if n.kind == kind]


def levels(shop: Shop, sku: str) -> dict[str, tuple[int, int, int | None]]:
    """location -> (on hand, reserved, available) of ``sku``."""
    return {
        lv.location: (lv.on_hand, lv.reserved, lv.available) for lv in shop.inventory.levels(sku)
    }


def reservations(shop: Shop, order_id: str) -> list[tuple[str, str, Reservation]]:
    return sorted(shop.inventory.reservations(order_id), key=lambda r: (r[0], r[1], r[2].line_id))


def assert_ledger_matches(shop: Shop, sku: str, location: str) -> None:
    item = shop.inventory.item(sku, location)
    assert item is not None
    assert item.on_hand >= 0
    assert sum(m.quantity for m in shop.inventory.movements(sku, location)) == item.on_hand


def assert_outbox_drained(shop: Shop) -> None:
    assert shop.store.outbox.pending() == 0
    assert list(shop.store.outbox.dead_letters()) == []


def poll_until(
    rig: Rig, done: Callable[[], bool], *, step: timedelta = timedelta(hours=3), days: int = 14
) -> None:
    """Advance the clock by ``step`` and poll until ``done()`` (or fail after ``days``)."""
    for _ in range(int(timedelta(days=days) / step)):
        if done():
            return
        rig.clock.advance(step)
        rig.shop.shipping.poll()
    raise AssertionError("the carrier's timeline never got there")


def shipment_view(shipment: Shipment) -> tuple[Any, ...]:
    """What a shipment is, by value (a Shipment compares by identity)."""
    return (
        shipment.id,
        shipment.state,
        shipment.location,
        shipment.units(),
        shipment.parcels,
        shipment.rate,
        shipment.tracking_number,
        shipment.handed_over_at,
        shipment.eta,
        shipment.claim,
        tuple(scan.id for scan in shipment.scans),
        shipment.version,
    )


def world(rig: Rig, order_id: str) -> tuple[Any, ...]:
    """Everything a refused command must leave as it was."""
    shop = rig.shop
    order = shop.orders.get(order_id)
    payment = payment_of(shop, order_id)
    return (
        order.state,
        order.version,
        order.cancelled_lines,
        [shipment_view(s) for s in shop.fulfilment.shipments(order_id)],
        reservations(shop, order_id),
        levels(shop, "SKU-1"),
        levels(shop, "SKU-2"),
        payment.state,
        payment.captured,
        payment.version,
        rig.gateway.captured(authorization(payment)),
        rig.gateway.is_voided(authorization(payment)),
        len(rig.notifier.sent),
    )


# -- 1. a split shipment across two locations --------------------------------------------------


def test_an_order_no_location_can_serve_alone_ships_from_two(
    rigs: Rigs, store: str, place_command: PlaceOrder
) -> None:
    rig = rigs.open(store, stock=SPLIT_STOCK)
    shop = rig.shop
    order = acknowledged(shop, place_command)
    assert levels(shop, "SKU-1") == {"east": (5, 1, 4), "west": (1, 1, 0)}

    shipments = shop.fulfilment.start(order.id)

    east, west = shipments
    assert [(s.location, s.units(), s.state) for s in shipments] == [
        ("east", {"L1": 1}, "pending"),
        ("west", {"L1": 1, "L2": 1}, "pending"),
    ]
    assert {s.order_id for s in shipments} == {order.id}
    assert shop.orders.get(order.id).state == OrderState.FULFILLING.value
    assert [shipment_view(s) for s in shop.fulfilment.shipments(order.id)] == [
        shipment_view(s) for s in shipments
    ]
    # each shipment holds its location's reserved units, allocated to it (no expiry then)
    assert [
        (sku, location, r.line_id, r.quantity, r.shipment_id, r.expires_at)
        for sku, location, r in reservations(shop, order.id)
    ] == [
        ("SKU-1", "east", "L1", 1, east.id, None),
        ("SKU-1", "west", "L1", 1, west.id, None),
        ("SKU-2", "west", "L2", 1, west.id, None),
    ]
    # allocation moves nothing: the units stay on hand and reserved until the hand-over
    assert levels(shop, "SKU-1") == {"east": (5, 1, 4), "west": (1, 1, 0)}
    assert levels(shop, "SKU-2") == {"west": (1, 1, 0)}

    # the pick list: by location, then bin (SKU-2's bin A-03 comes before SKU-1's B-07)
    expected = [
        PickListLine("east", "A-01", "SKU-1", 1, east.id, order.id, "L1"),
        PickListLine("west", "A-03", "SKU-2", 1, west.id, order.id, "L2"),
        PickListLine("west", "B-07", "SKU-1", 1, west.id, order.id, "L1"),
    ]
    assert shop.fulfilment.pick_list([west.id, east.id]) == expected
    assert shop.fulfilment.pick_list([east.id, west.id]) == expected
    assert shop.fulfilment.pick_list([west.id]) == expected[1:]


# -- 2. the full path: pick, pack, quote, label, hand over, capture, notify --------------------


def test_rates_are_quoted_cheapest_first_and_the_default_buys_the_cheapest_on_time(
    rigs: Rigs, store: str, place_command: PlaceOrder
) -> None:
    rig = rigs.open(store)
    shop = rig.shop
    order = acknowledged(shop, place_command)
    assert order.promised_delivery == PROMISED
    (shipment,) = shop.fulfilment.start(order.id)
    packed(shop, shipment.id)

    rates = shop.shipping.quote(shipment.id)

    # 2 started kilograms: economy 4.90 + 2 x 0.60, standard 6.90 + 2 x 0.90, express 14.90
    # + 2 x 1.80
    assert [(r.service, r.price, r.transit_days) for r in rates] == [
        ("economy", Money("6.10", EUR), 5),
        ("standard", Money("8.70", EUR), 3),
        ("express", Money("18.50", EUR), 1),
    ]
    assert [r.price.amount for r in rates] == sorted(r.price.amount for r in rates)

    bought = shop.shipping.buy_label(shipment.id)

    # economy would arrive Monday 12th, after the promised Friday 9th: standard is the
    # cheapest on time
    assert bought.state == "labelled"
    assert bought.rate is not None
    assert (bought.rate.service, bought.rate.price) == ("standard", Money("8.70", EUR))
    assert bought.label is not None
    assert bought.label.format == "application/pdf"
    assert bought.label.document.startswith(b"%PDF")
    assert rig.carrier.labels_bought() == 1

    again = shop.shipping.buy_label(shipment.id)

    assert again.tracking_number == bought.tracking_number
    assert again.rate == bought.rate
    assert rig.carrier.labels_bought() == 1
    assert shipment_view(shop.fulfilment.get(shipment.id)) == shipment_view(again)


def test_the_fastest_choice_buys_express(rigs: Rigs, place_command: PlaceOrder) -> None:
    rig = rigs.open("memory", carrier_choice=Fastest())
    shop = rig.shop
    order = acknowledged(shop, place_command)
    (shipment,) = shop.fulfilment.start(order.id)

    bought = labelled(shop, shipment.id)

    assert bought.rate is not None
    assert (bought.rate.service, bought.rate.transit_days) == ("express", 1)
    assert bought.rate.price == Money("18.50", EUR)


def test_a_split_order_ships_parcel_by_parcel_and_is_captured_share_by_share(
    rigs: Rigs, store: str, place_command: PlaceOrder
) -> None:
    rig = rigs.open(store, stock=SPLIT_STOCK)
    shop = rig.shop
    order = acknowledged(shop, place_command)
    east, west = shop.fulfilment.start(order.id)
    payment = payment_of(shop, order.id)
    auth = authorization(payment)
    east_label = labelled(shop, east.id)
    west_label = labelled(shop, west.id)
    assert rig.carrier.labels_bought() == 2
    assert east_label.tracking_number != west_label.tracking_number
    assert payment_of(shop, order.id).captured == ZERO

    # first parcel: L1's first unit (11.30) and, with the first capture, shipping (4.95)
    handed = shop.shipping.hand_over(east.id)

    assert handed.state == "in_transit"
    assert handed.handed_over_at == T0
    assert handed.eta == STANDARD_ETA
    assert levels(shop, "SKU-1") == {"east": (4, 0, 4), "west": (1, 1, 0)}
    (out,) = [
        m for m in shop.inventory.movements("SKU-1", "east") if m.kind is MovementKind.SHIPPED
    ]
    assert (out.quantity, out.order_id, out.line_id) == (-1, order.id, "L1")
    assert shop.orders.get(order.id).state == OrderState.FULFILLING.value
    payment = payment_of(shop, order.id)
    first_share = L1_FIRST_UNIT + SHIPPING
    assert first_share == Money("16.25", EUR)
    assert payment.captured == first_share == rig.gateway.captured(auth)
    assert shop.payments.status(order.id) is PaymentStatus.PARTIALLY_PAID
    (shipped_notice,) = notices(rig.notifier, order.id, "shipped")
    assert east_label.tracking_number is not None
    assert east_label.tracking_number in shipped_notice.body
    assert f"https://track.example/{east_label.tracking_number}" in shipped_notice.body
    assert shipped_notice.promised_delivery == STANDARD_ETA

    # second parcel: L1's second unit (11.29) and L2 (24.50); now every unit has left
    shop.shipping.hand_over(west.id)

    assert levels(shop, "SKU-1") == {"east": (4, 0, 4), "west": (0, 0, 0)}
    assert levels(shop, "SKU-2") == {"west": (0, 0, 0)}
    for sku, location in [("SKU-1", "east"), ("SKU-1", "west"), ("SKU-2", "west")]:
        assert_ledger_matches(shop, sku, location)
    shipped_out = [
        (m.sku, m.location, m.quantity, m.line_id)
        for sku, location in [("SKU-1", "west"), ("SKU-2", "west")]
        for m in shop.inventory.movements(sku, location)
        if m.kind is MovementKind.SHIPPED
    ]
    assert shipped_out == [("SKU-1", "west", -1, "L1"), ("SKU-2", "west", -1, "L2")]
    assert reservations(shop, order.id) == []
    assert shop.orders.get(order.id).state == OrderState.SHIPPED.value
    payment = payment_of(shop, order.id)
    second_share = L1_SECOND_UNIT + L2_TOTAL
    assert [(c.amount, dict(c.units), c.includes_shipping) for c in payment.captures] == [
        (first_share, {"L1": 1}, True),
        (second_share, {"L1": 1, "L2": 1}, False),
    ]
    assert payment.captures[0].reference == f"shipment:{east.id}"
    assert payment.captured == TOTAL == first_share + second_share
    assert rig.gateway.captured(auth) == TOTAL
    assert shop.payments.status(order.id) is PaymentStatus.PAID
    assert payment.state == "captured"
    # one "shipped" message per parcel, each with its own tracking number and link
    bodies = [n.body for n in notices(rig.notifier, order.id, "shipped")]
    assert len(bodies) == 2
    for body, label in zip(bodies, [east_label, west_label], strict=True):
        assert f"Tracking: {label.tracking_number} https://track.example/" in body
    assert_outbox_drained(shop)


def test_the_last_parcel_s_capture_is_recorded_under_its_shipment(
    rigs: Rigs, store: str, place_command: PlaceOrder
) -> None:
    # Regression (fixed in f4e9ecf): the last hand-over commits ShipmentHandedOver and
    # OrderShipped together; the cause must be dispatched first, or capture_on_shipment
    # takes the parcel's share under "order-shipped" instead of "shipment:<id>".
    rig = rigs.open(store, stock=SPLIT_STOCK)
    shop = rig.shop
    order = acknowledged(shop, place_command)
    east, west = shop.fulfilment.start(order.id)
    shipped(shop, east.id)
    shipped(shop, west.id)

    payment = payment_of(shop, order.id)

    assert payment.captured == TOTAL
    assert [c.reference for c in payment.captures] == [
        f"shipment:{east.id}",
        f"shipment:{west.id}",
    ]


# -- 3. a partial shipment, then the rest cancelled ---------------------------------------------


def test_a_partial_shipment_then_the_rest_cancelled_releases_stock_and_voids_the_rest(
    rigs: Rigs, store: str, place_command: PlaceOrder
) -> None:
    rig = rigs.open(store)
    shop = rig.shop
    order = acknowledged(shop, place_command)
    auth = authorization(payment_of(shop, order.id))

    (first,) = shop.fulfilment.start(order.id, line_ids=["L1"])

    assert first.units() == {"L1": 2}
    shipped(shop, first.id)
    assert shop.orders.get(order.id).state == OrderState.FULFILLING.value  # L2 still open
    assert payment_of(shop, order.id).captured == L1_TOTAL + SHIPPING
    assert levels(shop, "SKU-1") == {"west": (3, 0, 3)}
    assert levels(shop, "SKU-2") == {"west": (5, 1, 4)}
    assert not rig.gateway.is_voided(auth)

    after = shop.orders.cancel_lines(order.id, ["L2"], "out of stock")

    assert after.cancelled_lines == ("L2",)
    assert levels(shop, "SKU-2") == {"west": (5, 0, 5)}
    assert reservations(shop, order.id) == []
    assert shop.orders.get(order.id).state == OrderState.SHIPPED.value
    payment = payment_of(shop, order.id)
    assert payment.captured == L1_TOTAL + SHIPPING == Money("27.54", EUR)
    assert rig.gateway.captured(auth) == payment.captured
    assert rig.gateway.is_voided(auth)
    assert payment.voided == L2_TOTAL
    assert payment.refunded == ZERO
    assert shop.payments.status(order.id) is PaymentStatus.PAID
    assert_outbox_drained(shop)
    # the customer hears which items will not come, once
    [notice] = notices(rig.notifier, order.id, "lines_cancelled")
    assert "1 x Gadget" in notice.body
    assert "Widget" not in notice.body
    assert notice.key.startswith(f"lines_cancelled:{order.id}:")
    rendered = MessageTemplates().render(notice)
    assert "Gadget" in rendered.text
    assert rendered.html is not None
    assert "Gadget" in rendered.html
    assert "24.50" in rendered.text


# -- 4. tracking to the door --------------------------------------------------------------------


def test_polling_walks_a_parcel_to_the_door_and_the_customer_hears_each_step(
    rigs: Rigs, store: str, place_command: PlaceOrder
) -> None:
    rig = rigs.open(store)
    shop = rig.shop
    order = acknowledged(shop, place_command)
    (shipment,) = shop.fulfilment.start(order.id)
    shipped(shop, shipment.id)
    assert shop.shipping.expected_delivery(order.id) == STANDARD_ETA
    seen = []

    def state() -> str:
        current = shop.fulfilment.get(shipment.id).state
        if not seen or seen[-1] != current:
            seen.append(current)
        return current

    poll_until(rig, lambda: state() == "delivered")

    assert seen == ["in_transit", "out_for_delivery", "delivered"]
    done = shop.fulfilment.get(shipment.id)
    assert done.delivered_at == datetime(2026, 1, 8, 14, 0, tzinfo=timezone.utc)
    assert done.eta == STANDARD_ETA
    assert [s.status.value for s in done.scans] == ["in_transit", "out_for_delivery", "delivered"]
    assert shop.orders.get(order.id).state == OrderState.DELIVERED.value
    assert kinds(rig.notifier, order.id) == [
        "order_confirmation",
        "shipped",
        "out_for_delivery",
        "delivered",
    ]
    (today,) = notices(rig.notifier, order.id, "out_for_delivery")
    assert today.promised_delivery == STANDARD_ETA
    assert shop.shipping.poll() == 0  # nothing new: every scan was applied once
    assert_outbox_drained(shop)


def test_a_failed_delivery_is_retried_the_next_day_and_the_eta_follows(
    rigs: Rigs, store: str, place_command: PlaceOrder
) -> None:
    rig = rigs.open(store, failed_delivery_rate=1.0)
    shop = rig.shop
    order = acknowledged(shop, place_command)
    (shipment,) = shop.fulfilment.start(order.id)
    shipped(shop, shipment.id)
    seen: list[str] = []
    etas: list[date | None] = []

    def state() -> str:
        current = shop.fulfilment.get(shipment.id).state
        if not seen or seen[-1] != current:
            seen.append(current)
            etas.append(shop.shipping.expected_delivery(order.id))
        return current

    poll_until(rig, lambda: state() == "delivered", step=timedelta(hours=2))

    friday = date(2026, 1, 9)
    assert seen == [
        "in_transit",
        "out_for_delivery",
        "delivery_failed",
        "in_transit",
        "out_for_delivery",
        "delivered",
    ]
    assert etas[:5] == [STANDARD_ETA, STANDARD_ETA, friday, friday, friday]
    assert shop.fulfilment.get(shipment.id).eta == friday
    assert shop.orders.get(order.id).state == OrderState.DELIVERED.value
    assert kinds(rig.notifier, order.id) == [
        "order_confirmation",
        "shipped",
        "out_for_delivery",
        "delivery_exception",
        "out_for_delivery",
        "delivered",
    ]
    (exception,) = notices(rig.notifier, order.id, "delivery_exception")
    assert "nobody at home" in exception.body
    assert exception.promised_delivery == friday
    assert "Expected delivery: 2026-01-09" in exception.body
    assert_outbox_drained(shop)


def test_a_scan_stamped_a_little_ahead_of_the_shop_s_clock_takes_effect_at_once(
    rigs: Rigs, store: str, place_command: PlaceOrder
) -> None:
    # Regression (fixed in f4e9ecf): shipment events were dated by the carrier's scan and
    # the outbox makes an event due at its date, so a carrier clock a little ahead of the
    # shop's parked the hand-over (no capture, no message) and every later event of the
    # order behind it.
    rig = rigs.open(store)
    shop = rig.shop
    order = acknowledged(shop, place_command)
    (shipment,) = shop.fulfilment.start(order.id)
    label = labelled(shop, shipment.id)
    assert label.tracking_number is not None
    rig.clock.advance(timedelta(hours=2))
    ahead = TrackingEvent(
        id="skewed-1",
        tracking_number=label.tracking_number,
        status="in_transit",
        occurred_at=rig.clock.now() + timedelta(seconds=30),
        eta=STANDARD_ETA,
    )

    assert shop.shipping.apply_tracking_event(ahead) == "moved"

    assert shop.fulfilment.get(shipment.id).state == "in_transit"
    assert shop.orders.get(order.id).state == OrderState.SHIPPED.value
    assert kinds(rig.notifier, order.id) == ["order_confirmation", "shipped"]
    assert payment_of(shop, order.id).captured == TOTAL
    assert_outbox_drained(shop)


# -- 5. scans twice and out of order end as scans once in order ---------------------------------

SCANS = [  # (status, when, eta): a parcel whose first delivery attempt fails
    ("in_transit", datetime(2026, 1, 5, 11, 0, tzinfo=timezone.utc), STANDARD_ETA),
    ("out_for_delivery", datetime(2026, 1, 8, 8, 0, tzinfo=timezone.utc), STANDARD_ETA),
    ("delivery_failed", datetime(2026, 1, 8, 14, 0, tzinfo=timezone.utc), date(2026, 1, 9)),
    ("in_transit", datetime(2026, 1, 8, 18, 0, tzinfo=timezone.utc), date(2026, 1, 9)),
    ("out_for_delivery", datetime(2026, 1, 9, 8, 0, tzinfo=timezone.utc), date(2026, 1, 9)),
    ("delivered", datetime(2026, 1, 9, 14, 0, tzinfo=timezone.utc), date(2026, 1, 9)),
]

AFTER_SCANS = datetime(2026, 1, 10, 9, 0, tzinfo=timezone.utc)


def scans_for(tracking_number: str) -> list[TrackingEvent]:
    return [
        TrackingEvent(
            id=f"scan-{number}",
            tracking_number=tracking_number,
            status=status,
            occurred_at=when,
            eta=eta,
            description=f"{status} scan",
        )
        for number, (status, when, eta) in enumerate(SCANS)
    ]


def apply_scans(
    command: PlaceOrder, order_of_arrival: Sequence[int], *, hand_over_first: bool
) -> dict[str, Any]:
    """On a fresh memory shop: one labelled shipment of ``command`` (handed over by the
    warehouse, or left for the scans to hand over), then the scans in ``order_of_arrival``
    (indexes into SCANS, repeats allowed). Returns what the shipment and order end as."""
    rig = open_rig("memory://")
    try:
        shop = rig.shop
        order = acknowledged(shop, command)
        (shipment,) = shop.fulfilment.start(order.id)
        label = labelled(shop, shipment.id)
        assert label.tracking_number is not None
        if hand_over_first:
            shop.shipping.hand_over(shipment.id)
        rig.clock.set(AFTER_SCANS)  # the webhooks arrive late, after every scan happened
        scans = scans_for(label.tracking_number)
        applied: set[int] = set()
        for index in order_of_arrival:
            outcome = shop.shipping.apply_tracking_event(scans[index])
            assert (outcome == "duplicate") == (index in applied), (index, outcome)
            applied.add(index)
        final = shop.fulfilment.get(shipment.id)
        return {
            "state": final.state,
            "eta": final.eta,
            "handed_over_at": final.handed_over_at,
            "delivered_at": final.delivered_at,
            "problem": final.problem,
            "scans": sorted(scan.id for scan in final.scans),
            "order": shop.orders.get(order.id).state,
            "expected_delivery": shop.shipping.expected_delivery(order.id),
            "captured": payment_of(shop, order.id).captured,
            "stock": (levels(shop, "SKU-1"), levels(shop, "SKU-2")),
            "outbox": (shop.store.outbox.pending(), len(shop.store.outbox.dead_letters())),
        }
    finally:
        rig.shop.close()


IN_ORDER = list(range(len(SCANS)))
SHAPE = ["state", "eta", "handed_over_at", "delivered_at", "scans", "order"]


def test_scans_once_in_order_deliver_the_parcel(place_command: PlaceOrder) -> None:
    for hand_over_first in (True, False):
        result = apply_scans(place_command, IN_ORDER, hand_over_first=hand_over_first)
        assert result["state"] == "delivered"
        assert result["order"] == OrderState.DELIVERED.value
        assert result["eta"] == date(2026, 1, 9)
        assert result["delivered_at"] == SCANS[-1][1]
        assert result["handed_over_at"] == (T0 if hand_over_first else SCANS[0][1])
        assert result["captured"] == TOTAL
        assert result["stock"] == ({"west": (3, 0, 3)}, {"west": (4, 0, 4)})
        assert result["outbox"] == (0, 0)


ARRIVALS = st.lists(st.integers(0, len(SCANS) - 1), max_size=len(SCANS)).flatmap(
    lambda repeats: st.permutations([*IN_ORDER, *repeats])
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(arrival=ARRIVALS, hand_over_first=st.booleans())
def test_scans_twice_and_out_of_order_end_as_once_in_order(
    place_command: PlaceOrder, arrival: list[int], hand_over_first: bool
) -> None:
    # place_command is a frozen value: sharing it between examples is safe
    expected = apply_scans(place_command, IN_ORDER, hand_over_first=hand_over_first)

    result = apply_scans(place_command, arrival, hand_over_first=hand_over_first)

    for key in [*SHAPE, "problem", "expected_delivery", "captured", "stock", "outbox"]:
        assert result[key] == expected[key], key


@pytest.mark.parametrize(
    "arrival",
    [[5, 4, 3, 2, 1, 0], [2, 5, 0, 1, 3, 4], [5, 0, 1, 2, 3, 4, 5, 0]],
    ids=["reversed", "failure-first", "delivered-first"],
)
def test_a_hand_over_by_scan_is_dated_by_the_pick_up_scan_whatever_the_order(
    place_command: PlaceOrder, arrival: list[int]
) -> None:
    # Regression (fixed in f4e9ecf): a hand-over by scan was dated by the latest scan
    # applied, so `handed_over_at` was the delivery time when the delivered scan came first.
    expected = apply_scans(place_command, IN_ORDER, hand_over_first=False)

    result = apply_scans(place_command, arrival, hand_over_first=False)

    assert {k: result[k] for k in SHAPE} == {k: expected[k] for k in SHAPE}


def test_a_delivered_parcel_keeps_no_failure_note_whatever_the_order_of_scans(
    place_command: PlaceOrder,
) -> None:
    # Regression (fixed in f4e9ecf): `problem` was set by a failed attempt and never
    # cleared, so in order the delivered parcel kept it, delivered-first it had none.
    in_order = apply_scans(place_command, IN_ORDER, hand_over_first=True)
    delivered_first = apply_scans(place_command, [5, 0, 1, 2, 3, 4], hand_over_first=True)

    assert in_order["state"] == delivered_first["state"] == "delivered"
    assert in_order["problem"] == delivered_first["problem"]


# -- 6. lost parcels and claims -----------------------------------------------------------------


def lose(rig: Rig, order: Order) -> Shipment:
    """Start the whole order and send it with the lossy carrier until it is reported lost."""
    shop = rig.shop
    (shipment,) = shop.fulfilment.start(order.id)
    shipped(shop, shipment.id, carrier="memcarrier")
    poll_until(rig, lambda: shop.fulfilment.get(shipment.id).state == "lost")
    return shop.fulfilment.get(shipment.id)


def test_a_lost_parcel_is_reshipped_from_stock_and_delivered(
    rigs: Rigs, store: str, place_command: PlaceOrder
) -> None:
    rig = rigs.open(store, lost_rate=1.0, extra_carriers=["reliable"])
    shop = rig.shop
    order = acknowledged(shop, place_command)
    auth = authorization(payment_of(shop, order.id))
    lost = lose(rig, order)
    assert shop.orders.get(order.id).state == OrderState.SHIPPED.value
    assert "delivery_exception" in kinds(rig.notifier, order.id)
    assert levels(shop, "SKU-1") == {"west": (3, 0, 3)}
    assert payment_of(shop, order.id).captured == TOTAL

    replacement = shop.shipping.resolve_claim(lost.id, "reship")

    assert replacement.id != lost.id
    assert (replacement.state, replacement.location) == ("pending", "west")
    assert replacement.units() == lost.units() == {"L1": 2, "L2": 1}
    assert shop.fulfilment.get(lost.id).claim == f"reship:{replacement.id}"
    assert [
        (sku, location, r.line_id, r.quantity, r.shipment_id)
        for sku, location, r in reservations(shop, order.id)
    ] == [
        ("SKU-1", "west", "L1", 2, replacement.id),
        ("SKU-2", "west", "L2", 1, replacement.id),
    ]
    assert levels(shop, "SKU-1") == {"west": (3, 2, 1)}
    assert levels(shop, "SKU-2") == {"west": (4, 1, 3)}

    shipped(shop, replacement.id, carrier="reliable")
    poll_until(rig, lambda: shop.orders.get(order.id).state == OrderState.DELIVERED.value)

    assert [s.state for s in shop.fulfilment.shipments(order.id)] == ["lost", "delivered"]
    assert levels(shop, "SKU-1") == {"west": (1, 0, 1)}
    assert levels(shop, "SKU-2") == {"west": (3, 0, 3)}
    assert_ledger_matches(shop, "SKU-1", "west")
    payment = payment_of(shop, order.id)
    assert payment.captured == TOTAL == rig.gateway.captured(auth)  # the reship is free
    assert payment.refunded == ZERO
    assert_outbox_drained(shop)


def test_a_reship_handed_over_before_the_order_has_shipped_captures_nothing_more(
    rigs: Rigs, store: str, place_command: PlaceOrder
) -> None:
    # Regression: capture_shipment asks to capture the share of the shipment's units
    # (src/orderkit/service/payments.py:284-290) without leaving out the units already charged;
    # for a reship those units were paid with the lost parcel, so lines_share raises
    # InvalidField ("line L1 has 0 unit(s) left to charge",
    # src/orderkit/domain/payment.py:609-614) on every attempt while the payment is still open
    # (L2 not shipped yet), and the handler ends in a dead letter, holding back the order's
    # later events meanwhile.
    rig = rigs.open(store, lost_rate=1.0, extra_carriers=["reliable"])
    shop = rig.shop
    order = acknowledged(shop, place_command)
    auth = authorization(payment_of(shop, order.id))
    (first,) = shop.fulfilment.start(order.id, line_ids=["L1"])
    shipped(shop, first.id, carrier="memcarrier")
    poll_until(rig, lambda: shop.fulfilment.get(first.id).state == "lost")
    replacement = shop.shipping.resolve_claim(first.id, "reship")

    shipped(shop, replacement.id, carrier="reliable")

    assert payment_of(shop, order.id).captured == L1_TOTAL + SHIPPING
    assert_outbox_drained(shop)
    (rest,) = shop.fulfilment.start(order.id)
    shipped(shop, rest.id, carrier="reliable")
    assert payment_of(shop, order.id).captured == TOTAL == rig.gateway.captured(auth)
    assert_outbox_drained(shop)


def test_a_replacement_parcel_is_not_charged_for_units_still_waiting_to_ship(
    rigs: Rigs, store: str, place_command: PlaceOrder
) -> None:
    # Regression: L1 (2 units) is split: one unit in the east parcel, one in the west parcel.
    # The east parcel is lost (its unit paid: 11.30 + shipping) and reshipped. capture_shipment
    # decides what a parcel still owes per *line*, not per parcel
    # (src/orderkit/service/payments.py:308-314: min(units, line quantity - charged)), so the
    # replacement's L1 unit is charged again (11.29) while the west parcel, whose unit that is,
    # has not left: money is taken before the goods ship, under the wrong parcel. Found by
    # tests/test_shipping_stateful.py.
    rig = rigs.open(store, lost_rate=1.0, extra_carriers=["reliable"], stock=SPLIT_STOCK)
    shop = rig.shop
    order = acknowledged(shop, place_command)
    east, west = shop.fulfilment.start(order.id)
    shipped(shop, east.id, carrier="memcarrier")
    poll_until(rig, lambda: shop.fulfilment.get(east.id).state == "lost")
    replacement = shop.shipping.resolve_claim(east.id, "reship")
    assert (replacement.location, replacement.units()) == ("east", {"L1": 1})

    shipped(shop, replacement.id, carrier="reliable")

    assert shop.fulfilment.get(west.id).state == "pending"
    assert payment_of(shop, order.id).captured == L1_FIRST_UNIT + SHIPPING
    shipped(shop, west.id, carrier="reliable")
    payment = payment_of(shop, order.id)
    assert payment.captured == TOTAL
    west_capture = [c for c in payment.captures if c.reference == f"shipment:{west.id}"]
    assert [c.amount for c in west_capture] == [L1_SECOND_UNIT + L2_TOTAL]


def test_refund_claims_on_parts_of_a_line_pay_back_what_the_units_cost(
    rigs: Rigs, store: str, place_command: PlaceOrder
) -> None:
    # Regression: L1 (22.59) is charged 11.30 with the east parcel and 11.29 with the west one.
    # Both are lost and refunded: refund_claim prices each claim's units as the line's first
    # ones (lines_share(..., already={}), src/orderkit/service/payments.py:366-367), so L1 is
    # refunded 11.30 twice, 22.60 for units that cost 22.59. Found by
    # tests/test_shipping_stateful.py (refunded 47.11 for units charged 47.10).
    rig = rigs.open(store, lost_rate=1.0, stock=SPLIT_STOCK)
    shop = rig.shop
    order = acknowledged(shop, place_command)
    auth = authorization(payment_of(shop, order.id))
    east, west = shop.fulfilment.start(order.id)
    shipped(shop, east.id)
    shipped(shop, west.id)
    poll_until(rig, lambda: all(s.state == "lost" for s in shop.fulfilment.shipments(order.id)))

    shop.shipping.resolve_claim(east.id, "refund")
    shop.shipping.resolve_claim(west.id, "refund")

    payment = payment_of(shop, order.id)
    assert payment.captured == TOTAL
    assert payment.refunded == L1_TOTAL + L2_TOTAL == rig.gateway.refunded(auth)
    assert shop.orders.get(order.id).state == OrderState.DELIVERED.value  # claims settled


def test_a_lost_parcel_refunded_pays_back_its_units_share(
    rigs: Rigs, store: str, place_command: PlaceOrder
) -> None:
    rig = rigs.open(store, lost_rate=1.0)
    shop = rig.shop
    order = acknowledged(shop, place_command)
    auth = authorization(payment_of(shop, order.id))
    lost = lose(rig, order)
    before = levels(shop, "SKU-1"), levels(shop, "SKU-2")

    settled = shop.shipping.resolve_claim(lost.id, "refund")

    assert (settled.id, settled.claim) == (lost.id, "refund")
    share = L1_TOTAL + L2_TOTAL  # the units' share; the shipping charge is not refunded
    payment = payment_of(shop, order.id)
    assert payment.refunded == share == rig.gateway.refunded(auth)
    assert payment.captured == TOTAL == rig.gateway.captured(auth)
    assert shop.payments.status(order.id) is PaymentStatus.PARTIALLY_REFUNDED
    assert (levels(shop, "SKU-1"), levels(shop, "SKU-2")) == before  # nothing reshipped
    assert len(shop.fulfilment.shipments(order.id)) == 1
    assert shop.orders.get(order.id).state == OrderState.DELIVERED.value  # claim settled
    with pytest.raises(FulfilmentError):
        shop.shipping.resolve_claim(lost.id, "refund")
    assert payment_of(shop, order.id).refunded == share
    assert_outbox_drained(shop)


def test_the_lost_parcel_notice_gives_the_date_the_shop_expects(
    rigs: Rigs, place_command: PlaceOrder
) -> None:
    # Regression (fixed in f4e9ecf): the notices counted lost parcels' old ETAs, so the
    # "lost" message promised 2026-01-08 while expected_delivery said 2026-01-09.
    rig = rigs.open("memory", lost_rate=1.0)
    order = acknowledged(rig.shop, place_command)
    lose(rig, order)

    (lost_notice,) = notices(rig.notifier, order.id, "delivery_exception")

    assert "lost" in lost_notice.body
    assert lost_notice.promised_delivery == rig.shop.shipping.expected_delivery(order.id)


def test_a_reship_from_a_location_still_holding_a_parcel_of_the_line_ships_each_once(
    rigs: Rigs, store: str, place_command: PlaceOrder
) -> None:
    # Regression: reservations are kept per (order, line) and location, so a reship at a
    # location where a parcel of the same line still waits would merge with it (and the
    # waiting parcel would then ship the replacement's units too). The reship is refused
    # until that parcel has left, and then ships each once.
    rig = rigs.open(store, lost_rate=1.0, extra_carriers=["reliable"], stock=SPLIT_STOCK)
    shop = rig.shop
    order = acknowledged(shop, place_command)
    east, west = shop.fulfilment.start(order.id)
    assert (east.units(), west.units()) == ({"L1": 1}, {"L1": 1, "L2": 1})
    shipped(shop, west.id, carrier="memcarrier")
    poll_until(rig, lambda: shop.fulfilment.get(west.id).state == "lost")
    # the west has nothing left; with one SKU-2 the east can send both lost units again
    shop.inventory.receive("SKU-2", location="east", quantity=1)

    before = reservations(shop, order.id)
    with pytest.raises(FulfilmentError, match="hand it over before reshipping"):
        shop.shipping.resolve_claim(west.id, "reship")
    assert reservations(shop, order.id) == before
    assert shop.fulfilment.get(west.id).claim is None

    shipped(shop, east.id, carrier="reliable")
    assert levels(shop, "SKU-1")["east"] == (4, 0, 4)
    replacement = shop.shipping.resolve_claim(west.id, "reship")

    assert (replacement.location, replacement.units()) == ("east", {"L1": 1, "L2": 1})
    allocated: dict[str, dict[str, int]] = {}
    for _, _, r in reservations(shop, order.id):
        assert r.shipment_id is not None
        allocated.setdefault(r.shipment_id, {})[r.line_id] = r.quantity
    assert allocated == {replacement.id: {"L1": 1, "L2": 1}}
    shipped(shop, replacement.id, carrier="reliable")
    assert levels(shop, "SKU-1")["east"] == (3, 0, 3)


# -- 7. cancellation and shipments --------------------------------------------------------------


def test_cancelling_an_order_cancels_its_shipments_and_voids_the_label(
    rigs: Rigs, store: str, place_command: PlaceOrder
) -> None:
    rig = rigs.open(store, stock=SPLIT_STOCK)
    shop = rig.shop
    order = acknowledged(shop, place_command)
    auth = authorization(payment_of(shop, order.id))
    east, west = shop.fulfilment.start(order.id)
    label = labelled(shop, east.id)
    assert label.tracking_number is not None
    assert shop.fulfilment.get(west.id).state == "pending"

    cancelled = shop.orders.cancel(order.id, "customer changed their mind")

    assert cancelled.state == OrderState.CANCELLED.value
    after = shop.fulfilment.shipments(order.id)
    assert [(s.id, s.state) for s in after] == [(east.id, "cancelled"), (west.id, "cancelled")]
    assert rig.carrier.is_cancelled(label.tracking_number)
    assert reservations(shop, order.id) == []
    assert levels(shop, "SKU-1") == {"east": (5, 0, 5), "west": (1, 0, 1)}
    assert levels(shop, "SKU-2") == {"west": (1, 0, 1)}
    assert rig.gateway.is_voided(auth)
    assert rig.gateway.captured(auth) == ZERO
    assert shop.shipping.poll() == 0  # a voided label has no scans
    with pytest.raises(InvalidTransition):
        shop.shipping.hand_over(east.id)
    assert_outbox_drained(shop)


def test_an_order_with_a_parcel_on_its_way_cannot_be_cancelled(
    rigs: Rigs, store: str, place_command: PlaceOrder
) -> None:
    rig = rigs.open(store, stock=SPLIT_STOCK)
    shop = rig.shop
    order = acknowledged(shop, place_command)
    east, west = shop.fulfilment.start(order.id)
    shipped(shop, east.id)
    west_label = labelled(shop, west.id)
    assert west_label.tracking_number is not None
    before = world(rig, order.id)

    with pytest.raises(FulfilmentError, match="cancel_lines"):
        shop.orders.cancel(order.id, "too late")

    assert world(rig, order.id) == before
    assert not rig.carrier.is_cancelled(west_label.tracking_number)
    assert_outbox_drained(shop)


def test_an_order_whose_labelled_parcel_the_carrier_took_is_not_cancelled(
    rigs: Rigs, store: str, place_command: PlaceOrder
) -> None:
    # Regression: the carrier picked the labelled parcel up (its first scan, 11:00) but the shop
    # has not heard yet (webhook late; poll skips labelled shipments since c7217ae). cancel()
    # checks only the shipments' stored states (OrderService.cancel,
    # src/orderkit/service/orders.py:193), so it cancels the order, releases the stock that has
    # left and voids the payment; the void_label handler (Shop._void_label,
    # src/orderkit/shop.py:200) then gets CarrierError ("the parcel was scanned") on every
    # attempt and ends in a dead letter, and the parcel travels for free.
    rig = rigs.open(store)
    shop = rig.shop
    order = acknowledged(shop, place_command)
    auth = authorization(payment_of(shop, order.id))
    (shipment,) = shop.fulfilment.start(order.id)
    label = labelled(shop, shipment.id)
    assert label.tracking_number is not None
    rig.clock.advance(timedelta(hours=3))
    assert [s.status.value for s in rig.carrier.track(label.tracking_number)] == ["in_transit"]

    with pytest.raises(FulfilmentError):
        shop.orders.cancel(order.id, "too late")

    # the carrier's scans were applied: the parcel is on its way, so the order has shipped
    assert shop.orders.get(order.id).state == OrderState.SHIPPED.value
    assert shop.fulfilment.get(shipment.id).state == "in_transit"
    assert not rig.gateway.is_voided(auth)
    for _ in range(8):  # let the handlers retry, if any failed
        rig.clock.advance(timedelta(hours=1))
        shop.events.run_pending()
    assert_outbox_drained(shop)


def test_a_refused_cancellation_voids_no_label_of_a_parcel_still_waiting(
    rigs: Rigs, store: str, place_command: PlaceOrder
) -> None:
    # Regression: ShippingService.stop_labelled voids the order's labels one by one and stops at
    # the first the carrier refuses (src/orderkit/service/shipping.py:258-274): here the east
    # label (not yet scanned) is voided, then the west one is found scanned and the cancellation
    # is refused. The east shipment stays "labelled" with a dead label: handed over, the carrier
    # never reports it (a cancelled label has no scans), so it never arrives and the order stays
    # "shipped" for good.
    rig = rigs.open(store, stock=SPLIT_STOCK)
    shop = rig.shop
    order = acknowledged(shop, place_command)
    east, west = shop.fulfilment.start(order.id)
    labelled(shop, west.id)
    rig.clock.advance(timedelta(hours=3))  # the carrier took the west parcel at 11:00
    east_label = labelled(shop, east.id)
    assert east_label.tracking_number is not None

    with pytest.raises(FulfilmentError):
        shop.orders.cancel(order.id, "too late")

    assert shop.fulfilment.get(west.id).state == "in_transit"
    assert shop.fulfilment.get(east.id).state == "labelled"
    assert not rig.carrier.is_cancelled(east_label.tracking_number)
    shop.shipping.hand_over(east.id)
    poll_until(rig, lambda: shop.orders.get(order.id).state == OrderState.DELIVERED.value)


def test_a_line_in_a_shipment_cannot_be_cancelled(
    rigs: Rigs, store: str, place_command: PlaceOrder
) -> None:
    rig = rigs.open(store)
    shop = rig.shop
    order = acknowledged(shop, place_command)
    (shipment,) = shop.fulfilment.start(order.id, line_ids=["L1"])
    before = world(rig, order.id)

    with pytest.raises(FulfilmentError, match="L1"):
        shop.orders.cancel_lines(order.id, ["L1"], "changed mind")

    assert world(rig, order.id) == before
    shipped(shop, shipment.id)
    with pytest.raises(FulfilmentError, match="L1"):
        shop.orders.cancel_lines(order.id, ["L1"], "changed mind")


# -- 8. bad input -------------------------------------------------------------------------------


@pytest.fixture
def picked(rigs: Rigs, store: str, place_command: PlaceOrder) -> tuple[Rig, Shipment]:
    rig = rigs.open(store)
    order = acknowledged(rig.shop, place_command)
    (shipment,) = rig.shop.fulfilment.start(order.id)
    return rig, rig.shop.fulfilment.pick(shipment.id)


@pytest.mark.parametrize(
    "parcels",
    [[], (), "box", [{"weight_grams": 100}], [BOX, "box"], [None]],
    ids=["empty-list", "empty-tuple", "a-string", "a-dict", "one-bad-of-two", "none"],
)
def test_packing_needs_parcels(picked: tuple[Rig, Shipment], parcels: Any) -> None:
    rig, shipment = picked
    before = world(rig, shipment.order_id)

    with pytest.raises(InvalidField) as refused:
        rig.shop.fulfilment.pack(shipment.id, parcels)

    assert refused.value.field == "parcels"
    assert world(rig, shipment.order_id) == before
    assert rig.shop.fulfilment.get(shipment.id).state == "picked"


def test_a_shipment_is_quoted_only_once_packed(picked: tuple[Rig, Shipment]) -> None:
    rig, shipment = picked

    with pytest.raises(FulfilmentError, match="pack"):
        rig.shop.shipping.quote(shipment.id)
    with pytest.raises(FulfilmentError, match="pack"):
        rig.shop.shipping.buy_label(shipment.id)

    assert rig.carrier.labels_bought() == 0


def test_a_rate_the_carrier_never_quoted_buys_nothing(picked: tuple[Rig, Shipment]) -> None:
    rig, shipment = picked
    shop = rig.shop
    shop.fulfilment.pack(shipment.id, [BOX])
    (quoted, *_) = shop.shipping.quote(shipment.id)
    before = world(rig, shipment.order_id)

    with pytest.raises(CarrierError, match="no carrier named"):
        shop.shipping.buy_label(shipment.id, attrs.evolve(quoted, carrier="elsewhere"))
    with pytest.raises(InvalidField):
        shop.shipping.buy_label(shipment.id, "economy")  # type: ignore[arg-type]
    assert world(rig, shipment.order_id) == before  # refused before anything was kept
    for forged in [
        attrs.evolve(quoted, rate_id="rate_made_up"),
        attrs.evolve(quoted, price=Money("0.01", EUR)),
    ]:
        with pytest.raises(CarrierError):
            shop.shipping.buy_label(shipment.id, forged)
        # the chosen rate is kept while the carrier is asked, and dropped on its refusal
        assert shop.fulfilment.get(shipment.id).rate is None

    assert rig.carrier.labels_bought() == 0
    assert shop.fulfilment.get(shipment.id).state == "packed"


def test_a_scan_for_an_unknown_tracking_number_is_not_found(
    picked: tuple[Rig, Shipment],
) -> None:
    rig, shipment = picked
    before = world(rig, shipment.order_id)
    (scan, *_) = scans_for("MC0000000000")

    with pytest.raises(ShipmentNotFound, match="MC0000000000"):
        rig.shop.shipping.apply_tracking_event(scan)
    with pytest.raises(InvalidField):
        rig.shop.shipping.apply_tracking_event({"id": "x"})  # type: ignore[arg-type]

    assert world(rig, shipment.order_id) == before


@pytest.mark.parametrize(
    ("change", "error", "field"),
    [
        ({"signature": "abc"}, UnknownField, "signature"),
        ({"status": "teleported"}, InvalidPayload, "status"),
        ({"occurred_at": "2026-01-05T11:00:00"}, InvalidPayload, "occurred_at"),
        ({"occurred_at": 1767610800}, InvalidPayload, "occurred_at"),
        ({"eta": "soon"}, InvalidPayload, "eta"),
    ],
    ids=["unknown-key", "bad-status", "naive-time", "epoch-number", "bad-eta"],
)
def test_a_malformed_tracking_webhook_is_refused(
    picked: tuple[Rig, Shipment], change: dict[str, Any], error: type[Exception], field: str
) -> None:
    rig, shipment = picked
    shop = rig.shop
    label = labelled_from_picked(shop, shipment.id)
    assert label.tracking_number is not None
    (scan, *_) = scans_for(label.tracking_number)
    document = {**json.loads(dumps(scan)), **change}
    before = world(rig, shipment.order_id)

    with pytest.raises(error) as refused:
        shop.shipping.apply_tracking_event_json(json.dumps(document))

    assert isinstance(refused.value, InvalidPayload)
    assert field in str(refused.value)
    assert world(rig, shipment.order_id) == before
    # the well-formed document is accepted
    assert shop.shipping.apply_tracking_event_json(dumps(scan)) == "moved"
    assert shop.fulfilment.get(shipment.id).state == "in_transit"


def labelled_from_picked(shop: Shop, shipment_id: str) -> Shipment:
    shop.fulfilment.pack(shipment_id, [BOX])
    return shop.shipping.buy_label(shipment_id)


def test_a_placed_order_cannot_start_fulfilment(
    rigs: Rigs, store: str, place_command: PlaceOrder
) -> None:
    rig = rigs.open(store)
    shop = rig.shop
    order = shop.orders.place(place_command)
    before = world(rig, order.id)

    with pytest.raises(InvalidTransition) as refused:
        shop.fulfilment.start(order.id)

    assert not isinstance(refused.value, TransitionBlocked)
    assert world(rig, order.id) == before
    assert shop.fulfilment.shipments(order.id) == []


def test_an_order_on_hold_cannot_start_fulfilment(
    rigs: Rigs, store: str, place_command: PlaceOrder
) -> None:
    rig = rigs.open(store)
    shop = rig.shop
    order = acknowledged(shop, place_command)
    shop.orders.hold(order.id, "manual_review")
    before = world(rig, order.id)

    with pytest.raises(TransitionBlocked):
        shop.fulfilment.start(order.id)

    assert world(rig, order.id) == before
    shop.orders.release(order.id, "manual_review")
    assert len(shop.fulfilment.start(order.id)) == 1


def test_lines_start_once(rigs: Rigs, store: str, place_command: PlaceOrder) -> None:
    rig = rigs.open(store)
    shop = rig.shop
    order = acknowledged(shop, place_command)
    (first,) = shop.fulfilment.start(order.id, line_ids=["L1"])
    before = world(rig, order.id)

    for line_ids in (["L1"], ["L1", "L2"], ["L2", "L1", "L1"]):
        with pytest.raises(FulfilmentError, match="L1"):
            shop.fulfilment.start(order.id, line_ids=line_ids)
    with pytest.raises(InvalidField):
        shop.fulfilment.start(order.id, line_ids=["L9"])

    assert world(rig, order.id) == before
    (second,) = shop.fulfilment.start(order.id)  # the rest: L2 only
    assert (first.units(), second.units()) == ({"L1": 2}, {"L2": 1})
    with pytest.raises(FulfilmentError, match="no line left"):
        shop.fulfilment.start(order.id)
    with pytest.raises(FulfilmentError, match="L2"):
        shop.fulfilment.start(order.id, line_ids=["L2"])
