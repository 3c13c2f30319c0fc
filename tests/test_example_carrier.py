"""examples/custom_carrier.py: its ParcelHub adapter passes the carrier contract against the
fake ParcelHub API on loopback (real HTTP and JSON), maps the carrier's refusals and outages
to orderkit's errors, and carries a shop's order to the door."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orderkit as ok
from orderkit.adapters.memory import ManualClock, MemoryNotifier
from orderkit.ports import Carrier
from orderkit.testing.carriers import CarrierContract, packed_shipment


def _load_example() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "examples" / "custom_carrier.py"
    spec = importlib.util.spec_from_file_location("example_custom_carrier", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


example = _load_example()


class TestParcelHubCarrier(CarrierContract):
    """The whole contract, each test with its own fake ParcelHub on its own clock."""

    hub: Any

    @pytest.fixture(autouse=True)
    def _serve(self, clock: ManualClock) -> Iterator[None]:
        # autouse fixtures run before the contract's ``carrier`` fixture calls make_carrier
        with example.FakeParcelHub(clock=clock) as hub:
            self.hub = hub
            yield

    def make_carrier(self, clock: ManualClock) -> Carrier:
        carrier: Carrier = example.ParcelHubCarrier(self.hub.url, api_key=self.hub.api_key)
        return carrier


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def hub(clock: ManualClock) -> Iterator[Any]:
    with example.FakeParcelHub(clock=clock) as served:
        yield served


@pytest.fixture
def carrier(hub: Any) -> Any:
    return example.ParcelHubCarrier(hub.url, api_key=hub.api_key)


def test_rates_are_priced_by_weight_in_euro_cents(carrier: Any) -> None:
    light = carrier.quote(packed_shipment(parcels=[ok.Parcel(1000, 100, 100, 100)]))
    heavy = carrier.quote(packed_shipment(parcels=[ok.Parcel(1001, 100, 100, 100)]))
    assert [(r.service, r.price, r.transit_days) for r in light] == [
        ("eco", ok.Money("5.00", "EUR"), 3),
        ("express", ok.Money("13.50", "EUR"), 1),
    ]
    assert [r.price for r in heavy] == [ok.Money("5.50", "EUR"), ok.Money("15.00", "EUR")]


def test_scans_are_mapped_to_tracking_statuses_and_paperwork_is_left_out(
    carrier: Any, clock: ManualClock
) -> None:
    shipment = packed_shipment()
    label = carrier.buy_label(shipment, carrier.quote(shipment)[0], idempotency_key="k-1")
    assert carrier.track(label.tracking_number) == []  # LABEL_CREATED only
    clock.advance(timedelta(days=7))
    scans = carrier.track(label.tracking_number)
    assert [scan.status for scan in scans] == [
        ok.TrackingStatus.IN_TRANSIT,
        ok.TrackingStatus.OUT_FOR_DELIVERY,
        ok.TrackingStatus.DELIVERED,
    ]
    assert {scan.eta for scan in scans} == {scans[-1].occurred_at.date()}


def test_a_label_cannot_be_voided_once_picked_up(carrier: Any, clock: ManualClock) -> None:
    shipment = packed_shipment()
    label = carrier.buy_label(shipment, carrier.quote(shipment)[0], idempotency_key="k-2")
    clock.advance(timedelta(hours=3))
    with pytest.raises(ok.CarrierError, match="already_scanned"):
        carrier.cancel_label(label.tracking_number)


def test_an_outage_is_carrier_unavailable_and_the_retry_buys_one_label(
    carrier: Any, hub: Any
) -> None:
    shipment = packed_shipment()
    rate = carrier.quote(shipment)[0]
    hub.unavailable = True
    with pytest.raises(ok.CarrierUnavailable, match="503"):
        carrier.buy_label(shipment, rate, idempotency_key="k-3")
    hub.unavailable = False
    first = carrier.buy_label(shipment, rate, idempotency_key="k-3")
    assert carrier.buy_label(shipment, rate, idempotency_key="k-3") == first


def test_an_unreachable_carrier_is_carrier_unavailable(clock: ManualClock) -> None:
    with example.FakeParcelHub(clock=clock) as hub:
        url = hub.url
    closed = example.ParcelHubCarrier(url, api_key="sandbox-key", timeout=2)
    with pytest.raises(ok.CarrierUnavailable, match="unreachable"):
        closed.quote(packed_shipment())


def test_a_wrong_api_key_is_a_carrier_error_not_an_outage(hub: Any) -> None:
    wrong = example.ParcelHubCarrier(hub.url, api_key="not-the-key")
    with pytest.raises(ok.CarrierError, match="401 unauthorized") as raised:
        wrong.quote(packed_shipment())
    assert not isinstance(raised.value, ok.CarrierUnavailable)


def test_a_rate_of_another_carrier_is_refused_before_any_request(carrier: Any) -> None:
    shipment = packed_shipment()
    rate = carrier.quote(shipment)[0]
    other = ok.Rate("memcarrier", rate.service, rate.price, rate.transit_days, rate.rate_id)
    with pytest.raises(ok.CarrierError, match="memcarrier"):
        carrier.buy_label(shipment, other, idempotency_key="k-4")


def test_an_answer_the_adapter_cannot_read_is_a_carrier_error(
    carrier: Any, hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub, "answer", lambda *_: (200, {"quotes": [{"service": "eco"}]}))
    with pytest.raises(ok.CarrierError, match="cannot read"):
        carrier.quote(packed_shipment())


def test_a_shop_ships_an_order_to_the_door_with_parcelhub(
    hub: Any, carrier: Any, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    with ok.Shop.open("memory://", clock=clock, carriers=[carrier]) as shop:
        order = example.ship_one_order(shop, clock)
        assert order.state == "delivered"
        (shipment,) = shop.fulfilment.shipments(order.id)
        assert shipment.rate is not None
        assert shipment.rate.carrier == "parcelhub"
        assert shipment.tracking_number is not None
        assert shipment.tracking_number.startswith("PH")
        assert isinstance(shop.notifier, MemoryNotifier)
        kinds = [notification.kind for notification in shop.notifier.sent]
        assert "delivered" in kinds
    assert "order " + order.id + " delivered" in capsys.readouterr().out


def test_cancelling_a_labelled_order_voids_its_label_at_parcelhub(
    hub: Any, carrier: Any, clock: ManualClock
) -> None:
    with ok.Shop.open("memory://", clock=clock, carriers=[carrier]) as shop:
        shop.inventory.add_location(ok.Location("main", "Main warehouse"))
        shop.inventory.receive("MUG-01", location="main", quantity=3)
        order = shop.orders.place(
            ok.PlaceOrder(
                customer=ok.Customer("cust-1", "Ada Lovelace", "ada@example.com"),
                shipping_address=ok.Address("Ada", "1 Row", "London", "N1 9GU", "GB"),
                lines=[ok.LineItem("L1", "MUG-01", "Mug", 1, ok.Money("12.50", "EUR"))],
                payment_token="tok_x",
            )
        )
        shop.orders.acknowledge(order.id)
        (shipment,) = shop.fulfilment.start(order.id)
        shop.fulfilment.pick(shipment.id)
        shop.fulfilment.pack(shipment.id, [ok.Parcel(500, 200, 100, 100)])
        shipment = shop.shipping.buy_label(shipment.id)
        assert shipment.tracking_number is not None
        shop.orders.cancel(order.id, "customer changed their mind")
        assert shop.orders.get(order.id).state == "cancelled"
        assert hub.voided(shipment.tracking_number)


@settings(max_examples=30, deadline=None)
@given(hours=st.lists(st.integers(min_value=0, max_value=24 * 8), min_size=1, max_size=4))
def test_tracking_at_any_time_gives_a_prefix_of_the_parcels_journey(hours: list[int]) -> None:
    clock = ManualClock()
    with example.FakeParcelHub(clock=clock) as hub:
        carrier = example.ParcelHubCarrier(hub.url, api_key=hub.api_key)
        shipment = packed_shipment()
        label = carrier.buy_label(shipment, carrier.quote(shipment)[-1], idempotency_key="k")
        journey = [
            ok.TrackingStatus.IN_TRANSIT,
            ok.TrackingStatus.OUT_FOR_DELIVERY,
            ok.TrackingStatus.DELIVERED,
        ]
        seen: list[str] = []
        for step in hours:
            clock.advance(timedelta(hours=step))
            scans = carrier.track(label.tracking_number)
            assert [scan.status for scan in scans] == journey[: len(scans)]
            assert all(scan.occurred_at <= clock.now() for scan in scans)
            ids = [scan.id for scan in scans]
            assert ids[: len(seen)] == seen, "a scan changed or vanished"
            seen = ids
