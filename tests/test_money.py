"""Unit tests and properties for :class:`orderkit.money.Money`."""

from __future__ import annotations

import pickle
from decimal import Decimal
from fractions import Fraction

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderkit._currencies import MINOR_UNITS
from orderkit.errors import CurrencyMismatch, InvalidInput, InvalidMoney, UnknownCurrency
from orderkit.money import ROUNDING, Money, minor_unit
from orderkit.testing.strategies import currencies, money

# --- construction -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("19.99", "EUR", Decimal("19.99")),
        (" 1.5 ", "EUR", Decimal("1.50")),
        ("-3", "EUR", Decimal("-3.00")),
        (0, "EUR", Decimal("0.00")),
        (42, "EUR", Decimal("42.00")),
        (Decimal("7.1"), "EUR", Decimal("7.10")),
        ("500", "JPY", Decimal("500")),
        ("1.00", "JPY", Decimal("1")),
        ("1E+2", "JPY", Decimal("100")),
        ("1.234", "KWD", Decimal("1.234")),
        (10**12, "KWD", Decimal("1000000000000.000")),
    ],
)
def test_construction_from_str_int_decimal(amount, currency, expected):
    value = Money(amount, currency)
    assert value.amount == expected
    assert value.currency == currency
    # the stored amount carries exactly the currency's decimals
    assert value.amount.as_tuple().exponent == -MINOR_UNITS[currency]


@pytest.mark.parametrize("amount", [1.5, 0.1, 0.0, -2.25, 1e10])
def test_construction_from_float_is_refused(amount):
    with pytest.raises(InvalidMoney, match="float") as excinfo:
        Money(amount, "EUR")
    assert excinfo.value.field == "amount"
    assert isinstance(excinfo.value, InvalidInput)
    assert isinstance(excinfo.value, ValueError)


@pytest.mark.parametrize("amount", [True, False])
def test_construction_from_bool_is_refused(amount):
    with pytest.raises(InvalidMoney, match="bool"):
        Money(amount, "EUR")


@pytest.mark.parametrize(
    "amount",
    [
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-Infinity",
        "inf",
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
    ],
)
def test_construction_refuses_non_finite(amount):
    with pytest.raises(InvalidMoney, match="finite"):
        Money(amount, "EUR")


@pytest.mark.parametrize("amount", ["", "abc", "1,50", "1.2.3", "€5", None, [1], object()])
def test_construction_refuses_non_numbers(amount):
    with pytest.raises(InvalidMoney):
        Money(amount, "EUR")


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("1.005", "EUR"),
        ("0.001", "EUR"),
        (Decimal("19.999"), "EUR"),
        ("1.5", "JPY"),
        ("0.1", "JPY"),
        ("1.0001", "KWD"),
        ("-0.005", "USD"),
    ],
)
def test_construction_refuses_more_decimals_than_the_currency_has(amount, currency):
    with pytest.raises(InvalidMoney, match="decimal place") as excinfo:
        Money(amount, currency)
    assert excinfo.value.field == "amount"


@pytest.mark.parametrize("currency", ["XYZ", "eur", "EURO", "", "E", None, 978])
def test_unknown_currency(currency):
    with pytest.raises(UnknownCurrency) as excinfo:
        Money("1", currency)
    assert excinfo.value.field == "currency"
    # an unknown currency is also a money error a form can point at
    assert isinstance(excinfo.value, InvalidMoney)


def test_unknown_currency_in_from_minor_and_minor_unit():
    with pytest.raises(UnknownCurrency):
        Money.from_minor(100, "ABC")
    with pytest.raises(UnknownCurrency):
        minor_unit("ABC")


@pytest.mark.parametrize(
    "amount", ["1e30", "-1e30", "99999999999999999999999999999.99", Decimal("1E+40")]
)
def test_huge_amounts_are_exact_or_refused_with_invalid_money(amount):
    """Bad input must raise an OrderkitError, never a bare decimal.InvalidOperation."""
    try:
        value = Money(amount, "EUR")
    except InvalidMoney:
        return
    assert value.amount == Decimal(amount)


@pytest.mark.parametrize(("currency", "exponent"), [("JPY", 0), ("EUR", 2), ("KWD", 3)])
def test_minor_units_table(currency, exponent):
    assert minor_unit(currency) == exponent
    assert MINOR_UNITS[currency] == exponent


