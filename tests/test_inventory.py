"""Inventory as a shop uses it: ``shop.inventory`` and placement / cancellation through
``shop.orders``, on the memory and the SQLite store."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import pg
from orderkit import (
    Address,
    Customer,
    InvalidField,
    InvalidQuantity,
    InvalidSettings,
    LineItem,
    Location,
    Money,
    MovementKind,
    OrderPlaced,
    OutOfStock,
    PlaceOrder,
    Reservation,
    ReservationNotFound,
    Shop,
    ShopSettings,
    StockLevel,
    UnknownLocation,
    UnknownSku,
    ValueTooLong,
)
from orderkit.adapters.memory import ManualClock, MemoryStore, SequentialIds
from orderkit.domain.inventory import StockDemand, StockPick
from orderkit.ports import Store
from orderkit.shop import open_store as open_store_url

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
DAY = timedelta(hours=24)  # the default reservation time

# Ids deliberately out of priority order: sourcing must go by priority, not by id.
WEST = Location("west", "West warehouse", priority=1)
EAST = Location("east", "East warehouse", priority=2)
NORTH = Location("north", "North store", priority=3)

OpenShop = Callable[..., Shop]


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    def make() -> Store:
        if request.param == "memory":
            return MemoryStore()
        return open_store_url(pg.store_url(request.param, tmp_path / "shop.db"))

    return make


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def open_shop(make_store: Callable[[], Store], clock: ManualClock) -> Iterator[OpenShop]:
    """Opens a shop on a fresh store with WEST, EAST and NORTH; ``settings`` as keywords."""
    shops: list[Shop] = []

    def open_(*, locations: Sequence[Location] = (WEST, EAST, NORTH), **settings: Any) -> Shop:
        shop = Shop(
            make_store(), settings=ShopSettings(**settings), clock=clock, ids=SequentialIds()
        )
        shops.append(shop)
        for location in locations:
            shop.inventory.add_location(location)
        return shop

    yield open_
    for shop in shops:
        shop.close()


@pytest.fixture
def shop(open_shop: OpenShop) -> Shop:
    return open_shop()


def command(*lines: tuple[str, int]) -> PlaceOrder:
    """An order with one line per (sku, quantity), line ids L1, L2, ..."""
    return PlaceOrder(
        customer=Customer(id="cust-ada", name="Ada Lovelace", email="ada@example.com"),
        shipping_address=Address(
            recipient="Ada Lovelace",
            line1="12 Analytical Row",
            city="London",
            postal_code="N1 9GU",
            country="GB",
        ),
        lines=[
            LineItem(f"L{n}", sku, f"Item {sku}", quantity, Money("5.00", "EUR"))
            for n, (sku, quantity) in enumerate(lines, start=1)
        ],
        payment_token="tok_visa_1a2b3c",
    )


def stock(shop: Shop, quantities: Mapping[tuple[str, str], int]) -> None:
    for (sku, location), quantity in quantities.items():
        shop.inventory.receive(sku, location=location, quantity=quantity)


def held(shop: Shop, order_id: str) -> list[tuple[str, str, str, int]]:
    """(sku, location, line, quantity) of each reservation the order holds."""
    return [(s, loc, r.line_id, r.quantity) for s, loc, r in shop.inventory.reservations(order_id)]


def level(shop: Shop, sku: str, location: str) -> StockLevel:
    (found,) = [lv for lv in shop.inventory.levels(sku) if lv.location == location]
    return found


def assert_ledger_matches(shop: Shop, *skus: str) -> None:
    for sku in skus:
        for lv in shop.inventory.levels(sku):
            movements = shop.inventory.movements(sku, lv.location)
            assert sum(m.quantity for m in movements) == lv.on_hand >= 0


def assert_nothing_placed(shop: Shop, placed: list[OrderPlaced], *skus: str) -> None:
    assert list(shop.orders.list()) == []
    assert placed == []
    assert shop.store.outbox.pending() == 0
    for sku in skus:
        assert all(lv.reserved == 0 for lv in shop.inventory.levels(sku))


def record_placed(shop: Shop) -> list[OrderPlaced]:
    events: list[OrderPlaced] = []
    shop.subscribe(OrderPlaced, events.append)
    return events


# -- placement and cancellation ------------------------------------------------------------


def test_placement_reserves_every_line(shop: Shop) -> None:
    stock(shop, {("SKU-A", "west"): 5, ("SKU-B", "west"): 3})
    order = shop.orders.place(command(("SKU-A", 2), ("SKU-B", 1), ("SKU-A", 1)))
    expires = T0 + DAY
    assert shop.inventory.reservations(order.id) == [
        ("SKU-A", "west", Reservation(order.id, "L1", 2, expires)),
        ("SKU-A", "west", Reservation(order.id, "L3", 1, expires)),
        ("SKU-B", "west", Reservation(order.id, "L2", 1, expires)),
    ]
    assert shop.inventory.levels("SKU-A") == [StockLevel("SKU-A", "west", 5, 3, 2)]
    assert shop.inventory.levels("SKU-B") == [StockLevel("SKU-B", "west", 3, 1, 2)]
    assert shop.orders.get(order.id).state == "placed"


def test_unknown_sku_at_placement_reserves_stores_and_sends_nothing(shop: Shop) -> None:
    stock(shop, {("SKU-A", "west"): 5})
    placed = record_placed(shop)
    with pytest.raises(UnknownSku) as caught:
        shop.orders.place(command(("SKU-A", 1), ("NO-SUCH-SKU", 1)))
    assert (caught.value.sku, caught.value.field, caught.value.value) == (
        "NO-SUCH-SKU",
        "lines[1].sku",
        "NO-SUCH-SKU",
    )
    assert "lines[1].sku: no location stocks SKU 'NO-SUCH-SKU'" in str(caught.value)
    assert_nothing_placed(shop, placed, "SKU-A")


def test_out_of_stock_at_placement_names_sku_requested_and_available(shop: Shop) -> None:
    stock(shop, {("SKU-A", "west"): 5, ("SKU-A", "east"): 2, ("SKU-B", "east"): 1})
    placed = record_placed(shop)
    with pytest.raises(OutOfStock) as caught:
        shop.orders.place(command(("SKU-A", 3), ("SKU-B", 2)))
    error = caught.value
    assert (error.sku, error.requested, error.available) == ("SKU-B", 2, 1)
    assert "SKU-B" in str(error)
    assert "2" in str(error)
    assert "1" in str(error)
    assert_nothing_placed(shop, placed, "SKU-A", "SKU-B")
    assert shop.notifier.sent == []  # type: ignore[attr-defined]


def test_lines_of_one_sku_are_checked_against_their_total(shop: Shop) -> None:
    stock(shop, {("SKU-A", "west"): 4, ("SKU-A", "east"): 3})
    placed = record_placed(shop)
    with pytest.raises(OutOfStock) as caught:
        shop.orders.place(command(("SKU-A", 4), ("SKU-A", 4)))
    assert (caught.value.sku, caught.value.requested, caught.value.available) == ("SKU-A", 8, 7)
    assert_nothing_placed(shop, placed, "SKU-A")
    order = shop.orders.place(command(("SKU-A", 4), ("SKU-A", 3)))
    assert sum(q for *_, q in held(shop, order.id)) == 7
    assert [lv.available for lv in shop.inventory.levels("SKU-A")] == [0, 0]


def test_cancellation_releases_the_stock(shop: Shop) -> None:
    stock(shop, {("SKU-A", "west"): 3, ("SKU-B", "west"): 1})
    order = shop.orders.place(command(("SKU-A", 3), ("SKU-B", 1)))
    shop.inventory.allocate(order.id, "L2", "ship-1")
    with pytest.raises(OutOfStock):
        shop.orders.place(command(("SKU-A", 1)))
    cancelled = shop.orders.cancel(order.id, "customer changed their mind")
    assert cancelled.state == "cancelled"
    assert shop.inventory.reservations(order.id) == []
    assert shop.inventory.levels("SKU-A") == [StockLevel("SKU-A", "west", 3, 0, 3)]
    assert shop.inventory.levels("SKU-B") == [StockLevel("SKU-B", "west", 1, 0, 1)]
    again = shop.orders.place(command(("SKU-A", 3), ("SKU-B", 1)))
    assert len(held(shop, again.id)) == 2


# -- reservation expiry --------------------------------------------------------------------


def test_an_expired_order_s_units_can_be_sold_to_the_next_order(
    open_shop: OpenShop, clock: ManualClock
) -> None:
    shop = open_shop(reservation_ttl=timedelta(minutes=30))
    stock(shop, {("SKU-A", "west"): 2})
    first = shop.orders.place(command(("SKU-A", 2)))
    assert shop.inventory.reservations(first.id) == [
        ("SKU-A", "west", Reservation(first.id, "L1", 2, T0 + timedelta(minutes=30)))
    ]
    clock.advance(timedelta(minutes=29))
    with pytest.raises(OutOfStock) as caught:
        shop.orders.place(command(("SKU-A", 1)))
    assert caught.value.available == 0
    clock.advance(timedelta(minutes=1))
    # No clean-up has run: the expired reservation already does not count.
    assert shop.inventory.levels("SKU-A") == [StockLevel("SKU-A", "west", 2, 0, 2)]
    with pytest.raises(ReservationNotFound):
        shop.inventory.allocate(first.id, "L1", "ship-1")
    second = shop.orders.place(command(("SKU-A", 2)))
    assert held(shop, second.id) == [("SKU-A", "west", "L1", 2)]
    shop.inventory.expire_reservations()
    assert shop.inventory.reservations(first.id) == []
    assert held(shop, second.id) == [("SKU-A", "west", "L1", 2)]
    assert shop.inventory.levels("SKU-A") == [StockLevel("SKU-A", "west", 2, 2, 0)]


def test_without_a_reservation_time_reservations_hold_until_released(
    open_shop: OpenShop, clock: ManualClock
) -> None:
    shop = open_shop(reservation_ttl=None)
    stock(shop, {("SKU-A", "west"): 1})
    order = shop.orders.place(command(("SKU-A", 1)))
    clock.advance(timedelta(days=400))
    shop.inventory.expire_reservations()
    assert shop.inventory.reservations(order.id) == [
        ("SKU-A", "west", Reservation(order.id, "L1", 1, None))
    ]
    with pytest.raises(OutOfStock):
        shop.orders.place(command(("SKU-A", 1)))


def test_an_allocated_reservation_outlives_its_expiry(
    open_shop: OpenShop, clock: ManualClock
) -> None:
    shop = open_shop(reservation_ttl=timedelta(minutes=30))
    stock(shop, {("SKU-A", "west"): 2})
    order = shop.orders.place(command(("SKU-A", 2)))
    shop.inventory.allocate(order.id, "L1", "ship-1")
    clock.advance(timedelta(hours=5))
    shop.inventory.expire_reservations()
    assert shop.inventory.levels("SKU-A") == [StockLevel("SKU-A", "west", 2, 2, 0)]
    with pytest.raises(OutOfStock):
        shop.orders.place(command(("SKU-A", 1)))


# -- sourcing --------------------------------------------------------------------------------


def test_default_sourcing_takes_the_first_location_by_priority_that_serves_everything(
    shop: Shop,
) -> None:
    stock(
        shop,
        {
            ("SKU-A", "west"): 5,  # priority 1, but no SKU-B
            ("SKU-A", "east"): 5,
            ("SKU-B", "east"): 5,
            ("SKU-A", "north"): 5,
            ("SKU-B", "north"): 5,
        },
    )
    whole = shop.orders.place(command(("SKU-A", 2), ("SKU-B", 1)))
    assert held(shop, whole.id) == [("SKU-A", "east", "L1", 2), ("SKU-B", "east", "L2", 1)]
    only_a = shop.orders.place(command(("SKU-A", 5)))
    assert held(shop, only_a.id) == [("SKU-A", "west", "L1", 5)]
    # west is empty now and east has 3 SKU-A: north is the only one that serves 4 + 1
    next_ = shop.orders.place(command(("SKU-A", 4), ("SKU-B", 1)))
    assert held(shop, next_.id) == [("SKU-A", "north", "L1", 4), ("SKU-B", "north", "L2", 1)]


def test_default_sourcing_splits_when_no_single_location_can(shop: Shop) -> None:
    stock(shop, {("SKU-A", "west"): 3, ("SKU-A", "east"): 2, ("SKU-B", "north"): 4})
    order = shop.orders.place(command(("SKU-A", 4), ("SKU-B", 2)))
    assert held(shop, order.id) == [
        ("SKU-A", "east", "L1", 1),  # one line split across two locations, by priority
        ("SKU-A", "west", "L1", 3),
        ("SKU-B", "north", "L2", 2),
    ]
    assert shop.inventory.levels("SKU-A") == [
        StockLevel("SKU-A", "east", 2, 1, 1),
        StockLevel("SKU-A", "west", 3, 3, 0),
    ]
    shop.inventory.allocate(order.id, "L1", "ship-1")
    shop.inventory.ship(order.id, "L1")
    assert [(lv.location, lv.on_hand, lv.reserved) for lv in shop.inventory.levels("SKU-A")] == [
        ("east", 1, 0),
        ("west", 0, 0),
    ]
    assert_ledger_matches(shop, "SKU-A", "SKU-B")


class FromLocation:
    """A custom strategy: everything from one location; remembers what it was asked."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.asked: list[tuple[list[StockDemand], list[str]]] = []

    def source(
        self,
        demands: Sequence[StockDemand],
        levels: Mapping[tuple[str, str], StockLevel],
        locations: Sequence[Location],
    ) -> list[StockPick]:
        self.asked.append((list(demands), [loc.id for loc in locations]))
        return [StockPick(d.line_id, d.sku, self.location, d.quantity) for d in demands]


