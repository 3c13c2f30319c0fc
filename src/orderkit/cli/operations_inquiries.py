"""``orderkit inquiries``: the support queue. List and read customer questions and
complaints with their order's history, answer and resolve them."""

from __future__ import annotations

import click
from rich.console import Console

import orderkit as ok
from orderkit.cli import main
from orderkit.cli.operations import EXIT_CODES, Operator, operation
from orderkit.cli.operations_orders import shipments_table
from orderkit.cli.output import data, history_data, table, when

__all__ = ["inquiries"]


@main.group(epilog=EXIT_CODES)
def inquiries() -> None:
    """Answer customers' questions and complaints about their orders."""


@inquiries.command("list")
@click.option("--state", default=None, help="Only inquiries in this state (open: to answer).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--offset", default=0, show_default=True, type=click.IntRange(min=0))
@operation()
def list_inquiries(op: Operator, shop: ok.Shop, state: str | None, limit: int, offset: int) -> None:
    """Inquiries, oldest first, a page at a time."""
    found = shop.inquiries.list(state=state, limit=limit, offset=offset)
    rows = [
        {
            "id": i.id,
            "order_id": i.order_id,
            "customer_id": i.customer_id,
            "kind": i.kind,
            "subject": i.subject,
            "state": i.state,
            "created_at": i.created_at.isoformat(),
            "last_message_at": i.last_message.at.isoformat(),
        }
        for i in found
    ]

    def show(out: Console) -> None:
        out.print(
            table(
                f"{len(rows)} inquiry(ies)",
                ["id", "order id", "kind", "state", "subject", "last message"],
                [
                    (i.id, i.order_id, i.kind, i.state, i.subject, when(i.last_message.at))
                    for i in found
                ],
            )
        )

    op.emit({"inquiries": rows, "limit": limit, "offset": offset}, show)


@inquiries.command("show")
@click.argument("inquiry_id")
@operation()
def show_inquiry(op: Operator, shop: ok.Shop, inquiry_id: str) -> None:
    """An inquiry's messages, with its order's shipments and whole history at hand."""
    case = shop.inquiries.case(inquiry_id)
    inquiry, order = case.inquiry, case.order
    document = {
        "inquiry": data(inquiry),
        "order": data(order),
        "lines": data(list(case.lines)),
        "shipments": data(list(case.shipments)),
        "returns": data(list(case.returns)),
        "payments": data(list(case.payments)),
        "history": history_data(case.history),
    }

    def show(out: Console) -> None:
        out.print(
            f"Inquiry {inquiry.id} ({inquiry.kind}, {inquiry.state}): {inquiry.subject}\n"
            f"Order {order.id} ({order.state}) of customer {order.customer.id}, "
            f"{order.customer.name} <{order.customer.email}>",
            soft_wrap=True,
        )
        if inquiry.resolution:
            out.print(f"Resolved: {inquiry.resolution}", soft_wrap=True)
        out.print(
            table(
                "Messages",
                ["at", "from", "message"],
                [(when(m.at), m.author, m.text) for m in inquiry.messages],
            )
        )
        if case.shipments:
            out.print(shipments_table(case.shipments))
        out.print(
            table(
                f"History of order {order.id}",
                ["seq", "at", "what"],
                [(h.seq, when(h.at), h.summary) for h in case.history],
            )
        )

    op.emit(document, show)


def _changed(op: Operator, inquiry: ok.Inquiry, said: str) -> None:
    op.emit(
        {"inquiry": data(inquiry)},
        lambda out: out.print(f"Inquiry {inquiry.id} {said}; it is {inquiry.state}."),
    )


@inquiries.command("answer")
@click.argument("inquiry_id")
@click.option("--author", required=True, help="Who answers (a name from the shop).")
@click.option("--message", required=True, help="The answer; the customer is sent it.")
@operation(writes=True)
def answer_inquiry(op: Operator, shop: ok.Shop, inquiry_id: str, author: str, message: str) -> None:
    """Answer an inquiry; the customer is sent the answer."""
    _changed(op, shop.inquiries.answer(inquiry_id, author, message), f"answered by {author}")


@inquiries.command("resolve")
@click.argument("inquiry_id")
@click.option("--resolution", required=True, help="How it was settled.")
@operation(writes=True)
def resolve_inquiry(op: Operator, shop: ok.Shop, inquiry_id: str, resolution: str) -> None:
    """Close an inquiry, saying how it was settled."""
    _changed(op, shop.inquiries.resolve(inquiry_id, resolution), "resolved")
