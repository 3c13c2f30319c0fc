"""Hypothesis strategies for orderkit's value objects and commands.

Import them from :mod:`orderkit.testing.strategies`, which re-exports every public name.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from orderkit._currencies import MINOR_UNITS
from orderkit.domain.carrier import Label, Parcel, Rate, TrackingEvent, TrackingStatus
from orderkit.domain.gateway import (
    GatewayAuthorization,
    GatewayCapture,
    GatewayEventKind,
    GatewayRefund,
    GatewayVoid,
    PaymentGatewayEvent,
)
from orderkit.domain.inventory import Location
from orderkit.domain.order import Order
from orderkit.domain.return_pricing import Replacement
from orderkit.domain.returns import RETURN_REASONS, Inspection, ReturnLine
from orderkit.domain.values import (
    MAX_NOTE_LENGTH,
    MAX_QUANTITY,
    MAX_TEXT_LENGTH,
    Address,
    ContactChannel,
    Customer,
    Hold,
    HoldReason,
    LineItem,
    SalesChannel,
    contains_card_number,
)
from orderkit.money import Money
from orderkit.ports import Notification
from orderkit.service.commands import PlaceOrder, RequestReturn

__all__ = [
    "LOCALES",
    "NOTIFICATION_KINDS",
    "addresses",
    "aware_datetimes",
    "currencies",
    "customers",
    "decimal_rates",
    "email_addresses",
    "gateway_authorizations",
    "gateway_captures",
    "gateway_refunds",
    "gateway_voids",
    "holds",
    "identifiers",
    "inquiry_texts",
    "inspections",
    "labels",
    "line_items",
    "locations",
    "money",
    "names",
    "notifications",
    "orders",
    "parcels",
    "payment_gateway_events",
    "phone_numbers",
    "place_order_commands",
    "rates",
    "replacements",
    "request_return_commands",
    "return_lines",
    "tracking_events",
]

_ID = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=16)
# Free text is screened for card numbers, and a drawn name can be one by chance (a run of
# 13 digits passes the Luhn check one time in ten): such names are not valid input.
_NAME = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40
).filter(lambda text: bool(text.strip()) and not contains_card_number(text))

LOCALES = ("en", "en-GB", "de-DE", "fr", "pt_BR", "ja-JP")
"""Language tags :func:`customers` draws (besides None): ones Babel knows."""

NOTIFICATION_KINDS = (
    "order_confirmation",
    "order_cancelled",
    "lines_cancelled",
    "shipped",
    "out_for_delivery",
    "delivered",
    "delivery_exception",
    "return_approved",
    "return_rejected",
    "refund_issued",
    "exchange_shipped",
    "inquiry_answered",
)
"""The kinds of message orderkit sends (each has built-in templates)."""

_ZONES = (
    timezone.utc,
    timezone(timedelta(hours=2)),
    timezone(timedelta(hours=-5, minutes=-30)),
)
_EPOCH = datetime(2020, 1, 1, tzinfo=timezone.utc)


def identifiers() -> st.SearchStrategy[str]:
    """Short ids, SKUs and keys: 1 to 16 characters of ``a-z0-9-_``."""
    return _ID


def names() -> st.SearchStrategy[str]:
    """Free text a name or address line accepts: 1 to 40 printable characters, not blank,
    never something that passes for a card number."""
    return _NAME


def aware_datetimes(
    start: datetime = _EPOCH, span: timedelta = timedelta(days=3650)
) -> st.SearchStrategy[datetime]:
    """Timezone-aware datetimes from ``start`` to ``start + span``, whole seconds, in UTC
    or a fixed offset (+02:00, -05:30)."""
    if start.tzinfo is None:
        raise InvalidArgument("start must be timezone-aware")
    seconds = st.integers(min_value=0, max_value=int(span.total_seconds()))
    return st.builds(
        lambda offset, zone: (start + timedelta(seconds=offset)).astimezone(zone),
        seconds,
        st.sampled_from(_ZONES),
    )


def currencies(exponents: tuple[int, ...] | None = None) -> st.SearchStrategy[str]:
    """ISO 4217 codes, optionally only those with the given minor units (0, 2, 3 ...)."""
    codes = sorted(
        code for code, exp in MINOR_UNITS.items() if exponents is None or exp in exponents
    )
    return st.sampled_from(codes)


def money(
    currency: str | st.SearchStrategy[str] = "EUR",
    *,
    min_units: int = 0,
    max_units: int = 10**9,
) -> st.SearchStrategy[Money]:
    """Money in ``currency`` (a code or a strategy of codes), between the given minor units."""
    codes = currency if isinstance(currency, st.SearchStrategy) else st.just(currency)
    return st.builds(Money.from_minor, st.integers(min_value=min_units, max_value=max_units), codes)


def email_addresses() -> st.SearchStrategy[str]:
    """E-mail addresses :class:`~orderkit.domain.values.Customer` accepts."""
    return st.builds(lambda user, host: f"{user}@{host}.example", _ID, _ID).filter(
        lambda address: not contains_card_number(address)
    )


def phone_numbers() -> st.SearchStrategy[str]:
    """Phone numbers in E.164 form (``+`` and 8 to 14 digits, no leading zero)."""
    return st.integers(min_value=10**7, max_value=10**14 - 1).map(lambda n: f"+{n}")


def customers() -> st.SearchStrategy[Customer]:
    """Valid customers, some preferring SMS, some with a locale from :data:`LOCALES`."""
    email = email_addresses()
    phone = phone_numbers()
    locale = st.none() | st.sampled_from(LOCALES)
    return st.one_of(
        st.builds(
            Customer, _ID, _NAME, email, st.none() | phone, st.just(ContactChannel.EMAIL), locale
        ),
        st.builds(Customer, _ID, _NAME, email, phone, st.just(ContactChannel.SMS), locale),
    )


def addresses() -> st.SearchStrategy[Address]:
    """Valid postal addresses."""
    return st.builds(
        Address,
        recipient=_NAME,
        line1=_NAME,
        city=_NAME,
        postal_code=_ID,
        country=st.sampled_from(["DE", "FR", "GB", "US", "JP", "KW"]),
        line2=st.none() | _NAME,
        region=st.none() | _NAME,
    )


def holds() -> st.SearchStrategy[Hold]:
    """Holds for a common reason (:class:`~orderkit.domain.values.HoldReason`) or any short
    code, with or without a note."""
    reasons = st.sampled_from([reason.value for reason in HoldReason]) | _ID
    return st.builds(Hold, reasons, aware_datetimes(), st.just("") | _NAME)


@st.composite
def line_items(draw: st.DrawFn, currency: str = "EUR", line_id: str | None = None) -> LineItem:
    """A valid line in ``currency`` with a discount no larger than its subtotal."""
    quantity = draw(st.integers(min_value=1, max_value=min(MAX_QUANTITY, 50)))
    unit_price = draw(money(currency, max_units=10**7))
    subtotal_units = unit_price.minor_units * quantity
    discount = draw(money(currency, max_units=subtotal_units))
    tax = draw(money(currency, max_units=10**6))
    return LineItem(
        line_id=line_id if line_id is not None else draw(_ID),
        sku=draw(_ID),
        name=draw(_NAME),
        quantity=quantity,
        unit_price=unit_price,
        discount=discount,
        tax=tax,
    )


@st.composite
def place_order_commands(
    draw: st.DrawFn, currency: str | None = "EUR", max_lines: int = 5
) -> PlaceOrder:
    """A valid :class:`PlaceOrder` (``currency=None`` draws any ISO 4217 currency)."""
    code = currency if currency is not None else draw(currencies())
    count = draw(st.integers(min_value=1, max_value=max_lines))
    lines = [draw(line_items(code, line_id=f"L{index + 1}")) for index in range(count)]
    return PlaceOrder(
        customer=draw(customers()),
        shipping_address=draw(addresses()),
        lines=lines,
        payment_token=draw(st.builds(lambda s: f"tok_{s}", _ID)),
        channel=draw(st.sampled_from(SalesChannel)),
        shipping_charge=draw(st.none() | money(code, max_units=10**5)),
        idempotency_key=draw(st.none() | _ID),
        billing_address=draw(st.none() | addresses()),
    )


@st.composite
def orders(draw: st.DrawFn, currency: str | None = None) -> Order:
    """A freshly placed :class:`Order` (its ``OrderPlaced`` event pending); for orders in
    other states see :func:`~orderkit.testing.strategies.orders_in_state`."""
    command = draw(place_order_commands(currency=currency))
    placed_at = _EPOCH + timedelta(seconds=draw(st.integers(min_value=0, max_value=10**9)))
    return Order.place(
        order_id=draw(_ID),
        customer=command.customer,
        shipping_address=command.shipping_address,
        channel=command.channel,
        currency=command.currency,
        lines=command.lines,
        shipping_charge=command.shipping,
        payment_token=command.payment_token,
        placed_at=placed_at,
        idempotency_key=command.idempotency_key,
        billing_address=command.billing_address,
    )


def decimal_rates() -> st.SearchStrategy[Decimal]:
    """Finite Decimal rates between 0 and 10 with up to 6 decimals (tax or FX rates)."""
    return st.decimals(min_value=0, max_value=10, places=6, allow_nan=False, allow_infinity=False)


def return_lines(
    order: Order, returnable: Mapping[str, int] | None = None
) -> st.SearchStrategy[list[ReturnLine]]:
    """Valid lines of one return of ``order``: at least one, each order line at most once,
    each asking for 1 up to ``returnable[line_id]`` units, with a reason from
    :data:`~orderkit.domain.returns.RETURN_REASONS` and an optional note.

    ``returnable`` maps line ids to the units that can still be returned (what
    :meth:`ReturnService.returnable` tells); lines missing from it, or at zero, are never
    drawn. ``None`` means every unit of every line not cancelled. Raises
    :class:`~hypothesis.errors.InvalidArgument` when nothing can be returned or
    ``returnable`` names a line the order does not have."""
    if returnable is None:
        left = {
            line.line_id: line.quantity
            for line in order.lines
            if line.line_id not in order.cancelled_lines
        }
    else:
        known = {line.line_id for line in order.lines}
        unknown = sorted(set(returnable) - known)
        if unknown:
            raise InvalidArgument(f"order {order.id} has no line {unknown[0]!r}")
        left = {line_id: count for line_id, count in returnable.items() if count > 0}
    if not left:
        raise InvalidArgument(f"order {order.id} has nothing left to return")
    return _return_lines(left)


def _return_lines(left: Mapping[str, int]) -> st.SearchStrategy[list[ReturnLine]]:
    """Return lines for some of ``left`` (line id -> most units), each line at most once."""
    return st.lists(
        st.sampled_from(sorted(left)), min_size=1, max_size=len(left), unique=True
    ).flatmap(
        lambda line_ids: st.tuples(
            *(
                st.builds(
                    ReturnLine,
                    st.just(line_id),
                    st.integers(min_value=1, max_value=left[line_id]),
                    st.sampled_from(RETURN_REASONS),
                    st.just("") | _NAME,
                )
                for line_id in line_ids
            )
        ).map(list)
    )


@st.composite
def request_return_commands(draw: st.DrawFn, order: Order | None = None) -> RequestReturn:
    """A valid :class:`RequestReturn`: for ``order`` (lines from :func:`return_lines`), or
    for a drawn order id with up to three lines ``L1``, ``L2``, ``L3``."""
    if order is not None:
        return RequestReturn(order.id, tuple(draw(return_lines(order))))
    left = {f"L{index}": draw(st.integers(min_value=1, max_value=20)) for index in (1, 2, 3)}
    return RequestReturn(draw(_ID), tuple(draw(_return_lines(left))))


def inspections(
    received: Mapping[str, int], location: str | None = "WH-1"
) -> st.SearchStrategy[list[Inspection]]:
    """Valid inspection results for the ``received`` units (line id -> units, as
    :meth:`ReturnRequest.received_units` gives): one :class:`Inspection` per line that
    received units, restocked plus written off coming to those units, in any order,
    restocked ones at ``location`` (None: for the service to fill in). Lines at zero get
    none. Raises :class:`~hypothesis.errors.InvalidArgument` for a negative count."""
    negative = sorted(line_id for line_id, count in received.items() if count < 0)
    if negative:
        raise InvalidArgument(f"line {negative[0]!r} received a negative number of units")
    lines = sorted((line_id, count) for line_id, count in received.items() if count > 0)
    return st.tuples(*(_inspection(line_id, count, location) for line_id, count in lines)).flatmap(
        st.permutations
    )


def _inspection(line_id: str, count: int, location: str | None) -> st.SearchStrategy[Inspection]:
    return st.integers(min_value=0, max_value=count).map(
        lambda restock: Inspection(line_id, restock, count - restock, location if restock else None)
    )


def replacements(line_id: str, currency: str = "EUR") -> st.SearchStrategy[Replacement]:
    """What an exchange sends instead of returned line ``line_id``: another SKU at a price
    in ``currency``, with or without its own tax."""
    return st.builds(
        Replacement,
        st.just(line_id),
        _ID,
        _NAME,
        money(currency, max_units=10**6),
        st.none() | money(currency, max_units=10**5),
    )


def inquiry_texts(
    max_size: int = MAX_TEXT_LENGTH, *, multiline: bool = False
) -> st.SearchStrategy[str]:
    """Text an inquiry accepts: a subject (the default ``max_size``) or, with
    ``max_size=MAX_NOTE_LENGTH``, a message or answer. Never blank, never holding
    something that passes for a card number; with ``multiline``, line breaks too."""
    if not 1 <= max_size <= MAX_NOTE_LENGTH:
        raise InvalidArgument(f"max_size must be from 1 to {MAX_NOTE_LENGTH}, not {max_size}")
    characters = st.characters(
        codec="utf-8",
        exclude_categories=("Cs", "Cc"),
        include_characters="\n" if multiline else None,
    )
    return st.text(alphabet=characters, min_size=1, max_size=max_size).filter(
        lambda text: bool(text.strip()) and not contains_card_number(text)
    )


# -- stock, shipping and carriers ---------------------------------------------------------------


def locations() -> st.SearchStrategy[Location]:
    """Valid stock locations: priority, handling days, daily cut-off and a few bins."""
    return st.builds(
        Location,
        id=_ID,
        name=_NAME,
        priority=st.integers(min_value=0, max_value=1000),
        handling_days=st.integers(min_value=0, max_value=10),
        cutoff=st.times(),
        bins=st.dictionaries(_ID, _ID, max_size=3),
    )


def parcels() -> st.SearchStrategy[Parcel]:
    """Boxes from 1 g to 40 kg and 1 mm to 2 m a side."""
    side = st.integers(min_value=1, max_value=2000)
    return st.builds(Parcel, st.integers(min_value=1, max_value=40_000), side, side, side)


def rates(carrier: str | None = None, currency: str = "EUR") -> st.SearchStrategy[Rate]:
    """A carrier's offer: ``carrier`` (drawn when None), a service, a positive price in
    ``currency`` and 0 to 30 transit days."""
    return st.builds(
        Rate,
        _ID if carrier is None else st.just(carrier),
        _ID,
        money(currency, min_units=1, max_units=10**5),
        st.integers(min_value=0, max_value=30),
        _ID,
    )


@st.composite
def labels(draw: st.DrawFn, carrier: str | None = None, service: str | None = None) -> Label:
    """A bought label of ``carrier`` and ``service`` (drawn when None): a PDF (starting
    with ``%PDF``) or a PNG or ZPL document, with or without a tracking link."""
    media = draw(st.sampled_from(["application/pdf", "image/png", "application/zpl"]))
    body = draw(st.binary(max_size=64))
    tracking = draw(_ID)
    return Label(
        carrier=carrier if carrier is not None else draw(_ID),
        service=service if service is not None else draw(_ID),
        tracking_number=tracking,
        format=media,
        document=b"%PDF-1.7\n" + body if media == "application/pdf" else body,
        tracking_url=draw(st.none() | st.just(f"https://track.example/{tracking}")),
    )


def tracking_events(
    tracking_number: str | None = None,
    statuses: tuple[TrackingStatus, ...] = tuple(TrackingStatus),
    after: datetime = _EPOCH,
) -> st.SearchStrategy[TrackingEvent]:
    """Carrier scans of ``tracking_number`` (drawn when None) with one of ``statuses``,
    made up to a year after ``after``, with or without an ETA and a description."""
    return st.builds(
        TrackingEvent,
        id=_ID,
        tracking_number=_ID if tracking_number is None else st.just(tracking_number),
        status=st.sampled_from(statuses),
        occurred_at=aware_datetimes(after, timedelta(days=365)),
        eta=st.none() | st.dates(min_value=date(2020, 1, 1), max_value=date(2040, 12, 31)),
        description=st.none() | _NAME,
    )


# -- payments --------------------------------------------------------------------------------


def gateway_authorizations(currency: str = "EUR") -> st.SearchStrategy[GatewayAuthorization]:
    """A gateway's approval of a positive amount in ``currency``."""
    return st.builds(GatewayAuthorization, _ID, money(currency, min_units=1))


