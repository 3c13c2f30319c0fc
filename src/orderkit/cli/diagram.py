"""``orderkit diagram`` and ``orderkit lifecycle diagram``: the lifecycles, drawn."""

from __future__ import annotations

import sys

import click

from orderkit.cli import main
from orderkit.diagrams import lifecycle_svg
from orderkit.domain.inquiries import INQUIRY_LIFECYCLE
from orderkit.domain.order import ORDER_LIFECYCLE
from orderkit.domain.payment import PAYMENT_LIFECYCLE
from orderkit.domain.returns import RETURN_LIFECYCLE
from orderkit.domain.shipment import SHIPMENT_LIFECYCLE

__all__ = ["LIFECYCLES", "diagram", "lifecycle"]


LIFECYCLES = {
    "order": ORDER_LIFECYCLE,
    "payment": PAYMENT_LIFECYCLE,
    "shipment": SHIPMENT_LIFECYCLE,
    "return": RETURN_LIFECYCLE,
    "inquiry": INQUIRY_LIFECYCLE,
}


_FORMATS = click.Choice(["mermaid", "svg", "dot"])


def _draw(aggregate: str, fmt: str) -> None:
    definition = LIFECYCLES[aggregate]
    if fmt == "svg":
        sys.stdout.write(lifecycle_svg(definition))
        return
    built = definition.build()
    sys.stdout.write(built.to_mermaid() if fmt == "mermaid" else built.to_dot())


@main.group()
def lifecycle() -> None:
    """The lifecycles of orders, payments, shipments, returns and inquiries."""


@lifecycle.command("diagram")
@click.argument("aggregate", type=click.Choice(sorted(LIFECYCLES)), default="order")
@click.option("--format", "fmt", type=_FORMATS, default="mermaid", show_default=True)
def lifecycle_diagram(aggregate: str, fmt: str) -> None:
    """Print a lifecycle as mermaid text, an SVG drawing (no Graphviz needed) or Graphviz
    dot: ``orderkit lifecycle diagram return --format svg > return.svg``."""
    _draw(aggregate, fmt)


@main.command()
@click.argument("aggregate", type=click.Choice(sorted(LIFECYCLES)), default="order")
@click.option("--format", "fmt", type=_FORMATS, default="mermaid", show_default=True)
def diagram(aggregate: str, fmt: str) -> None:
    """Shorthand for ``orderkit lifecycle diagram``."""
    _draw(aggregate, fmt)
