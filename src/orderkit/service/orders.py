"""The order service: placement (stage 1), acknowledgement (stage 2), holds, cancellation."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

from orderkit.domain.order import Order
from orderkit.domain.stock_changes import Release
from orderkit.errors import (
    ConcurrencyError,
    CurrencyMismatch,
    DuplicateKey,
    IdempotencyConflict,
    InvalidField,
    OutOfStock,
)
from orderkit.ports import Clock, IdSource, UnitOfWork, UnitOfWorkFactory
from orderkit.service.commands import PlaceOrder
from orderkit.service.dispatch import Dispatcher
from orderkit.service.inventory import reserve_for_order
from orderkit.service.settings import ShopSettings

__all__ = ["OrderService"]

log = logging.getLogger("orderkit.orders")

Change = Callable[[Order, datetime, UnitOfWork], None]


class OrderService:
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
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._ids = ids
        self._settings = settings
        self._dispatcher = dispatcher
        self._lifecycle = settings.order_lifecycle.build()

    def place(self, command: PlaceOrder) -> Order:
        """Place an order; with an idempotency key, at most once.

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

        def work(uow: UnitOfWork, now: datetime) -> Order:
            if key is not None:
                existing = uow.orders.find_by_idempotency_key(key)
                if existing is not None:
                    if existing.request_fingerprint != fingerprint:
                        raise IdempotencyConflict(key, existing.id)
                    return existing
            order = Order.place(
                order_id=self._ids.new_id("order"),
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
            )
            if self._settings.track_stock:
                reserve_for_order(
                    uow.stock, order, self._settings.sourcing, now, self._settings.reservation_ttl
                )
            uow.orders.add(order)
            return order

        # A concurrent request may claim the key first (the next round returns its order),
        # or take the stock this round sourced (the next round sources again from fresh levels).
        return self._run(work, retry_on=(DuplicateKey, OutOfStock))

    def acknowledge(self, order_id: str) -> Order:
        """Confirm the order to the customer with a promised delivery date.

        The date comes from ``settings.delivery``; the confirmation is sent on
        the customer's preferred channel after commit.
        """

        def change(order: Order, now: datetime, _uow: UnitOfWork) -> None:
            promised = self._settings.delivery.promise(order.placed_at)
            order.acknowledge(promised, now, self._lifecycle)

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
        """Cancel the order before anything has shipped; ``reason`` is recorded, and the
        stock it holds is released in the same transaction."""

        def change(order: Order, now: datetime, uow: UnitOfWork) -> None:
            order.cancel(reason, now, self._lifecycle)
            if self._settings.track_stock:
                uow.stock.stage(Release(order.id, include_allocated=True))

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
            change(order, now, uow)
            uow.orders.save(order)
            return order

        return self._run(work, retry_on=ConcurrencyError)

    def _dispatch_after_commit(self) -> None:
        """Deliver events inline. The command has committed: a failure here must not
        make the caller believe it did not (a retry without a key would repeat it)."""
        try:
            self._dispatcher.run_pending()
        except Exception:
            log.exception("inline dispatch failed; the events stay in the outbox")

    def _run(
        self,
        work: Callable[[UnitOfWork, datetime], Order],
        *,
        retry_on: type[Exception] | tuple[type[Exception], ...] | None,
    ) -> Order:
        """Run ``work`` in a unit of work and commit; re-run it from scratch on ``retry_on``."""
        for attempt in range(self._settings.concurrency_retries + 1):
            with self._uow() as uow:
                order = work(uow, self._clock.now().astimezone(timezone.utc))
                try:
                    events = uow.commit()
                except Exception as error:
                    last = attempt == self._settings.concurrency_retries
                    if retry_on is None or not isinstance(error, retry_on) or last:
                        raise
                    continue
            if events and self._settings.dispatch == "inline":
                self._dispatch_after_commit()
            return order
        raise AssertionError("unreachable")  # pragma: no cover