def test_a_custom_sourcing_strategy_decides_the_locations(open_shop: OpenShop) -> None:
    strategy = FromLocation("north")
    shop = open_shop(sourcing=strategy)
    stock(shop, {("SKU-A", "west"): 5, ("SKU-A", "north"): 5})
    order = shop.orders.place(command(("SKU-A", 2), ("SKU-A", 1)))
    assert held(shop, order.id) == [("SKU-A", "north", "L1", 2), ("SKU-A", "north", "L2", 1)]
    assert strategy.asked == [
        (
            [StockDemand("L1", "SKU-A", 2), StockDemand("L2", "SKU-A", 1)],
            ["west", "east", "north"],
        )
    ]
    assert level(shop, "SKU-A", "west").reserved == 0


def test_the_store_refuses_picks_that_exceed_availability(open_shop: OpenShop) -> None:
    shop = open_shop(sourcing=FromLocation("north"))
    stock(shop, {("SKU-A", "west"): 50, ("SKU-A", "north"): 1})
    placed = record_placed(shop)
    with pytest.raises(OutOfStock) as caught:
        shop.orders.place(command(("SKU-A", 1), ("SKU-A", 1)))
    error = caught.value
    assert (error.sku, error.requested, error.available, error.location) == ("SKU-A", 2, 1, "north")
    assert_nothing_placed(shop, placed, "SKU-A")


