"""The outbox of the in-memory store: the same claim, lease and history rules as the SQL
one, under the store's lock."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta

from attrs import define

from orderkit.domain.events import DomainEvent, aggregate_of
from orderkit.ports import DeadLetter, OutboxRecord

__all__ = ["MemoryOutbox"]


@define
class _OutboxRow:
    seq: int
    aggregate_id: str
    event: DomainEvent
    available_at: datetime
    attempts: int = 0
    lease_owner: str | None = None
    lease_until: datetime | None = None


class MemoryOutbox:
    """The outbox of a :class:`MemoryStore`, with the same claim rules as the SQL one."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._next_seq = 1
        self._pending: dict[int, _OutboxRow] = {}
        self._events: dict[int, DomainEvent] = {}
        self._processed: set[tuple[str, int]] = set()
        self._letters: dict[tuple[str, int], DeadLetter] = {}

    def append(self, events: Sequence[DomainEvent]) -> None:
        """Add committed events (the unit of work calls this under the store lock)."""
        with self._lock:
            for event in events:
                seq = self._next_seq
                self._next_seq += 1
                self._pending[seq] = _OutboxRow(seq, aggregate_of(event), event, event.occurred_at)
                self._events[seq] = event

    def claim(
        self, *, worker: str, limit: int, lease_seconds: float, now: datetime
    ) -> Sequence[OutboxRecord]:
        """Lease up to ``limit`` due events to ``worker`` in seq order, skipping every event
        of an aggregate whose earlier event is leased or not yet due."""
        claimed: list[OutboxRecord] = []
        held_back: set[str] = set()
        until = now + timedelta(seconds=lease_seconds)
        with self._lock:
            for row in self._pending.values():
                if len(claimed) >= limit:
                    break
                if row.aggregate_id in held_back:
                    continue
                leased = row.lease_until is not None and row.lease_until > now
                if row.available_at > now or leased:
                    held_back.add(row.aggregate_id)
                    continue
                row.lease_owner, row.lease_until = worker, until
                claimed.append(OutboxRecord(row.seq, row.aggregate_id, row.event, row.attempts))
        return claimed

    def release(self, seqs: Sequence[int], *, worker: str) -> None:
        """Clear the lease on each of ``seqs`` that ``worker`` holds; others are left alone."""
        with self._lock:
            for seq in seqs:
                row = self._pending.get(seq)
                if row is not None and row.lease_owner == worker:
                    row.lease_owner = row.lease_until = None

    def is_processed(self, handler: str, seq: int) -> bool:
        """True when ``handler`` was marked as having processed ``seq``."""
        with self._lock:
            return (handler, seq) in self._processed

    def mark_processed(self, handler: str, seq: int) -> None:
        """Remember that ``handler`` processed ``seq``; repeating it is harmless."""
        with self._lock:
            self._processed.add((handler, seq))

    def renew(self, seq: int, *, worker: str, lease_seconds: float, now: datetime) -> bool:
        """Extend ``worker``'s lease on ``seq`` to ``now + lease_seconds``.

        Returns False when ``worker`` no longer holds it (released, finished or taken over)."""
        with self._lock:
            row = self._pending.get(seq)
            if row is None or row.lease_owner != worker:
                return False
            row.lease_until = now + timedelta(seconds=lease_seconds)
            return True

    def finish(self, seq: int, *, worker: str, now: datetime) -> None:
        """Drop ``seq`` from the pending events if ``worker`` holds it; otherwise do nothing."""
        with self._lock:
            row = self._pending.get(seq)
            if row is not None and row.lease_owner == worker:
                del self._pending[seq]

    def postpone(self, seq: int, *, worker: str, until: datetime) -> None:
        """If ``worker`` holds ``seq``: count a failed attempt, release the lease and make
        the event due again at ``until``."""
        with self._lock:
            row = self._pending.get(seq)
            if row is not None and row.lease_owner == worker:
                row.attempts += 1
                row.available_at = until
                row.lease_owner = row.lease_until = None

    def dead_letter(self, letter: DeadLetter) -> None:
        """Store ``letter``, replacing any earlier letter for the same handler and seq."""
        with self._lock:
            self._letters[(letter.handler, letter.seq)] = letter

    def dead_letters(self) -> Sequence[DeadLetter]:
        """Every dead letter, ordered by seq, then handler."""
        with self._lock:
            return [self._letters[key] for key in sorted(self._letters, key=lambda k: (k[1], k[0]))]

    def remove_dead_letter(self, handler: str, seq: int) -> None:
        """Forget the dead letter of ``handler`` for ``seq``, if there is one."""
        with self._lock:
            self._letters.pop((handler, seq), None)

    def pending(self) -> int:
        """How many appended events are not yet finished."""
        with self._lock:
            return len(self._pending)

    def history(self, aggregate_id: str) -> Sequence[OutboxRecord]:
        """Every appended event of ``aggregate_id``, finished or not, by seq."""
        with self._lock:
            return [
                OutboxRecord(seq, aggregate_id, event)
                for seq, event in self._events.items()
                if aggregate_of(event) == aggregate_id
            ]
