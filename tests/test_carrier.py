"""The carrier contract run against MemoryCarrier, and what only MemoryCarrier does: its
tariff, seeded determinism, simulated tracking timelines, cancellation and thread safety;
and the printed label: a 4 x 6 inch PDF whose barcode scans back to the tracking number."""

from __future__ import annotations

import re
import sys
import tempfile
import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

from orderkit.adapters.memory import ManualClock
from orderkit.adapters.memory_carrier import MemoryCarrier
from orderkit.domain.calendar import BusinessCalendar
from orderkit.domain.carrier import Label, Parcel, Rate, TrackingEvent, TrackingStatus
from orderkit.domain.shipment import Shipment, ShipmentLine
from orderkit.domain.values import Address
from orderkit.errors import (
    CarrierError,
    IdempotencyConflict,
    InvalidField,
    MissingExtra,
    OrderkitError,
    UnknownCurrency,
    ValueTooLong,
)
from orderkit.labels import LABEL_SIZE, render_label
from orderkit.money import Money
from orderkit.ports import Carrier
from orderkit.testing.carriers import CarrierContract

UTC = timezone.utc
MONDAY = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
FRIDAY = datetime(2026, 1, 9, 9, 0, tzinfo=UTC)
LABEL_PNG = Path(tempfile.gettempdir()) / "orderkit-label.png"

S = TrackingStatus