# -- backorder policies ----------------------------------------------------------------------


def test_backorders_are_denied_by_default(shop: Shop) -> None:
    stock(shop, {("SKU-A", "west"): 1})
    with pytest.raises(OutOfStock) as caught:
        shop.orders.place(command(("SKU-A", 2)))
    assert (caught.value.requested, caught.value.available) == (2, 1)
    assert shop.inventory.levels("SKU-A") == [StockLevel("SKU-A", "west", 1, 0, 1)]


def test_backorders_allowed_up_to_n_units(shop: Shop) -> None:
    stock(shop, {("SKU-A", "west"): 1})
    shop.inventory.set_backorder_limit("SKU-A", location="west", limit=3)
    order = shop.orders.place(command(("SKU-A", 4)))
    assert held(shop, order.id) == [("SKU-A", "west", "L1", 4)]
    assert shop.inventory.levels("SKU-A") == [StockLevel("SKU-A", "west", 1, 4, 0)]
    with pytest.raises(OutOfStock) as caught:
        shop.orders.place(command(("SKU-A", 1)))
    assert (caught.value.requested, caught.value.available) == (1, 0)
    item = shop.inventory.item("SKU-A", "west")
    assert item is not None
    assert item.backorder_limit == 3


def test_backorders_allowed_without_limit(shop: Shop) -> None:
    shop.inventory.set_backorder_limit("SKU-PRE", location="east", limit=None)  # never received
    order = shop.orders.place(command(("SKU-PRE", 250)))
    assert held(shop, order.id) == [("SKU-PRE", "east", "L1", 250)]
    assert shop.inventory.levels("SKU-PRE") == [StockLevel("SKU-PRE", "east", 0, 250, None)]
    assert shop.inventory.movements("SKU-PRE", "east") == []


