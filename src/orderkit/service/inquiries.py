"""The inquiry service: customer questions and complaints tied to an order, and the case
file whoever answers them reads (the inquiry, the order, and the order's history)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from attrs import frozen

from orderkit.domain.inquiries import INQUIRY_LIFECYCLE, Inquiry
from orderkit.domain.order import Order
from orderkit.domain.payment import Payment
from orderkit.domain.returns import ReturnRequest
from orderkit.domain.shipment import Shipment
from orderkit.domain.values import MAX_ID_LENGTH, check_text
from orderkit.errors import InvalidField
from orderkit.ports import Clock, IdSource, Outbox, UnitOfWork, UnitOfWorkFactory
from orderkit.service.dispatch import Dispatcher
from orderkit.service.history import HistoryEntry, order_history
from orderkit.service.lines import LineProgress, line_progress
from orderkit.service.settings import ShopSettings
from orderkit.service.transaction import CommandRunner

__all__ = ["InquiryCase", "InquiryService"]


@frozen
class InquiryCase:
    """Everything an agent needs to answer an inquiry: the inquiry with its messages,
    the order, its shipments, payments and returns, where each line stands, and the
    order's whole history."""

    inquiry: Inquiry
    order: Order
    shipments: tuple[Shipment, ...]
    payments: tuple[Payment, ...]
    returns: tuple[ReturnRequest, ...]
    history: tuple[HistoryEntry, ...]
    lines: tuple[LineProgress, ...]


class InquiryService(CommandRunner):
    """Commands and queries on inquiries. Reach it as ``shop.inquiries``."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        *,
        outbox: Outbox,
        clock: Clock,
        ids: IdSource,
        settings: ShopSettings,
        dispatcher: Dispatcher,
    ) -> None:
        self._uow = uow
        self._outbox = outbox
        self._clock = clock
        self._ids = ids
        self._settings = settings
        self._dispatcher = dispatcher

    def open(self, order_id: str, subject: str, message: str, *, kind: str = "question") -> Inquiry:
        """The customer of ``order_id`` asks a question (or, with ``kind="complaint"``,
        complains). Raises :class:`~orderkit.errors.OrderNotFound` for an unknown order."""
        check_text(order_id, field="order_id", limit=MAX_ID_LENGTH)
        inquiry_id = self._ids.new_id("inquiry")

        def work(uow: UnitOfWork, now: datetime) -> Inquiry:
            order = uow.orders.get(order_id)
            inquiry = Inquiry.open(
                inquiry_id=inquiry_id,
                order_id=order.id,
                customer_id=order.customer.id,
                kind=kind,
                subject=subject,
                message=message,
                at=now,
            )
            uow.inquiries.add(inquiry)
            return inquiry

        return self._run(work)

    def answer(self, inquiry_id: str, author: str, message: str) -> Inquiry:
        """``author`` (someone from the shop) answers; the customer is sent the answer."""
        return self._change(inquiry_id, lambda i, now: i.answer(author, message, now))

    def reply(self, inquiry_id: str, message: str) -> Inquiry:
        """The customer writes again; the inquiry is open until answered."""
        return self._change(inquiry_id, lambda i, now: i.reply(message, now))

    def resolve(self, inquiry_id: str, resolution: str) -> Inquiry:
        """Settle the inquiry, saying how."""
        return self._change(inquiry_id, lambda i, now: i.resolve(resolution, now))

    def get(self, inquiry_id: str) -> Inquiry:
        """The inquiry ``inquiry_id``; raises :class:`~orderkit.errors.InquiryNotFound`."""
        check_text(inquiry_id, field="inquiry_id", limit=MAX_ID_LENGTH)
        with self._uow() as uow:
            return uow.inquiries.get(inquiry_id)

    def for_order(self, order_id: str) -> Sequence[Inquiry]:
        """The order's inquiries, oldest first."""
        check_text(order_id, field="order_id", limit=MAX_ID_LENGTH)
        with self._uow() as uow:
            return uow.inquiries.for_order(order_id)

    def list(
        self, *, state: str | None = None, limit: int = 50, offset: int = 0
    ) -> Sequence[Inquiry]:
        """Inquiries in ``state`` (``"open"``: waiting for an answer), oldest first."""
        if state is not None and state not in INQUIRY_LIFECYCLE.states:
            raise InvalidField(
                f"must be one of {', '.join(INQUIRY_LIFECYCLE.states)}", field="state", value=state
            )
        with self._uow() as uow:
            return uow.inquiries.list(state=state, limit=limit, offset=offset)

    def case(self, inquiry_id: str) -> InquiryCase:
        """The inquiry with its order, shipments, payments, returns and history."""
        check_text(inquiry_id, field="inquiry_id", limit=MAX_ID_LENGTH)
        with self._uow() as uow:
            inquiry = uow.inquiries.get(inquiry_id)
            order = uow.orders.get(inquiry.order_id)
            shipments = tuple(uow.shipments.for_order(order.id))
            returns = tuple(uow.returns.for_order(order.id))
            return InquiryCase(
                inquiry,
                order,
                shipments,
                tuple(uow.payments.for_order(order.id)),
                returns,
                order_history(self._outbox, order.id),
                line_progress(order, shipments, returns),
            )

    def _change(self, inquiry_id: str, change: Callable[[Inquiry, datetime], None]) -> Inquiry:
        check_text(inquiry_id, field="inquiry_id", limit=MAX_ID_LENGTH)

        def work(uow: UnitOfWork, now: datetime) -> Inquiry:
            inquiry = uow.inquiries.get(inquiry_id)
            change(inquiry, now)
            uow.inquiries.save(inquiry)
            return inquiry

        return self._run(work)
