"""The in-memory reference carrier: a complete, thread-safe carrier with a simulated timeline.

It quotes, sells real printable labels (4 x 6 inch PDFs from :func:`orderkit.labels.render_label`,
so it needs the ``labels`` extra) and reports the scans a parcel would get, driven by the
:class:`~orderkit.ports.Clock` it is given; with a
:class:`~orderkit.adapters.memory.ManualClock` a test walks a parcel from pick-up to the door.

Rates (each quote gives fresh, unique ``rate_id`` values; a rate is bought once, for the
shipment it was quoted for):

==========  ============  =================================================================
service     transit days  price (minor units of ``currency``: 490 is 4.90 EUR, 490 JPY)
==========  ============  =================================================================
economy     5             490 + 60 per started kilogram of the shipment's total weight
standard    3             690 + 90 per started kilogram
express     1             1490 + 180 per started kilogram
==========  ============  =================================================================

Idempotency works like the payment gateway's: ``buy_label`` with a key it has seen and the
same shipment and rate returns the first label (one purchase); with anything else it raises
:class:`~orderkit.errors.IdempotencyConflict`.

The timeline of a label starts when it is bought (the clock's time then, in UTC); the
delivery day is the purchase date plus the service's transit days in business days of
``calendar`` (weekends off by default). Every scan carries that delivery day as ``eta``:

* plain: ``IN_TRANSIT`` two hours after the purchase, ``OUT_FOR_DELIVERY`` at 08:00 UTC
  on the delivery day, ``DELIVERED`` at 14:00 UTC that day;
* failed delivery (a share ``failed_delivery_rate`` of labels): ``DELIVERY_FAILED`` at
  14:00 instead, ``IN_TRANSIT`` at 18:00, then ``OUT_FOR_DELIVERY`` (08:00) and
  ``DELIVERED`` (14:00) on the next business day, which is the ``eta`` of the failure
  scan and of every scan after it;
* lost (a share ``lost_rate`` of labels, checked first): ``IN_TRANSIT``, then ``LOST``
  two days after it (no ``eta`` on the ``LOST`` scan).

``track`` returns the scans whose time has come, oldest first, each with a stable id
(``<tracking number>-<n>``). A label can be cancelled until its first scan; a cancelled
label has no scans. Tracking numbers (``MC`` and ten digits), rate ids and the lost and
failed outcomes come from a ``random.Random(seed)``, so a run is repeatable.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, timezone

from attrs import define, frozen

from orderkit.domain.calendar import BusinessCalendar
from orderkit.domain.carrier import Label, Rate, TrackingEvent, TrackingStatus
from orderkit.domain.shipment import Shipment
from orderkit.domain.values import MAX_ID_LENGTH, check_text
from orderkit.errors import CarrierError, IdempotencyConflict, InvalidField
from orderkit.labels import render_label
from orderkit.money import Money
from orderkit.ports import Clock

__all__ = ["SERVICES", "MemoryCarrier", "ServiceTerms"]


@frozen
class ServiceTerms:
    """One service of the :class:`MemoryCarrier`: transit business days and its tariff
    in minor units of the carrier's currency."""

    transit_days: int
    base_minor: int
    per_kg_minor: int


SERVICES = {
    "economy": ServiceTerms(transit_days=5, base_minor=490, per_kg_minor=60),
    "standard": ServiceTerms(transit_days=3, base_minor=690, per_kg_minor=90),
    "express": ServiceTerms(transit_days=1, base_minor=1490, per_kg_minor=180),
}
"""The services every :class:`MemoryCarrier` quotes, cheapest first."""

PDF = "application/pdf"
_PICKUP_DELAY = timedelta(hours=2)
_OUT_FOR_DELIVERY = time(8, 0)
_DELIVERY = time(14, 0)
_BACK_AT_DEPOT = time(18, 0)
_LOST_AFTER = timedelta(days=2)


@frozen
class _Quoted:
    rate: Rate
    shipment_id: str


