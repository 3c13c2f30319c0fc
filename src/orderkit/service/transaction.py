"""Running one command as one unit of work, re-run from scratch when it loses a race."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, TypeVar

from orderkit.domain.events import DomainEvent
from orderkit.errors import ConcurrencyError, TransactionAborted
from orderkit.ports import Clock, UnitOfWork, UnitOfWorkFactory
from orderkit.service.dispatch import Dispatcher

if TYPE_CHECKING:
    from orderkit.service.settings import ShopSettings

__all__ = ["CommandRunner", "Retry", "dispatch_after_commit", "run_and_dispatch", "run_command"]

T = TypeVar("T")
Retry = type[Exception] | tuple[type[Exception], ...] | None

log = logging.getLogger("orderkit.commands")


def run_command(
    uow: UnitOfWorkFactory,
    clock: Clock,
    work: Callable[[UnitOfWork, datetime], T],
    *,
    retries: int,
    retry_on: Retry,
) -> tuple[T, list[DomainEvent]]:
    """Run ``work(uow, now)`` in a fresh unit of work and commit; return its result and
    the committed events. When ``work`` or the commit raises ``retry_on`` (a stale
    version, a key claimed or stock taken meanwhile), ``work`` is re-run from a fresh
    load, up to ``retries`` times. A transaction the database aborted to break a deadlock
    or a serialization conflict (:class:`TransactionAborted`) is always re-run so."""
    for attempt in range(retries + 1):
        with uow() as unit:
            try:
                result = work(unit, clock.now().astimezone(timezone.utc))
                events = unit.commit()
            except Exception as error:
                again = isinstance(error, TransactionAborted) or (
                    retry_on is not None and isinstance(error, retry_on)
                )
                if not again or attempt == retries:
                    raise
                continue
        return result, events
    raise AssertionError("unreachable")  # pragma: no cover


def dispatch_after_commit(dispatcher: Dispatcher) -> None:
    """Deliver events inline. The command has committed: a failure here must not make
    the caller believe it did not (a retry without a key would repeat it)."""
    try:
        dispatcher.run_pending()
    except Exception:
        log.exception("inline dispatch failed; the events stay in the outbox")


def run_and_dispatch(
    uow: UnitOfWorkFactory,
    clock: Clock,
    work: Callable[[UnitOfWork, datetime], T],
    *,
    retries: int,
    retry_on: Retry,
    dispatcher: Dispatcher | None,
) -> T:
    """:func:`run_command`, then deliver the committed events inline when a
    ``dispatcher`` is given (``None``: leave them to workers, or to the caller)."""
    result, events = run_command(uow, clock, work, retries=retries, retry_on=retry_on)
    if events and dispatcher is not None:
        dispatch_after_commit(dispatcher)
    return result


class CommandRunner:
    """What the services share: each command runs as one unit of work, re-run on a lost
    race, and dispatches its events inline when the shop is set to."""

    _uow: UnitOfWorkFactory
    _clock: Clock
    _settings: ShopSettings
    _dispatcher: Dispatcher

    def _run(
        self, work: Callable[[UnitOfWork, datetime], T], retry_on: Retry = ConcurrencyError
    ) -> T:
        inline = self._settings.dispatch == "inline"
        return run_and_dispatch(
            self._uow,
            self._clock,
            work,
            retries=self._settings.concurrency_retries,
            retry_on=retry_on,
            dispatcher=self._dispatcher if inline else None,
        )