# -- the movement ledger ---------------------------------------------------------------------


def test_the_ledger_sums_to_on_hand_after_receive_adjust_ship_restock(
    shop: Shop, clock: ManualClock
) -> None:
    shop.inventory.receive("SKU-A", location="west", quantity=10, reason="PO-42")
    clock.advance(timedelta(minutes=1))
    shop.inventory.adjust("SKU-A", location="west", delta=-2, reason="damaged")
    clock.advance(timedelta(minutes=1))
    order = shop.orders.place(command(("SKU-A", 3)))
    shop.inventory.allocate(order.id, "L1", "ship-1")
    shop.inventory.ship(order.id, "L1")
    clock.advance(timedelta(minutes=1))
    shop.inventory.restock("SKU-A", location="west", quantity=1, order_id=order.id, line_id="L1")
    clock.advance(timedelta(minutes=1))
    shop.inventory.adjust("SKU-A", location="west", delta=1, reason="recount")
    movements = shop.inventory.movements("SKU-A", "west")
    assert [(m.kind, m.quantity, m.reason, m.order_id, m.line_id) for m in movements] == [
        (MovementKind.RECEIVED, 10, "PO-42", None, None),
        (MovementKind.ADJUSTED, -2, "damaged", None, None),
        (MovementKind.SHIPPED, -3, "shipped", order.id, "L1"),
        (MovementKind.RESTOCKED, 1, "returned", order.id, "L1"),
        (MovementKind.ADJUSTED, 1, "recount", None, None),
    ]
    assert [m.at - T0 for m in movements] == [timedelta(minutes=n) for n in (0, 1, 2, 3, 4)]
    assert shop.inventory.levels("SKU-A") == [StockLevel("SKU-A", "west", 7, 0, 7)]
    assert sum(m.quantity for m in movements) == 7
    assert_ledger_matches(shop, "SKU-A")


