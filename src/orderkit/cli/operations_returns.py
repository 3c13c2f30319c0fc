"""``orderkit returns``: the returns desk. List and show returns, approve or reject them,
receive the parcel, inspect it (restock or write off) and refund."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

import orderkit as ok
from orderkit.cli import main
from orderkit.cli.operations import EXIT_CODES, Operator, operation
from orderkit.cli.operations_orders import units_text
from orderkit.cli.output import data, facts, money, table, when

__all__ = ["returns"]


@main.group(epilog=EXIT_CODES)
def returns() -> None:
    """Handle the returns customers asked for."""


@returns.command("list")
@click.option("--state", default=None, help="Only returns in this state (received: to inspect).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--offset", default=0, show_default=True, type=click.IntRange(min=0))
@operation()
def list_returns(op: Operator, shop: ok.Shop, state: str | None, limit: int, offset: int) -> None:
    """Returns, oldest first, a page at a time."""
    found = shop.returns.list(state=state, limit=limit, offset=offset)
    rows = [
        {
            "id": r.id,
            "order_id": r.order_id,
            "state": r.state,
            "created_at": r.created_at.isoformat(),
            "units": r.units(),
            "reasons": sorted({line.reason for line in r.lines}),
            "amount_due": data(r.amount_due),
            "amount_refunded": data(r.amount_refunded),
        }
        for r in found
    ]

    def show(out: Console) -> None:
        out.print(
            table(
                f"{len(rows)} return(s)",
                ["id", "order id", "requested", "state", "units", "reasons", "due"],
                [
                    (
                        r.id,
                        r.order_id,
                        when(r.created_at),
                        r.state,
                        units_text(r.units()),
                        ", ".join(sorted({line.reason for line in r.lines})),
                        money(r.amount_due),
                    )
                    for r in found
                ],
            )
        )

    op.emit({"returns": rows, "limit": limit, "offset": offset}, show)


def _quote(shop: ok.Shop, request: ok.ReturnRequest) -> ok.RefundQuote | None:
    """What refunding would come to, once the units are inspected (or the decided sum)."""
    if request.state != "inspected" and request.resolution != "refund":
        return None
    return shop.returns.quote_refund(request.id)


@returns.command("show")
@click.argument("return_id")
@operation()
def show_return(op: Operator, shop: ok.Shop, return_id: str) -> None:
    """A return: its lines and reasons, what was received and inspected, and what a
    refund comes to."""
    request = shop.returns.get(return_id)
    quote = _quote(shop, request)
    document = {"return": data(request), "refund_quote": data(quote)}

    def show(out: Console) -> None:
        rows_of_facts = [
            ("order", request.order_id),
            ("state", request.state),
            ("requested", when(request.created_at)),
            ("instructions", request.instructions or "-"),
            ("received", units_text(request.received_units()) if request.received else "-"),
            ("restocked", units_text(request.restocked_units()) if request.inspections else "-"),
            (
                "written off",
                units_text(request.written_off_units()) if request.inspections else "-",
            ),
            ("resolution", request.resolution or "-"),
            ("amount due", money(request.amount_due)),
            ("amount refunded", money(request.amount_refunded)),
        ]
        if request.rejection_reason:
            rows_of_facts.append(("rejected", request.rejection_reason))
        if request.exchange_order_id:
            rows_of_facts.append(("exchange order", request.exchange_order_id))
        out.print(facts(f"Return {request.id}", rows_of_facts))
        out.print(
            table(
                "Lines",
                ["line", "qty", "reason", "note"],
                [
                    (line.line_id, line.quantity, line.reason, line.note or "-")
                    for line in request.lines
                ],
            )
        )
        if quote is not None:
            out.print(
                f"Refund: items {quote.items} - restocking fee {quote.restocking_fee} "
                f"+ shipping {quote.shipping} = {quote.due}"
            )

    op.emit(document, show)


def _changed(op: Operator, request: ok.ReturnRequest, said: str, **extra: Any) -> None:
    op.emit(
        {"return": data(request), **extra},
        lambda out: out.print(f"Return {request.id} {said}; it is {request.state}."),
    )


@returns.command("approve")
@click.argument("return_id")
@click.option(
    "--instructions", default=None, help="What the customer is told to do [default: the shop's]."
)
@operation(writes=True)
def approve_return(op: Operator, shop: ok.Shop, return_id: str, instructions: str | None) -> None:
    """Approve a return; the customer is sent the instructions."""
    _changed(op, shop.returns.approve(return_id, instructions), "approved")


@returns.command("reject")
@click.argument("return_id")
@click.option("--reason", required=True, help="Why; the customer is told.")
@operation(writes=True)
def reject_return(op: Operator, shop: ok.Shop, return_id: str, reason: str) -> None:
    """Reject a return; the customer is told why."""
    _changed(op, shop.returns.reject(return_id, reason), "rejected")


@returns.command("receive")
@click.argument("return_id")
@operation(writes=True)
def receive_return(op: Operator, shop: ok.Shop, return_id: str) -> None:
    """The returned parcel arrived with every unit asked for."""
    request = shop.returns.receive(return_id)
    _changed(op, request, f"received ({units_text(request.received_units())})")


@returns.command("inspect")
@click.argument("return_id")
@click.option(
    "--location", default=None, help="Restock here [default: where each line shipped from]."
)
@operation(writes=True)
def inspect_return(op: Operator, shop: ok.Shop, return_id: str, location: str | None) -> None:
    """Inspect the received units the default way: those returned as damaged or
    defective are written off, the rest go back on hand."""
    request = shop.returns.inspect(return_id, None, location=location)
    said = (
        f"inspected: restocked {units_text(request.restocked_units())}, "
        f"written off {units_text(request.written_off_units())}"
    )
    _changed(op, request, said)


@returns.command("refund")
@click.argument("return_id")
@click.option(
    "--refund-shipping", is_flag=True, help="Refund the order's shipping charge too (once)."
)
@operation(writes=True)
def refund_return(op: Operator, shop: ok.Shop, return_id: str, refund_shipping: bool) -> None:
    """Settle an inspected return by a refund and close it. With the shop's gateway
    (--shop) the money is paid back; without one, the amount due is recorded for you to
    pay by other means."""
    request = shop.returns.get(return_id)
    settled = request.state in ("refunded", "closed") and request.resolution == "refund"
    if not settled and not op.configured and shop.payments.for_order(request.order_id):
        # without the gateway the refund would close with nothing paid back
        raise ok.ReturnError(
            f"order {request.order_id} was paid through a payment gateway: refund with "
            "--shop MODULE:CALLABLE so the money goes back through it"
        )
    request = shop.returns.refund(return_id, refund_shipping=refund_shipping)
    said = f"refunded: {money(request.amount_due)} due, {money(request.amount_refunded)} paid"
    _changed(op, request, said)
