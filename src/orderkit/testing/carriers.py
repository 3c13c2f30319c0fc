"""Contract suite: what every carrier adapter (the ``Carrier`` port) must do.

Written once, run against every carrier: this repository runs it against the
in-memory :class:`~orderkit.adapters.memory_carrier.MemoryCarrier`, and you can run
it against your own adapter, talking to your carrier's sandbox. Subclass, implement
:meth:`CarrierContract.make_carrier`, and let pytest collect the class::

    from datetime import datetime, timezone

    from orderkit.testing.carriers import CarrierContract

    class TestMyCarrier(CarrierContract):
        start = datetime.now(timezone.utc)      # a sandbox lives in real time

        def make_carrier(self, clock):
            return MyCarrier(api_key=os.environ["SANDBOX_KEY"], clock=clock)

Each test gets a fresh :class:`~orderkit.adapters.memory.ManualClock` at
:attr:`CarrierContract.start` (Monday 2026-01-05 09:00 UTC unless overridden) and
hands it to ``make_carrier``; a carrier that simulates time (like ``MemoryCarrier``)
should read it, and the suite moves it forward to see scans appear. Shipments come
from :meth:`CarrierContract.make_shipment`: by default :func:`packed_shipment`, a
picked and packed shipment with one 1.2 kg parcel and fresh ids; override it to ship
what your sandbox accepts. Idempotency keys are fresh random ones, so a sandbox that
remembers keys across runs never sees a key twice by accident.

What it checks, for every carrier:

* ``quote`` gives at least one :class:`~orderkit.domain.carrier.Rate` of this carrier
  (``rate.carrier == carrier.name``), with positive prices all in one currency,
  ``transit_days >= 0`` and unique rate ids;
* ``buy_label`` gives a :class:`~orderkit.domain.carrier.Label` of this carrier and the
  rate's service, with a tracking number and a document (a PDF starts with ``%PDF``);
  repeated with its idempotency key and the same request it gives the same label; with
  another request it raises :class:`~orderkit.errors.IdempotencyConflict`; a rate the
  carrier never quoted raises :class:`~orderkit.errors.CarrierError`; two purchases get
  two tracking numbers; a blank key is refused with an
  :class:`~orderkit.errors.OrderkitError`;
* ``track`` gives only scans of that tracking number that already happened, oldest first,
  with unique ids that stay the same from call to call (and, unless
  :attr:`CarrierContract.first_scan_within` is None, at least one scan that long after the
  purchase); an unknown tracking number raises :class:`~orderkit.errors.CarrierError`;
* ``cancel_label`` is idempotent, and raises :class:`~orderkit.errors.CarrierError` for
  an unknown tracking number.

Needs pytest (the ``test`` extra).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import pytest

from orderkit.adapters.memory import ManualClock
from orderkit.domain.carrier import Label, Parcel, Rate, TrackingEvent
from orderkit.domain.shipment import Shipment, ShipmentLine
from orderkit.domain.values import Address
from orderkit.errors import CarrierError, IdempotencyConflict, OrderkitError
from orderkit.money import Money
from orderkit.ports import Carrier

__all__ = ["CONTRACT_START", "CarrierContract", "packed_shipment"]

CONTRACT_START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
"""Where each test's clock starts by default: a Monday morning, UTC."""

PDF = "application/pdf"


def packed_shipment(
    *,
    at: datetime = CONTRACT_START,
    parcels: Sequence[Parcel] = (Parcel(1200, 300, 200, 150),),
    ship_to: Address | None = None,
    location: str = "main",
) -> Shipment:
    """A shipment picked and packed into ``parcels`` at ``at``, ready for a quote, with
    fresh random shipment and order ids (two units of one line, shipped to a sample
    address in Berlin unless ``ship_to`` says otherwise)."""
    suffix = uuid.uuid4().hex[:12]
    shipment = Shipment.create(
        shipment_id=f"shipment-{suffix}",
        order_id=f"order-{suffix}",
        location=location,
        ship_to=ship_to
        or Address(
            recipient="Grace Hopper",
            line1="Friedrichstrasse 123",
            city="Berlin",
            postal_code="10117",
            country="DE",
        ),
        lines=[ShipmentLine("line-1", "SKU-1", 2)],
        at=at,
    )
    shipment.pick(at)
    shipment.pack(parcels, at)
    shipment.pending_events.clear()
    return shipment