def gateway_captures(currency: str = "EUR") -> st.SearchStrategy[GatewayCapture]:
    """A gateway's capture of a positive amount in ``currency``."""
    return st.builds(GatewayCapture, _ID, _ID, money(currency, min_units=1))


def gateway_voids(currency: str = "EUR") -> st.SearchStrategy[GatewayVoid]:
    """A gateway's release of what was left of an authorization."""
    return st.builds(GatewayVoid, _ID, _ID, money(currency))


def gateway_refunds(currency: str = "EUR") -> st.SearchStrategy[GatewayRefund]:
    """A gateway's refund of a positive amount from one capture."""
    return st.builds(GatewayRefund, _ID, _ID, money(currency, min_units=1))


@st.composite
def payment_gateway_events(
    draw: st.DrawFn, authorization_id: str | None = None, currency: str = "EUR"
) -> PaymentGatewayEvent:
    """A well-formed gateway callback of any kind, for ``authorization_id`` (drawn when
    None): an amount and operation id where the kind needs them, a capture id for a
    refund, a reason for a failed authorization."""
    kind = draw(st.sampled_from(GatewayEventKind))
    authorization = authorization_id if authorization_id is not None else draw(_ID)
    failed = kind is GatewayEventKind.AUTHORIZATION_FAILED
    return PaymentGatewayEvent(
        id=draw(_ID),
        kind=kind,
        authorization_id=authorization,
        occurred_at=draw(aware_datetimes()),
        operation_id=authorization if kind is GatewayEventKind.AUTHORIZED else draw(_ID),
        amount=None if failed else draw(money(currency, min_units=1)),
        capture_id=draw(_ID) if kind is GatewayEventKind.REFUNDED else None,
        reason=draw(st.sampled_from(["card_declined", "insufficient_funds"])) if failed else None,
    )


