"""The values a return is made of: the lines asked for (with their reasons) and what
inspection found."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import Attribute, field, frozen

from orderkit.domain.inventory import at_least
from orderkit.domain.values import MAX_ID_LENGTH, MAX_NOTE_LENGTH, check_text, text
from orderkit.errors import InvalidField

__all__ = ["RETURN_REASONS", "SHOP_FAULT_REASONS", "Inspection", "ReturnLine", "check_units"]

RETURN_REASONS = (
    "damaged",
    "defective",
    "wrong_item",
    "not_as_described",
    "size_or_fit",
    "changed_mind",
    "other",
)
"""The reasons a customer can give for returning a line."""

SHOP_FAULT_REASONS = frozenset({"damaged", "defective", "wrong_item", "not_as_described"})
"""Reasons that are the shop's fault: no restocking fee is kept back for them."""


def _reason(_instance: object, _attribute: Attribute[Any], value: object) -> None:
    if value not in RETURN_REASONS:
        raise InvalidField(
            f"must be one of {', '.join(RETURN_REASONS)}", field="reason", value=value
        )


def _optional_id(_instance: object, attribute: Attribute[Any], value: object) -> None:
    if value is not None:
        check_text(value, field=attribute.name, limit=MAX_ID_LENGTH)


@frozen
class ReturnLine:
    """``quantity`` units of order line ``line_id`` to return, for ``reason`` (one of
    :data:`RETURN_REASONS`), with the customer's ``note``."""

    line_id: str = field(validator=text(MAX_ID_LENGTH))
    quantity: int = field(validator=at_least(1))
    reason: str = field(validator=_reason)
    note: str = field(default="", validator=text(MAX_NOTE_LENGTH, required=False))


@frozen
class Inspection:
    """What became of one line's received units: ``restock`` back on hand at ``location``
    (the service fills in where the line shipped from when None), ``write_off`` damaged.
    Together they are the units received."""

    line_id: str = field(validator=text(MAX_ID_LENGTH))
    restock: int = field(validator=at_least(0))
    write_off: int = field(default=0, validator=at_least(0))
    location: str | None = field(default=None, validator=_optional_id)


def check_units(units: Mapping[str, int], name: str) -> dict[str, int]:
    """``units`` (line id → whole number >= 0) as a dict; raises :class:`InvalidField`
    for anything else, naming ``name``."""
    if not isinstance(units, Mapping):
        raise InvalidField("must map line ids to units", field=name, value=units)
    checked: dict[str, int] = {}
    for line_id, count in units.items():
        check_text(line_id, field=name, limit=MAX_ID_LENGTH)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidField(
                "must be a whole number >= 0", field=f"{name}[{line_id}]", value=count
            )
        checked[line_id] = count
    return checked
