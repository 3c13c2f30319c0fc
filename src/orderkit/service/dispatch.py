"""Delivers committed events from the outbox to their subscribers, at least once.

Commands save their events in the same transaction as their aggregates (the
transactional outbox), so a crash between commit and dispatch loses nothing:
the events wait in the outbox until a dispatcher delivers them.

Delivery rules:

* Each handler has a stable name (``subscribe(..., name=...)``, by default its
  module and qualified name). Once a handler has processed an event, that is
  recorded, and it is not given the event again (per-handler de-duplication).
  A process can still die after a handler ran and before the record is made,
  so handlers with outside effects should be idempotent: delivery is at least once.
* Events of one aggregate are delivered in commit order: while an event waits
  for a retry, later events of the same order wait too.
* A handler that raises is retried with exponential back-off
  (``retry_delay * 2**attempt``, capped at ``max_retry_delay``). After
  ``max_attempts`` attempts the event is recorded as a dead letter for that
  handler, and later events move on. Dead letters can be listed and retried.
* Events are claimed with a lease, so several worker processes can dispatch
  from one store without taking the same event twice; the events of a worker
  that died come back when its lease ends.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import Any, TypeVar

from attrs import frozen

from orderkit.domain.events import DomainEvent
from orderkit.errors import ConcurrencyError, InvalidSettings, StorageError
from orderkit.ports import Clock, DeadLetter, Outbox, OutboxRecord

__all__ = ["DispatchReport", "Dispatcher", "current_seq", "handler_name"]

E = TypeVar("E", bound=DomainEvent)
Handler = Callable[[Any], None]
Wants = Callable[[type[DomainEvent]], bool]

log = logging.getLogger("orderkit.dispatch")


def handler_name(handler: Callable[..., object]) -> str:
    """The default stable name of a handler: ``module.qualname`` (or its class's)."""
    target = handler if hasattr(handler, "__qualname__") else type(handler)
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"


_SEQ: ContextVar[int | None] = ContextVar("orderkit_dispatch_seq", default=None)


def current_seq() -> int | None:
    """The outbox ``seq`` of the event the running handler was given (None outside a
    handler): unique per committed event of a store, equal on every retry of it. A
    handler that needs an id per event (to de-duplicate its own effects) builds it
    from this, since two events can be equal field by field."""
    return _SEQ.get()


@contextmanager
def _delivering(seq: int) -> Iterator[None]:
    token = _SEQ.set(seq)
    try:
        yield
    finally:
        _SEQ.reset(token)


def _idle(wait: Callable[[float], object], seconds: float, should_stop: Callable[[], bool]) -> None:
    """Wait up to ``seconds`` in slices of at most one second, so that a stop request is
    seen soon; return early when ``wait`` says events arrived (returns True)."""
    deadline = time.monotonic() + seconds
    while not should_stop():
        left = deadline - time.monotonic()
        if left <= 0 or wait(min(left, 1.0)) is True:
            return


_PROCESS_TOKEN = secrets.token_hex(4)  # containers can share a host name and pid 1


def _this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{_PROCESS_TOKEN}:{threading.get_ident()}"


@frozen
class DispatchReport:
    """What one :meth:`Dispatcher.run_pending` call did."""

    delivered: int = 0
    retried: int = 0
    dead: int = 0


class Dispatcher:
    """Subscribes handlers to event types and delivers outbox events to them."""

    def __init__(
        self,
        outbox: Outbox,
        clock: Clock,
        *,
        max_attempts: int = 5,
        retry_delay: timedelta = timedelta(seconds=1),
        max_retry_delay: timedelta = timedelta(minutes=10),
        lease: timedelta = timedelta(seconds=60),
    ) -> None:
        if max_attempts < 1:
            raise InvalidSettings("must be at least 1", field="max_attempts", value=max_attempts)
        self._outbox = outbox
        self._clock = clock
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.lease = lease
        self._handlers: list[tuple[type[DomainEvent], str, Handler, Wants | None]] = []
        self._by_type: dict[type[DomainEvent], tuple[tuple[str, Handler], ...]] = {}
        self._dispatching = threading.local()

    def subscribe(
        self,
        event_type: type[E],
        handler: Callable[[E], None],
        *,
        name: str | None = None,
        wants: Wants | None = None,
    ) -> None:
        """Call ``handler(event)`` for every committed event that is an ``event_type``
        (and, with ``wants``, whose class ``wants(cls)`` accepts: events it refuses cost
        the handler nothing, not even a processed mark).

        ``name`` identifies the handler in the processed-events record and in
        dead letters; keep it stable across releases and processes. Without
        one, the handler's module and qualified name are used, numbered in
        subscription order when several handlers share them.
        """
        if not (isinstance(event_type, type) and issubclass(event_type, DomainEvent)):
            raise TypeError(f"{event_type!r} is not a DomainEvent class")
        taken = {existing for _, existing, _, _ in self._handlers}
        if name is not None and name in taken:
            raise InvalidSettings(
                "another handler is subscribed under this name", field="name", value=name
            )
        key = name
        if key is None:
            # Default names must stay stable across processes: repeats are numbered in
            # subscription order (two lambdas of one module become "...<lambda>#2").
            base = handler_name(handler)
            key, count = base, 1
            while key in taken:
                count += 1
                key = f"{base}#{count}"
        self._handlers.append((event_type, key, handler, wants))
        self._by_type.clear()

    def handler_names(self) -> list[str]:
        """The names of the subscribed handlers, in subscription order."""
        return [name for _, name, _, _ in self._handlers]

    def _handlers_for(self, event_type: type[DomainEvent]) -> tuple[tuple[str, Handler], ...]:
        handlers = self._by_type.get(event_type)
        if handlers is None:
            handlers = tuple(
                (n, h)
                for t, n, h, wants in self._handlers
                if issubclass(event_type, t) and (wants is None or wants(event_type))
            )
            self._by_type[event_type] = handlers
        return handlers

    def run_pending(self, *, worker: str | None = None, batch: int = 100) -> DispatchReport:
        """Deliver every event that is due now; return what happened.

        ``worker`` names the lease holder (by default this host, process and
        thread). Events waiting for a retry whose time has not come stay for a
        later call.
        """
        if getattr(self._dispatching, "active", False):
            # called from a handler (a policy's command dispatching inline): the delivery
            # running below us picks up the new events; nesting would recurse per batch
            return DispatchReport(0, 0, 0)
        self._dispatching.active = True
        try:
            return self._run_pending(worker or _this_worker(), batch)
        finally:
            self._dispatching.active = False

    def _run_pending(self, name: str, batch: int) -> DispatchReport:
        delivered = retried = dead = 0
        while True:
            records = self._outbox.claim(
                worker=name,
                limit=batch,
                lease_seconds=self.lease.total_seconds(),
                now=self._clock.now(),
            )
            if not records:
                return DispatchReport(delivered, retried, dead)
            outcome = self._deliver(records, name)
            delivered += outcome.delivered
            retried += outcome.retried
            dead += outcome.dead

    def _deliver(self, records: Sequence[OutboxRecord], worker: str) -> DispatchReport:
        delivered = retried = dead = 0
        held_back: set[str] = set()
        unsettled = {record.seq for record in records}
        try:
            for record in records:
                outcome = self._settle(record, worker, held_back)
                unsettled.discard(record.seq)
                delivered += outcome == "delivered"
                retried += outcome == "retried"
                dead += outcome == "dead"
        finally:
            if unsettled:  # interrupted: hand the rest back now rather than at lease end
                self._outbox.release(sorted(unsettled), worker=worker)
        return DispatchReport(delivered, retried, dead)

    def _settle(self, record: OutboxRecord, worker: str, held_back: set[str]) -> str:
        """Run one event's handlers and record the outcome: delivered, retried, dead or skipped."""
        if record.aggregate_id in held_back:
            self._outbox.release([record.seq], worker=worker)
            return "skipped"
        # Each event gets a fresh lease before its handlers run, so a slow batch never
        # runs an event whose lease has passed to another worker.
        lease = self.lease.total_seconds()
        if not self._outbox.renew(
            record.seq, worker=worker, lease_seconds=lease, now=self._clock.now()
        ):
            held_back.add(record.aggregate_id)
            return "skipped"
        failures = self._run_handlers(record)
        now = self._clock.now()
        if not failures:
            self._outbox.finish(record.seq, worker=worker, now=now)
            return "delivered"
        if record.attempts + 1 >= self.max_attempts:
            for name, error in failures:
                self._outbox.dead_letter(DeadLetter(name, record.seq, record.event, error, now))
            self._outbox.finish(record.seq, worker=worker, now=now)
            return "dead"
        delay = min(self.retry_delay * 2**record.attempts, self.max_retry_delay)
        self._outbox.postpone(record.seq, worker=worker, until=now + delay)
        held_back.add(record.aggregate_id)
        return "retried"

    def _run_handlers(self, record: OutboxRecord) -> list[tuple[str, str]]:
        failures = []
        for name, handler in self._handlers_for(type(record.event)):
            if self._outbox.is_processed(name, record.seq):
                continue
            try:
                with _delivering(record.seq):
                    handler(record.event)
            except Exception as error:
                # the error text may quote customer data: the log gets its type only
                log.warning(
                    "handler %s failed on event %s: %s", name, record.seq, type(error).__name__
                )
                failures.append((name, repr(error)))
                continue
            self._outbox.mark_processed(name, record.seq)
        return failures

    def dead_letters(self) -> Sequence[DeadLetter]:
        """Events a handler gave up on, oldest first."""
        return self._outbox.dead_letters()

    def retry_dead_letter(self, letter: DeadLetter) -> bool:
        """Run the handler of ``letter`` on its event again, now.

        On success the dead letter is removed and True returned; on failure it
        stays (with the new error) and False is returned.
        """
        if self._outbox.is_processed(letter.handler, letter.seq):
            # already resolved (a retry elsewhere succeeded): never hand the event over twice
            self._outbox.remove_dead_letter(letter.handler, letter.seq)
            return True
        handlers = dict(self._handlers_for(type(letter.event)))
        handler = handlers.get(letter.handler)
        if handler is None:
            raise InvalidSettings(
                "no handler of that name is subscribed", field="handler", value=letter.handler
            )
        try:
            with _delivering(letter.seq):
                handler(letter.event)
        except Exception as error:
            self._outbox.dead_letter(
                DeadLetter(letter.handler, letter.seq, letter.event, repr(error), self._clock.now())
            )
            return False
        self._outbox.mark_processed(letter.handler, letter.seq)
        self._outbox.remove_dead_letter(letter.handler, letter.seq)
        return True

    def pending(self) -> int:
        """How many committed events are not yet delivered to every handler."""
        return self._outbox.pending()

    def run_worker(
        self,
        *,
        worker: str | None = None,
        poll_interval: float = 0.5,
        should_stop: Callable[[], bool] = lambda: False,
        on_report: Callable[[DispatchReport], None] | None = None,
        batch: int = 100,
    ) -> None:
        """Dispatch in a loop until ``should_stop()`` is true: the body of a worker process.

        When nothing was due it waits ``poll_interval`` seconds, or until the store
        says a commit brought events (PostgreSQL's ``LISTEN``); ``on_report`` gets each
        round's :class:`DispatchReport`."""
        name = worker or _this_worker()
        # an outbox that can be woken (PostgreSQL's LISTEN) waits for a commit instead
        wait = getattr(self._outbox, "wait_for_events", None) or time.sleep
        while not should_stop():
            try:
                report = self.run_pending(worker=name, batch=batch)
            except (StorageError, ConcurrencyError) as error:
                # the database restarted, a claim lost a deadlock...: the events are safe in
                # the outbox (leases run out); wait and claim again rather than die
                log.warning("worker %s: %s; trying again", name, type(error).__name__)
                _idle(wait, poll_interval, should_stop)
                continue
            if on_report is not None:
                on_report(report)
            if not (report.delivered or report.dead):
                _idle(wait, poll_interval, should_stop)
