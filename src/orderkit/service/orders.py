"""The order service: placement (stage 1), acknowledgement (stage 2), holds, cancellation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone

from orderkit.domain.lifecycle import Lifecycle
from orderkit.domain.order import Order
from orderkit.domain.payment import GatewayAuthorization
from orderkit.domain.shipment import Shipment
from orderkit.domain.stock_changes import KeepReservations, Release
from orderkit.domain.values import MAX_ID_LENGTH, check_text
from orderkit.errors import (
    ConcurrencyError,
    CurrencyMismatch,
    DuplicateKey,
    FulfilmentError,
    IdempotencyConflict,
    InvalidField,
    InvalidTransition,
    OutOfStock,
)
from orderkit.ports import Clock, IdSource, Outbox, UnitOfWork, UnitOfWorkFactory
from orderkit.service.commands import PlaceOrder
from orderkit.service.dispatch import Dispatcher
from orderkit.service.fulfilment import follow_shipments, shipped_units
from orderkit.service.history import HistoryEntry, order_history
from orderkit.service.inventory import reserve_for_order
from orderkit.service.lines import LineProgress, line_progress
from orderkit.service.payments import PaymentService
from orderkit.service.payments import gateway_key as payment_key
from orderkit.service.settings import ShopSettings
from orderkit.service.transaction import CommandRunner

__all__ = ["OrderService"]

Change = Callable[[Order, datetime, UnitOfWork], None]


class OrderService(CommandRunner):
    """Commands and queries on orders. Reach it as ``shop.orders``.

    Every command is one unit of work. Events are dispatched after commit. A
    command that loses a race with another writer of the same order is re-run
    from a fresh load up to ``settings.concurrency_retries`` times.
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        *,
        clock: Clock,
        ids: IdSource,
        settings: ShopSettings,
        dispatcher: Dispatcher,
        payments: PaymentService | None = None,
        before_cancel: Callable[[str], None] | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self._uow = uow
        self._outbox = outbox
        self._payments = payments
        self._before_cancel = before_cancel
        self._clock = clock
        self._ids = ids
        self._settings = settings
        self._dispatcher = dispatcher
        self._lifecycle = settings.order_lifecycle.build()

    def place(self, command: PlaceOrder, *, exchange_for: str | None = None) -> Order:
        """Place an order; with an idempotency key, at most once. ``exchange_for`` names
        the return an exchange order settles (``shop.returns.exchange`` sets it).

        With a payment gateway, the order total is authorized before the order
        is stored: a declined payment raises
        :class:`~orderkit.errors.PaymentDeclined` and nothing is stored or
        reserved; an unreachable gateway raises
        :class:`~orderkit.errors.GatewayUnavailable` (retry with the same key:
        it gets the same single authorization). If placement fails after the
        authorization (the stock went meanwhile), the authorization is voided.

        Raises :class:`CurrencyMismatch` when the order is not in the shop's
        currency and :class:`IdempotencyConflict` when the key was used for a
        different request. An equal request with a used key returns the order
        placed the first time (as it is now) and changes nothing.
        """
        if not isinstance(command, PlaceOrder):
            raise InvalidField("must be a PlaceOrder command", field="command", value=command)
        if command.currency != self._settings.currency:
            raise CurrencyMismatch(
                f"orders in this shop are in {self._settings.currency}",
                field="currency",
                value=command.currency,
            )
        key = command.idempotency_key
        fingerprint = command.fingerprint() if key is not None else None
        order_id = self._ids.new_id("order")
        authorization: GatewayAuthorization | None = None

        def work(uow: UnitOfWork, now: datetime) -> Order:
            if key is not None:
                existing = uow.orders.find_by_idempotency_key(key)
                if existing is not None:
                    if existing.request_fingerprint != fingerprint:
                        raise IdempotencyConflict(key, existing.id)
                    return existing
            order = Order.place(
                order_id=order_id,
                customer=command.customer,
                shipping_address=command.shipping_address,
                channel=command.channel,
                currency=command.currency,
                lines=command.lines,
                shipping_charge=command.shipping,
                payment_token=command.payment_token,
                placed_at=now,
                idempotency_key=key,
                request_fingerprint=fingerprint,
                exchange_for=exchange_for,
                billing_address=command.billing_address,
            )
            if self._settings.track_stock:
                reserve_for_order(
                    uow.stock, order, self._settings.sourcing, now, self._settings.reservation_ttl
                )
            uow.orders.add(order)  # staged first: OrderPlaced goes out before PaymentAuthorized
            if authorization is not None and self._payments is not None:
                uow.payments.add(self._payments.new_payment(order, authorization, now))
            return order

        # A concurrent request may claim the key first (the next round returns its order),
        # or take the stock this round sourced (the next round sources again from fresh levels).
        retry_on = (DuplicateKey, OutOfStock)
        if self._payments is None or self._payments.gateway is None:
            return self._run(work, retry_on=retry_on)

        # Check everything but the payment first (a stored result for the key, the input,
        # the stock) without committing, so the card is not touched for an order that
        # cannot be placed. The commit re-checks it all.
        checked = self._check_first(work, twin_possible=key is not None)
        if checked.id != order_id:
            return checked  # the stored result of an earlier request with this key
        if checked.totals.total.is_zero():
            return self._run(work, retry_on=retry_on)  # nothing to pay
        # The gateway key depends only on the request (its key and digest, or the new order's
        # id), so a retry of this request, or a concurrent twin, gets the same authorization.
        # With a key, the request's digest is part of the gateway key: a different request
        # reusing the key (a new card after a decline, say) gets its own authorization.
        if key is not None and fingerprint is not None:
            gateway_key = payment_key("place", key, fingerprint[:16])
        else:
            gateway_key = payment_key("place", order_id)
        authorization = self._payments.authorize(
            checked.totals.total, command.payment_token, key=gateway_key
        )
        try:
            order = self._run(work, retry_on=retry_on)
        except Exception:
            self._payments.void_unused(checked, authorization, gateway_key)
            raise
        if order.id != order_id and not any(
            p.authorization_id == authorization.id for p in self._payments.for_order(order.id)
        ):
            self._payments.void_unused(checked, authorization, gateway_key)
        return order

    def _check_first(
        self, work: Callable[[UnitOfWork, datetime], Order], *, twin_possible: bool
    ) -> Order:
        """Run ``work`` without committing. With an idempotency key, a twin request may
        take the stock between our reading the key and the stock: look again then."""
        retries = self._settings.concurrency_retries if twin_possible else 0
        for attempt in range(retries + 1):
            try:
                with self._uow() as uow:
                    return work(uow, self._clock.now().astimezone(timezone.utc))
            except OutOfStock:
                if attempt == retries:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def acknowledge(self, order_id: str) -> Order:
        """Confirm the order to the customer with a promised delivery date.

        The date comes from ``settings.delivery``; the confirmation is sent on
        the customer's preferred channel after commit. The order's stock
        reservations stop expiring: a confirmed order keeps its stock.
        """

        def change(order: Order, now: datetime, uow: UnitOfWork) -> None:
            promised = self._settings.delivery.promise(order.placed_at)
            order.acknowledge(promised, now, self._lifecycle)
            if self._settings.track_stock:
                # confirmed to the customer: its stock is held until it ships or is released
                uow.stock.stage(KeepReservations(order.id, now))

        return self._change(order_id, change)

    def hold(self, order_id: str, reason: str, note: str = "") -> Order:
        """Hold the order for ``reason`` (such as ``"manual_review"``); fulfilment waits."""
        return self._change(
            order_id, lambda order, now, _uow: order.hold(reason, now, note, self._lifecycle)
        )

    def release(self, order_id: str, reason: str) -> Order:
        """Lift the hold placed for ``reason``."""
        return self._change(order_id, lambda order, now, _uow: order.release(reason, now))

    def cancel(self, order_id: str, reason: str) -> Order:
        """Cancel the order before anything has shipped; ``reason`` is recorded. Its
        stock is released and its shipments not yet handed over are cancelled, in the same
        transaction. Raises :class:`~orderkit.errors.FulfilmentError` once a shipment has
        left (cancel the remaining lines with :meth:`cancel_lines` instead)."""

        with self._uow() as uow:  # refuse before any label is voided at the carrier
            _check_cancellable(uow.orders.get(order_id), uow, self._lifecycle)
        if self._before_cancel is not None:
            self._before_cancel(order_id)  # labels voided at the carrier, or refused

        def change(order: Order, now: datetime, uow: UnitOfWork) -> None:
            shipments = _check_cancellable(order, uow, self._lifecycle)
            order.cancel(reason, now, self._lifecycle)
            for shipment in shipments:
                if shipment.state != "cancelled":
                    shipment.cancel(reason, now)
                    uow.shipments.save(shipment)
            if self._settings.track_stock:
                uow.stock.stage(Release(order.id, include_allocated=True))

        return self._change(order_id, change)

    def cancel_lines(self, order_id: str, line_ids: Sequence[str], reason: str) -> Order:
        """Cancel whole lines that are in no shipment yet (short shipping): their stock is
        released in the same transaction, and the payment policies void or refund their
        share. When the lines left have all shipped, the order is marked shipped.

        Raises :class:`~orderkit.errors.FulfilmentError` for a line already in a
        shipment or an exchange order, and :class:`InvalidField` for unknown lines or
        cancelling them all (cancel the order instead)."""
        if isinstance(line_ids, str) or not all(isinstance(i, str) for i in line_ids):
            raise InvalidField("must be a list of line ids", field="line_ids", value=line_ids)

        def change(order: Order, now: datetime, uow: UnitOfWork) -> None:
            if order.exchange_for is not None:
                raise FulfilmentError(
                    f"order {order.id} is the exchange for return {order.exchange_for}: it is "
                    "cancelled whole (its credit goes back), not line by line"
                )
            shipments = uow.shipments.for_order(order.id)
            started = shipped_units(shipments)
            for line_id in line_ids:
                if line_id in started:
                    raise FulfilmentError(
                        f"order {order.id} line {line_id} is already in a shipment; cancel "
                        "that shipment or let it ship"
                    )
            order.cancel_lines(list(line_ids), reason, now, self._lifecycle)
            if self._settings.track_stock:
                for line_id in dict.fromkeys(line_ids):
                    uow.stock.stage(Release(order.id, line_id))
            follow_shipments(uow, order, now, self._lifecycle)

        return self._change(order_id, change)

    def transition(self, order_id: str, trigger: str) -> Order:
        """Fire any trigger of the shop's order lifecycle (for triggers your extension adds)."""
        return self._change(
            order_id, lambda order, now, _uow: order.fire(trigger, now, self._lifecycle)
        )

    def get(self, order_id: str) -> Order:
        """The order with ``order_id``; raises :class:`~orderkit.errors.OrderNotFound`."""
        with self._uow() as uow:
            return uow.orders.get(order_id)

    def lines(self, order_id: str) -> tuple[LineProgress, ...]:
        """Where each line stands: ordered, cancelled, allocated, shipped, delivered,
        being returned and returned units (derived from the shipments and returns)."""
        check_text(order_id, field="order_id", limit=MAX_ID_LENGTH)
        with self._uow() as uow:
            order = uow.orders.get(order_id)
            shipments = uow.shipments.for_order(order_id)
            returns = uow.returns.for_order(order_id)
        return line_progress(order, shipments, returns)

    def history(self, order_id: str) -> tuple[HistoryEntry, ...]:
        """Everything that happened to the order, its payments, shipments, returns and
        inquiries, in the order it was committed, each with a readable summary.
        Raises :class:`~orderkit.errors.OrderNotFound` for an unknown order."""
        check_text(order_id, field="order_id", limit=MAX_ID_LENGTH)
        with self._uow() as uow:
            uow.orders.get(order_id)
        if self._outbox is None:
            raise InvalidField("this order service was made without an outbox", field="outbox")
        return order_history(self._outbox, order_id)

    def list(
        self,
        *,
        state: str | None = None,
        customer_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Sequence[Order]:
        """Orders by state and/or customer, oldest first, ``limit`` (1 to 1000) at a time."""
        with self._uow() as uow:
            return uow.orders.list(state=state, customer_id=customer_id, limit=limit, offset=offset)

    def _change(self, order_id: str, change: Change) -> Order:
        def work(uow: UnitOfWork, now: datetime) -> Order:
            order = uow.orders.get(order_id)
            uow.orders.save(order)  # staged first: the order's events go out before effects'
            change(order, now, uow)
            return order

        return self._run(work, retry_on=ConcurrencyError)


def _check_cancellable(order: Order, uow: UnitOfWork, lifecycle: Lifecycle) -> Sequence[Shipment]:
    """Raise unless ``order`` can be cancelled: :class:`FulfilmentError` once a shipment was
    handed over, :class:`InvalidTransition` where its lifecycle forbids it. Returns its
    shipments."""
    shipments = uow.shipments.for_order(order.id)
    if any(shipment.is_handed_over for shipment in shipments):
        if order.state in ("shipped", "delivered", "completed"):
            raise FulfilmentError(
                f"order {order.id} is {order.state!r}: it has left the warehouse and can no "
                "longer be cancelled; its units come back through a return"
            )
        raise FulfilmentError(
            f"order {order.id} has a shipment on its way; cancel the lines not yet shipped "
            "instead (shop.orders.cancel_lines)"
        )
    if not lifecycle.can_fire(order, "cancel"):
        raise InvalidTransition("order", order.id, order.state, "cancel")
    return shipments
