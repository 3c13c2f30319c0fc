"""Hands committed domain events to their subscribers, after the transaction.

Subscribers are called in the order they subscribed; a handler registered for
a base class (such as :class:`~orderkit.domain.events.OrderEvent`) receives
every subclass. A handler that raises is logged and counted in
:attr:`Dispatcher.failures`; the command that raised the event has already
committed and is not undone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from attrs import frozen

from orderkit.domain.events import DomainEvent

__all__ = ["Dispatcher", "HandlerFailure"]

E = TypeVar("E", bound=DomainEvent)
Handler = Callable[[Any], None]

log = logging.getLogger("orderkit.dispatch")


@frozen
class HandlerFailure:
    """A handler raised on an event."""

    event: DomainEvent
    handler: str
    error: str


class Dispatcher:
    """In-process publish/subscribe for domain events."""

    def __init__(self) -> None:
        self._handlers: list[tuple[type[DomainEvent], Handler]] = []
        self._by_type: dict[type[DomainEvent], tuple[Handler, ...]] = {}
        self.failures: list[HandlerFailure] = []

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        """Call ``handler(event)`` for every committed event that is a ``event_type``."""
        if not (isinstance(event_type, type) and issubclass(event_type, DomainEvent)):
            raise TypeError(f"{event_type!r} is not a DomainEvent class")
        self._handlers.append((event_type, handler))
        self._by_type.clear()

    def _handlers_for(self, event_type: type[DomainEvent]) -> tuple[Handler, ...]:
        handlers = self._by_type.get(event_type)
        if handlers is None:
            handlers = tuple(h for t, h in self._handlers if issubclass(event_type, t))
            self._by_type[event_type] = handlers
        return handlers

    def dispatch(self, events: Iterable[DomainEvent]) -> None:
        """Deliver ``events`` in order to every matching handler."""
        for event in events:
            for handler in self._handlers_for(type(event)):
                try:
                    handler(event)
                except Exception as error:
                    name = getattr(handler, "__qualname__", repr(handler))
                    log.exception("handler %s failed on %s", name, type(event).__name__)
                    self.failures.append(HandlerFailure(event, name, repr(error)))
