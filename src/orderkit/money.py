"""Money: an exact decimal amount in one ISO 4217 currency.

Rules, stated once:

* An amount is built from ``str``, ``int`` or ``Decimal``, never from ``float``
  (binary floats cannot hold most prices exactly). NaN and infinities are refused.
* An amount given with more decimals than its currency's minor unit is refused
  (``Money("1.005", "EUR")`` raises) rather than silently rounded.
* The minor units come from ISO 4217 List One (see :mod:`orderkit._currencies`).
* Arithmetic only within one currency: mixing raises :class:`CurrencyMismatch`.
* Whenever a result must be rounded (multiplying by a rate), orderkit rounds
  half to even (banker's rounding), :data:`ROUNDING`, to the minor unit.
* :meth:`Money.allocate` splits by largest remainder: the parts always add up
  to the whole, to the minor unit.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

from attrs import frozen

from orderkit._currencies import MINOR_UNITS
from orderkit.errors import CurrencyMismatch, InvalidMoney, UnknownCurrency

__all__ = ["MAX_AMOUNT", "ROUNDING", "Money", "minor_unit"]

ROUNDING = decimal.ROUND_HALF_EVEN
"""The one rounding mode orderkit uses: half to even (banker's rounding)."""

MAX_AMOUNT = Decimal(10) ** 18
"""Amounts must be below this in absolute value (a quintillion units of any currency)."""

# Arithmetic runs in a context wide enough to be exact for any sum or product of
# amounts below MAX_AMOUNT; an inexact result raises instead of losing a cent.
_EXACT = decimal.Context(
    prec=80,
    rounding=ROUNDING,
    traps=[decimal.InvalidOperation, decimal.Inexact, decimal.Overflow, decimal.DivisionByZero],
)
_ROUND = decimal.Context(
    prec=80, rounding=ROUNDING, traps=[decimal.InvalidOperation, decimal.Overflow]
)

EXACT_CONTEXT = _EXACT
"""The decimal context orderkit computes money in: 80 digits, inexact results raise."""

_QUANTUM = {exponent: Decimal(1).scaleb(-exponent) for exponent in set(MINOR_UNITS.values())}


def minor_unit(currency: str) -> int:
    """Return the number of decimals of ``currency`` (JPY 0, EUR 2, KWD 3).

    Raises :class:`UnknownCurrency` when the code is not an active ISO 4217 currency.
    """
    try:
        return MINOR_UNITS[currency]
    except (KeyError, TypeError):
        raise UnknownCurrency(
            "not an active ISO 4217 currency code (three capital letters such as 'EUR')",
            field="currency",
            value=currency,
        ) from None


def _exact(
    operation: Callable[[Decimal, Decimal], Decimal], left: Decimal, right: Decimal
) -> Decimal:
    try:
        return operation(left, right)
    except decimal.DecimalException:
        raise InvalidMoney(
            "the result is too large to be computed exactly", field="amount", value=left
        ) from None


def _to_decimal(amount: object) -> Decimal:
    if isinstance(amount, (bool, float)):
        raise InvalidMoney(
            f"money cannot be built from a {type(amount).__name__}; pass a str, int or Decimal",
            field="amount",
            value=amount,
        )
    if isinstance(amount, Decimal):
        value = amount
    elif isinstance(amount, int):
        value = Decimal(amount)
    elif isinstance(amount, str):
        try:
            value = Decimal(amount.strip())
        except decimal.InvalidOperation:
            raise InvalidMoney("not a decimal number", field="amount", value=amount) from None
    else:
        raise InvalidMoney(
            f"money cannot be built from a {type(amount).__name__}; pass a str, int or Decimal",
            field="amount",
            value=amount,
        )
    if not value.is_finite():
        raise InvalidMoney("must be a finite number", field="amount", value=amount)
    return value


_set = object.__setattr__
_ZEROS: dict[str, Money] = {}


@frozen(init=False, order=False, repr=False)
class Money:
    """An exact amount in one currency. Immutable and hashable.

    >>> Money("19.99", "EUR") * 3
    Money('59.97', 'EUR')
    """

    amount: Decimal
    currency: str

    def __init__(self, amount: str | int | Decimal, currency: str) -> None:
        exponent = minor_unit(currency)
        value = _to_decimal(amount)
        if abs(value) >= MAX_AMOUNT:
            raise InvalidMoney(
                f"is too large; amounts must be below {MAX_AMOUNT:,}", field="amount", value=amount
            )
        quantized = value.quantize(_QUANTUM[exponent], context=_ROUND)
        if quantized != value:
            raise InvalidMoney(
                f"{currency} has {exponent} decimal place(s); {amount!s} has more",
                field="amount",
                value=amount,
            )
        self.__attrs_init__(quantized, currency)

    @classmethod
    def _trusted(cls, amount: Decimal, currency: str) -> Money:
        """Build from an amount already quantized for ``currency`` (internal fast path)."""
        money = object.__new__(cls)
        _set(money, "amount", amount)
        _set(money, "currency", currency)
        return money

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Zero in ``currency``."""
        zero = _ZEROS.get(currency)
        if zero is None:
            zero = _ZEROS[currency] = cls(0, currency)
        return zero

    @classmethod
    def from_minor(cls, units: int, currency: str) -> Money:
        """Build from an integer count of minor units (cents): ``from_minor(1999, "EUR")``."""
        if isinstance(units, bool) or not isinstance(units, int):
            raise InvalidMoney("minor units must be an int", field="amount", value=units)
        exponent = minor_unit(currency)
        return cls(Decimal(units).scaleb(-exponent), currency)

    @classmethod
    def sum(cls, items: Iterable[Money], currency: str) -> Money:
        """Add up ``items`` (all in ``currency``); an empty iterable gives zero."""
        total = cls.zero(currency)
        for item in items:
            total = total + item
        return total

    @property
    def minor_units(self) -> int:
        """The amount as an integer count of minor units (1999 for 19.99 EUR)."""
        return int(self.amount.scaleb(MINOR_UNITS[self.currency]))

    def is_zero(self) -> bool:
        """True when the amount is zero."""
        return not self.amount

    def is_negative(self) -> bool:
        """True when the amount is below zero."""
        return self.amount < 0

    def _check(self, other: object, operation: str) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot {operation} Money and {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(
                f"cannot {operation} {self} and {other}: different currencies",
                field="currency",
                value=other.currency,
            )
        return other

    def __add__(self, other: Money) -> Money:
        return Money._trusted(
            _exact(_EXACT.add, self.amount, self._check(other, "add").amount), self.currency
        )

    def __sub__(self, other: Money) -> Money:
        return Money._trusted(
            _exact(_EXACT.subtract, self.amount, self._check(other, "subtract").amount),
            self.currency,
        )

    def __neg__(self) -> Money:
        return Money._trusted(-self.amount, self.currency)

    def __mul__(self, factor: int | Decimal) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, (int, Decimal)):
            raise TypeError(
                f"Money can be multiplied by an int quantity or a Decimal rate, "
                f"not {type(factor).__name__}"
            )
        if isinstance(factor, Decimal) and not factor.is_finite():
            raise InvalidMoney("rate must be finite", field="rate", value=factor)
        exact = _exact(_EXACT.multiply, self.amount, Decimal(factor))
        quantum = _QUANTUM[MINOR_UNITS[self.currency]]
        return Money._trusted(exact.quantize(quantum, context=_ROUND), self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        return self.amount < self._check(other, "compare").amount

    def __le__(self, other: Money) -> bool:
        return self.amount <= self._check(other, "compare").amount

    def __gt__(self, other: Money) -> bool:
        return self.amount > self._check(other, "compare").amount

    def __ge__(self, other: Money) -> bool:
        return self.amount >= self._check(other, "compare").amount

    def allocate(self, weights: Sequence[int | Decimal]) -> list[Money]:
        """Split this amount in proportion to ``weights`` by the largest-remainder method.

        Each part gets the floor of its exact share in minor units; the units
        left over go one each to the parts with the largest remainders (ties to
        the earlier part). The parts always add up to exactly this amount.
        Weights must be non-negative ints or Decimals with a positive sum.
        """
        if not weights:
            raise InvalidMoney("allocate needs at least one weight", field="weights", value=[])
        exact: list[Fraction] = []
        for weight in weights:
            if isinstance(weight, bool) or not isinstance(weight, (int, Decimal)):
                raise InvalidMoney(
                    "weights must be ints or Decimals", field="weights", value=weight
                )
            if not Decimal(weight).is_finite() or weight < 0:
                raise InvalidMoney("weights must be finite and >= 0", field="weights", value=weight)
            exact.append(Fraction(weight))
        total_weight = sum(exact, Fraction(0))
        if total_weight == 0:
            raise InvalidMoney("weights must not all be zero", field="weights", value=list(weights))
        units = self.minor_units
        sign = -1 if units < 0 else 1
        units = abs(units)
        shares = [units * weight / total_weight for weight in exact]
        parts = [int(share) for share in shares]  # floor: shares are >= 0
        leftover = units - sum(parts)
        by_remainder = sorted(range(len(shares)), key=lambda i: (-(shares[i] - parts[i]), i))
        for index in by_remainder[:leftover]:
            parts[index] += 1
        return [Money.from_minor(sign * part, self.currency) for part in parts]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"

    def __repr__(self) -> str:
        return f"Money('{self.amount}', '{self.currency}')"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Money, (str(self.amount), self.currency))