def test_minor_units_table_is_the_full_iso_list():
    assert len(MINOR_UNITS) > 150
    assert {"USD", "GBP", "CHF", "BHD", "CLP", "ISK"} <= set(MINOR_UNITS)
    assert all(len(code) == 3 and code.isupper() for code in MINOR_UNITS)
    assert set(MINOR_UNITS.values()) <= {0, 2, 3, 4}


def test_money_is_frozen_and_hashable():
    value = Money("1.50", "EUR")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        value.amount = Decimal("2")  # type: ignore[misc]
    assert value.amount == Decimal("1.50")
    assert hash(value) == hash(Money("1.5", "EUR"))
    assert len({value, Money("1.5", "EUR"), Money("1.50", "USD")}) == 2


def test_zero():
    assert Money.zero("JPY") == Money(0, "JPY")
    assert Money.zero("KWD").amount == Decimal("0.000")
    assert Money.zero("EUR").is_zero()
    assert not Money("0.01", "EUR").is_zero()
    assert Money("-0.01", "EUR").is_negative()
    assert not Money.zero("EUR").is_negative()


# --- arithmetic -----------------------------------------------------------------------------


def test_add_and_subtract_within_one_currency():
    assert Money("19.99", "EUR") + Money("0.01", "EUR") == Money("20.00", "EUR")
    assert Money("1.00", "EUR") - Money("2.50", "EUR") == Money("-1.50", "EUR")
    assert -Money("2.50", "EUR") == Money("-2.50", "EUR")
    assert Money("0.001", "KWD") + Money("0.002", "KWD") == Money("0.003", "KWD")
    assert Money("1", "JPY") + Money("2", "JPY") == Money("3", "JPY")


@pytest.mark.parametrize(
    "operation",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: a > b,
        lambda a, b: a >= b,
    ],
    ids=["add", "sub", "lt", "le", "gt", "ge"],
)
def test_mixing_currencies_raises(operation):
    with pytest.raises(CurrencyMismatch) as excinfo:
        operation(Money("1.00", "EUR"), Money("1.00", "USD"))
    assert excinfo.value.field == "currency"
    assert excinfo.value.value == "USD"


def test_equality_across_currencies_is_false_not_an_error():
    assert Money("1.00", "EUR") != Money("1.00", "USD")
    assert Money("1.00", "EUR") == Money("1", "EUR")


def test_comparisons_within_one_currency():
    small, large = Money("1.00", "EUR"), Money("2.00", "EUR")
    assert small < large
    assert small <= large
    assert small <= Money("1", "EUR")
    assert large > small
    assert large >= small
    assert not large < small
    assert max([small, large]) == large


@pytest.mark.parametrize("other", [1, Decimal("1"), "1.00", None])
def test_adding_or_comparing_with_a_non_money_is_a_type_error(other):
    with pytest.raises(TypeError):
        Money("1.00", "EUR") + other
    with pytest.raises(TypeError):
        Money("1.00", "EUR") < other  # noqa: B015


def test_multiply_by_int_quantity():
    assert Money("19.99", "EUR") * 3 == Money("59.97", "EUR")
    assert 3 * Money("19.99", "EUR") == Money("59.97", "EUR")
    assert Money("19.99", "EUR") * 0 == Money.zero("EUR")
    assert Money("5", "JPY") * -2 == Money("-10", "JPY")


def test_rounding_mode_is_half_even():
    assert ROUNDING == "ROUND_HALF_EVEN"


@pytest.mark.parametrize(
    ("amount", "currency", "rate", "expected"),
    [
        ("0.05", "EUR", "0.5", "0.02"),  # 0.025 -> 0.02 (to even)
        ("0.15", "EUR", "0.5", "0.08"),  # 0.075 -> 0.08 (to even)
        ("0.25", "EUR", "0.5", "0.12"),  # 0.125 -> 0.12
        ("-0.05", "EUR", "0.5", "-0.02"),
        ("-0.15", "EUR", "0.5", "-0.08"),
        ("5", "JPY", "0.5", "2"),  # 2.5 -> 2
        ("7", "JPY", "0.5", "4"),  # 3.5 -> 4
        ("0.005", "KWD", "0.5", "0.002"),  # 0.0025 -> 0.002
        ("100.00", "EUR", "0.19", "19.00"),
        ("19.99", "EUR", "0.19", "3.80"),  # 3.7981 -> 3.80
        ("10.00", "EUR", "0.333333", "3.33"),
    ],
)
def test_multiply_by_decimal_rounds_half_even(amount, currency, rate, expected):
    result = Money(amount, currency) * Decimal(rate)
    assert result == Money(expected, currency)
    assert result.amount.as_tuple().exponent == -MINOR_UNITS[currency]
    assert Decimal(rate) * Money(amount, currency) == result


