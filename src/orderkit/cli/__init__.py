"""The ``orderkit`` command: a simulated shop day, lifecycle diagrams, and the operator's
commands against a store.

Needs the ``cli`` extra: ``pip install 'orderkit[cli]'``.
"""

from __future__ import annotations

from orderkit.errors import MissingExtra

try:
    import click
    import rich  # noqa: F401  (the commands print with rich)
except ImportError as error:  # pragma: no cover - depends on the environment
    raise MissingExtra(
        "the orderkit command needs the cli extra: pip install 'orderkit[cli]'"
    ) from error

__all__ = [
    "demo",
    "diagram",
    "main",
    "operations",
    "operations_inquiries",
    "operations_orders",
    "operations_returns",
    "operations_shipping",
    "operations_stock",
    "worker",
]


@click.group()
@click.version_option(package_name="orderkit")
def main() -> None:
    """orderkit: customer order processing, from placement to post-delivery."""


# the commands register themselves on ``main``
from orderkit.cli import (  # noqa: E402
    demo,
    diagram,
    operations,
    operations_inquiries,
    operations_orders,
    operations_returns,
    operations_shipping,
    operations_stock,
    worker,
)
