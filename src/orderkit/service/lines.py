"""Where each line of an order stands: derived from the order, its shipments and its
returns, never stored twice."""

from __future__ import annotations

from collections.abc import Iterable

from attrs import frozen

from orderkit.domain.order import Order
from orderkit.domain.returns import ReturnRequest
from orderkit.domain.shipment import Shipment, ShipmentState

__all__ = ["LineProgress", "line_progress"]


@frozen
class LineProgress:
    """The units of one order line at each stage.

    ``ordered``; ``cancelled`` (all of them, or none: lines are cancelled whole);
    ``allocated`` (in a shipment that is not cancelled); ``shipped`` (handed to the
    carrier); ``delivered`` (in a delivered shipment whose claim was not settled);
    ``returning`` (asked for in returns not yet received); ``returned`` (received back).
    Always ``shipped <= allocated <= ordered - cancelled`` and
    ``returning + returned <= delivered``.
    """

    line_id: str
    sku: str
    ordered: int
    cancelled: int
    allocated: int
    shipped: int
    delivered: int
    returning: int
    returned: int


def line_progress(
    order: Order, shipments: Iterable[Shipment], returns: Iterable[ReturnRequest]
) -> tuple[LineProgress, ...]:
    """Each line's progress, in the order's line order. A reshipped parcel's units
    count once: through its replacement."""
    counts: dict[str, dict[str, int]] = {
        line.line_id: dict.fromkeys(
            ("allocated", "shipped", "delivered", "returning", "returned"), 0
        )
        for line in order.lines
    }
    for shipment in shipments:
        if shipment.state == ShipmentState.CANCELLED.value:
            continue
        for item in shipment.lines:
            line = counts[item.line_id]
            if not shipment.reshipped:
                line["allocated"] += item.quantity
                line["shipped"] += item.quantity if shipment.is_handed_over else 0
            if shipment.arrived:
                line["delivered"] += item.quantity
    for request in returns:
        received = request.received_units()
        stage = "returned" if received else "returning"
        for line_id, count in request.units().items():
            counts[line_id][stage] += count
    return tuple(
        LineProgress(
            line.line_id,
            line.sku,
            line.quantity,
            line.quantity if line.line_id in order.cancelled_lines else 0,
            **counts[line.line_id],
        )
        for line in order.lines
    )
