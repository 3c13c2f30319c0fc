"""``orderkit diagram`` and ``orderkit lifecycle diagram``: the lifecycles, drawn."""

from __future__ import annotations

import sys

import click

from orderkit.cli import main
from orderkit.domain.inquiries import INQUIRY_LIFECYCLE
from orderkit.domain.order import ORDER_LIFECYCLE
from orderkit.domain.payment import PAYMENT_LIFECYCLE
from orderkit.domain.returns import RETURN_LIFECYCLE
from orderkit.domain.shipment import SHIPMENT_LIFECYCLE

__all__ = ["LIFECYCLES", "diagram"]


LIFECYCLES = {
    "order": ORDER_LIFECYCLE,
    "payment": PAYMENT_LIFECYCLE,
    "shipment": SHIPMENT_LIFECYCLE,
    "return": RETURN_LIFECYCLE,
    "inquiry": INQUIRY_LIFECYCLE,
}


@main.command()
@click.argument("aggregate", type=click.Choice(sorted(LIFECYCLES)), default="order")
@click.option(
    "--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True
)
def diagram(aggregate: str, fmt: str) -> None:
    """Print the order (default), payment, shipment, return or inquiry lifecycle as a
    mermaid or Graphviz diagram."""
    lifecycle = LIFECYCLES[aggregate].build()
    sys.stdout.write(lifecycle.to_mermaid() if fmt == "mermaid" else lifecycle.to_dot())
