"""What the operator commands print: one JSON document for scripts, rich tables for people.

JSON documents hold aggregates as :func:`orderkit.serialization.make_converter` writes them
(the stored shape, so a script reads what ``orderkit.serialization.loads`` would rebuild),
less what an operator's screen has no use for and should not leak: the payment token and
request fingerprint of an order, a payment's gateway token, and a label's document (the PDF:
``orderkit ship --label FILE`` saves it). Views (totals, line progress, history, stock
levels, pick lists) are plain objects of the same converter.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timezone
from typing import Any

import click
from rich.console import Console
from rich.table import Table

import orderkit as ok
from orderkit.serialization import make_converter

__all__ = [
    "console",
    "data",
    "echo_json",
    "facts",
    "history_data",
    "money",
    "table",
    "when",
]

_CONVERTER = make_converter()
_LEFT_OUT = frozenset({"payment_token", "request_fingerprint", "token", "document"})


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items() if key not in _LEFT_OUT}
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return value


def data(obj: object) -> Any:
    """JSON-ready data of an aggregate, a view or a list of them (secrets left out)."""
    return _scrub(_CONVERTER.unstructure(obj))


def history_data(entries: Iterable[ok.HistoryEntry]) -> list[dict[str, Any]]:
    """An order's history as JSON-ready data: each entry with its event (typed by ``kind``)."""
    return [
        {
            "seq": entry.seq,
            "at": entry.at.isoformat(),
            "kind": entry.kind,
            "summary": entry.summary,
            "event": data(entry.event),
        }
        for entry in entries
    ]


def echo_json(document: dict[str, Any]) -> None:
    """Write ``document`` to stdout as the command's only output."""
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


def console() -> Console:
    """A console on stdout that prints text as it is (customers' words may hold ``[...]``
    or ``:...:``: no markup, no emoji codes). Piped (no terminal, no ``$COLUMNS``), rows
    are not wrapped at 80 columns, so that ids stay whole for ``grep`` and ``cut``."""
    width = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 240
    return Console(highlight=False, markup=False, emoji=False, width=width)


def when(moment: datetime | date | None) -> str:
    """A time in UTC to the minute (``2026-01-05 09:00``), a date as ISO, or a dash."""
    if moment is None:
        return "-"
    if isinstance(moment, datetime):
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")
    return moment.isoformat()


def money(amount: ok.Money | None) -> str:
    """``12.50 EUR``, or a dash."""
    return "-" if amount is None else str(amount)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    """A table with ``columns``; a column named ``id`` or ending in ``id`` never wraps,
    and columns of amounts or counts are right-aligned."""
    grid = Table(title=title, title_justify="left")
    for name in columns:
        numeric = name in _NUMERIC or name.endswith(("total", "amount", "price"))
        grid.add_column(
            name,
            justify="right" if numeric else "left",
            no_wrap=name == "id" or name.endswith((" id", "tracking")),
        )
    for row in rows:
        grid.add_row(*(str(cell) for cell in row))
    return grid


def facts(title: str, rows: Iterable[tuple[str, object]]) -> Table:
    """A two-column table of named facts, without a header row."""
    grid = Table(title=title, title_justify="left", show_header=False)
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for name, value in rows:
        grid.add_row(name, str(value))
    return grid


_NUMERIC = frozenset(
    {
        "qty",
        "ordered",
        "cancelled",
        "allocated",
        "shipped",
        "delivered",
        "returning",
        "returned",
        "on hand",
        "reserved",
        "available",
        "priority",
        "restock",
        "write off",
        "seq",
        "subtotal",
        "discount",
        "tax",
        "shipping",
        "due",
        "refunded",
    }
)
