"""Commands: what a caller asks the shop to do. Frozen, validated when built."""

from __future__ import annotations

import hashlib
from typing import Any

from attrs import Attribute, evolve, field, frozen

from orderkit.domain.order import _lines, check_order_lines
from orderkit.domain.return_values import ReturnLine
from orderkit.domain.values import (
    MAX_ID_LENGTH,
    Address,
    Customer,
    LineItem,
    SalesChannel,
    check_payment_token,
    check_text,
    text,
)
from orderkit.errors import InvalidField
from orderkit.money import Money
from orderkit.serialization import dumps, loads_untrusted

__all__ = ["PlaceOrder", "RequestReturn"]


def _token(_instance: object, _attribute: Attribute[Any], value: object) -> None:
    check_payment_token(value)


def _key(_instance: object, attribute: Attribute[Any], value: object) -> None:
    if value is not None:
        check_text(value, field=attribute.name, limit=MAX_ID_LENGTH)


def _optional(kind: type) -> Any:
    def check(_instance: object, attribute: Attribute[Any], value: object) -> None:
        if value is not None and not isinstance(value, kind):
            raise InvalidField(f"must be a {kind.__name__}", field=attribute.name, value=value)

    return check


def _is(kind: type) -> Any:
    def check(_instance: object, attribute: Attribute[Any], value: object) -> None:
        if not isinstance(value, kind):
            raise InvalidField(f"must be a {kind.__name__}", field=attribute.name, value=value)

    return check


@frozen
class PlaceOrder:
    """Place a new order (stage 1).

    The order's currency is its lines' currency; every amount must be in it.
    ``shipping_charge`` defaults to zero; ``billing_address`` is the payer's address
    when it is not the shipping address. ``payment_token`` is the token your
    payment gateway returned, never a card number. With an ``idempotency_key``,
    repeating the same request returns the first order instead of placing a
    second one, and reusing the key for a different request raises
    :class:`~orderkit.errors.IdempotencyConflict`.

    Build it in Python, or from untrusted JSON with :meth:`from_json`.
    """

    customer: Customer = field(validator=_is(Customer))
    shipping_address: Address = field(validator=_is(Address))
    lines: tuple[LineItem, ...] = field(converter=_lines)
    payment_token: str = field(validator=_token, repr=False)
    channel: SalesChannel = field(default=SalesChannel.WEB, converter=SalesChannel)
    shipping_charge: Money | None = None
    idempotency_key: str | None = field(default=None, validator=_key)
    billing_address: Address | None = field(default=None, validator=_optional(Address))

    def __attrs_post_init__(self) -> None:
        if not self.lines:
            raise InvalidField("an order needs at least one line", field="lines", value=[])
        check_order_lines(self.lines, self.currency, self.shipping)

    @property
    def currency(self) -> str:
        """The order's currency: that of its first line's unit price."""
        first = self.lines[0]
        if not isinstance(first, LineItem):
            raise InvalidField("must be a LineItem", field="lines[0]", value=first)
        return first.unit_price.currency

    @property
    def shipping(self) -> Money:
        """The shipping charge, zero when none was given."""
        return (
            self.shipping_charge if self.shipping_charge is not None else Money.zero(self.currency)
        )

    def fingerprint(self) -> str:
        """A digest of the request without its idempotency key: equal requests, equal digests."""
        canonical = evolve(self, idempotency_key=None, shipping_charge=self.shipping)
        data = dumps(canonical)
        if self.billing_address is None:  # digests of requests without one stay as they were
            data = data.replace(',"billing_address":null', "")
        return hashlib.sha256(data.encode()).hexdigest()

    @classmethod
    def from_json(cls, text: str | bytes) -> PlaceOrder:
        """Build from untrusted JSON (a web form), strictly.

        Raises as :func:`~orderkit.serialization.loads_untrusted` does.
        """
        return loads_untrusted(text, cls)


def _return_lines(value: object) -> tuple[ReturnLine, ...]:
    lines = tuple(value) if isinstance(value, (list, tuple)) else ()
    if not lines or not all(isinstance(line, ReturnLine) for line in lines):
        raise InvalidField("must be a non-empty list of ReturnLine", field="lines", value=value)
    return lines


@frozen
class RequestReturn:
    """A customer's return request for ``order_id``, as a web form sends it: build it from
    untrusted JSON with :meth:`from_json` and pass it to ``shop.returns.submit``."""

    order_id: str = field(validator=text(MAX_ID_LENGTH))
    lines: tuple[ReturnLine, ...] = field(converter=_return_lines)

    @classmethod
    def from_json(cls, text: str | bytes) -> RequestReturn:
        """Build from untrusted JSON (``{"order_id": ..., "lines": [{"line_id": ...,
        "quantity": ..., "reason": ..., "note": ...}]}``), strictly: unknown keys, wrong
        types, oversized text and non-positive quantities are refused with a typed error.
        """
        return loads_untrusted(text, cls)
