"""Automation: opt-in policies that call the same steps an operator calls.

A shop processed by hand has no policies (the default). Each policy is a handler of
the events the outbox dispatcher delivers, or a timer run by :meth:`Automation.run_timers`
(a worker calls it every so often); each is switched on in
``ShopSettings(automation=AutomationSettings(...))``:

* **hold rules** put a new order on manual review (hold ``"manual_review"``, the note
  saying why): a total over a threshold, a customer's first order, a billing address
  in another country than the shipping address;
* **acknowledge** a new order as soon as it is placed (after the hold rules);
* **release** an acknowledged order to fulfilment once it is not on hold and its
  payment is authorized or paid (or the shop takes no payments);
* **cancel unpaid** orders whose payment is gone (declined, voided, expired) once the
  timeout has passed since placement;
* **complete** delivered orders once their return window has closed and no return is
  open.

Policies never force a step: when the shop's rules refuse it (stock gone, a hold
placed meanwhile), the order is left for an operator and the refusal is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from attrs import Attribute, field, frozen

from orderkit.domain.events import (
    OrderAcknowledged,
    OrderEvent,
    OrderHoldReleased,
    OrderPlaced,
    PaymentAuthorized,
    PaymentCaptured,
)
from orderkit.domain.order import Order, OrderState
from orderkit.domain.payment import PaymentStatus
from orderkit.domain.shipment import Shipment
from orderkit.errors import (
    ConcurrencyError,
    FulfilmentError,
    HoldError,
    InvalidSettings,
    InvalidTransition,
    OrderkitError,
    OutOfStock,
)
from orderkit.money import Money
from orderkit.ports import Clock, UnitOfWorkFactory

if TYPE_CHECKING:
    from orderkit.service.fulfilment import FulfilmentService
    from orderkit.service.orders import OrderService

__all__ = ["MANUAL_REVIEW", "Automation", "AutomationSettings", "HoldRules", "TimerReport"]

log = logging.getLogger("orderkit.automation")

MANUAL_REVIEW = "manual_review"
"""The hold reason the hold rules use."""

_PAID = frozenset(
    {
        PaymentStatus.AUTHORIZED,
        PaymentStatus.PARTIALLY_PAID,
        PaymentStatus.PAID,
        PaymentStatus.PARTIALLY_REFUNDED,
    }
)
_UNPAID_STATES = (OrderState.PLACED.value, OrderState.ACKNOWLEDGED.value)
# what a policy leaves to an operator instead of retrying: the shop's rules said no
_REFUSALS = (FulfilmentError, HoldError, InvalidTransition, OutOfStock)


def _money_or_none(_instance: object, attribute: Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, Money) or value.is_negative()):
        raise InvalidSettings("must be None or Money >= 0", field=attribute.name, value=value)


def _timeout(_instance: object, attribute: Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, timedelta) or value <= timedelta(0)):
        raise InvalidSettings(
            "must be None or a positive timedelta", field=attribute.name, value=value
        )


@frozen
class HoldRules:
    """Which new orders go to manual review: a total over ``total_over``, a customer's
    ``first_order``, a billing address in another country (``country_mismatch``)."""

    total_over: Money | None = field(default=None, validator=_money_or_none)
    first_order: bool = False
    country_mismatch: bool = False

    def reasons(self, order: Order, first: bool) -> list[str]:
        """Why ``order`` needs a look (empty: it does not); ``first`` says whether it is
        the customer's first order. ``total_over`` holds totals strictly over it."""
        found = []
        total = order.totals.total
        if self.total_over is not None and total > self.total_over:
            found.append(f"total {total} is over {self.total_over}")
        if self.first_order and first:
            found.append(f"first order of customer {order.customer.id}")
        billing = order.billing_address
        if self.country_mismatch and billing and billing.country != order.shipping_address.country:
            found.append(
                f"billed in {billing.country}, shipped to {order.shipping_address.country}"
            )
        return found


@frozen
class AutomationSettings:
    """The policies a shop switches on (all off: manual processing). See
    :mod:`orderkit.service.automation`."""

    holds: HoldRules = field(factory=HoldRules)
    acknowledge: bool = False
    release: bool = False
    cancel_unpaid_after: timedelta | None = field(default=None, validator=_timeout)
    complete_delivered: bool = False

    @classmethod
    def everything(
        cls,
        *,
        holds: HoldRules | None = None,
        cancel_unpaid_after: timedelta = timedelta(hours=24),
    ) -> AutomationSettings:
        """Every policy on: acknowledge, release, cancel unpaid after a day, complete
        delivered orders; with the given hold rules (none by default)."""
        return cls(
            holds=holds or HoldRules(),
            acknowledge=True,
            release=True,
            cancel_unpaid_after=cancel_unpaid_after,
            complete_delivered=True,
        )


@frozen
class TimerReport:
    """What one run of the timers did."""

    cancelled: tuple[str, ...]
    completed: tuple[str, ...]


