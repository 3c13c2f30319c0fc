"""A return request from a web form: untrusted JSON, structured strictly, nothing stored
when it is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orderkit as ok
from orderkit.errors import InvalidInput, MissingField, UnknownField, WrongType


def _form(**changes: Any) -> dict[str, Any]:
    line = {"line_id": "L1", "quantity": 1, "reason": "damaged", "note": "dented"}
    line.update(changes)
    return {"order_id": "order-1", "lines": [line]}


def test_a_valid_form_becomes_a_command() -> None:
    command = ok.RequestReturn.from_json(json.dumps(_form()))
    assert command == ok.RequestReturn("order-1", (ok.ReturnLine("L1", 1, "damaged", "dented"),))


@pytest.mark.parametrize(
    ("form", "error", "field"),
    [
        (_form(quantity=0), ok.InvalidQuantity, "lines[0].quantity"),
        (_form(quantity=-2), ok.InvalidQuantity, "lines[0].quantity"),
        (_form(quantity=1.5), WrongType, "lines[0].quantity"),
        (_form(quantity="1"), WrongType, "lines[0].quantity"),
        (_form(reason="meh"), ok.InvalidField, "lines[0].reason"),
        (_form(extra=True), UnknownField, "lines[0].extra"),
        (_form(note="x" * 5000), ok.ValueTooLong, "lines[0].note"),
        ({"order_id": "order-1", "lines": []}, ok.InvalidField, "lines"),
        ({"order_id": "order-1"}, MissingField, "lines"),
        ({"order_id": "", "lines": _form()["lines"]}, ok.InvalidField, "order_id"),
    ],
)
def test_bad_forms_are_refused_naming_the_field(
    form: dict[str, Any], error: type[Exception], field: str
) -> None:
    with pytest.raises(error) as raised:
        ok.RequestReturn.from_json(json.dumps(form))
    assert getattr(raised.value, "field", None) == field


def test_nan_and_duplicate_keys_are_refused() -> None:
    with pytest.raises(InvalidInput):
        ok.RequestReturn.from_json(
            '{"order_id": "o", "lines": [{"line_id": "L1", "quantity": NaN, "reason": "damaged"}]}'
        )
    with pytest.raises(InvalidInput):
        ok.RequestReturn.from_json('{"order_id": "o", "order_id": "p", "lines": []}')


@settings(max_examples=60, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
        ),
        max_leaves=12,
    )
)
def test_any_json_is_a_command_or_a_typed_error(value: object) -> None:
    try:
        command = ok.RequestReturn.from_json(json.dumps(value))
    except ok.OrderkitError:
        return
    assert isinstance(command, ok.RequestReturn)
    assert command.lines


def test_submit_refuses_an_unknown_order_and_stores_nothing() -> None:
    with ok.Shop.open("memory://") as shop:
        with pytest.raises(ok.OrderNotFound):
            shop.returns.submit(ok.RequestReturn.from_json(json.dumps(_form())))
        assert shop.returns.list() == []
        with pytest.raises(ok.InvalidField):
            shop.returns.submit(_form())  # type: ignore[arg-type]