class CarrierContract:
    """The contract of a :class:`~orderkit.ports.Carrier`; subclass and implement
    :meth:`make_carrier` (and override :meth:`make_shipment` or the class attributes
    where your carrier needs it)."""

    start: datetime = CONTRACT_START
    """The time each test's :class:`ManualClock` starts at (timezone-aware)."""

    first_scan_within: timedelta | None = timedelta(days=1)
    """How long after a purchase the parcel has its first scan, for the tracking test;
    None when the carrier's sandbox never scans a parcel by itself."""

    def make_carrier(self, clock: ManualClock) -> Carrier:
        """A carrier to test; a carrier that simulates time should read ``clock``."""
        raise NotImplementedError

    def make_shipment(self) -> Shipment:
        """A packed shipment the carrier can quote, new for every call."""
        return packed_shipment(at=self.start)

    def new_key(self, what: str) -> str:
        """A new idempotency key, never used before (``what`` only helps reading logs)."""
        return f"{what}-{uuid.uuid4().hex}"

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock(self.start)

    @pytest.fixture
    def carrier(self, clock: ManualClock) -> Carrier:
        return self.make_carrier(clock)

    def _buy(self, carrier: Carrier) -> tuple[Shipment, Rate, Label]:
        shipment = self.make_shipment()
        rate = carrier.quote(shipment)[0]
        label = carrier.buy_label(shipment, rate, idempotency_key=self.new_key("label"))
        return shipment, rate, label

    # -- quote ----------------------------------------------------------------------------

    def test_quote_gives_this_carriers_rates_with_positive_prices_in_one_currency(
        self, carrier: Carrier
    ) -> None:
        rates = list(carrier.quote(self.make_shipment()))
        assert rates, "a carrier must quote at least one rate for a packed shipment"
        for rate in rates:
            assert isinstance(rate, Rate)
            assert rate.carrier == carrier.name
            assert isinstance(rate.price, Money)
            assert not rate.price.is_zero()
            assert not rate.price.is_negative()
            assert isinstance(rate.transit_days, int)
            assert rate.transit_days >= 0
            assert rate.rate_id.strip()
        assert len({rate.price.currency for rate in rates}) == 1
        assert len({rate.rate_id for rate in rates}) == len(rates), "rate ids must be unique"

    # -- buy_label --------------------------------------------------------------------------

    def test_buy_label_gives_a_label_of_the_rate_with_a_tracking_number_and_document(
        self, carrier: Carrier
    ) -> None:
        _shipment, rate, label = self._buy(carrier)
        assert isinstance(label, Label)
        assert label.carrier == carrier.name
        assert label.service == rate.service
        assert isinstance(label.tracking_number, str)
        assert label.tracking_number.strip()
        assert label.format.strip()
        assert isinstance(label.document, bytes)
        assert label.document
        if label.format == PDF:
            assert label.document.startswith(b"%PDF")

    def test_same_key_and_request_returns_the_first_label(self, carrier: Carrier) -> None:
        shipment = self.make_shipment()
        rate = carrier.quote(shipment)[0]
        key = self.new_key("label")
        first = carrier.buy_label(shipment, rate, idempotency_key=key)
        again = carrier.buy_label(shipment, rate, idempotency_key=key)
        assert again == first

    def test_same_key_with_another_request_is_an_idempotency_conflict(
        self, carrier: Carrier
    ) -> None:
        shipment = self.make_shipment()
        rates = carrier.quote(shipment)
        key = self.new_key("label")
        first = carrier.buy_label(shipment, rates[0], idempotency_key=key)
        other_shipment = self.make_shipment()
        others = [(other_shipment, carrier.quote(other_shipment)[0])]
        if len(rates) > 1:
            others.append((shipment, rates[1]))
        for other, rate in others:
            with pytest.raises(IdempotencyConflict):
                carrier.buy_label(other, rate, idempotency_key=key)
        assert carrier.buy_label(shipment, rates[0], idempotency_key=key) == first

    def test_a_rate_the_carrier_never_quoted_is_refused(self, carrier: Carrier) -> None:
        shipment = self.make_shipment()
        quoted = carrier.quote(shipment)[0]
        unknown = Rate(
            carrier=carrier.name,
            service=quoted.service,
            price=quoted.price,
            transit_days=quoted.transit_days,
            rate_id=f"unknown-{uuid.uuid4().hex}",
        )
        with pytest.raises(CarrierError):
            carrier.buy_label(shipment, unknown, idempotency_key=self.new_key("label"))

    def test_two_purchases_get_two_tracking_numbers(self, carrier: Carrier) -> None:
        _, _, first = self._buy(carrier)
        _, _, second = self._buy(carrier)
        assert first.tracking_number != second.tracking_number

    @pytest.mark.parametrize("key", ["", "   "])
    def test_a_blank_idempotency_key_is_refused(self, carrier: Carrier, key: str) -> None:
        shipment = self.make_shipment()
        rate = carrier.quote(shipment)[0]
        with pytest.raises(OrderkitError):
            carrier.buy_label(shipment, rate, idempotency_key=key)

    # -- track --------------------------------------------------------------------------------

    def test_track_gives_past_scans_oldest_first_with_stable_ids(
        self, carrier: Carrier, clock: ManualClock
    ) -> None:
        _, _, label = self._buy(carrier)
        seen = self._check_scans(carrier.track(label.tracking_number), label, clock)
        if self.first_scan_within is not None:
            clock.advance(self.first_scan_within)
        scans = self._check_scans(carrier.track(label.tracking_number), label, clock)
        if self.first_scan_within is not None:
            assert scans, f"no scan {self.first_scan_within} after the purchase"
        assert list(carrier.track(label.tracking_number)) == scans, "scans must be stable"
        assert {scan.id for scan in seen} <= {scan.id for scan in scans}, "a scan disappeared"

    def _check_scans(
        self, scans: Sequence[TrackingEvent], label: Label, clock: ManualClock
    ) -> list[TrackingEvent]:
        scans = list(scans)
        for scan in scans:
            assert isinstance(scan, TrackingEvent)
            assert scan.tracking_number == label.tracking_number
            assert scan.occurred_at <= clock.now(), f"scan {scan.id} is in the future"
        times = [scan.occurred_at for scan in scans]
        assert times == sorted(times), "scans must come oldest first"
        assert len({scan.id for scan in scans}) == len(scans), "scan ids must be unique"
        return scans

    def test_tracking_an_unknown_number_raises_carrier_error(self, carrier: Carrier) -> None:
        with pytest.raises(CarrierError):
            carrier.track(f"UNKNOWN{uuid.uuid4().hex[:10].upper()}")

    # -- cancel_label ----------------------------------------------------------------------

    def test_cancel_label_is_idempotent(self, carrier: Carrier) -> None:
        _, _, label = self._buy(carrier)
        carrier.cancel_label(label.tracking_number)
        carrier.cancel_label(label.tracking_number)

    def test_cancelling_an_unknown_label_raises_carrier_error(self, carrier: Carrier) -> None:
        with pytest.raises(CarrierError):
            carrier.cancel_label(f"UNKNOWN{uuid.uuid4().hex[:10].upper()}")
