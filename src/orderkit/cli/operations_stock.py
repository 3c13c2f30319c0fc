"""``orderkit stock``: locations, deliveries in, corrections after a count, and levels."""

from __future__ import annotations

from collections.abc import Sequence

import click
from attrs import evolve
from rich.console import Console

import orderkit as ok
from orderkit.cli import main
from orderkit.cli.operations import EXIT_CODES, Operator, operation
from orderkit.cli.output import data, table

__all__ = ["stock"]


@main.group(epilog=EXIT_CODES)
def stock() -> None:
    """Stock at each location: receive, adjust, show."""


def _levels(op: Operator, sku: str, levels: Sequence[ok.StockLevel], said: str = "") -> None:
    def show(out: Console) -> None:
        if said:
            out.print(said)
        if not levels:
            out.print(f"No location stocks {sku}.")
            return
        out.print(
            table(
                f"Stock of {sku}",
                ["location", "on hand", "reserved", "available"],
                [
                    (
                        level.location,
                        level.on_hand,
                        level.reserved,
                        "any" if level.available is None else level.available,
                    )
                    for level in levels
                ],
            )
        )

    op.emit({"sku": sku, "levels": data(list(levels))}, show)


@stock.command("show")
@click.argument("sku")
@operation()
def show_stock(op: Operator, shop: ok.Shop, sku: str) -> None:
    """On hand, reserved and available units of a SKU at each location (available
    ``any``: backorders without limit)."""
    _levels(op, sku, shop.inventory.levels(sku))


@stock.command("receive")
@click.argument("sku")
@click.option("--location", required=True, help="Where the units arrived.")
@click.option("--quantity", required=True, type=int, help="How many units.")
@click.option("--reason", default="received", show_default=True, help="For the stock ledger.")
@operation(writes=True)
def receive_stock(
    op: Operator, shop: ok.Shop, sku: str, location: str, quantity: int, reason: str
) -> None:
    """Book a delivery in: on hand goes up."""
    shop.inventory.receive(sku, location=location, quantity=quantity, reason=reason)
    _levels(op, sku, shop.inventory.levels(sku), f"Received {quantity} x {sku} at {location}.")


@stock.command("adjust")
@click.argument("sku")
@click.option("--location", required=True, help="Where the count was made.")
@click.option("--delta", required=True, type=int, help="Units to add (or, negative, remove).")
@click.option("--reason", required=True, help="Why, for the stock ledger (such as 'recount').")
@operation(writes=True)
def adjust_stock(
    op: Operator, shop: ok.Shop, sku: str, location: str, delta: int, reason: str
) -> None:
    """Correct on hand after a count. Refused when it would leave fewer units than
    orders hold."""
    shop.inventory.adjust(sku, location=location, delta=delta, reason=reason)
    _levels(op, sku, shop.inventory.levels(sku), f"Adjusted {sku} at {location} by {delta:+d}.")


def _locations(op: Operator, places: Sequence[ok.Location], said: str = "") -> None:
    def show(out: Console) -> None:
        if said:
            out.print(said)
        out.print(
            table(
                f"{len(places)} location(s)",
                ["id", "name", "priority", "handling days", "cut-off"],
                [
                    (p.id, p.name, p.priority, p.handling_days, p.cutoff.strftime("%H:%M"))
                    for p in places
                ],
            )
        )

    op.emit({"locations": data(list(places))}, show)


@stock.command("locations")
@operation()
def list_locations(op: Operator, shop: ok.Shop) -> None:
    """Every location, the preferred first."""
    _locations(op, shop.inventory.locations())


@stock.command("add-location")
@click.argument("location_id")
@click.option("--name", required=True, help="Its name, such as 'Berlin warehouse'.")
@click.option(
    "--priority",
    default=None,
    type=int,
    help="Lower is preferred [default: 100 for a new location, else unchanged].",
)
@operation(writes=True)
def add_location(
    op: Operator, shop: ok.Shop, location_id: str, name: str, priority: int | None
) -> None:
    """Add a location, or rename (and re-prioritise) the one with this id, keeping its
    bins, handling days and cut-off."""
    known = {place.id: place for place in shop.inventory.locations()}
    existing = known.get(location_id)
    if existing is None:
        location = ok.Location(location_id, name, priority=100 if priority is None else priority)
    else:
        location = evolve(
            existing, name=name, priority=existing.priority if priority is None else priority
        )
    shop.inventory.add_location(location)
    said = "updated" if existing else "added"
    _locations(op, shop.inventory.locations(), f"Location {location_id} {said}.")
