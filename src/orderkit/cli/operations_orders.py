"""``orderkit orders``: list, show (with payments, line progress, shipments, returns and
history), hold, release, cancel and acknowledge orders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table

import orderkit as ok
from orderkit.cli import main
from orderkit.cli.operations import EXIT_CODES, Operator, operation
from orderkit.cli.output import data, facts, history_data, money, table, when

__all__ = ["orders", "shipments_table", "units_text"]


@main.group(epilog=EXIT_CODES)
def orders() -> None:
    """Find, inspect and move orders by hand."""


def _summary(order: ok.Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "state": order.state,
        "customer_id": order.customer.id,
        "channel": order.channel.value,
        "placed_at": order.placed_at.isoformat(),
        "total": data(order.totals.total),
        "holds": [hold.reason for hold in order.holds],
        "promised_delivery": when(order.promised_delivery) if order.promised_delivery else None,
    }


@orders.command("list")
@click.option("--state", default=None, help="Only orders in this state (such as acknowledged).")
@click.option("--customer", "customer_id", default=None, help="Only this customer's orders.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--offset", default=0, show_default=True, type=click.IntRange(min=0))
@operation()
def list_orders(
    op: Operator,
    shop: ok.Shop,
    state: str | None,
    customer_id: str | None,
    limit: int,
    offset: int,
) -> None:
    """Orders, oldest first, a page at a time."""
    states = shop.settings.order_lifecycle.states
    if state is not None and state not in states:
        raise ok.InvalidField(f"must be one of {', '.join(states)}", field="state", value=state)
    found = shop.orders.list(state=state, customer_id=customer_id, limit=limit, offset=offset)
    rows = [_summary(order) for order in found]

    def show(out: Console) -> None:
        out.print(
            table(
                f"{len(rows)} order(s)" + (f" from #{offset + 1}" if offset else ""),
                ["id", "placed", "customer", "state", "holds", "total", "promised"],
                [
                    (
                        order.id,
                        when(order.placed_at),
                        order.customer.id,
                        order.state,
                        ", ".join(hold.reason for hold in order.holds) or "-",
                        money(order.totals.total),
                        when(order.promised_delivery),
                    )
                    for order in found
                ],
            )
        )

    op.emit({"orders": rows, "limit": limit, "offset": offset}, show)


@orders.command("show")
@click.argument("order_id")
@operation()
def show_order(op: Operator, shop: ok.Shop, order_id: str) -> None:
    """An order: its totals, payment, where each line stands, shipments, returns and
    everything that happened to it."""
    order = shop.orders.get(order_id)
    lines = shop.orders.lines(order_id)
    payments = shop.payments.for_order(order_id)
    status = shop.payments.status(order_id)
    shipments = shop.fulfilment.shipments(order_id)
    returns = shop.returns.for_order(order_id)
    inquiries = shop.inquiries.for_order(order_id)
    history = shop.orders.history(order_id)
    expected = shop.shipping.expected_delivery(order_id)
    document = {
        "order": data(order),
        "totals": data(order.totals),
        "payment_status": status.value,
        "payments": data(list(payments)),
        "expected_delivery": when(expected) if expected else None,
        "lines": data(list(lines)),
        "shipments": data(list(shipments)),
        "returns": data(list(returns)),
        "inquiries": [{"id": i.id, "state": i.state, "subject": i.subject} for i in inquiries],
        "history": history_data(history),
    }

    def show(out: Console) -> None:
        address = order.shipping_address
        rows_of_facts = [
            (
                "state",
                order.state
                + (" (exchange for " + order.exchange_for + ")" if order.exchange_for else ""),
            ),
            ("customer", f"{order.customer.id}: {order.customer.name} <{order.customer.email}>"),
            (
                "ship to",
                f"{address.recipient}, {address.line1}, {address.postal_code} "
                f"{address.city}, {address.country}",
            ),
            ("channel", order.channel.value),
            ("placed", when(order.placed_at)),
            ("promised", when(order.promised_delivery)),
            ("expected", when(expected)),
            ("holds", "; ".join(f"{h.reason} {h.note}".strip() for h in order.holds) or "-"),
            ("payment", status.value),
        ]
        if order.cancellation_reason:
            rows_of_facts.append(("cancelled", order.cancellation_reason))
        out.print(facts(f"Order {order.id}", rows_of_facts))
        totals = order.totals
        out.print(
            table(
                "Totals",
                ["subtotal", "discount", "tax", "shipping", "total"],
                [
                    [
                        money(totals.subtotal),
                        money(totals.discount),
                        money(totals.tax),
                        money(totals.shipping),
                        money(totals.total),
                    ]
                ],
            )
        )
        names = {line.line_id: line.name for line in order.lines}
        out.print(
            table(
                "Lines",
                [
                    "line",
                    "sku",
                    "name",
                    "ordered",
                    "cancelled",
                    "allocated",
                    "shipped",
                    "delivered",
                    "returning",
                    "returned",
                ],
                [
                    (
                        p.line_id,
                        p.sku,
                        names.get(p.line_id, ""),
                        p.ordered,
                        p.cancelled,
                        p.allocated,
                        p.shipped,
                        p.delivered,
                        p.returning,
                        p.returned,
                    )
                    for p in lines
                ],
            )
        )
        for payment in payments:
            out.print(
                f"Payment {payment.id}: {payment.status.value}; authorized "
                f"{payment.authorized}, captured {payment.captured}, refunded {payment.refunded}"
            )
        if shipments:
            out.print(shipments_table(shipments))
        if returns:
            out.print(
                table(
                    "Returns",
                    ["return id", "state", "units", "due", "refunded"],
                    [
                        (
                            r.id,
                            r.state,
                            units_text(r.units()),
                            money(r.amount_due),
                            money(r.amount_refunded),
                        )
                        for r in returns
                    ],
                )
            )
        if inquiries:
            out.print(
                table(
                    "Inquiries",
                    ["inquiry id", "state", "subject"],
                    [(i.id, i.state, i.subject) for i in inquiries],
                )
            )
        out.print(
            table(
                "History", ["seq", "at", "what"], [(h.seq, when(h.at), h.summary) for h in history]
            )
        )

    op.emit(document, show)


def shipments_table(shipments: Sequence[ok.Shipment]) -> Table:
    """The shipments of an order: where from, what, how far, with which carrier."""
    return table(
        "Shipments",
        ["shipment id", "from", "units", "state", "carrier", "tracking", "eta"],
        [
            (
                s.id,
                s.location,
                units_text(s.units()),
                s.state + (f" ({s.problem})" if s.problem else ""),
                f"{s.rate.carrier} {s.rate.service}" if s.rate else "-",
                s.tracking_number or "-",
                when(s.eta),
            )
            for s in shipments
        ],
    )


def units_text(units: dict[str, int]) -> str:
    """``2 x L1, 1 x L2``: units per order line."""
    return ", ".join(f"{count} x {line_id}" for line_id, count in units.items()) or "-"


def _changed(op: Operator, order: ok.Order, said: str) -> None:
    holds = ", ".join(hold.reason for hold in order.holds)
    op.emit(
        {"order": data(order), "totals": data(order.totals)},
        lambda out: out.print(
            f"Order {order.id} {said}; it is {order.state}"
            + (f", on hold for {holds}" if holds else "")
            + "."
        ),
    )


@orders.command("hold")
@click.argument("order_id")
@click.option("--reason", required=True, help="Why, as a short code (such as manual_review).")
@click.option("--note", default="", help="A note for whoever releases it.")
@operation(writes=True)
def hold_order(op: Operator, shop: ok.Shop, order_id: str, reason: str, note: str) -> None:
    """Hold an order: fulfilment waits until the hold is released."""
    _changed(op, shop.orders.hold(order_id, reason, note), f"held for {reason}")


@orders.command("release")
@click.argument("order_id")
@click.option("--reason", required=True, help="The reason of the hold to lift.")
@operation(writes=True)
def release_order(op: Operator, shop: ok.Shop, order_id: str, reason: str) -> None:
    """Lift an order's hold for a reason."""
    _changed(op, shop.orders.release(order_id, reason), f"released from {reason}")


@orders.command("cancel")
@click.argument("order_id")
@click.option("--reason", required=True, help="Why; recorded on the order.")
@operation(writes=True)
def cancel_order(op: Operator, shop: ok.Shop, order_id: str, reason: str) -> None:
    """Cancel an order before anything has shipped: its stock is released, its shipments
    not yet handed over are cancelled, and its payment is voided or refunded by the
    shop's payment policies."""
    _changed(op, shop.orders.cancel(order_id, reason), "cancelled")


@orders.command("acknowledge")
@click.argument("order_id")
@operation(writes=True)
def acknowledge_order(op: Operator, shop: ok.Shop, order_id: str) -> None:
    """Confirm an order to the customer, with a promised delivery date."""
    order = shop.orders.acknowledge(order_id)
    _changed(op, order, f"acknowledged, delivery promised by {when(order.promised_delivery)}")