class Automation:
    """The policies of a shop (``shop.automation``): event handlers the shop subscribes,
    and :meth:`run_timers`."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        *,
        settings: AutomationSettings,
        clock: Clock,
        return_window: timedelta,
        takes_payments: bool,
        orders: OrderService,
        fulfilment: FulfilmentService,
        payment_status: Callable[[str], PaymentStatus],
    ) -> None:
        if settings.cancel_unpaid_after is not None and not takes_payments:
            raise InvalidSettings(
                "cancelling unpaid orders needs a payment gateway (Shop.open(gateway=...))",
                field="cancel_unpaid_after",
                value=settings.cancel_unpaid_after,
            )
        self.settings = settings
        self._uow = uow
        self._clock = clock
        self._return_window = return_window
        self._takes_payments = takes_payments
        self._orders = orders
        self._fulfilment = fulfilment
        self._payment_status = payment_status

    def subscriptions(self) -> Iterator[tuple[type[OrderEvent], Callable[[Any], None], str]]:
        """(event type, handler, name) for each policy switched on."""
        if self.settings.holds != HoldRules() or self.settings.acknowledge:
            yield OrderPlaced, self.on_placed, "orderkit.automation.placed"
        if self.settings.release:
            for event in (OrderAcknowledged, OrderHoldReleased, PaymentAuthorized, PaymentCaptured):
                yield event, self.release, f"orderkit.automation.release.{event.__name__}"

    # -- handlers -------------------------------------------------------------------------------

    def on_placed(self, event: OrderPlaced) -> None:
        """Hold the new order for review if a rule says so, then acknowledge it."""
        with self._uow() as uow:
            order = uow.orders.get(event.order_id)
            oldest = uow.orders.list(customer_id=order.customer.id, limit=1)  # by placement
        reasons = self.settings.holds.reasons(order, first=oldest[0].id == order.id)
        if reasons and not any(hold.reason == MANUAL_REVIEW for hold in order.holds):
            note = "; ".join(reasons)
            self._attempt(order.id, partial(self._orders.hold, order.id, MANUAL_REVIEW, note))
        if self.settings.acknowledge and order.state == OrderState.PLACED.value:
            self._attempt(order.id, partial(self._orders.acknowledge, order.id))

    def release(self, event: OrderEvent) -> None:
        """Start fulfilment of an acknowledged order once it is not on hold and paid for
        (authorized or captured), or the shop takes no payments."""
        with self._uow() as uow:
            order = uow.orders.get(event.order_id)
        if order.state != OrderState.ACKNOWLEDGED.value or order.is_on_hold:
            return
        if not self._paid_for(order):
            return
        self._attempt(order.id, partial(self._fulfilment.start, order.id))

    def _paid_for(self, order: Order) -> bool:
        """Authorized or captured, or nothing to pay (no gateway, or a total of zero, such
        as an exchange paid by its credit)."""
        if not self._takes_payments or order.totals.total.is_zero():
            return True
        return self._payment_status(order.id) in _PAID

    # -- timers ---------------------------------------------------------------------------------

    def run_timers(self) -> TimerReport:
        """Cancel orders unpaid past the timeout and complete delivered orders whose return
        window closed, if those policies are on; returns the orders each touched."""
        now = self._clock.now()
        cancelled: list[str] = []
        completed: list[str] = []
        timeout = self.settings.cancel_unpaid_after
        if timeout is not None:
            for state in _UNPAID_STATES:
                for order in list(self._orders_in(state)):
                    if not self._paid_for(order) and now - order.placed_at >= timeout:
                        reason = f"unpaid {timeout} after placement"
                        if self._attempt(order.id, partial(self._orders.cancel, order.id, reason)):
                            cancelled.append(order.id)
        if self.settings.complete_delivered:
            for order in list(self._orders_in(OrderState.DELIVERED.value)):
                if self._returns_closed(order.id, now) and self._attempt(
                    order.id, partial(self._orders.transition, order.id, "complete")
                ):
                    completed.append(order.id)
        return TimerReport(tuple(cancelled), tuple(completed))

    def _returns_closed(self, order_id: str, now: datetime) -> bool:
        with self._uow() as uow:
            shipments: Sequence[Shipment] = uow.shipments.for_order(order_id)
            if any(request.is_open for request in uow.returns.for_order(order_id)):
                return False
        arrived = [s.delivered_at for s in shipments if s.arrived and s.delivered_at]
        # the window's last moment still takes a return (see ReturnService): closed after it
        return bool(arrived) and now > max(arrived) + self._return_window

    def _orders_in(self, state: str) -> Iterator[Order]:
        offset = 0
        while True:
            with self._uow() as uow:
                page = uow.orders.list(state=state, limit=500, offset=offset)
            yield from page
            if len(page) < 500:
                return
            offset += len(page)

    def _attempt(self, order_id: str, step: Callable[[], object]) -> bool:
        """Take ``step`` for ``order_id``; a refusal by the shop's rules is logged and the
        order left to an operator."""
        try:
            step()
        except ConcurrencyError:
            raise  # the dispatcher retries the handler
        except _REFUSALS as error:
            log.warning("automation left order %s to an operator: %s", order_id, error)
            return False
        except OrderkitError:
            raise
        return True
