"""What carriers quote, sell and report: parcels, rates, labels and tracking events,
and the policies that choose a rate.

Plain values: a carrier adapter (a port implementation) builds them; the
:class:`~orderkit.domain.shipment.Shipment` records them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any, Protocol

from attrs import Attribute, field, frozen

from orderkit.domain.calendar import BusinessCalendar
from orderkit.domain.values import MAX_ID_LENGTH, MAX_TEXT_LENGTH, check_text, text
from orderkit.errors import InvalidField
from orderkit.money import Money

__all__ = [
    "CarrierChoice",
    "CheapestOnTime",
    "Fastest",
    "Label",
    "Parcel",
    "Rate",
    "TrackingEvent",
    "TrackingStatus",
]

MAX_PARCEL_GRAMS = 1_000_000
MAX_PARCEL_MM = 10_000


def _whole(low: int, high: int) -> Any:
    def check(_instance: object, attribute: Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidField(
                f"must be a whole number from {low} to {high}", field=attribute.name, value=value
            )

    return check


def _optional_text(limit: int) -> Any:
    def check(_instance: object, attribute: Attribute[Any], value: object) -> None:
        if value is not None:
            check_text(value, field=attribute.name, limit=limit)

    return check


@frozen
class Parcel:
    """One box: weight in grams and outside dimensions in millimetres."""

    weight_grams: int = field(validator=_whole(1, MAX_PARCEL_GRAMS))
    length_mm: int = field(validator=_whole(1, MAX_PARCEL_MM))
    width_mm: int = field(validator=_whole(1, MAX_PARCEL_MM))
    height_mm: int = field(validator=_whole(1, MAX_PARCEL_MM))


@frozen
class Rate:
    """A carrier's offer for a shipment: ``service`` at ``price``, ``transit_days``
    business days from hand-over to delivery."""

    carrier: str = field(validator=text(MAX_ID_LENGTH))
    service: str = field(validator=text(MAX_ID_LENGTH))
    price: Money
    transit_days: int = field(validator=_whole(0, 365))
    rate_id: str = field(validator=text(MAX_ID_LENGTH))


@frozen
class Label:
    """A bought label: the tracking number and the printable document (``format`` is a
    media type such as ``application/pdf``)."""

    carrier: str = field(validator=text(MAX_ID_LENGTH))
    service: str = field(validator=text(MAX_ID_LENGTH))
    tracking_number: str = field(validator=text(MAX_ID_LENGTH))
    format: str = field(validator=text(MAX_ID_LENGTH))
    document: bytes = field(repr=lambda document: f"<{len(document)} bytes>")
    tracking_url: str | None = field(default=None, validator=_optional_text(MAX_TEXT_LENGTH))


class TrackingStatus(str, Enum):
    """A carrier's scan, normalized."""

    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    DELIVERY_FAILED = "delivery_failed"
    LOST = "lost"
    RETURNED_TO_SENDER = "returned_to_sender"


def _status(value: object) -> TrackingStatus:
    try:
        return TrackingStatus(value)
    except ValueError:
        options = ", ".join(status.value for status in TrackingStatus)
        raise InvalidField(f"must be one of {options}", field="status", value=value) from None


def _aware(_instance: object, attribute: Attribute[Any], value: object) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidField("must be a timezone-aware datetime", field=attribute.name, value=value)


def _optional_date(_instance: object, attribute: Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
        raise InvalidField("must be a date (or None)", field=attribute.name, value=value)


@frozen
class TrackingEvent:
    """One normalized scan of a parcel; ``id`` is stable across redeliveries.

    ``eta`` is the carrier's current expected delivery date, when it gives one.
    """

    id: str = field(validator=text(MAX_ID_LENGTH))
    tracking_number: str = field(validator=text(MAX_ID_LENGTH))
    status: TrackingStatus = field(converter=_status)
    occurred_at: datetime = field(validator=_aware)
    eta: date | None = field(default=None, validator=_optional_date)
    description: str | None = field(default=None, validator=_optional_text(MAX_TEXT_LENGTH))


class CarrierChoice(Protocol):
    """Chooses one of the rates quoted for a shipment."""

    def choose(self, rates: Sequence[Rate], *, ship_date: date, promised: date | None) -> Rate:
        """The rate to buy; raise :class:`InvalidField` when ``rates`` is empty."""
        ...


def _arrival(rate: Rate, ship_date: date, calendar: BusinessCalendar) -> date:
    return calendar.add_business_days(ship_date, rate.transit_days)


def _check_rates(rates: Sequence[Rate]) -> None:
    if not rates:
        raise InvalidField("no carrier quoted a rate for this shipment", field="rates", value=[])


@frozen
class CheapestOnTime:
    """The cheapest rate that arrives by the promised date; when none does (or nothing
    was promised), the fastest rate, cheapest among equals."""

    calendar: BusinessCalendar = field(factory=BusinessCalendar)

    def choose(self, rates: Sequence[Rate], *, ship_date: date, promised: date | None) -> Rate:
        """See the class docstring."""
        _check_rates(rates)
        if promised is not None:
            on_time = [r for r in rates if _arrival(r, ship_date, self.calendar) <= promised]
            if on_time:
                return min(on_time, key=lambda r: (r.price.amount, r.transit_days, r.rate_id))
        return Fastest().choose(rates, ship_date=ship_date, promised=promised)


@frozen
class Fastest:
    """The rate with the fewest transit days, cheapest among equals."""

    def choose(self, rates: Sequence[Rate], *, ship_date: date, promised: date | None) -> Rate:
        """See the class docstring."""
        _check_rates(rates)
        return min(rates, key=lambda r: (r.transit_days, r.price.amount, r.rate_id))
