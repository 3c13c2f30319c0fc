"""What a payment keeps of each money movement: captures, refunds, planned refunds, the void."""

from __future__ import annotations

from datetime import datetime

from attrs import frozen

from orderkit.money import Money

__all__ = ["CapturePlan", "CaptureRecord", "RefundPlan", "RefundRecord", "VoidRecord"]


@frozen
class CaptureRecord:
    """A recorded capture; ``units`` (line id, units) when it paid for shipped units,
    ``includes_shipping`` when it also paid the order's shipping charge."""

    id: str
    amount: Money
    reference: str
    at: datetime
    units: tuple[tuple[str, int], ...] = ()
    includes_shipping: bool = False


@frozen
class RefundRecord:
    """A recorded refund of ``amount`` from capture ``capture_id``."""

    id: str
    capture_id: str
    amount: Money
    reference: str
    at: datetime


@frozen
class CapturePlan:
    """A capture decided before the gateway is called: how much, and which units (and
    the shipping charge) it pays for.

    Kept on the payment, so that two captures planned at once cannot both take the
    same units or the shipping charge (the second plan's save loses on the version),
    and a retry after a lost answer asks the gateway for the same amount with the
    same key.
    """

    reference: str
    amount: Money
    units: tuple[tuple[str, int], ...]
    includes_shipping: bool
    at: datetime


@frozen
class RefundPlan:
    """A refund decided before the gateway is called: which captures give how much.

    Kept on the payment so that a retry after a crash or a lost answer makes the
    same gateway calls with the same keys, whatever callbacks recorded meanwhile.
    """

    reference: str
    parts: tuple[tuple[str, Money], ...]
    at: datetime

    @property
    def amount(self) -> Money:
        """The planned refund in total."""
        return Money.sum((part for _, part in self.parts), self.parts[0][1].currency)


@frozen
class VoidRecord:
    """The recorded release of the authorization's uncaptured ``amount``."""

    id: str
    amount: Money
    at: datetime
