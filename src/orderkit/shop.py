"""The one entry object: a configured shop wired to its ports, with services by noun."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

from orderkit.adapters.memory import MemoryNotifier, MemoryStore
from orderkit.adapters.system import RandomIds, SystemClock
from orderkit.domain.carrier import CarrierChoice
from orderkit.domain.events import (
    DomainEvent,
    OrderAcknowledged,
    OrderCancelled,
    OrderDelivered,
    OrderLinesCancelled,
    OrderShipped,
    PaymentAuthorized,
    PaymentCaptured,
    ShipmentCancelled,
    ShipmentClaimResolved,
    ShipmentHandedOver,
)
from orderkit.domain.return_events import (
    InquiryAnswered,
)
from orderkit.errors import CarrierError, UnsupportedStore
from orderkit.ports import Carrier, Clock, IdSource, Notifier, PaymentGateway, Store
from orderkit.service.automation import Automation
from orderkit.service.dispatch import Dispatcher
from orderkit.service.fulfilment import FulfilmentService
from orderkit.service.inquiries import InquiryService
from orderkit.service.inventory import InventoryService
from orderkit.service.notifications import (
    CancellationNotices,
    ConfirmationSender,
    InquiryNotices,
    LinesCancelledNotices,
    ReturnNotices,
    ShipmentNotices,
)
from orderkit.service.orders import OrderService
from orderkit.service.payments import PaymentService
from orderkit.service.returns import ReturnService
from orderkit.service.settings import ShopSettings
from orderkit.service.shipping import ShippingService
from orderkit.webhooks import WebhookEndpoint, WebhookSender

__all__ = ["DEFAULT_STORE", "STORE_ENV", "Shop", "open_store"]

E = TypeVar("E", bound=DomainEvent)

log = logging.getLogger("orderkit.shop")

STORE_ENV = "ORDERKIT_STORE"
"""The environment variable read by :meth:`Shop.open` when no store URL is given."""

DEFAULT_STORE = "sqlite:///orderkit.db"
"""The store used when neither a URL nor ``$ORDERKIT_STORE`` is given."""


def open_store(url: str) -> Store:
    """Open the store a URL names.

    * ``memory://``: in this process only, gone when it ends;
    * a plain file path: a SQLite database there;
    * ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``, with
      ``?synchronous=FULL`` to survive power loss as well as crashes;
    * ``postgresql://user:password@host:5432/database`` (or ``postgres://``): PostgreSQL,
      shared by many processes and hosts (needs ``orderkit[postgres]``).

    Raises :class:`UnsupportedStore` for any other URL.
    """
    if url == "memory://":
        return MemoryStore()
    if "://" not in url:
        from orderkit.adapters.sqlite import SqliteStore

        return SqliteStore(url)
    parts = urlsplit(url)
    if parts.scheme in ("postgresql", "postgres"):
        from orderkit.adapters.postgres import PostgresStore

        return PostgresStore(url)
    if parts.scheme == "sqlite" and not parts.netloc and parts.path.startswith("/"):
        from orderkit.adapters.sqlite import SqliteStore

        options = parse_qs(parts.query)
        synchronous = options.get("synchronous", ["NORMAL"])[0].upper()
        if synchronous not in ("NORMAL", "FULL"):
            raise UnsupportedStore(f"synchronous must be NORMAL or FULL in {url!r}")
        path = parts.path[1:]
        if not path:
            raise UnsupportedStore(f"no database file in {url!r}; use sqlite:///shop.db")
        return SqliteStore(path, synchronous="FULL" if synchronous == "FULL" else "NORMAL")
    raise UnsupportedStore(
        f"no orderkit store for {url!r}; use 'memory://', 'sqlite:///path/to/shop.db' "
        "or 'postgresql://user@host/database'"
    )


class Shop:
    """A shop: settings, ports and the application services, grouped by noun.

    Use :meth:`open`; close the shop (or use it as a context manager) when done.
    """

    def __init__(
        self,
        store: Store,
        *,
        settings: ShopSettings | None = None,
        notifier: Notifier | None = None,
        clock: Clock | None = None,
        ids: IdSource | None = None,
        gateway: PaymentGateway | None = None,
        carriers: Sequence[Carrier] = (),
        carrier_choice: CarrierChoice | None = None,
        webhooks: Sequence[WebhookEndpoint] = (),
    ) -> None:
        self.store = store
        self.settings = settings or ShopSettings()
        self.notifier: Notifier = notifier if notifier is not None else MemoryNotifier()
        self.clock: Clock = clock or SystemClock()
        self.ids: IdSource = ids or RandomIds()
        self.events = Dispatcher(
            store.outbox,
            self.clock,
            max_attempts=self.settings.handler_attempts,
            retry_delay=self.settings.retry_delay,
        )
        self.payments = PaymentService(
            store,
            gateway=gateway,
            clock=self.clock,
            ids=self.ids,
            settings=self.settings,
            dispatcher=self.events,
        )
        self.orders = OrderService(
            store,
            clock=self.clock,
            ids=self.ids,
            settings=self.settings,
            dispatcher=self.events,
            payments=self.payments,
            before_cancel=lambda order_id: self.shipping.stop_labelled(order_id),
            outbox=store.outbox,
        )
        self.inventory = InventoryService(
            store, clock=self.clock, retries=self.settings.concurrency_retries
        )
        self.fulfilment = FulfilmentService(
            store, clock=self.clock, ids=self.ids, settings=self.settings, dispatcher=self.events
        )
        self.shipping = ShippingService(
            store,
            carriers=carriers,
            clock=self.clock,
            ids=self.ids,
            settings=self.settings,
            dispatcher=self.events,
            payments=self.payments,
            choice=carrier_choice,
        )
        self.returns = ReturnService(
            store,
            clock=self.clock,
            ids=self.ids,
            settings=self.settings,
            dispatcher=self.events,
            payments=self.payments,
            place_exchange=lambda command, return_id: self.orders.place(
                command, exchange_for=return_id
            ),
            acknowledge=lambda order_id: self.orders.acknowledge(order_id),
        )
        self.inquiries = InquiryService(
            store,
            outbox=store.outbox,
            clock=self.clock,
            ids=self.ids,
            settings=self.settings,
            dispatcher=self.events,
        )
        self.automation = Automation(
            store,
            settings=self.settings.automation,
            clock=self.clock,
            return_window=self.settings.return_window,
            takes_payments=gateway is not None,
            orders=self.orders,
            fulfilment=self.fulfilment,
            payment_status=self.payments.status,
        )
        self.events.subscribe(
            OrderAcknowledged,
            ConfirmationSender(store, self.notifier, self.settings.shop_name),
            name="orderkit.order_confirmation",
        )
        self.events.subscribe(
            OrderCancelled,
            CancellationNotices(store, self.notifier, self.settings.shop_name),
            name="orderkit.notify.OrderCancelled",
        )
        self.events.subscribe(
            OrderLinesCancelled,
            LinesCancelledNotices(store, self.notifier, self.settings.shop_name),
            name="orderkit.notify.OrderLinesCancelled",
        )
        notices = ShipmentNotices(store, self.notifier, self.settings.shop_name)
        for notice in ShipmentNotices.events:
            self.events.subscribe(notice, notices, name=f"orderkit.notify.{notice.__name__}")
        self.events.subscribe(ShipmentCancelled, self._void_label, name="orderkit.void_label")
        return_notices = ReturnNotices(store, self.notifier, self.settings.shop_name)
        for kind in ReturnNotices.events:
            self.events.subscribe(kind, return_notices, name=f"orderkit.notify.{kind.__name__}")
        self.events.subscribe(
            InquiryAnswered,
            InquiryNotices(store, self.notifier, self.settings.shop_name),
            name="orderkit.notify.InquiryAnswered",
        )
        self.events.subscribe(
            OrderDelivered, self.returns.close_exchanged, name="orderkit.close_exchanged"
        )
        self.events.subscribe(
            OrderCancelled,
            self.returns.refund_cancelled_exchange,
            name="orderkit.refund_cancelled_exchange",
        )
        self.events.subscribe(
            ShipmentClaimResolved,
            self.returns.refund_claimed_exchange,
            name="orderkit.refund_claimed_exchange",
        )
        for event_type, policy, name in self.automation.subscriptions():
            self.events.subscribe(event_type, policy, name=name)
        for endpoint in webhooks:
            self.add_webhook(endpoint)
        if gateway is not None:
            payments, on = self.payments, self.events.subscribe
            on(
                PaymentAuthorized,
                payments.capture_on_placement,
                name="orderkit.capture_on_placement",
            )
            on(ShipmentHandedOver, payments.capture_shipment, name="orderkit.capture_shipment")
            on(OrderShipped, payments.capture_on_shipment, name="orderkit.capture_on_shipment")
            on(OrderCancelled, payments.settle_cancelled, name="orderkit.settle_cancelled")
            on(PaymentCaptured, payments.settle_cancelled, name="orderkit.refund_late_capture")
            on(ShipmentClaimResolved, payments.refund_claim, name="orderkit.refund_claim")
            on(
                OrderLinesCancelled,
                payments.settle_cancelled_lines,
                name="orderkit.settle_cancelled_lines",
            )

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        settings: ShopSettings | None = None,
        notifier: Notifier | None = None,
        clock: Clock | None = None,
        ids: IdSource | None = None,
        gateway: PaymentGateway | None = None,
        carriers: Sequence[Carrier] = (),
        carrier_choice: CarrierChoice | None = None,
        webhooks: Sequence[WebhookEndpoint] = (),
    ) -> Shop:
        """Open a shop on the store at ``url``: by default ``$ORDERKIT_STORE``, else
        :data:`DEFAULT_STORE` (a SQLite file in the working directory).

        Without a notifier, notifications are kept in a :class:`MemoryNotifier`
        (``shop.notifier.sent``). Without a clock or id source, the system clock
        and random ids are used. Without a payment ``gateway`` the shop takes no
        payments: orders are placed unpaid (invoice, cash on delivery). ``carriers``
        quote and sell labels (``shop.shipping``); ``carrier_choice`` picks among their
        rates (default: the cheapest that arrives by the promised date). ``webhooks``
        are the shop's other systems (CRM, accounting, ERP) that get its events as
        signed HTTP posts (see :meth:`add_webhook`).
        """
        store = open_store(url or os.environ.get(STORE_ENV) or DEFAULT_STORE)
        return cls(
            store,
            settings=settings,
            notifier=notifier,
            clock=clock,
            ids=ids,
            gateway=gateway,
            carriers=carriers,
            carrier_choice=carrier_choice,
            webhooks=webhooks,
        )

    def add_webhook(self, endpoint: WebhookEndpoint) -> None:
        """POST every committed event ``endpoint`` wants to its URL, signed the Standard
        Webhooks way, through the outbox: each endpoint is a handler of its own
        (``endpoint.handler_name``), retried with back-off and dead-lettered after the
        shop's ``handler_attempts``; a failing endpoint never makes another handler get an
        event twice, but later events of the same order wait until its retries end.
        Receivers check posts with :func:`orderkit.webhooks.verify_webhook` and keep one
        post per ``webhook-id``. Posts take up to ``endpoint.timeout`` each: run shops with
        webhooks on ``ShopSettings(dispatch="worker")`` so that commands never wait for them."""
        self.events.subscribe(
            DomainEvent,
            WebhookSender(endpoint, clock=self.clock),
            name=endpoint.handler_name,
            wants=endpoint.wants,
        )

    def _void_label(self, event: ShipmentCancelled) -> None:
        if event.tracking_number is None:
            return
        try:
            self.shipping.cancel_label(self.fulfilment.get(event.shipment_id))
        except CarrierError as error:  # scanned already: a person has to look, not a retry
            log.warning("label %s could not be voided: %s", event.tracking_number, error)

    def subscribe(
        self, event_type: type[E], handler: Callable[[E], None], *, name: str | None = None
    ) -> None:
        """Shorthand for ``shop.events.subscribe``: call ``handler`` for each such event."""
        self.events.subscribe(event_type, handler, name=name)

    def close(self) -> None:
        """Close the store's connections."""
        self.store.close()

    def __enter__(self) -> Shop:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