# -- notifications ---------------------------------------------------------------------------

_FACT = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | _NAME


@st.composite
def notifications(
    draw: st.DrawFn, channel: ContactChannel | None = None, order_id: str | None = None
) -> Notification:
    """A message ready to send: on ``channel`` (drawn when None) to a matching recipient
    (an e-mail address, or an E.164 number for SMS, with the customer's e-mail for a
    fallback), of a kind from :data:`NOTIFICATION_KINDS`, with JSON-ready ``facts`` and
    a unique ``key`` per drawn order id and kind."""
    chosen = channel if channel is not None else draw(st.sampled_from(ContactChannel))
    sms = chosen is ContactChannel.SMS
    email = draw(email_addresses())
    return Notification(
        order_id=order_id if order_id is not None else draw(_ID),
        kind=draw(st.sampled_from(NOTIFICATION_KINDS)),
        channel=chosen,
        recipient=draw(phone_numbers()) if sms else email,
        subject=draw(_NAME),
        body=draw(inquiry_texts(MAX_NOTE_LENGTH // 4, multiline=True)),
        promised_delivery=draw(st.none() | st.dates(date(2020, 1, 1), date(2040, 12, 31))),
        facts=draw(st.dictionaries(_ID, _FACT, max_size=4)),
        email=draw(st.none() | st.just(email)) if sms else email,
        locale=draw(st.none() | st.sampled_from(LOCALES)),
    )
