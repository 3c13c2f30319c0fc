"""``orderkit fulfil``, ``orderkit ship`` and ``orderkit deliver``: an order from the
shelves to the customer's door, by hand."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import click
from rich.console import Console

import orderkit as ok
from orderkit.cli import main
from orderkit.cli.operations import EXIT_CODES, EXIT_USAGE, CommandFailed, Operator, operation
from orderkit.cli.operations_orders import shipments_table, units_text
from orderkit.cli.output import data, facts, money, table, when

__all__ = ["deliver", "fulfil", "manual_delivery_id", "parse_parcel", "ship"]

_PARCEL = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*x\s*(\d+)\s*:\s*(\d+)\s*$", re.IGNORECASE)
_MAX_ID = 64
_MANUAL_DELIVERY = "manual-delivered:"


def parse_parcel(text: str) -> ok.Parcel:
    """A parcel from ``WxLxH:grams`` (millimetres and grams, such as ``250x350x120:1400``).
    Raises :class:`~orderkit.InvalidField` for anything else."""
    match = _PARCEL.match(text)
    if match is None:
        raise ok.InvalidField(
            "must be WIDTHxLENGTHxHEIGHT:GRAMS in millimetres and grams, such as 250x350x120:1400",
            field="parcel",
            value=text,
        )
    width, length, height, grams = (int(part) for part in match.groups())
    return ok.Parcel(weight_grams=grams, length_mm=length, width_mm=width, height_mm=height)


def _estimated_parcel(shipment: ok.Shipment) -> ok.Parcel:
    """One box sized by the units in it, when the operator gives none (simulated carrier)."""
    units = sum(line.quantity for line in shipment.lines)
    return ok.Parcel(
        weight_grams=min(300 + 250 * units, 1_000_000),
        length_mm=350,
        width_mm=250,
        height_mm=min(60 + 20 * units, 10_000),
    )


@main.command(epilog=EXIT_CODES)
@click.argument("order_id")
@click.option(
    "--line", "line_ids", multiple=True, help="Only this line (repeat for more): a partial start."
)
@operation(writes=True)
def fulfil(op: Operator, shop: ok.Shop, order_id: str, line_ids: tuple[str, ...]) -> None:
    """Start fulfilling an order: one shipment per location holding its stock, and the
    pick list (what to take from which bin)."""
    shipments = shop.fulfilment.start(order_id, list(line_ids) or None)
    picks = shop.fulfilment.pick_list([shipment.id for shipment in shipments])

    def show(out: Console) -> None:
        out.print(shipments_table(shipments))
        out.print(
            table(
                "Pick list",
                ["location", "bin", "sku", "qty", "shipment id", "line"],
                [
                    (p.location, p.bin or "-", p.sku, p.quantity, p.shipment_id, p.line_id)
                    for p in picks
                ],
            )
        )
        out.print("Next: orderkit ship SHIPMENT_ID for each shipment.")

    op.emit({"order_id": order_id, "shipments": data(shipments), "pick_list": data(picks)}, show)


@main.command(epilog=EXIT_CODES)
@click.argument("shipment_id")
@click.option(
    "--parcel",
    "parcels",
    multiple=True,
    metavar="WxLxH:GRAMS",
    help="A box it is packed in, in millimetres and grams (repeat for more boxes). "
    "Without it, with the simulated carrier, one box is estimated from the units.",
)
@click.option(
    "--label",
    "label_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Save the shipping label (PDF) to this file.",
)
@operation(carrier=True, writes=True)
def ship(
    op: Operator,
    shop: ok.Shop,
    shipment_id: str,
    parcels: tuple[str, ...],
    label_file: Path | None,
) -> None:
    """Pick, pack, buy the label and hand a shipment to the carrier. A step already done
    is skipped, so after a refusal (the stock not there yet) the same command resumes."""
    boxes = [parse_parcel(text) for text in parcels]
    shipment = shop.fulfilment.get(shipment_id)
    if shipment.state == "cancelled":
        raise ok.FulfilmentError(f"shipment {shipment_id} is cancelled")
    done: list[str] = []
    if shipment.state == "pending":
        shipment = shop.fulfilment.pick(shipment_id)
        done.append("picked")
    if shipment.state == "picked":
        if not boxes:
            if op.configured:
                raise CommandFailed(
                    "--parcel is needed with your own carriers (--shop): give each box as "
                    "WxLxH:GRAMS so the label is bought for the real size and weight",
                    EXIT_USAGE,
                )
            boxes = [_estimated_parcel(shipment)]
        shipment = shop.fulfilment.pack(shipment_id, boxes)
        done.append(f"packed in {len(boxes)} parcel(s)")
    elif boxes:
        op.note(f"Shipment {shipment_id} was packed already: --parcel is ignored.")
    if shipment.state == "packed":
        shipment = shop.shipping.buy_label(shipment_id)
        done.append("labelled")
    if label_file is not None and shipment.label is not None:
        try:
            label_file.write_bytes(shipment.label.document)
        except OSError as error:
            raise CommandFailed(
                f"cannot write the label to {label_file}: {error.strerror}", EXIT_USAGE
            ) from None
    if shipment.state == "labelled":
        shipment = shop.shipping.hand_over(shipment_id)
        done.append("handed over")
    rate = shipment.rate
    document: dict[str, Any] = {
        "shipment": data(shipment),
        "steps": done,
        "carrier": rate.carrier if rate else None,
        "service": rate.service if rate else None,
        "price": data(rate.price) if rate else None,
        "tracking_number": shipment.tracking_number,
        "tracking_url": shipment.label.tracking_url if shipment.label else None,
        "eta": when(shipment.eta) if shipment.eta else None,
        "simulated_carrier": op.simulated_carrier,
    }

    def show(out: Console) -> None:
        if op.simulated_carrier:
            out.print(
                "Carrier: simulated (orderkit's MemoryCarrier; nothing was bought). "
                "Pass --shop MODULE:CALLABLE to use your carriers.",
                soft_wrap=True,
            )
        rows_of_facts = [
            ("state", shipment.state),
            ("steps", ", ".join(done) or "none: it was handed over already"),
            ("units", units_text(shipment.units())),
            ("carrier", rate.carrier if rate else "-"),
            ("service", rate.service if rate else "-"),
            ("price", money(rate.price) if rate else "-"),
            ("tracking", shipment.tracking_number or "-"),
            ("tracking url", (shipment.label.tracking_url if shipment.label else None) or "-"),
            ("eta", when(shipment.eta)),
        ]
        if label_file is not None:
            rows_of_facts.append(("label saved to", str(label_file)))
        out.print(facts(f"Shipment {shipment.id}", rows_of_facts))

    op.emit(document, show)


def manual_delivery_id(shipment_id: str) -> str:
    """The stable id of the manual delivery confirmation of a shipment: confirming twice
    is one scan."""
    scan_id = _MANUAL_DELIVERY + shipment_id
    if len(scan_id) <= _MAX_ID:
        return scan_id
    return _MANUAL_DELIVERY + hashlib.sha256(shipment_id.encode()).hexdigest()[:40]


@main.command(epilog=EXIT_CODES)
@click.argument("shipment_id")
@operation(writes=True)
def deliver(op: Operator, shop: ok.Shop, shipment_id: str) -> None:
    """Confirm by hand that a shipment reached the customer (a delivery scan with a
    stable id: repeating it changes nothing). The order is delivered once all its
    shipments are."""
    shipment = shop.fulfilment.get(shipment_id)
    if shipment.tracking_number is None:
        raise ok.FulfilmentError(
            f"shipment {shipment_id} is {shipment.state!r} and has no label: "
            f"ship it first (orderkit ship {shipment_id})"
        )
    scan = ok.TrackingEvent(
        id=manual_delivery_id(shipment_id),
        tracking_number=shipment.tracking_number,
        status=ok.TrackingStatus.DELIVERED,
        occurred_at=shop.clock.now(),
        description="delivery confirmed by hand",
    )
    outcome = shop.shipping.apply_tracking_event(scan)
    shipment = shop.fulfilment.get(shipment_id)
    order = shop.orders.get(shipment.order_id)
    said = {
        "duplicate": "was confirmed delivered already",
        "moved": "is confirmed delivered",
        "recorded": f"is {shipment.state}: the confirmation was recorded",
    }[outcome]
    op.emit(
        {
            "outcome": outcome,
            "scan_id": scan.id,
            "shipment": data(shipment),
            "order_id": order.id,
            "order_state": order.state,
        },
        lambda out: out.print(f"Shipment {shipment_id} {said}; order {order.id} is {order.state}."),
    )
