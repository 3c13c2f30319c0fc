"""The one entry object: a configured shop wired to its ports, with services by noun."""

from __future__ import annotations

import os

from orderkit.adapters.memory import MemoryNotifier, MemoryStore
from orderkit.adapters.system import RandomIds, SystemClock
from orderkit.domain.events import OrderAcknowledged
from orderkit.errors import UnsupportedStore
from orderkit.ports import Clock, IdSource, Notifier, UnitOfWorkFactory
from orderkit.service.dispatch import Dispatcher
from orderkit.service.notifications import ConfirmationSender
from orderkit.service.orders import OrderService
from orderkit.service.settings import ShopSettings

__all__ = ["STORE_ENV", "Shop"]

STORE_ENV = "ORDERKIT_STORE"
"""The environment variable read by :meth:`Shop.open` when no store URL is given."""


def open_store(url: str) -> UnitOfWorkFactory:
    """The unit-of-work factory for a store URL; raises :class:`UnsupportedStore`."""
    if url == "memory://":
        return MemoryStore()
    raise UnsupportedStore(f"no orderkit store for {url!r}; this version supports 'memory://'")


class Shop:
    """A shop: settings, ports and the application services, grouped by noun.

    >>> shop = Shop.open("memory://")
    >>> shop.orders  # placement, acknowledgement, holds, cancellation
    <orderkit.service.orders.OrderService object at ...>
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        *,
        settings: ShopSettings | None = None,
        notifier: Notifier | None = None,
        clock: Clock | None = None,
        ids: IdSource | None = None,
    ) -> None:
        self.settings = settings or ShopSettings()
        self.notifier: Notifier = notifier if notifier is not None else MemoryNotifier()
        self.clock: Clock = clock or SystemClock()
        self.ids: IdSource = ids or RandomIds()
        self.events = Dispatcher()
        self.orders = OrderService(
            uow, clock=self.clock, ids=self.ids, settings=self.settings, dispatcher=self.events
        )
        self.events.subscribe(
            OrderAcknowledged, ConfirmationSender(uow, self.notifier, self.settings.shop_name)
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
    ) -> Shop:
        """Open a shop on the store at ``url`` (default: ``$ORDERKIT_STORE``, else memory).

        Without a notifier, notifications are kept in a :class:`MemoryNotifier`
        (``shop.notifier.sent``). Without a clock or id source, the system clock
        and random ids are used.
        """
        store = open_store(url or os.environ.get(STORE_ENV) or "memory://")
        return cls(store, settings=settings, notifier=notifier, clock=clock, ids=ids)

    def subscribe(self, event_type: type, handler: object) -> None:
        """Shorthand for ``shop.events.subscribe``: call ``handler`` after each such event."""
        self.events.subscribe(event_type, handler)  # type: ignore[arg-type]