@pytest.mark.parametrize("factor", [0.5, 2.0, True, "2", None, Fraction(1, 2)])
def test_multiply_by_anything_else_is_a_type_error(factor):
    with pytest.raises(TypeError):
        Money("1.00", "EUR") * factor
    with pytest.raises(TypeError):
        factor * Money("1.00", "EUR")


@pytest.mark.parametrize("rate", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_multiply_by_non_finite_decimal_is_refused(rate):
    with pytest.raises(InvalidMoney):
        Money("1.00", "EUR") * rate


def test_from_minor_and_minor_units():
    assert Money.from_minor(1999, "EUR") == Money("19.99", "EUR")
    assert Money.from_minor(1999, "EUR").amount.as_tuple().exponent == -2
    assert Money.from_minor(-5, "EUR") == Money("-0.05", "EUR")
    assert Money.from_minor(500, "JPY") == Money("500", "JPY")
    assert Money.from_minor(1234, "KWD") == Money("1.234", "KWD")
    assert Money("19.99", "EUR").minor_units == 1999
    assert Money("-0.05", "EUR").minor_units == -5
    assert Money("500", "JPY").minor_units == 500
    assert Money("1.234", "KWD").minor_units == 1234
    assert isinstance(Money("19.99", "EUR").minor_units, int)


@pytest.mark.parametrize("units", [1.5, 100.0, "100", Decimal("100"), True, None])
def test_from_minor_needs_an_int(units):
    with pytest.raises(InvalidMoney):
        Money.from_minor(units, "EUR")


def test_sum():
    items = [Money("1.10", "EUR"), Money("2.20", "EUR"), Money("-0.30", "EUR")]
    assert Money.sum(items, "EUR") == Money("3.00", "EUR")
    assert Money.sum(iter(items), "EUR") == Money("3.00", "EUR")
    assert Money.sum([], "KWD") == Money.zero("KWD")
    with pytest.raises(CurrencyMismatch):
        Money.sum([Money("1", "EUR"), Money("1", "USD")], "EUR")
    with pytest.raises(CurrencyMismatch):
        Money.sum([Money("1", "USD")], "EUR")


def test_str_repr_and_format():
    assert str(Money("19.99", "EUR")) == "19.99 EUR"
    assert str(Money("5", "EUR")) == "5.00 EUR"
    assert str(Money("500", "JPY")) == "500 JPY"
    assert str(Money("-1.5", "KWD")) == "-1.500 KWD"
    assert repr(Money("19.99", "EUR")) == "Money('19.99', 'EUR')"
    assert f"{Money('1.5', 'EUR'):>10}" == "  1.50 EUR"
    assert eval(repr(Money("19.99", "EUR"))) == Money("19.99", "EUR")


@pytest.mark.parametrize(
    "value",
    [Money("19.99", "EUR"), Money("0", "EUR"), Money("-1.234", "KWD"), Money("500", "JPY")],
)
def test_pickle_round_trip(value):
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        restored = pickle.loads(pickle.dumps(value, protocol=protocol))
        assert restored == value
        assert restored.currency == value.currency
        assert str(restored.amount) == str(value.amount)


# --- allocate: examples ---------------------------------------------------------------------


def test_allocate_examples_largest_remainder():
    assert Money("0.05", "EUR").allocate([1, 1, 1]) == [
        Money("0.02", "EUR"),
        Money("0.02", "EUR"),
        Money("0.01", "EUR"),
    ]
    assert Money("10.00", "EUR").allocate([1, 1, 1]) == [
        Money("3.34", "EUR"),
        Money("3.33", "EUR"),
        Money("3.33", "EUR"),
    ]
    # 100 units over weights 1:2:3 -> exact 16.67, 33.33, 50 -> the largest remainder wins
    assert Money("100", "JPY").allocate([1, 2, 3]) == [
        Money("17", "JPY"),
        Money("33", "JPY"),
        Money("50", "JPY"),
    ]
    assert Money("1.00", "EUR").allocate([0, 1]) == [Money("0.00", "EUR"), Money("1.00", "EUR")]
    assert Money("-10.00", "EUR").allocate([1, 1, 1]) == [
        Money("-3.34", "EUR"),
        Money("-3.33", "EUR"),
        Money("-3.33", "EUR"),
    ]
    assert Money("1.000", "KWD").allocate([Decimal("0.5"), Decimal("0.25"), Decimal("0.25")]) == [
        Money("0.500", "KWD"),
        Money("0.250", "KWD"),
        Money("0.250", "KWD"),
    ]


@pytest.mark.parametrize(
    "weights",
    [[], [0], [0, 0], [1, -1], [Decimal("-0.1"), 2], [1.5], [True, 1], ["1"], [Decimal("NaN")]],
)
def test_allocate_refuses_bad_weights(weights):
    with pytest.raises(InvalidMoney) as excinfo:
        Money("1.00", "EUR").allocate(weights)
    assert excinfo.value.field == "weights"


# --- properties -----------------------------------------------------------------------------

_INT_WEIGHTS = st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=12).filter(
    lambda weights: sum(weights) > 0
)
_DECIMAL_WEIGHTS = st.lists(
    st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=12,
).filter(lambda weights: sum(weights) > 0)


