"""The Inquiry aggregate: a customer's question or complaint about an order.

An inquiry is open until someone from the shop answers it; the customer may
write again (open again), and it ends resolved. Its messages are kept in order;
whoever answers reads them beside the order's history
(:meth:`orderkit.service.inquiries.InquiryService.case`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum

from attrs import define, field, frozen, setters

from orderkit.domain.events import (
    DomainEvent,
)
from orderkit.domain.lifecycle import LifecycleDefinition, TransitionSpec
from orderkit.domain.return_events import (
    InquiryAnswered,
    InquiryCustomerReplied,
    InquiryOpened,
    InquiryResolved,
)
from orderkit.domain.values import (
    MAX_ID_LENGTH,
    MAX_NOTE_LENGTH,
    MAX_TEXT_LENGTH,
    check_text,
    text,
)
from orderkit.errors import InvalidField

__all__ = [
    "CUSTOMER",
    "INQUIRY_KINDS",
    "INQUIRY_LIFECYCLE",
    "Inquiry",
    "InquiryMessage",
    "InquiryState",
]

CUSTOMER = "customer"
"""The author of the customer's own messages."""

INQUIRY_KINDS = ("question", "complaint")
"""What an inquiry can be."""


class InquiryState(str, Enum):
    """The states of an inquiry. ``Inquiry.state`` holds the plain value."""

    OPEN = "open"
    ANSWERED = "answered"
    RESOLVED = "resolved"


_I = InquiryState
INQUIRY_LIFECYCLE = LifecycleDefinition(
    aggregate="inquiry",
    states=[state.value for state in InquiryState],
    initial=_I.OPEN.value,
    final=[_I.RESOLVED.value],
    transitions=[
        TransitionSpec("answer", [_I.OPEN.value, _I.ANSWERED.value], _I.ANSWERED.value),
        TransitionSpec("reply", [_I.OPEN.value, _I.ANSWERED.value], _I.OPEN.value),
        TransitionSpec("resolve", [_I.OPEN.value, _I.ANSWERED.value], _I.RESOLVED.value),
    ],
)
"""The inquiry graph: open → answered (and open again when the customer writes) →
resolved."""

_LIFECYCLE = INQUIRY_LIFECYCLE.build()


@frozen
class InquiryMessage:
    """One message of an inquiry: by the customer (``author == "customer"``) or by
    someone from the shop (their name)."""

    author: str = field(validator=text(MAX_TEXT_LENGTH))
    text: str = field(validator=text(MAX_NOTE_LENGTH), repr=False)
    at: datetime

    @property
    def from_customer(self) -> bool:
        """True for the customer's own messages."""
        return self.author == CUSTOMER


def _messages(value: Iterable[InquiryMessage]) -> tuple[InquiryMessage, ...]:
    return tuple(value)


@define(eq=False, on_setattr=setters.NO_OP)
class Inquiry:
    """A customer's question or complaint tied to an order. Create with :meth:`open`."""

    id: str = field(validator=text(MAX_ID_LENGTH))
    order_id: str
    customer_id: str
    kind: str
    subject: str
    messages: tuple[InquiryMessage, ...] = field(converter=_messages)
    created_at: datetime
    state: str = InquiryState.OPEN.value
    resolution: str | None = None
    version: int = 0
    pending_events: list[DomainEvent] = field(factory=list, repr=False)

    @classmethod
    def open(
        cls,
        *,
        inquiry_id: str,
        order_id: str,
        customer_id: str,
        kind: str,
        subject: str,
        message: str,
        at: datetime,
    ) -> Inquiry:
        """A new open inquiry with the customer's first ``message``.

        Raises :class:`InvalidField` for an unknown ``kind`` (see :data:`INQUIRY_KINDS`)
        or blank, oversized text."""
        if kind not in INQUIRY_KINDS:
            raise InvalidField(
                f"must be one of {', '.join(INQUIRY_KINDS)}", field="kind", value=kind
            )
        check_text(subject, field="subject", limit=MAX_TEXT_LENGTH)
        check_text(message, field="message", limit=MAX_NOTE_LENGTH)
        inquiry = cls(
            id=inquiry_id,
            order_id=order_id,
            customer_id=customer_id,
            kind=kind,
            subject=subject,
            messages=(InquiryMessage(CUSTOMER, message, at),),
            created_at=at,
        )
        inquiry.pending_events.append(InquiryOpened(at, order_id, inquiry_id, kind, subject))
        return inquiry

    @property
    def last_message(self) -> InquiryMessage:
        """The latest message."""
        return self.messages[-1]

    def answer(self, author: str, message: str, at: datetime) -> None:
        """Someone from the shop (``author``, not ``"customer"``) answers."""
        check_text(author, field="author", limit=MAX_TEXT_LENGTH)
        if author == CUSTOMER:
            raise InvalidField("an answer comes from the shop", field="author", value=author)
        check_text(message, field="message", limit=MAX_NOTE_LENGTH)
        _LIFECYCLE.fire(self, "answer")
        self.messages = (*self.messages, InquiryMessage(author, message, at))
        self.pending_events.append(
            InquiryAnswered(at, self.order_id, self.id, author, len(self.messages) - 1)
        )

    def reply(self, message: str, at: datetime) -> None:
        """The customer writes again; the inquiry waits for an answer."""
        check_text(message, field="message", limit=MAX_NOTE_LENGTH)
        _LIFECYCLE.fire(self, "reply")
        self.messages = (*self.messages, InquiryMessage(CUSTOMER, message, at))
        self.pending_events.append(InquiryCustomerReplied(at, self.order_id, self.id))

    def resolve(self, resolution: str, at: datetime) -> None:
        """Settle the inquiry, saying how."""
        check_text(resolution, field="resolution", limit=MAX_NOTE_LENGTH)
        _LIFECYCLE.fire(self, "resolve")
        self.resolution = resolution
        self.pending_events.append(InquiryResolved(at, self.order_id, self.id, resolution))
