"""Untrusted order JSON is rejected with a typed, readable error, and nothing happens.

The path under test is the one a web layer uses: ``PlaceOrder.from_json(text)``
followed by ``shop.orders.place(command)``. Each case below changes one thing in a
valid payload. For every rejected input we check that the error is an
``InvalidInput`` of the right class, that ``err.field`` names the path of the bad
value, that the message names that field (and shows no Python internals), and that
no order was stored, no event dispatched and no notification sent.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

import orderkit as ok
from orderkit import (
    Address,
    CardNumberRejected,
    CurrencyMismatch,
    Customer,
    DomainEvent,
    DuplicateLineId,
    InvalidField,
    InvalidInput,
    InvalidMoney,
    InvalidPayload,
    InvalidQuantity,
    MissingField,
    NonFiniteNumber,
    OrderkitError,
    PlaceOrder,
    Shop,
    TooManyLines,
    UnknownField,
    ValueTooLong,
    WrongType,
)
from orderkit.serialization import MAX_PAYLOAD_BYTES

Payload = dict[str, Any]
MakeText = Callable[[Payload], str]

_RAW = "__raw_json_placeholder__"


def _set(payload: Payload, path: tuple[str | int, ...], value: object) -> None:
    target: Any = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def with_value(*path: str | int, value: object) -> MakeText:
    """The payload with the value at ``path`` replaced by ``value``."""

    def make(payload: Payload) -> str:
        changed = copy.deepcopy(payload)
        _set(changed, path, value)
        return json.dumps(changed)

    return make


def with_raw(*path: str | int, raw: str) -> MakeText:
    """The payload with the value at ``path`` replaced by raw JSON text (NaN, 9.99 ...)."""

    def make(payload: Payload) -> str:
        changed = copy.deepcopy(payload)
        _set(changed, path, _RAW)
        text = json.dumps(changed)
        assert text.count(f'"{_RAW}"') == 1
        return text.replace(f'"{_RAW}"', raw)

    return make


def without(*path: str | int) -> MakeText:
    """The payload with the key at ``path`` removed."""

    def make(payload: Payload) -> str:
        changed = copy.deepcopy(payload)
        target: Any = changed
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
        return json.dumps(changed)

    return make


def changed_by(change: Callable[[Payload], None]) -> MakeText:
    """The payload after ``change`` (which edits a deep copy in place)."""

    def make(payload: Payload) -> str:
        changed = copy.deepcopy(payload)
        change(changed)
        return json.dumps(changed)

    return make


def text_of(text: str) -> MakeText:
    """Fixed text, whatever the valid payload is."""
    return lambda _payload: text


def _many_lines(payload: Payload) -> None:
    line = payload["lines"][0]
    payload["lines"] = [dict(copy.deepcopy(line), line_id=f"L{n}") for n in range(101)]


def _duplicate_line_id(payload: Payload) -> None:
    payload["lines"][1]["line_id"] = payload["lines"][0]["line_id"]


def _second_line_in_usd(payload: Payload) -> None:
    for money in ("unit_price", "discount", "tax"):
        payload["lines"][1][money]["currency"] = "USD"


def _sms_without_phone(payload: Payload) -> None:
    payload["customer"]["phone"] = None
    payload["customer"]["preferred_contact"] = "sms"


def _duplicate_top_level_key(payload: Payload) -> str:
    text = json.dumps(payload)
    assert text.endswith("}")
    return text[:-1] + ', "payment_token": "tok_other"}'


def _duplicate_key_in_line(payload: Payload) -> str:
    text = json.dumps(payload)
    assert text.count('"sku": "SKU-1"') == 1
    return text.replace('"sku": "SKU-1"', '"sku": "SKU-1", "sku": "SKU-9"')


def _oversized(payload: Payload) -> str:
    text = with_value("lines", 0, "name", value="x" * MAX_PAYLOAD_BYTES)(payload)
    assert len(text.encode()) > MAX_PAYLOAD_BYTES
    return text


def _in_usd(payload: Payload) -> str:
    changed = copy.deepcopy(payload)
    for line in changed["lines"]:
        for money in ("unit_price", "discount", "tax"):
            line[money]["currency"] = "USD"
    changed["shipping_charge"]["currency"] = "USD"
    return json.dumps(changed)


CARD = "4242 4242 4242 4242"

# (id, how to make the text, expected error class, expected err.field, a word the message
#  must contain when there is no field to name)
CASES = [
    ("unknown-key-top-level", with_value("coupon", value="FREE"), UnknownField, "coupon", None),
    (
        "unknown-key-in-line",
        with_value("lines", 0, "colour", value="red"),
        UnknownField,
        "lines[0].colour",
        None,
    ),
    ("number-for-text", with_value("lines", 0, "name", value=42), WrongType, "lines[0].name", None),
    (
        "string-for-quantity",
        with_value("lines", 0, "quantity", value="2"),
        WrongType,
        "lines[0].quantity",
        None,
    ),
    (
        "bool-for-quantity",
        with_value("lines", 0, "quantity", value=True),
        WrongType,
        "lines[0].quantity",
        None,
    ),
    (
        "fraction-for-quantity",
        with_raw("lines", 0, "quantity", raw="2.5"),
        WrongType,
        "lines[0].quantity",
        None,
    ),
    ("list-for-customer", with_value("customer", value=["Ada"]), WrongType, "customer", None),
    (
        "nan",
        with_raw("lines", 0, "quantity", raw="NaN"),
        NonFiniteNumber,
        "lines[0].quantity",
        None,
    ),
    (
        "infinity",
        with_raw("lines", 0, "quantity", raw="Infinity"),
        NonFiniteNumber,
        "lines[0].quantity",
        None,
    ),
    (
        "minus-infinity",
        with_raw("lines", 0, "quantity", raw="-Infinity"),
        NonFiniteNumber,
        "lines[0].quantity",
        None,
    ),
    (
        "float-for-money-amount",
        with_raw("lines", 0, "unit_price", "amount", raw="9.99"),
        InvalidMoney,
        "lines[0].unit_price.amount",
        None,
    ),
    (
        "negative-quantity",
        with_value("lines", 0, "quantity", value=-1),
        InvalidQuantity,
        "lines[0].quantity",
        None,
    ),
    (
        "zero-quantity",
        with_value("lines", 0, "quantity", value=0),
        InvalidQuantity,
        "lines[0].quantity",
        None,
    ),
    (
        "too-large-quantity",
        with_value("lines", 0, "quantity", value=10_001),
        InvalidQuantity,
        "lines[0].quantity",
        None,
    ),
    (
        "line-name-over-200",
        with_value("lines", 0, "name", value="n" * 201),
        ValueTooLong,
        "lines[0].name",
        None,
    ),
    (
        "customer-name-over-200",
        with_value("customer", "name", value="n" * 201),
        ValueTooLong,
        "customer.name",
        None,
    ),
    (
        "sku-over-64",
        with_value("lines", 1, "sku", value="S" * 65),
        ValueTooLong,
        "lines[1].sku",
        None,
    ),
    (
        "note-sized-address-line-over-1000",
        with_value("shipping_address", "line2", value="a" * 1001),
        ValueTooLong,
        "shipping_address.line2",
        None,
    ),
    (
        "note-sized-payment-token-over-1000",
        with_value("payment_token", value="t" * 1001),
        ValueTooLong,
        "payment_token",
        None,
    ),
    ("more-than-100-lines", changed_by(_many_lines), TooManyLines, "lines", None),
    (
        "duplicate-line-id",
        changed_by(_duplicate_line_id),
        DuplicateLineId,
        "lines[1].line_id",
        None,
    ),
    (
        "card-number-as-payment-token",
        with_value("payment_token", value=CARD),
        CardNumberRejected,
        "payment_token",
        None,
    ),
    (
        "mixed-currencies-across-lines",
        changed_by(_second_line_in_usd),
        CurrencyMismatch,
        "lines[1].unit_price",
        None,
    ),
    ("missing-top-level-key", without("payment_token"), MissingField, "payment_token", None),
    (
        "missing-key-in-line",
        without("lines", 0, "quantity"),
        MissingField,
        "lines[0].quantity",
        None,
    ),
    (
        "duplicate-json-key-top-level",
        _duplicate_top_level_key,
        InvalidPayload,
        "payment_token",
        None,
    ),
    ("duplicate-json-key-in-line", _duplicate_key_in_line, InvalidPayload, "lines[0].sku", None),
    ("invalid-json", text_of('{"customer": '), InvalidPayload, None, "JSON"),
    ("payload-over-max-bytes", _oversized, InvalidPayload, None, str(MAX_PAYLOAD_BYTES)),
    ("top-level-array", text_of("[]"), WrongType, None, "JSON object"),
    (
        "unknown-sales-channel",
        with_value("channel", value="fax"),
        InvalidPayload,
        "channel",
        None,
    ),
    (
        "bad-email",
        with_value("customer", "email", value="ada-at-example.com"),
        InvalidField,
        "customer.email",
        None,
    ),
    (
        "bad-country-code",
        with_value("shipping_address", "country", value="Great Britain"),
        InvalidField,
        "shipping_address.country",
        None,
    ),
    (
        "sms-preference-without-phone",
        changed_by(_sms_without_phone),
        InvalidField,
        "customer.preferred_contact",
        None,
    ),
    ("order-not-in-shop-currency", _in_usd, CurrencyMismatch, "currency", None),
]

# what a shop owner must never have to read in an error message
PYTHON_INTERNALS = (
    "AttributeError",
    "ValueError",
    "TypeError",
    "KeyError",
    "Traceback",
    "_JsonFloat",
    "object has no attribute",
)


@pytest.fixture
def dispatched(shop: Shop) -> list[DomainEvent]:
    """Every event the shop dispatches."""
    events: list[DomainEvent] = []
    shop.subscribe(DomainEvent, events.append)
    return events


def place_json(shop: Shop, text: str) -> InvalidInput:
    """Run the strict path and return the InvalidInput it raised."""
    with pytest.raises(InvalidInput) as info:
        shop.orders.place(PlaceOrder.from_json(text))
    return info.value


def assert_nothing_happened(shop: Shop, dispatched: list[DomainEvent]) -> None:
    assert shop.orders.list() == []
    assert dispatched == []
    assert shop.notifier.sent == []


@pytest.mark.parametrize(
    ("make_text", "error_class", "field", "message_word"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_rejected_input(
    shop: Shop,
    dispatched: list[DomainEvent],
    valid_payload: Payload,
    make_text: MakeText,
    error_class: type[InvalidInput],
    field: str | None,
    message_word: str | None,
) -> None:
    # the unchanged payload is accepted, so the one change is what gets rejected
    assert PlaceOrder.from_json(json.dumps(valid_payload)).currency == "EUR"

    err = place_json(shop, make_text(valid_payload))

    assert_nothing_happened(shop, dispatched)
    assert isinstance(err, OrderkitError)
    assert isinstance(err, InvalidInput)
    assert type(err) is error_class, f"{type(err).__name__}: {err}"
    assert err.field == field, str(err)
    message = str(err)
    if field is not None:
        assert field in message
    else:
        assert message_word is not None
        assert message_word in message
    assert not [word for word in PYTHON_INTERNALS if word in message], message
    assert len(message) < 300  # a huge rejected value is never echoed whole


def test_every_listed_case_has_a_distinct_id() -> None:
    ids = [case[0] for case in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    "card",
    [CARD, "4242424242424242", "4242-4242-4242-4242", "5555 5555 5555 4444"],
)
def test_card_number_never_echoed(
    shop: Shop, dispatched: list[DomainEvent], valid_payload: Payload, card: str
) -> None:
    err = place_json(shop, with_value("payment_token", value=card)(valid_payload))

    assert type(err) is CardNumberRejected
    assert err.field == "payment_token"
    digits = card.replace(" ", "").replace("-", "")
    for shown in (str(err), repr(err), str(err.value)):
        assert card not in shown
        assert digits not in shown.replace(" ", "").replace("-", "")
    assert_nothing_happened(shop, dispatched)


def test_card_number_sent_as_json_number_is_not_echoed(
    shop: Shop, dispatched: list[DomainEvent], valid_payload: Payload
) -> None:
    err = place_json(shop, with_raw("payment_token", raw="4242424242424242")(valid_payload))

    assert err.field == "payment_token"
    assert "4242424242424242" not in str(err)
    assert "4242424242424242" not in repr(err)
    # nor in ``value``, which a web layer echoes next to the field
    assert "4242424242424242" not in str(err.value)
    assert_nothing_happened(shop, dispatched)


def test_card_number_rejected_when_command_built_in_python(place_command: PlaceOrder) -> None:
    with pytest.raises(CardNumberRejected) as info:
        PlaceOrder(
            customer=place_command.customer,
            shipping_address=place_command.shipping_address,
            lines=place_command.lines,
            payment_token=CARD,
        )
    assert CARD not in str(info.value)
    assert CARD not in repr(info.value)


def test_rejected_order_does_not_claim_its_idempotency_key(
    shop: Shop, dispatched: list[DomainEvent], valid_payload: Payload
) -> None:
    payload = dict(valid_payload, idempotency_key="checkout-7")
    err = place_json(shop, _in_usd(payload))
    assert type(err) is CurrencyMismatch
    assert_nothing_happened(shop, dispatched)

    # the same key now works for a valid (different) request
    order = shop.orders.place(PlaceOrder.from_json(json.dumps(payload)))
    assert order.idempotency_key == "checkout-7"
    assert [o.id for o in shop.orders.list()] == [order.id]


PRIVATE = ("Ada Lovelace", "ada@example.com", "+447700900123", "12 Analytical Row", "N1 9GU")


def test_customer_repr_is_redacted() -> None:
    customer = Customer(
        id="cust-ada", name="Ada Lovelace", email="ada@example.com", phone="+447700900123"
    )
    shown = repr(customer)
    assert "cust-ada" in shown  # the id is not personal data and helps debugging
    for secret in PRIVATE:
        assert secret not in shown


def test_address_repr_is_redacted() -> None:
    address = Address(
        recipient="Ada Lovelace",
        line1="12 Analytical Row",
        line2="Flat 3",
        city="London",
        postal_code="N1 9GU",
        country="GB",
        region="Greater London",
    )
    shown = repr(address)
    assert "GB" in shown
    for secret in (*PRIVATE, "Flat 3", "London"):
        assert secret not in shown


def test_order_and_command_repr_are_redacted(shop: Shop, place_command: PlaceOrder) -> None:
    order = shop.orders.place(place_command)
    for shown in (repr(order), repr(place_command), repr(shop.orders.get(order.id))):
        assert order.id in shown or "PlaceOrder" in shown
        for secret in (*PRIVATE, "London", place_command.payment_token):
            assert secret not in shown


def test_valid_payload_is_accepted(
    shop: Shop, dispatched: list[DomainEvent], valid_payload: Payload, place_command: PlaceOrder
) -> None:
    # the control for every case above: unchanged, the payload places exactly one order
    command = PlaceOrder.from_json(json.dumps(valid_payload))
    assert command == place_command
    order = shop.orders.place(command)
    assert [o.id for o in shop.orders.list()] == [order.id]
    assert [type(event).__name__ for event in dispatched] == ["OrderPlaced"]


@pytest.mark.parametrize(
    "token", ["4111.1111.1111.1111", "4111_1111_1111_1111", "4111/1111/1111/1111"]
)
def test_card_numbers_with_any_separator_are_refused_as_tokens(token: str) -> None:
    with pytest.raises(ok.CardNumberRejected) as caught:
        ok.domain.values.check_payment_token(token)
    assert token not in str(caught.value) + repr(caught.value)


def test_order_place_itself_refuses_a_card_number_token() -> None:
    from orderkit.testing.contracts import make_order

    template = make_order("o-1")
    with pytest.raises(ok.CardNumberRejected):
        ok.Order.place(
            order_id="o-2",
            customer=template.customer,
            shipping_address=template.shipping_address,
            channel=template.channel,
            currency="EUR",
            lines=template.lines,
            shipping_charge=template.shipping_charge,
            payment_token="4111111111111111",
            placed_at=template.placed_at,
        )


@pytest.mark.parametrize(
    "note", ["card 4242 4242 4242 4242 exp 12/29", "amex 3782 822463 10005", "4111-1111-1111-1111"]
)
def test_card_numbers_in_free_text_are_refused_and_nothing_is_stored(
    shop: ok.Shop, place_command: ok.PlaceOrder, note: str
) -> None:
    order = shop.orders.place(place_command)
    with pytest.raises(ok.CardNumberRejected):
        shop.orders.hold(order.id, "manual_review", note=note)
    with pytest.raises(ok.CardNumberRejected):
        shop.orders.cancel(order.id, note)
    with pytest.raises(ok.CardNumberRejected):
        ok.Address("Ann", note, "Berlin", "10115", "DE")
    stored = shop.orders.get(order.id)
    assert (stored.version, stored.holds, stored.state) == (1, (), "placed")


@pytest.mark.parametrize("text", ["order 2026-01-05 12:30", "ref 1234 5678", "tel +49 30 1234567"])
def test_ordinary_numbers_in_free_text_are_accepted(
    shop: ok.Shop, place_command: ok.PlaceOrder, text: str
) -> None:
    order = shop.orders.place(place_command)
    assert shop.orders.hold(order.id, "manual_review", note=text).holds[0].note == text