class TestMemoryCarrier(CarrierContract):
    def make_carrier(self, clock: ManualClock) -> Carrier:
        return MemoryCarrier(clock=clock, seed=7)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in January 2026, UTC."""
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


def jan(day: int) -> date:
    return date(2026, 1, day)


def shipment(
    *grams: int, shipment_id: str = "shipment-1", at_: datetime = MONDAY, packed: bool = True
) -> Shipment:
    """A fixed shipment (same ids every call, unlike packed_shipment) of parcels weighing
    ``grams``."""
    made = Shipment.create(
        shipment_id=shipment_id,
        order_id="order-1",
        location="main",
        ship_to=Address(
            recipient="Ada Lovelace",
            line1="12 Analytical Row",
            city="London",
            postal_code="N1 9GU",
            country="GB",
        ),
        lines=[ShipmentLine("line-1", "SKU-1", 2)],
        at=at_,
    )
    made.pick(at_)
    if packed:
        made.pack([Parcel(g, 300, 200, 100) for g in grams or (1200,)], at_)
    return made


def carrier_and_clock(
    start: datetime = MONDAY, **options: Any
) -> tuple[MemoryCarrier, ManualClock]:
    clock = ManualClock(start)
    return MemoryCarrier(clock=clock, seed=options.pop("seed", 7), **options), clock


def buy(
    carrier: MemoryCarrier, service: str = "standard", ship: Shipment | None = None
) -> tuple[Rate, Label]:
    ship = ship or shipment()
    rate = next(r for r in carrier.quote(ship) if r.service == service)
    return rate, carrier.buy_label(ship, rate, idempotency_key=f"key-{rate.rate_id}")


# -- rates -----------------------------------------------------------------------------------


def test_rates_are_priced_per_started_kilogram_of_the_total_weight() -> None:
    carrier, _ = carrier_and_clock()
    rates = carrier.quote(shipment(1500, 1000))  # 2.5 kg: 3 started kilograms
    assert {(r.service, r.price, r.transit_days) for r in rates} == {
        ("economy", Money("6.70", "EUR"), 5),
        ("standard", Money("9.60", "EUR"), 3),
        ("express", Money("20.30", "EUR"), 1),
    }
    assert all(r.carrier == "memcarrier" for r in rates)
    just_one_kg = carrier.quote(shipment(1000))
    assert [r.price for r in just_one_kg] == [
        Money("5.50", "EUR"),
        Money("7.80", "EUR"),
        Money("16.70", "EUR"),
    ]


def test_rates_are_in_the_carriers_currency_as_exact_money() -> None:
    carrier, _ = carrier_and_clock(currency="JPY", name="yamato")
    rates = carrier.quote(shipment(2500))
    assert [r.price for r in rates] == [Money(670, "JPY"), Money(960, "JPY"), Money(2030, "JPY")]
    assert {r.carrier for r in rates} == {"yamato"}


def test_quotes_are_deterministic_per_seed() -> None:
    first, _ = carrier_and_clock(seed=42)
    again, _ = carrier_and_clock(seed=42)
    other, _ = carrier_and_clock(seed=43)
    rates = [first.quote(shipment(2500)), first.quote(shipment(2500))]
    assert [again.quote(shipment(2500)), again.quote(shipment(2500))] == rates
    assert rates[0] != rates[1], "every quote gets new rate ids"
    other_rates = other.quote(shipment(2500))
    assert [r.price for r in other_rates] == [r.price for r in rates[0]]
    assert {r.rate_id for r in other_rates}.isdisjoint(r.rate_id for r in rates[0])


def test_a_shipment_without_parcels_cannot_be_quoted() -> None:
    carrier, _ = carrier_and_clock()
    with pytest.raises(CarrierError, match="shipment-1 has no parcels"):
        carrier.quote(shipment(packed=False))


# -- buying labels ----------------------------------------------------------------------------


def test_a_label_is_a_pdf_with_a_tracking_number_and_url() -> None:
    carrier, _ = carrier_and_clock()
    _rate, label = buy(carrier, "express")
    assert re.fullmatch(r"MC\d{10}", label.tracking_number)
    assert (label.carrier, label.service, label.format) == (
        "memcarrier",
        "express",
        "application/pdf",
    )
    assert label.tracking_url == f"https://track.example/{label.tracking_number}"
    assert label.document.startswith(b"%PDF")
    assert carrier.labels_bought() == 1


def test_tracking_numbers_and_documents_are_deterministic_per_seed() -> None:
    numbers: list[list[str]] = []
    documents: list[bytes] = []
    for seed in (5, 5, 6):
        carrier, _ = carrier_and_clock(seed=seed)
        labels = [buy(carrier, ship=shipment(shipment_id=f"s-{n}"))[1] for n in range(3)]
        numbers.append([label.tracking_number for label in labels])
        documents.append(labels[0].document)
    assert numbers[0] == numbers[1]
    assert documents[0] == documents[1]
    assert len(set(numbers[0])) == 3
    assert set(numbers[2]).isdisjoint(numbers[0])


def test_a_key_buys_once_and_conflicts_with_another_request() -> None:
    carrier, _ = carrier_and_clock()
    ship = shipment()
    economy, standard, _express = carrier.quote(ship)
    first = carrier.buy_label(ship, economy, idempotency_key="k1")
    assert carrier.buy_label(ship, economy, idempotency_key="k1") == first
    assert carrier.labels_bought() == 1
    with pytest.raises(IdempotencyConflict, match=f"label {first.tracking_number}"):
        carrier.buy_label(ship, standard, idempotency_key="k1")
    other = shipment(shipment_id="shipment-2")
    with pytest.raises(IdempotencyConflict):
        carrier.buy_label(other, carrier.quote(other)[0], idempotency_key="k1")
    assert carrier.labels_bought() == 1


def test_a_rate_is_bought_once_for_the_shipment_it_was_quoted_for() -> None:
    carrier, _ = carrier_and_clock()
    ship, other = shipment(), shipment(shipment_id="shipment-2")
    rate = carrier.quote(ship)[0]
    with pytest.raises(CarrierError, match="quoted for shipment shipment-1, not shipment-2"):
        carrier.buy_label(other, rate, idempotency_key="k-other")
    label = carrier.buy_label(ship, rate, idempotency_key="k1")
    with pytest.raises(CarrierError, match=f"already bought \\(label {label.tracking_number}\\)"):
        carrier.buy_label(ship, rate, idempotency_key="k2")
    assert carrier.labels_bought() == 1


@pytest.mark.parametrize(
    "tamper",
    [
        lambda r: attrs.evolve(r, price=Money("0.01", "EUR")),
        lambda r: attrs.evolve(r, service="overnight"),
        lambda r: attrs.evolve(r, carrier="othercarrier"),
        lambda r: attrs.evolve(r, rate_id="rate_made_up"),
    ],
    ids=["price", "service", "carrier", "rate_id"],
)
def test_a_rate_that_was_not_quoted_as_it_is_is_refused(tamper: Callable[[Rate], Rate]) -> None:
    carrier, _ = carrier_and_clock()
    ship = shipment()
    rate = tamper(carrier.quote(ship)[0])
    with pytest.raises(CarrierError, match="never quoted rate"):
        carrier.buy_label(ship, rate, idempotency_key="k1")
    assert carrier.labels_bought() == 0


def test_concurrent_purchases_with_one_key_buy_one_label() -> None:
    carrier, _ = carrier_and_clock()
    ship = shipment()
    rate = carrier.quote(ship)[1]
    results: list[Label] = []
    barrier = threading.Barrier(8)

    def purchase() -> None:
        barrier.wait()
        results.append(carrier.buy_label(ship, rate, idempotency_key="same"))

    threads = [threading.Thread(target=purchase) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    assert len({label.tracking_number for label in results}) == 1
    assert carrier.labels_bought() == 1


def test_concurrent_purchases_with_their_own_keys_get_their_own_tracking_numbers() -> None:
    carrier, _ = carrier_and_clock()
    ships = [shipment(shipment_id=f"s-{n}") for n in range(8)]
    rates = [carrier.quote(ship)[0] for ship in ships]
    numbers: list[str] = []
    barrier = threading.Barrier(8)

    def purchase(n: int) -> None:
        barrier.wait()
        label = carrier.buy_label(ships[n], rates[n], idempotency_key=f"k-{n}")
        numbers.append(label.tracking_number)

    threads = [threading.Thread(target=purchase, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(numbers)) == 8
    assert carrier.labels_bought() == 8


# -- the tracking timeline --------------------------------------------------------------------


Expected = list[tuple[TrackingStatus, datetime, date | None]]


def walk(
    carrier: MemoryCarrier, clock: ManualClock, tracking_number: str, expected: Expected
) -> list[TrackingEvent]:
    """Move the clock to just before and exactly at each expected scan, and check that
    exactly the scans whose time has come are reported, each as expected and unchanged."""
    assert carrier.track(tracking_number) == []
    for count, (status, occurred_at, eta) in enumerate(expected):
        clock.set(occurred_at - timedelta(seconds=1))
        assert len(carrier.track(tracking_number)) == count
        clock.set(occurred_at)
        scans = carrier.track(tracking_number)
        assert len(scans) == count + 1
        newest = scans[-1]
        assert (newest.status, newest.occurred_at, newest.eta) == (status, occurred_at, eta)
        assert newest.id == f"{tracking_number}-{count + 1}"
        assert newest.tracking_number == tracking_number
        assert newest.description
    clock.advance(timedelta(days=30))
    final = carrier.track(tracking_number)
    assert len(final) == len(expected)
    assert carrier.track(tracking_number) == final, "the same scans, ids included, every call"
    return list(final)


def apply_to_a_shipment(rate: Rate, label: Label, scans: list[TrackingEvent]) -> Shipment:
    """The scans, applied to a labelled shipment, move it through its lifecycle."""
    ship = shipment()
    ship.attach_label(rate, label, MONDAY)
    for scan in scans:
        assert ship.apply_scan(scan, scan.occurred_at) == "moved"
    return ship


def test_a_parcel_is_picked_up_two_hours_after_purchase_and_delivered_on_the_eta() -> None:
    carrier, clock = carrier_and_clock()
    rate, label = buy(carrier, "standard")  # Monday 09:00, 3 business days: Thursday
    scans = walk(
        carrier,
        clock,
        label.tracking_number,
        [
            (S.IN_TRANSIT, at(5, 11), jan(8)),
            (S.OUT_FOR_DELIVERY, at(8, 8), jan(8)),
            (S.DELIVERED, at(8, 14), jan(8)),
        ],
    )
    delivered = apply_to_a_shipment(rate, label, scans)
    assert (delivered.state, delivered.eta, delivered.delivered_at) == (
        "delivered",
        jan(8),
        at(8, 14),
    )


def test_transit_days_count_business_days_of_the_calendar() -> None:
    holiday = BusinessCalendar(holidays=[jan(7)])
    carrier, clock = carrier_and_clock(calendar=holiday)
    _, label = buy(carrier, "economy")  # 5 business days, skipping Wed 7th and the weekend
    walk(
        carrier,
        clock,
        label.tracking_number,
        [
            (S.IN_TRANSIT, at(5, 11), jan(13)),
            (S.OUT_FOR_DELIVERY, at(13, 8), jan(13)),
            (S.DELIVERED, at(13, 14), jan(13)),
        ],
    )


def test_a_failed_delivery_is_retried_the_next_business_day() -> None:
    carrier, clock = carrier_and_clock(FRIDAY, failed_delivery_rate=1.0)
    rate, label = buy(carrier, "express", shipment(at_=FRIDAY))  # Friday: due Monday the 12th
    scans = walk(
        carrier,
        clock,
        label.tracking_number,
        [
            (S.IN_TRANSIT, at(9, 11), jan(12)),
            (S.OUT_FOR_DELIVERY, at(12, 8), jan(12)),
            (S.DELIVERY_FAILED, at(12, 14), jan(13)),
            (S.IN_TRANSIT, at(12, 18), jan(13)),
            (S.OUT_FOR_DELIVERY, at(13, 8), jan(13)),
            (S.DELIVERED, at(13, 14), jan(13)),
        ],
    )
    assert "next attempt on 2026-01-13" in (scans[2].description or "")
    delivered = apply_to_a_shipment(rate, label, scans)
    assert (delivered.state, delivered.eta) == ("delivered", jan(13))


def test_a_lost_parcel_is_reported_lost_two_days_after_pick_up() -> None:
    carrier, clock = carrier_and_clock(lost_rate=1.0, failed_delivery_rate=1.0)
    rate, label = buy(carrier, "standard")
    scans = walk(
        carrier,
        clock,
        label.tracking_number,
        [(S.IN_TRANSIT, at(5, 11), jan(8)), (S.LOST, at(7, 11), None)],
    )
    assert apply_to_a_shipment(rate, label, scans).state == "lost"


def test_outcomes_follow_the_rates_and_the_seed() -> None:
    def outcomes(seed: int) -> list[tuple[TrackingStatus, ...]]:
        carrier, clock = carrier_and_clock(seed=seed, lost_rate=0.3, failed_delivery_rate=0.3)
        labels = [buy(carrier, ship=shipment(shipment_id=f"s-{n}"))[1] for n in range(12)]
        clock.advance(timedelta(days=30))
        return [tuple(s.status for s in carrier.track(x.tracking_number)) for x in labels]

    first = outcomes(3)
    assert outcomes(3) == first
    assert {statuses[-1] for statuses in first} == {S.DELIVERED, S.LOST}
    assert any(S.DELIVERY_FAILED in statuses for statuses in first)


def test_a_purchase_in_another_time_zone_runs_on_utc() -> None:
    tokyo = timezone(timedelta(hours=9))
    carrier, clock = carrier_and_clock(datetime(2026, 1, 6, 7, 30, tzinfo=tokyo))  # Mon 22:30 UTC
    _, label = buy(carrier, "express")
    clock.advance(timedelta(days=2))
    scans = carrier.track(label.tracking_number)
    assert [(s.status, s.occurred_at) for s in scans] == [
        (S.IN_TRANSIT, at(6, 0, 30)),
        (S.OUT_FOR_DELIVERY, at(6, 8)),
        (S.DELIVERED, at(6, 14)),
    ]
    assert all(s.occurred_at.tzinfo == UTC for s in scans)


def test_tracking_an_unknown_number_names_it() -> None:
    carrier, _ = carrier_and_clock()
    with pytest.raises(CarrierError, match="no label with tracking number 'MC0000000000'"):
        carrier.track("MC0000000000")


# -- cancelling -------------------------------------------------------------------------------


def test_a_label_cancelled_before_pick_up_has_no_scans() -> None:
    carrier, clock = carrier_and_clock()
    _, label = buy(carrier)
    clock.advance(timedelta(hours=1, minutes=59))
    assert not carrier.is_cancelled(label.tracking_number)
    carrier.cancel_label(label.tracking_number)
    assert carrier.is_cancelled(label.tracking_number)
    clock.advance(timedelta(days=30))
    assert carrier.track(label.tracking_number) == []
    carrier.cancel_label(label.tracking_number)  # still idempotent after the scan time
    assert carrier.labels_bought() == 1


def test_a_label_cannot_be_cancelled_once_scanned() -> None:
    carrier, clock = carrier_and_clock()
    _, label = buy(carrier)
    clock.advance(timedelta(hours=2))
    with pytest.raises(CarrierError, match="cannot be cancelled: the parcel was scanned"):
        carrier.cancel_label(label.tracking_number)
    assert not carrier.is_cancelled(label.tracking_number)
    assert len(carrier.track(label.tracking_number)) == 1


def test_an_unknown_label_cannot_be_cancelled_or_asked_about() -> None:
    carrier, _ = carrier_and_clock()
    with pytest.raises(CarrierError):
        carrier.cancel_label("MC0000000000")
    with pytest.raises(CarrierError):
        carrier.is_cancelled("MC0000000000")


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "field"),
    [
        ({"name": ""}, InvalidField, "name"),
        ({"name": 7}, InvalidField, "name"),
        ({"clock": None}, InvalidField, "clock"),
        ({"clock": "now"}, InvalidField, "clock"),
        ({"seed": "1"}, InvalidField, "seed"),
        ({"currency": "EURO"}, UnknownCurrency, "currency"),
        ({"calendar": "weekdays"}, InvalidField, "calendar"),
        ({"lost_rate": 1.5}, InvalidField, "lost_rate"),
        ({"lost_rate": -0.1}, InvalidField, "lost_rate"),
        ({"lost_rate": float("nan")}, InvalidField, "lost_rate"),
        ({"lost_rate": "0.5"}, InvalidField, "lost_rate"),
        ({"failed_delivery_rate": True}, InvalidField, "failed_delivery_rate"),
    ],
)
def test_bad_settings_are_refused_with_the_field(
    options: dict[str, Any], error: type[OrderkitError], field: str
) -> None:
    settings: dict[str, Any] = {"clock": ManualClock(MONDAY), **options}
    with pytest.raises(error) as caught:
        MemoryCarrier(**settings)
    assert str(caught.value).startswith(f"{field}: ")


BadCall = Callable[[Any, Any, Any], object]  # (carrier, shipment, rate): typed Any on purpose


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda c, s, r: c.quote("shipment-1"), InvalidField, "shipment: must be a Shipment"),
        (lambda c, s, r: c.buy_label(s, "rate", idempotency_key="k"), InvalidField, "rate: "),
        (lambda c, s, r: c.buy_label("s", r, idempotency_key="k"), InvalidField, "shipment: "),
        (lambda c, s, r: c.buy_label(s, r, idempotency_key=""), InvalidField, "idempotency_key: "),
        (lambda c, s, r: c.buy_label(s, r, idempotency_key=7), InvalidField, "idempotency_key: "),
        (lambda c, s, r: c.buy_label(s, r, idempotency_key="k" * 65), ValueTooLong, "idem"),
        (lambda c, s, r: c.track(""), InvalidField, "tracking_number: must not be empty"),
        (lambda c, s, r: c.track(None), InvalidField, "tracking_number: must be text"),
        (lambda c, s, r: c.cancel_label(" "), InvalidField, "tracking_number: "),
        (lambda c, s, r: c.is_cancelled(42), InvalidField, "tracking_number: "),
    ],
)
def test_bad_arguments_are_refused_with_a_readable_message(
    call: BadCall, error: type[OrderkitError], message: str
) -> None:
    carrier, _ = carrier_and_clock()
    ship = shipment()
    rate = carrier.quote(ship)[0]
    with pytest.raises(error) as caught:
        call(carrier, ship, rate)
    assert str(caught.value).startswith(message)
    assert carrier.labels_bought() == 0


def test_a_clock_without_a_time_zone_is_refused() -> None:
    class NaiveClock:
        def now(self) -> datetime:
            return datetime(2026, 1, 5, 9, 0)

    carrier = MemoryCarrier(clock=NaiveClock())
    ship = shipment()
    with pytest.raises(InvalidField, match="timezone-aware"):
        carrier.buy_label(ship, carrier.quote(ship)[0], idempotency_key="k")


# -- the printed label ------------------------------------------------------------------------

LABEL_ARGS: dict[str, Any] = {
    "carrier": "memcarrier",
    "service": "standard",
    "tracking_number": "MC0123456789",
    "ship_to": Address(
        recipient="Ada Lovelace",
        line1="12 Analytical Row",
        line2="Flat 3",
        city="London",
        postal_code="N1 9GU",
        region="Greater London",
        country="GB",
    ),
    "ship_from": "Main warehouse\nIndustriestrasse 5\n10115 Berlin, DE",
    "parcels": [Parcel(1500, 300, 200, 100), Parcel(1000, 200, 200, 100)],
    "reference": "order-1 / shipment-1",
}


def test_equal_labels_are_equal_bytes() -> None:
    first = render_label(**LABEL_ARGS)
    assert render_label(**LABEL_ARGS) == first
    assert render_label(**{**LABEL_ARGS, "tracking_number": "MC0123456780"}) != first


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tracking_number": "MC\u2013123"}, "tracking_number"),  # an en dash: not in Code 128
        ({"tracking_number": ""}, "tracking_number"),
        ({"carrier": None}, "carrier"),
        ({"ship_to": "12 Analytical Row, London"}, "ship_to"),
        ({"parcels": []}, "parcels"),
        ({"parcels": "box"}, "parcels"),
        ({"parcels": [Parcel(1, 1, 1, 1), "box"]}, "parcels"),
        ({"reference": "  "}, "reference"),
        ({"ship_from": "x" * 1001}, "ship_from"),
    ],
)
def test_render_label_refuses_bad_input(change: dict[str, Any], field: str) -> None:
    with pytest.raises(OrderkitError) as caught:
        render_label(**{**LABEL_ARGS, **change})
    assert str(caught.value).startswith(f"{field}: ")


def test_a_reference_that_looks_like_a_card_number_is_an_id_and_is_printed() -> None:
    assert render_label(**{**LABEL_ARGS, "reference": "4242424242424242"}).startswith(b"%PDF")


def test_without_reportlab_a_label_needs_the_labels_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "reportlab.pdfgen.canvas", None)
    with pytest.raises(MissingExtra, match=re.escape("pip install 'orderkit[labels]'")):
        render_label(**LABEL_ARGS)
    carrier, _ = carrier_and_clock()
    ship = shipment()
    with pytest.raises(MissingExtra):
        carrier.buy_label(ship, carrier.quote(ship)[0], idempotency_key="k")
    assert carrier.labels_bought() == 0


def rasterize(document: bytes, dpi: int = 200) -> tuple[tuple[float, float], Any, str]:
    """(page size in points, the page as a PIL image at ``dpi``, the page's text)."""
    pdfium = pytest.importorskip("pypdfium2")
    pytest.importorskip("PIL")
    pdf = pdfium.PdfDocument(document)
    try:
        assert len(pdf) == 1
        page = pdf[0]
        try:
            size = page.get_size()
            image = page.render(scale=dpi / 72).to_pil()
            textpage = page.get_textpage()
            try:
                text = textpage.get_text_range()
            finally:
                textpage.close()
        finally:
            page.close()  # children first: pypdfium2 complains when a parent closes first
    finally:
        pdf.close()
    return size, image, text


def decode(image: Any) -> list[str]:
    zxingcpp = pytest.importorskip("zxingcpp")
    return [result.text for result in zxingcpp.read_barcodes(image)]


def test_a_bought_label_is_4_by_6_inches_and_its_barcode_scans_to_the_tracking_number() -> None:
    carrier, _ = carrier_and_clock()
    ship = shipment(1500, 1000)
    _, label = buy(carrier, "express", ship)
    size, image, text = rasterize(label.document)
    assert size == LABEL_SIZE == (288, 432)
    assert image.size == (800, 1200)  # 4 x 6 inches at 200 dpi
    image.save(LABEL_PNG)
    assert decode(image) == [label.tracking_number]
    lines = [line.strip() for line in text.splitlines()]
    for shown in (
        "MEMCARRIER",
        "EXPRESS",
        "Shop location: main",
        "Ada Lovelace",
        "12 Analytical Row",
        "N1 9GU London",
        "GB",
        "2 parcels",
        "2.5 kg",
        "Ref: order order-1 / shipment shipment-1",
        label.tracking_number,
    ):
        assert any(shown in line for line in lines), f"{shown!r} is not on the label: {lines}"


@pytest.mark.parametrize(
    "tracking_number",
    ["1Z999AA10123456784", "JJD0099999999999999999", "9400 1000 0000 0000 0000 00", "a-b_c.D/7"],
)
def test_other_carriers_tracking_numbers_scan_too(tracking_number: str) -> None:
    document = render_label(**{**LABEL_ARGS, "tracking_number": tracking_number})
    _, image, text = rasterize(document)
    assert decode(image) == [tracking_number]
    assert tracking_number in text