def test_a_refused_change_leaves_no_movement(shop: Shop) -> None:
    stock(shop, {("SKU-A", "west"): 2})
    order = shop.orders.place(command(("SKU-A", 2)))
    with pytest.raises(OutOfStock):
        shop.inventory.adjust("SKU-A", location="west", delta=-1, reason="count")
    with pytest.raises(ReservationNotFound):
        shop.inventory.ship(order.id, "L1")  # not allocated
    assert len(shop.inventory.movements("SKU-A", "west")) == 1
    assert shop.inventory.levels("SKU-A") == [StockLevel("SKU-A", "west", 2, 2, 0)]
    assert_ledger_matches(shop, "SKU-A")


# -- stock not tracked -----------------------------------------------------------------------


def test_a_shop_that_does_not_track_stock_places_without_it(open_shop: OpenShop) -> None:
    shop = open_shop(track_stock=False, locations=())
    order = shop.orders.place(command(("NOT-STOCKED", 5)))
    assert shop.orders.get(order.id).state == "placed"
    assert shop.inventory.reservations(order.id) == []
    assert shop.inventory.levels("NOT-STOCKED") == []
    assert shop.orders.cancel(order.id, "test").state == "cancelled"


# -- invalid input ---------------------------------------------------------------------------


@pytest.mark.parametrize("quantity", [0, -1])
def test_receive_needs_a_positive_quantity(shop: Shop, quantity: int) -> None:
    with pytest.raises(InvalidQuantity):
        shop.inventory.receive("SKU-A", location="west", quantity=quantity)
    assert shop.inventory.levels("SKU-A") == []


