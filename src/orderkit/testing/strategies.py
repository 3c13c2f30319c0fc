"""Hypothesis strategies for orderkit's values, commands and orders.

Use them in your own property tests::

    from hypothesis import given
    from orderkit.testing import strategies as oks

    @given(oks.place_order_commands())
    def test_my_checkout(command): ...

Needs ``hypothesis`` (the ``test`` extra).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from orderkit._currencies import MINOR_UNITS
from orderkit.domain.order import Order
from orderkit.domain.returns import RETURN_REASONS, Inspection, ReturnLine
from orderkit.domain.values import (
    MAX_NOTE_LENGTH,
    MAX_QUANTITY,
    MAX_TEXT_LENGTH,
    Address,
    ContactChannel,
    Customer,
    LineItem,
    SalesChannel,
    contains_card_number,
)
from orderkit.money import Money
from orderkit.service.commands import PlaceOrder

__all__ = [
    "addresses",
    "currencies",
    "customers",
    "inquiry_texts",
    "inspections",
    "line_items",
    "money",
    "orders",
    "place_order_commands",
    "return_lines",
]

_ID = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=16)
# Free text is screened for card numbers, and a drawn name can be one by chance (a run of
# 13 digits passes the Luhn check one time in ten): such names are not valid input.
_NAME = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40
).filter(lambda text: bool(text.strip()) and not contains_card_number(text))


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


def customers() -> st.SearchStrategy[Customer]:
    """Valid customers, some preferring SMS."""
    email = st.builds(lambda user, host: f"{user}@{host}.example", _ID, _ID).filter(
        lambda address: not contains_card_number(address)
    )
    phone = st.integers(min_value=10**7, max_value=10**14 - 1).map(lambda n: f"+{n}")
    return st.one_of(
        st.builds(Customer, _ID, _NAME, email, st.none() | phone, st.just(ContactChannel.EMAIL)),
        st.builds(Customer, _ID, _NAME, email, phone, st.just(ContactChannel.SMS)),
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
    )


@st.composite
def orders(draw: st.DrawFn, currency: str | None = None) -> Order:
    """A freshly placed :class:`Order` (its ``OrderPlaced`` event pending)."""
    command = draw(place_order_commands(currency=currency))
    placed_at = datetime(2020, 1, 1, tzinfo=timezone.utc) + timedelta(
        seconds=draw(st.integers(min_value=0, max_value=10**9))
    )
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
