"""Value objects of an order: customer, address, line item, hold, and input limits.

Every value object validates itself when built and raises a typed
:class:`~orderkit.errors.InvalidInput` naming the field and the value. Customer
data (name, email, phone, address) is redacted in ``repr`` so that it does not
end up in logs.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import Enum
from typing import Any

from attrs import Attribute, Factory, field, frozen

from orderkit.errors import (
    CardNumberRejected,
    CurrencyMismatch,
    InvalidField,
    InvalidQuantity,
    ValueTooLong,
)
from orderkit.money import Money

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_LINES",
    "MAX_NOTE_LENGTH",
    "MAX_QUANTITY",
    "MAX_TEXT_LENGTH",
    "Address",
    "ContactChannel",
    "Customer",
    "Hold",
    "HoldReason",
    "LineItem",
    "SalesChannel",
    "check_payment_token",
    "check_text",
]

MAX_ID_LENGTH = 64
"""Longest id, SKU, line id, payment token or hold reason code (characters)."""
MAX_TEXT_LENGTH = 200
"""Longest name, e-mail address or address line (characters)."""
MAX_NOTE_LENGTH = 1000
"""Longest free-text note or cancellation reason (characters)."""
MAX_LINES = 100
"""Most lines one order may have."""
MAX_QUANTITY = 10_000
"""Largest quantity of one line."""

_REDACTED = "<redacted>"


def _redact(value: object) -> str:
    return _REDACTED if value else repr(value)


class SalesChannel(str, Enum):
    """Where an order was placed."""

    WEB = "web"
    PHONE = "phone"
    IN_PERSON = "in_person"


class ContactChannel(str, Enum):
    """How a customer prefers to be told about their order."""

    EMAIL = "email"
    SMS = "sms"


class HoldReason(str, Enum):
    """Common hold reasons; any short code is accepted."""

    MANUAL_REVIEW = "manual_review"
    PAYMENT_PROBLEM = "payment_problem"
    ADDRESS_CHECK = "address_check"


def check_text(value: object, *, field: str, limit: int, required: bool = True) -> str:
    """Return ``value`` if it is a ``str`` of at most ``limit`` characters (not blank if required).

    Raises :class:`InvalidField` for non-text or blank text, :class:`ValueTooLong` past the
    limit, and :class:`CardNumberRejected` when free text (a limit above
    :data:`MAX_ID_LENGTH`) holds a card number.
    """
    if not isinstance(value, str):
        raise InvalidField(f"must be text, got {type(value).__name__}", field=field, value=value)
    if len(value) > limit:
        raise ValueTooLong(
            f"is {len(value)} characters long; the limit is {limit}", field=field, value=value
        )
    if required and not value.strip():
        raise InvalidField("must not be empty", field=field, value=value)
    # Free text (names, address lines, notes) is screened for card numbers; ids and codes
    # are not: a numeric id or timestamp key passes the Luhn check one time in ten.
    if limit > MAX_ID_LENGTH and _CARD_CANDIDATE.search(value) and contains_card_number(value):
        raise CardNumberRejected(
            "looks like it contains a card number; orderkit never accepts or stores card numbers",
            field=field,
            value=_REDACTED,
        )
    return value


# A card number as people write it: 12 to 19 digits in one run, or groups of four joined
# by one repeated separator (4111 1111 1111 1111, 4111-1111-1111-1111, 4111.1111.1111.1).
_CARD_CANDIDATE = re.compile(
    r"(?<![0-9])(?:"
    r"[0-9]{12,19}"  # one run
    r"|[0-9]{4}([ .\-_])[0-9]{4}(?:\1[0-9]{4}){1,2}(?:\1[0-9]{1,3})?"  # 4-4-4(-4)(-1..3)
    r"|[0-9]{4}([ .\-_])[0-9]{6}\2[0-9]{4,5}"  # 4-6-5 (American Express, Diners)
    r")(?![0-9])"
)


def contains_card_number(text: str) -> bool:
    """True when ``text`` holds something written like a card number that passes the Luhn check."""
    for match in _CARD_CANDIDATE.finditer(text):
        digits = re.sub(r"[^0-9]", "", match.group())
        if 12 <= len(digits) <= 19 and _luhn_ok(digits):
            return True
    return False


def text(limit: int, *, required: bool = True) -> Any:
    """An attrs validator applying :func:`check_text` to the field."""

    def check(_instance: object, attribute: Attribute[Any], value: object) -> None:
        check_text(value, field=attribute.name, limit=limit, required=required)

    return check


def _optional_text(limit: int) -> Any:
    check = text(limit, required=False)

    def optional(instance: object, attribute: Attribute[Any], value: object) -> None:
        if value is not None:
            check(instance, attribute, value)

    return optional


# one address, nothing a mail header would read as a list, a group or a comment
_EMAIL = re.compile(r"^[^@\s,;<>()\[\]\\\"]+@[^@\s,;<>()\[\]\\\"]+\.[^@\s,;<>()\[\]\\\"]+$")
_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


def _email(_instance: object, attribute: Attribute[Any], value: str) -> None:
    if not _EMAIL.match(value):
        raise InvalidField("is not an e-mail address", field=attribute.name, value=value)


def _phone(_instance: object, attribute: Attribute[Any], value: str | None) -> None:
    if value is not None and not _PHONE.match(value):
        raise InvalidField(
            "must be in international E.164 form, such as +447700900123",
            field=attribute.name,
            value=value,
        )


def _sms_needs_phone(instance: Customer, attribute: Attribute[Any], value: ContactChannel) -> None:
    if value is ContactChannel.SMS and instance.phone is None:
        raise InvalidField(
            "is 'sms' but the customer has no phone number", field=attribute.name, value=value
        )


_LOCALE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,3}")


def _locale(_instance: object, attribute: Attribute[Any], value: object) -> None:
    if value is not None and not (isinstance(value, str) and _LOCALE.fullmatch(value)):
        raise InvalidField(
            "must be a language tag such as 'en', 'de-DE' or 'pt_BR'",
            field=attribute.name,
            value=value,
        )


@frozen
class Customer:
    """Who placed the order and how to reach them."""

    id: str = field(validator=text(MAX_ID_LENGTH))
    name: str = field(validator=text(MAX_TEXT_LENGTH), repr=_redact)
    email: str = field(validator=[text(MAX_TEXT_LENGTH), _email], repr=_redact)
    phone: str | None = field(default=None, validator=_phone, repr=_redact)
    preferred_contact: ContactChannel = field(
        default=ContactChannel.EMAIL, converter=ContactChannel, validator=_sms_needs_phone
    )
    locale: str | None = field(default=None, validator=_locale)
    """How the customer reads money and dates in messages: a language tag such as
    ``"de-DE"`` or ``"fr"`` (the shop's templates' locale when not given)."""


def _country(_instance: object, attribute: Attribute[Any], value: str) -> None:
    if not isinstance(value, str) or not _COUNTRY.match(value):
        raise InvalidField(
            "must be an ISO 3166-1 alpha-2 country code such as 'DE'",
            field=attribute.name,
            value=value,
        )


@frozen
class Address:
    """A postal address. Everything but the country is redacted in ``repr``."""

    recipient: str = field(validator=text(MAX_TEXT_LENGTH), repr=_redact)
    line1: str = field(validator=text(MAX_TEXT_LENGTH), repr=_redact)
    city: str = field(validator=text(MAX_TEXT_LENGTH), repr=_redact)
    postal_code: str = field(validator=text(MAX_ID_LENGTH), repr=_redact)
    country: str = field(validator=_country)
    line2: str | None = field(default=None, validator=_optional_text(MAX_TEXT_LENGTH), repr=_redact)
    region: str | None = field(default=None, validator=_optional_text(MAX_TEXT_LENGTH), repr=False)


def _quantity(_instance: object, attribute: Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_QUANTITY:
        raise InvalidQuantity(
            f"must be a whole number from 1 to {MAX_QUANTITY}", field=attribute.name, value=value
        )


def _money(_instance: object, attribute: Attribute[Any], value: object) -> None:
    if not isinstance(value, Money):
        raise InvalidField("must be Money", field=attribute.name, value=value)
    if value.is_negative():
        raise InvalidField("must not be negative", field=attribute.name, value=str(value))


def _zero_like_price(line: LineItem) -> Money:
    return Money.zero(line.unit_price.currency)


def _line_amounts(instance: LineItem, attribute: Attribute[Any], value: Money) -> None:
    _money(instance, attribute, value)
    if value.currency != instance.unit_price.currency:
        raise CurrencyMismatch(
            f"is in {value.currency} but the unit price is in {instance.unit_price.currency}",
            field=attribute.name,
            value=value.currency,
        )
    if attribute.name == "discount":
        # a line never costs less than nothing: the discount may cover its price and tax
        tax = getattr(instance, "tax", None)
        ceiling = instance.unit_price * instance.quantity
        if isinstance(tax, Money) and tax.currency == value.currency and not tax.is_negative():
            ceiling = ceiling + tax
        if value > ceiling:
            raise InvalidField(
                f"{value} is more than the line's price and tax {ceiling}",
                field=attribute.name,
                value=str(value),
            )


@frozen
class LineItem:
    """One line of an order: ``quantity`` units of ``sku`` at ``unit_price``.

    ``discount`` and ``tax`` are amounts for the whole line (not per unit) in the
    unit price's currency; they default to zero. The line total is
    ``unit_price * quantity - discount + tax``.
    """

    line_id: str = field(validator=text(MAX_ID_LENGTH))
    sku: str = field(validator=text(MAX_ID_LENGTH))
    name: str = field(validator=text(MAX_TEXT_LENGTH))
    quantity: int = field(validator=_quantity)
    unit_price: Money = field(validator=_money)
    discount: Money = field(
        default=Factory(_zero_like_price, takes_self=True), validator=_line_amounts
    )
    tax: Money = field(default=Factory(_zero_like_price, takes_self=True), validator=_line_amounts)

    @property
    def subtotal(self) -> Money:
        """Unit price times quantity, before discount and tax."""
        return self.unit_price * self.quantity

    @property
    def total(self) -> Money:
        """What the customer pays for this line: subtotal - discount + tax."""
        return self.subtotal - self.discount + self.tax


@frozen
class Hold:
    """A reason that keeps an order from being fulfilled until it is released."""

    reason: str = field(validator=text(MAX_ID_LENGTH))
    placed_at: datetime
    note: str = field(default="", validator=text(MAX_NOTE_LENGTH, required=False))


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = int(char)
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def check_payment_token(token: object) -> str:
    """Return ``token`` if it is a plausible gateway token; never accept a card number.

    Raises :class:`CardNumberRejected` for 12 to 19 digits (spaces and dashes
    ignored) that pass the Luhn check, and :class:`InvalidField` for anything
    that is not short non-blank text.
    """
    if isinstance(token, str) and len(token) > MAX_ID_LENGTH:
        raise ValueTooLong(
            f"is {len(token)} characters long; a gateway token has at most {MAX_ID_LENGTH}",
            field="payment_token",
            value=_redact(token),
        )
    if not isinstance(token, str) or not token.strip():
        raise InvalidField(
            f"must be your payment gateway's token: non-blank text of at most "
            f"{MAX_ID_LENGTH} characters",
            field="payment_token",
            value=_redact(token),
        )
    digits = re.sub(r"[^0-9A-Za-z]", "", token)
    if digits.isdigit() and 12 <= len(digits) <= 19 and _luhn_ok(digits):
        raise CardNumberRejected(
            "looks like a card number; orderkit never accepts card numbers, "
            "pass the token from your payment gateway instead",
            field="payment_token",
            value=_REDACTED,
        )
    return token
