"""Contract suites for the ``Clock`` and ``IdSource`` ports.

A shop reads the time and makes ids through these two ports; replace them (a clock
that follows your test fixtures, ids from your database's sequence) and check the
replacement with these suites. Subclass, implement the ``make_...`` method, and let
pytest collect the class::

    from orderkit.testing.system import IdSourceContract

    class TestMyIds(IdSourceContract):
        def make_ids(self):
            return MyDatabaseIds(connection)

What they check:

* :class:`ClockContract`: ``now()`` is a timezone-aware :class:`~datetime.datetime`
  that never goes backwards from one call to the next.
* :class:`IdSourceContract`: ``new_id(kind)`` gives non-blank text of at most
  :data:`~orderkit.domain.values.MAX_ID_LENGTH` characters that every id check of
  orderkit accepts, never the same id twice, for each kind orderkit asks for (and for
  several kinds asked in turn).

Needs pytest (the ``test`` extra).
"""

from __future__ import annotations

from datetime import datetime

import pytest

from orderkit.domain.values import MAX_ID_LENGTH, check_text
from orderkit.ports import Clock, IdSource

__all__ = ["ID_KINDS", "ClockContract", "IdSourceContract"]

ID_KINDS = ("order", "payment", "shipment", "return", "inquiry", "exchange")
"""The kinds of id a shop asks its id source for."""


class ClockContract:
    """The contract of a :class:`~orderkit.ports.Clock`; subclass and implement
    :meth:`make_clock`."""

    readings: int = 200
    """How many times the clock is read in a row."""

    def make_clock(self) -> Clock:
        """A clock to test."""
        raise NotImplementedError

    def test_now_is_timezone_aware(self) -> None:
        now = self.make_clock().now()
        assert isinstance(now, datetime)
        assert now.utcoffset() is not None

    def test_now_never_goes_backwards(self) -> None:
        clock = self.make_clock()
        readings = [clock.now() for _ in range(self.readings)]
        assert readings == sorted(readings)


class IdSourceContract:
    """The contract of an :class:`~orderkit.ports.IdSource`; subclass and implement
    :meth:`make_ids`."""

    count: int = 500
    """How many ids of each kind the uniqueness test asks for."""

    def make_ids(self) -> IdSource:
        """An id source to test."""
        raise NotImplementedError

    @pytest.mark.parametrize("kind", ID_KINDS)
    def test_ids_fit_every_id_field(self, kind: str) -> None:
        new_id = self.make_ids().new_id(kind)
        assert check_text(new_id, field="id", limit=MAX_ID_LENGTH) == new_id

    def test_ids_never_repeat_within_or_across_kinds(self) -> None:
        ids = self.make_ids()
        made = [ids.new_id(kind) for _ in range(self.count) for kind in ID_KINDS]
        assert len(set(made)) == len(made)