@pytest.mark.parametrize(
    ("delta", "reason", "error"),
    [
        (0, "count", InvalidQuantity),
        (-1, "", InvalidField),
        (-1, "   ", InvalidField),
        (1, "x" * 5000, ValueTooLong),
    ],
)
def test_adjust_needs_a_non_zero_delta_and_a_reason(
    shop: Shop, delta: int, reason: str, error: type[Exception]
) -> None:
    stock(shop, {("SKU-A", "west"): 5})
    with pytest.raises(error) as caught:
        shop.inventory.adjust("SKU-A", location="west", delta=delta, reason=reason)
    assert getattr(caught.value, "field", None) == ("delta" if delta == 0 else "reason")
    assert len(shop.inventory.movements("SKU-A", "west")) == 1


def test_an_unknown_location_is_refused(shop: Shop) -> None:
    with pytest.raises(UnknownLocation) as caught:
        shop.inventory.receive("SKU-A", location="atlantis", quantity=1)
    assert caught.value.location == "atlantis"
    stock(shop, {("SKU-A", "west"): 1})
    with pytest.raises(UnknownLocation):
        shop.inventory.adjust("SKU-A", location="atlantis", delta=1, reason="count")
    with pytest.raises(UnknownLocation):
        shop.inventory.set_backorder_limit("SKU-A", location="atlantis", limit=1)
    assert shop.inventory.levels("SKU-A") == [StockLevel("SKU-A", "west", 1, 0, 1)]


def test_other_bad_inventory_input_raises_typed_errors(shop: Shop) -> None:
    stock(shop, {("SKU-A", "west"): 1})
    with pytest.raises(InvalidField):
        shop.inventory.receive(" ", location="west", quantity=1)
    with pytest.raises(InvalidQuantity):
        shop.inventory.set_backorder_limit("SKU-A", location="west", limit=-1)
    with pytest.raises(InvalidField):
        shop.inventory.add_location("north-2")  # type: ignore[arg-type]
    with pytest.raises(InvalidQuantity):
        Location("south", "South", priority=-1)
    with pytest.raises(InvalidQuantity):
        shop.inventory.restock("SKU-A", location="west", quantity=0, order_id="o", line_id="L1")
    with pytest.raises(UnknownSku):
        shop.inventory.adjust("SKU-B", location="west", delta=1, reason="count")
    with pytest.raises(ReservationNotFound):
        shop.inventory.allocate("order-999", "L1", "ship-1")
    with pytest.raises(InvalidField):
        shop.inventory.allocate("order-999", "L1", "")
    assert shop.inventory.levels("SKU-A") == [StockLevel("SKU-A", "west", 1, 0, 1)]
    assert len(shop.inventory.movements("SKU-A", "west")) == 1
    assert [loc.id for loc in shop.inventory.locations()] == ["west", "east", "north"]


class ShortChanging:
    """A faulty strategy: it sources one unit less than the first line needs."""

    def source(self, demands, levels, locations):  # type: ignore[no-untyped-def]
        first = demands[0]
        return [StockPick(first.line_id, first.sku, locations[0].id, first.quantity - 1)]


def test_picks_that_do_not_cover_the_order_are_refused(open_shop: OpenShop) -> None:
    shop = open_shop(sourcing=ShortChanging())
    stock(shop, {("SKU-A", "west"): 5})
    placed = record_placed(shop)
    with pytest.raises(InvalidSettings, match="do not cover"):
        shop.orders.place(command(("SKU-A", 2)))
    assert_nothing_placed(shop, placed, "SKU-A")


def test_an_impossible_count_correction_says_how_many_units_can_go(shop: Shop) -> None:
    stock(shop, {("SKU-A", "west"): 5})
    shop.inventory.set_backorder_limit("SKU-A", location="west", limit=2)
    shop.orders.place(command(("SKU-A", 5)))
    with pytest.raises(OutOfStock) as caught:
        shop.inventory.adjust("SKU-A", location="west", delta=-3, reason="count")
    assert (caught.value.requested, caught.value.available) == (3, 2)
    shop.inventory.adjust("SKU-A", location="west", delta=-2, reason="count")
    assert level(shop, "SKU-A", "west").on_hand == 3