@define
class _Purchase:
    key: str
    shipment_id: str
    rate: Rate
    label: Label
    bought_at: datetime
    scans: tuple[TrackingEvent, ...]
    cancelled: bool = False


class MemoryCarrier:
    """A carrier held in memory; see the module docstring for its rates and timeline.

    ``clock`` drives the timeline (a :class:`~orderkit.adapters.memory.ManualClock` in
    tests); ``seed`` makes tracking numbers, rate ids and outcomes repeatable;
    ``currency`` prices the rates; ``calendar`` says which days parcels move;
    ``lost_rate`` and ``failed_delivery_rate`` (0 to 1) are the shares of labels whose
    parcel is lost or whose first delivery attempt fails; ``ids_seed`` (default: ``seed``)
    seeds the tracking numbers and rate ids alone, so runs that must not reuse them (on
    one kept store) can still see the same outcomes. Raises
    :class:`~orderkit.errors.InvalidField` (or another
    :class:`~orderkit.errors.InvalidInput`) for a setting it cannot use.
    """

    def __init__(
        self,
        name: str = "memcarrier",
        *,
        clock: Clock,
        seed: int = 0,
        currency: str = "EUR",
        calendar: BusinessCalendar | None = None,
        lost_rate: float = 0.0,
        failed_delivery_rate: float = 0.0,
        ids_seed: int | None = None,
    ) -> None:
        self._name = check_text(name, field="name", limit=MAX_ID_LENGTH)
        if not callable(getattr(clock, "now", None)):
            raise InvalidField(
                "must be a Clock (an object with a now() method)", field="clock", value=clock
            )
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InvalidField(
                f"must be a whole number, got {type(seed).__name__}", field="seed", value=seed
            )
        Money.zero(currency)  # raises UnknownCurrency for anything but an ISO 4217 code
        if calendar is None:
            calendar = BusinessCalendar()
        elif not isinstance(calendar, BusinessCalendar):
            raise InvalidField(
                f"must be a BusinessCalendar, got {type(calendar).__name__}",
                field="calendar",
                value=calendar,
            )
        self._clock = clock
        self._currency = currency
        self._calendar = calendar
        self._lost_rate = _share(lost_rate, "lost_rate")
        self._failed_rate = _share(failed_delivery_rate, "failed_delivery_rate")
        self._random = random.Random(seed)
        # ids may come from their own generator, so that runs with the same ``seed`` see
        # the same parcels lost or late while their tracking numbers stay unique
        self._ids = random.Random(seed if ids_seed is None else ids_seed)
        self._lock = threading.Lock()
        self._rates: dict[str, _Quoted] = {}
        self._sold: dict[str, str] = {}  # rate_id -> tracking number
        self._keys: dict[str, _Purchase] = {}
        self._labels: dict[str, _Purchase] = {}

    # -- the Carrier port --------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The carrier's id (``"memcarrier"`` unless named otherwise), as in ``Rate.carrier``."""
        return self._name

    def quote(self, shipment: Shipment) -> Sequence[Rate]:
        """One rate per service (economy, standard, express), priced from the total weight
        of ``shipment``'s parcels; each rate id is new and can be bought once.

        Raises :class:`~orderkit.errors.CarrierError` for a shipment without parcels.
        """
        _check_shipment(shipment)
        if not shipment.parcels:
            raise CarrierError(
                f"shipment {shipment.id} has no parcels yet; pack it before asking for rates"
            )
        grams = sum(parcel.weight_grams for parcel in shipment.parcels)
        kilograms = math.ceil(grams / 1000)
        rates = []
        with self._lock:
            for service, terms in SERVICES.items():
                minor = terms.base_minor + terms.per_kg_minor * kilograms
                rate = Rate(
                    carrier=self._name,
                    service=service,
                    price=Money.from_minor(minor, self._currency),
                    transit_days=terms.transit_days,
                    rate_id=self._new_rate_id(),
                )
                self._rates[rate.rate_id] = _Quoted(rate, shipment.id)
                rates.append(rate)
        return rates

    def buy_label(self, shipment: Shipment, rate: Rate, *, idempotency_key: str) -> Label:
        """Buy the label for ``rate`` (quoted by this carrier for ``shipment``).

        Same key, shipment and rate as an earlier call: that call's label, bought once.
        Raises :class:`~orderkit.errors.IdempotencyConflict` for a key used with another
        shipment or rate, and :class:`~orderkit.errors.CarrierError` for a rate this
        carrier never quoted, quoted for another shipment, or already bought.
        """
        _check_shipment(shipment)
        if not isinstance(rate, Rate):
            raise InvalidField(
                f"must be a Rate from quote(), got {type(rate).__name__}", field="rate", value=rate
            )
        check_text(idempotency_key, field="idempotency_key", limit=MAX_ID_LENGTH)
        with self._lock:
            earlier = self._keys.get(idempotency_key)
            if earlier is not None:
                if earlier.shipment_id != shipment.id or earlier.rate != rate:
                    raise IdempotencyConflict(
                        idempotency_key, earlier.label.tracking_number, what="label"
                    )
                return earlier.label
            quoted = self._rates.get(rate.rate_id)
            if quoted is None or quoted.rate != rate:
                raise CarrierError(
                    f"{self._name} never quoted rate {rate.rate_id!r} "
                    f"({rate.carrier} {rate.service}, {rate.price}); ask for a new quote"
                )
            if quoted.shipment_id != shipment.id:
                raise CarrierError(
                    f"rate {rate.rate_id!r} was quoted for shipment {quoted.shipment_id}, "
                    f"not {shipment.id}; ask for a quote for this shipment"
                )
            sold = self._sold.get(rate.rate_id)
            if sold is not None:
                raise CarrierError(
                    f"rate {rate.rate_id!r} was already bought (label {sold}); "
                    "ask for a new quote to buy another label"
                )
            if not shipment.parcels:
                raise CarrierError(f"shipment {shipment.id} has no parcels to label")
            bought_at = self._now()
            tracking_number = self._new_tracking_number()
            lost = self._random.random() < self._lost_rate
            failed = self._random.random() < self._failed_rate
            label = Label(
                carrier=self._name,
                service=rate.service,
                tracking_number=tracking_number,
                format=PDF,
                document=render_label(
                    carrier=self._name,
                    service=rate.service,
                    tracking_number=tracking_number,
                    ship_to=shipment.ship_to,
                    ship_from=f"Shop location: {shipment.location}",
                    parcels=shipment.parcels,
                    reference=f"order {shipment.order_id} / shipment {shipment.id}",
                ),
                tracking_url=f"https://track.example/{tracking_number}",
            )
            purchase = _Purchase(
                key=idempotency_key,
                shipment_id=shipment.id,
                rate=rate,
                label=label,
                bought_at=bought_at,
                scans=self._timeline(tracking_number, bought_at, rate, lost=lost, failed=failed),
            )
            self._keys[idempotency_key] = purchase
            self._labels[tracking_number] = purchase
            self._sold[rate.rate_id] = tracking_number
            return label

    def track(self, tracking_number: str) -> Sequence[TrackingEvent]:
        """The scans whose time has come, oldest first (none for a cancelled label).

        Raises :class:`~orderkit.errors.CarrierError` for a tracking number this
        carrier never issued.
        """
        now = self._now()
        with self._lock:
            purchase = self._purchase(tracking_number)
            if purchase.cancelled:
                return []
            return [scan for scan in purchase.scans if scan.occurred_at <= now]

    def cancel_label(self, tracking_number: str) -> None:
        """Void the label (idempotent). Raises :class:`~orderkit.errors.CarrierError`
        for an unknown tracking number, or once the parcel's first scan has happened."""
        now = self._now()
        with self._lock:
            purchase = self._purchase(tracking_number)
            if purchase.cancelled:
                return
            first = purchase.scans[0]
            if first.occurred_at <= now:
                raise CarrierError(
                    f"label {tracking_number} cannot be cancelled: the parcel was scanned "
                    f"at {first.occurred_at.isoformat()}"
                )
            purchase.cancelled = True

    # -- what tests and simulations read ------------------------------------------------------

    def labels_bought(self) -> int:
        """How many labels were bought (repeats with an idempotency key do not count;
        cancelled labels do)."""
        with self._lock:
            return len(self._labels)

    def is_cancelled(self, tracking_number: str) -> bool:
        """True once the label was cancelled; raises
        :class:`~orderkit.errors.CarrierError` for an unknown tracking number."""
        with self._lock:
            return self._purchase(tracking_number).cancelled

    # -- internals ------------------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock.now()
        if not isinstance(now, datetime) or now.tzinfo is None:
            raise InvalidField(
                "the carrier's clock must give timezone-aware datetimes", field="clock", value=now
            )
        return now.astimezone(timezone.utc)

    def _purchase(self, tracking_number: str) -> _Purchase:
        check_text(tracking_number, field="tracking_number", limit=MAX_ID_LENGTH)
        purchase = self._labels.get(tracking_number)
        if purchase is None:
            raise CarrierError(
                f"{self._name} has no label with tracking number {tracking_number!r}"
            )
        return purchase

    def _new_rate_id(self) -> str:
        return f"rate_{self._ids.getrandbits(64):016x}"

    def _new_tracking_number(self) -> str:
        while True:
            number = f"MC{self._ids.randrange(10**10):010d}"
            if number not in self._labels:
                return number

    def _timeline(
        self, tracking_number: str, bought_at: datetime, rate: Rate, *, lost: bool, failed: bool
    ) -> tuple[TrackingEvent, ...]:
        """Every scan the parcel will get, oldest first."""
        eta = self._calendar.add_business_days(bought_at.date(), rate.transit_days)
        picked_up = bought_at + _PICKUP_DELAY
        steps: list[tuple[TrackingStatus, datetime, date | None, str]] = [
            (TrackingStatus.IN_TRANSIT, picked_up, eta, f"picked up by {self._name}")
        ]
        if lost:
            steps.append(
                (TrackingStatus.LOST, picked_up + _LOST_AFTER, None, "the parcel was lost")
            )
        else:
            steps.append(
                (TrackingStatus.OUT_FOR_DELIVERY, _at(eta, _OUT_FOR_DELIVERY), eta, "on its way")
            )
            if failed:
                retry = self._calendar.next_business_day(eta)
                steps += [
                    (
                        TrackingStatus.DELIVERY_FAILED,
                        _at(eta, _DELIVERY),
                        retry,
                        f"nobody at home; next attempt on {retry.isoformat()}",
                    ),
                    (TrackingStatus.IN_TRANSIT, _at(eta, _BACK_AT_DEPOT), retry, "back at depot"),
                    (
                        TrackingStatus.OUT_FOR_DELIVERY,
                        _at(retry, _OUT_FOR_DELIVERY),
                        retry,
                        "on its way again",
                    ),
                ]
                eta = retry
            steps.append((TrackingStatus.DELIVERED, _at(eta, _DELIVERY), eta, "delivered"))
        return tuple(
            TrackingEvent(
                id=f"{tracking_number}-{number}",
                tracking_number=tracking_number,
                status=status,
                occurred_at=occurred_at,
                eta=scan_eta,
                description=description,
            )
            for number, (status, occurred_at, scan_eta, description) in enumerate(steps, start=1)
        )


def _at(day: date, moment: time) -> datetime:
    return datetime.combine(day, moment, tzinfo=timezone.utc)


def _share(value: object, field: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 <= value <= 1
    ):
        raise InvalidField("must be a number from 0 to 1", field=field, value=value)
    return float(value)


def _check_shipment(shipment: object) -> None:
    if not isinstance(shipment, Shipment):
        raise InvalidField(
            f"must be a Shipment, got {type(shipment).__name__}", field="shipment", value=shipment
        )
