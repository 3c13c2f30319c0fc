"""Production adapters for the clock and id ports."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

__all__ = ["RandomIds", "SystemClock"]


class SystemClock:
    """The machine's clock, in UTC."""

    def now(self) -> datetime:
        """The current time in UTC (timezone-aware)."""
        return datetime.now(timezone.utc)


class RandomIds:
    """Random, unguessable ids like ``order_3f2a...`` (UUID4, 32 hex digits)."""

    def new_id(self, kind: str) -> str:
        """``kind``, an underscore and 32 hex digits of a fresh UUID4."""
        return f"{kind}_{uuid.uuid4().hex}"
