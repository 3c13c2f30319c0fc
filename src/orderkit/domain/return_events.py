"""Domain events after delivery: returns and customer inquiries (all about one order, so
they stay in order with the order's other events and appear in its history)."""

from __future__ import annotations

from attrs import frozen

from orderkit.domain.events import OrderEvent
from orderkit.money import Money

__all__ = [
    "InquiryAnswered",
    "InquiryCustomerReplied",
    "InquiryEvent",
    "InquiryOpened",
    "InquiryResolved",
    "ReturnApproved",
    "ReturnCancelled",
    "ReturnClosed",
    "ReturnEvent",
    "ReturnExchanged",
    "ReturnInspected",
    "ReturnReceived",
    "ReturnRefunded",
    "ReturnRejected",
    "ReturnRequested",
]


@frozen
class ReturnEvent(OrderEvent):
    """An event about one return request of an order (kept in order with the order's events)."""

    return_id: str


@frozen
class ReturnRequested(ReturnEvent):
    """The customer asked to return units: ``(line id, units, reason)`` per line."""

    lines: tuple[tuple[str, int, str], ...]


@frozen
class ReturnApproved(ReturnEvent):
    """The shop agreed to take the units back; the customer is told how to send them."""

    instructions: str


@frozen
class ReturnRejected(ReturnEvent):
    """The shop refused the return, for ``reason``."""

    reason: str


@frozen
class ReturnCancelled(ReturnEvent):
    """The return was withdrawn before any unit came back."""

    reason: str


@frozen
class ReturnReceived(ReturnEvent):
    """Units arrived at the warehouse: ``(line id, units)`` per line."""

    units: tuple[tuple[str, int], ...]


@frozen
class ReturnInspected(ReturnEvent):
    """Each received unit was put back on hand (``restocked``) or written off."""

    restocked: tuple[tuple[str, int], ...]
    written_off: tuple[tuple[str, int], ...]


@frozen
class ReturnRefunded(ReturnEvent):
    """The return was settled by a refund: ``due`` is what the shop owes, ``paid`` what the
    gateway paid out (less when less was captured; zero without a gateway)."""

    due: Money
    paid: Money


@frozen
class ReturnExchanged(ReturnEvent):
    """The return was settled by an exchange order of other variants; ``charged`` is the
    price difference the customer pays, ``refunded`` the credit paid back."""

    exchange_order_id: str
    charged: Money
    refunded: Money


@frozen
class ReturnClosed(ReturnEvent):
    """Nothing more happens on this return."""


@frozen
class InquiryEvent(OrderEvent):
    """An event about one customer inquiry of an order."""

    inquiry_id: str


@frozen
class InquiryOpened(InquiryEvent):
    """A customer asked a question or complained about the order."""

    kind: str
    subject: str


@frozen
class InquiryAnswered(InquiryEvent):
    """Someone from the shop (``author``) answered: the inquiry's message number
    ``message_index`` (from 0)."""

    author: str
    message_index: int


@frozen
class InquiryCustomerReplied(InquiryEvent):
    """The customer wrote again; the inquiry is open again."""


@frozen
class InquiryResolved(InquiryEvent):
    """The inquiry was settled."""

    resolution: str