def _check_allocation(whole: Money, weights: list[int] | list[Decimal]) -> None:
    parts = whole.allocate(weights)
    assert len(parts) == len(weights)
    assert all(isinstance(part, Money) for part in parts)
    assert all(part.currency == whole.currency for part in parts)
    assert Money.sum(parts, whole.currency) == whole
    assert sum(part.minor_units for part in parts) == whole.minor_units
    total_weight = sum(Fraction(weight) for weight in weights)
    for part, weight in zip(parts, weights, strict=True):
        exact_share = Fraction(whole.minor_units) * Fraction(weight) / total_weight
        assert abs(part.minor_units - exact_share) < 1
        assert part.amount.as_tuple().exponent == -MINOR_UNITS[whole.currency]


@pytest.mark.parametrize("exponent", [0, 2, 3])
@settings(max_examples=80)
@given(data=st.data())
def test_allocate_parts_add_up_to_the_whole_int_weights(exponent, data):
    whole = data.draw(
        money(currencies(exponents=(exponent,)), min_units=-(10**9), max_units=10**9),
        label="whole",
    )
    weights = data.draw(_INT_WEIGHTS, label="weights")
    _check_allocation(whole, weights)


@pytest.mark.parametrize("exponent", [0, 2, 3])
@settings(max_examples=60)
@given(data=st.data())
def test_allocate_parts_add_up_to_the_whole_decimal_weights(exponent, data):
    whole = data.draw(
        money(currencies(exponents=(exponent,)), min_units=-(10**9), max_units=10**9),
        label="whole",
    )
    weights = data.draw(_DECIMAL_WEIGHTS, label="weights")
    _check_allocation(whole, weights)


@given(whole=money("EUR", min_units=-(10**6), max_units=10**6), weights=_INT_WEIGHTS)
def test_allocating_a_negative_amount_mirrors_the_positive_one(whole, weights):
    assert [-part for part in whole.allocate(weights)] == (-whole).allocate(weights)


@settings(max_examples=200)
@given(value=st.floats())
def test_no_float_path_exists(value):
    with pytest.raises(InvalidMoney):
        Money(value, "EUR")
    with pytest.raises(TypeError):
        Money("1.00", "EUR") * value
    with pytest.raises(TypeError):
        value * Money("1.00", "EUR")


@given(
    currency=currencies(),
    units=st.integers(min_value=-(10**15), max_value=10**15),
)
def test_minor_units_round_trip(currency, units):
    value = Money.from_minor(units, currency)
    assert value.minor_units == units
    assert value.currency == currency
    assert Money(str(value.amount), currency) == value
    assert pickle.loads(pickle.dumps(value)) == value


@given(
    a=money("KWD", min_units=-(10**9)),
    b=money("KWD", min_units=-(10**9)),
    c=money("KWD", min_units=-(10**9)),
)
def test_addition_is_exact_associative_and_invertible(a, b, c):
    assert (a + b) + c == a + (b + c)
    assert a + b == b + a
    assert (a + b) - b == a
    assert (a + b).minor_units == a.minor_units + b.minor_units


@given(
    value=money("EUR", min_units=-(10**9)), quantity=st.integers(min_value=-1000, max_value=1000)
)
def test_multiplying_by_an_int_is_exact(value, quantity):
    assert (value * quantity).minor_units == value.minor_units * quantity
    assert value * quantity == Money.sum([value] * abs(quantity), "EUR") * (
        1 if quantity >= 0 else -1
    )
