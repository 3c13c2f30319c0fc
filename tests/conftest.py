"""Shared fixtures: a fresh in-memory shop and one valid order, as a command and as JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orderkit import Address, Customer, LineItem, Money, PlaceOrder, Shop, ShopSettings
from orderkit.adapters.memory import ManualClock, SequentialIds
from orderkit.serialization import dumps


@pytest.fixture
def shop() -> Shop:
    """A shop on a fresh memory store, with a manual clock (2026-01-05 09:00 UTC, a Monday).

    Stock is not tracked here: these fixtures serve the order tests; the inventory
    tests make shops that track stock."""
    return Shop.open(
        "memory://",
        clock=ManualClock(),
        ids=SequentialIds(),
        settings=ShopSettings(track_stock=False),
    )


@pytest.fixture
def place_command() -> PlaceOrder:
    """A valid two-line EUR order with a discount, tax and a shipping charge.

    Totals: subtotal 2 x 9.99 + 1 x 24.50 = 44.48; discount 1.00; tax 3.61;
    shipping 4.95; total 52.04.
    """
    return PlaceOrder(
        customer=Customer(
            id="cust-ada",
            name="Ada Lovelace",
            email="ada@example.com",
            phone="+447700900123",
        ),
        shipping_address=Address(
            recipient="Ada Lovelace",
            line1="12 Analytical Row",
            city="London",
            postal_code="N1 9GU",
            country="GB",
        ),
        lines=[
            LineItem(
                line_id="L1",
                sku="SKU-1",
                name="Widget",
                quantity=2,
                unit_price=Money("9.99", "EUR"),
                discount=Money("1.00", "EUR"),
                tax=Money("3.61", "EUR"),
            ),
            LineItem(
                line_id="L2",
                sku="SKU-2",
                name="Gadget",
                quantity=1,
                unit_price=Money("24.50", "EUR"),
            ),
        ],
        payment_token="tok_visa_1a2b3c",
        shipping_charge=Money("4.95", "EUR"),
    )


@pytest.fixture
def valid_payload(place_command: PlaceOrder) -> dict[str, Any]:
    """The JSON document of ``place_command`` as a dict (money as ``{"amount", "currency"}``)."""
    payload: dict[str, Any] = json.loads(dumps(place_command))
    assert payload["lines"][0]["unit_price"] == {"amount": "9.99", "currency": "EUR"}
    return payload


@pytest.fixture
def pg_url() -> Any:
    """A PostgreSQL URL on a fresh schema of its own, dropped afterwards (see tests/pg.py)."""
    import pg

    base = pg.base_url()
    schema, url = pg.new_schema(base)
    yield url
    pg.drop_schema(base, schema)


@pytest.fixture(autouse=True)
def _reap_children() -> Any:
    """Kill any child process a test (failed or not) left running (tests/children.py)."""
    import children

    yield
    children.reap()
