"""Hypothesis strategies for every orderkit command, value object and aggregate.

Use them in your own property tests, to feed your adapters, your handlers or your
extensions with valid data::

    from hypothesis import given
    from orderkit.testing import strategies as oks

    @given(oks.place_order_commands(), oks.payments(state="captured"))
    def test_my_checkout(command, payment): ...

Every strategy draws objects that are valid by orderkit's own rules and round-trip
through :func:`orderkit.serialization.dumps` and :func:`~orderkit.serialization.loads`
(commands also through their strict ``from_json``). Aggregates are built the way the
shop builds them, by their factory and their own methods, never by setting fields, so
each keeps its invariants and carries the events of its history in ``pending_events``.

* Commands: :func:`place_order_commands`, :func:`request_return_commands`.
* Values: :func:`money`, :func:`currencies`, :func:`customers`, :func:`addresses`,
  :func:`line_items`, :func:`holds`, :func:`return_lines`, :func:`inspections`,
  :func:`replacements`, :func:`locations`, :func:`parcels`, :func:`rates`,
  :func:`labels`, :func:`tracking_events`, :func:`gateway_authorizations`,
  :func:`gateway_captures`, :func:`gateway_voids`, :func:`gateway_refunds`,
  :func:`payment_gateway_events`, :func:`notifications`; and the building blocks
  :func:`identifiers`, :func:`names`, :func:`email_addresses`, :func:`phone_numbers`,
  :func:`aware_datetimes`, :func:`inquiry_texts`, :func:`decimal_rates`.
* Aggregates, in a given state of their lifecycle or any: :func:`orders` (freshly
  placed), :func:`orders_in_state`, :func:`payments`, :func:`shipments`,
  :func:`return_requests`, :func:`inquiries`, :func:`stock_items`.

Needs ``hypothesis`` (the ``test`` extra).
"""

from orderkit.testing._aggregate_strategies import (
    inquiries,
    orders_in_state,
    payments,
    return_requests,
    shipments,
    stock_items,
)
from orderkit.testing._value_strategies import (
    LOCALES,
    NOTIFICATION_KINDS,
    addresses,
    aware_datetimes,
    currencies,
    customers,
    decimal_rates,
    email_addresses,
    gateway_authorizations,
    gateway_captures,
    gateway_refunds,
    gateway_voids,
    holds,
    identifiers,
    inquiry_texts,
    inspections,
    labels,
    line_items,
    locations,
    money,
    names,
    notifications,
    orders,
    parcels,
    payment_gateway_events,
    phone_numbers,
    place_order_commands,
    rates,
    replacements,
    request_return_commands,
    return_lines,
    tracking_events,
)

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
    "inquiries",
    "inquiry_texts",
    "inspections",
    "labels",
    "line_items",
    "locations",
    "money",
    "names",
    "notifications",
    "orders",
    "orders_in_state",
    "parcels",
    "payment_gateway_events",
    "payments",
    "phone_numbers",
    "place_order_commands",
    "rates",
    "replacements",
    "request_return_commands",
    "return_lines",
    "return_requests",
    "shipments",
    "stock_items",
    "tracking_events",
]
