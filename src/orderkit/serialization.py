"""One cattrs converter for every aggregate, value object, command and event.

Two paths:

* :func:`make_converter` builds the trusted converter used for storage and
  the outbox. :func:`dumps` / :func:`loads` round-trip any orderkit object
  through JSON text exactly; :func:`dumps_event` / :func:`loads_event` add a
  ``"type"`` tag so events of every class share one stream.
* :func:`loads_untrusted` structures JSON from outside (a web form, a webhook)
  strictly. It rejects, each with its own :class:`~orderkit.errors.InvalidInput`
  subclass naming the field path (``lines[2].quantity``):

  - text that is not JSON, duplicate keys, payloads over :data:`MAX_PAYLOAD_BYTES`
    (:class:`InvalidPayload`);
  - keys orderkit does not know (:class:`UnknownField`) and missing ones
    (:class:`MissingField`);
  - a value of the wrong JSON type (:class:`WrongType`);
  - NaN and Infinity (:class:`NonFiniteNumber`);
  - numbers with a fraction or exponent where money is expected (:class:`InvalidMoney`:
    send amounts as strings such as ``"9.99"``);
  - negative, zero or too large quantities (:class:`InvalidQuantity`);
  - text longer than its field's documented limit (:class:`ValueTooLong`);
  - more than :data:`~orderkit.domain.values.MAX_LINES` lines (:class:`TooManyLines`);
  - two lines with one line id (:class:`DuplicateLineId`);
  - card numbers in place of a payment token (:class:`CardNumberRejected`).

Stored documents use stdlib ``json`` with compact separators, keys in field order.
"""

from __future__ import annotations

import base64
import importlib
import json
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from orderkit.domain import events as events_module
from orderkit.domain import return_events as return_events_module
from orderkit.domain.carrier import TrackingStatus
from orderkit.domain.events import DomainEvent
from orderkit.domain.inquiries import Inquiry
from orderkit.domain.inventory import Reservation, StockItem
from orderkit.domain.order import Order
from orderkit.domain.payment import GatewayEventKind, Payment
from orderkit.domain.returns import ReturnRequest
from orderkit.domain.shipment import Shipment
from orderkit.domain.values import MAX_NOTE_LENGTH, ContactChannel, SalesChannel
from orderkit.errors import (
    InvalidInput,
    InvalidMoney,
    InvalidPayload,
    MissingField,
    NonFiniteNumber,
    UnknownField,
    ValueTooLong,
    WrongType,
)
from orderkit.money import Money

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "dumps",
    "dumps_event",
    "loads",
    "loads_event",
    "loads_untrusted",
    "make_converter",
    "make_strict_converter",
]

T = TypeVar("T")

MAX_PAYLOAD_BYTES = 256 * 1024
"""Largest untrusted JSON payload accepted, in bytes (UTF-8)."""


def _register_common(converter: cattrs.Converter) -> None:
    converter.register_unstructure_hook(Decimal, str)
    converter.register_unstructure_hook(datetime, datetime.isoformat)
    converter.register_unstructure_hook(date, date.isoformat)
    converter.register_unstructure_hook(time, time.isoformat)
    converter.register_unstructure_hook(
        Money, lambda money: {"amount": str(money.amount), "currency": money.currency}
    )
    converter.register_unstructure_hook_factory(
        lambda t: cattrs.cols.is_set(t) and getattr(t, "__origin__", t) is frozenset,
        lambda t: lambda values: sorted(converter.unstructure(v) for v in values),
    )
    converter.register_unstructure_hook(bytes, lambda data: base64.b64encode(data).decode())
    # a stock item's reservations are keyed by (order, line), which JSON cannot hold as a
    # key: they travel as a list (each reservation names its order and line)
    converter.register_unstructure_hook(
        StockItem,
        lambda item: {
            "sku": item.sku,
            "location": item.location,
            "on_hand": item.on_hand,
            "backorder_limit": item.backorder_limit,
            "reservations": [converter.unstructure(r) for r in item.reservations.values()],
        },
    )
    for aggregate in (
        Order,
        Payment,
        Shipment,
        ReturnRequest,
        Inquiry,
    ):  # events go through the outbox, not documents
        converter.register_unstructure_hook(
            aggregate,
            make_dict_unstructure_fn(aggregate, converter, pending_events=override(omit=True)),
        )


def make_converter() -> cattrs.Converter:
    """The trusted converter: exact round trips of every orderkit object to JSON-ready data."""
    converter = cattrs.Converter()
    _register_common(converter)
    converter.register_structure_hook(Decimal, lambda value, _: Decimal(value))
    converter.register_structure_hook(bytes, lambda value, _: base64.b64decode(value))
    converter.register_structure_hook(datetime, lambda value, _: datetime.fromisoformat(value))
    converter.register_structure_hook(date, lambda value, _: date.fromisoformat(value))
    converter.register_structure_hook(time, lambda value, _: time.fromisoformat(value))
    converter.register_structure_hook(
        Money, lambda value, _: Money(value["amount"], value["currency"])
    )

    def stock_item(value: dict[str, Any], _: object) -> StockItem:
        held = (converter.structure(r, Reservation) for r in value["reservations"])
        return StockItem(
            value["sku"],
            value["location"],
            value["on_hand"],
            value["backorder_limit"],
            {(r.order_id, r.line_id): r for r in held},
        )

    converter.register_structure_hook(StockItem, stock_item)
    return converter


class _JsonFloat:
    """A JSON number with a fraction or exponent, kept as text so no float is ever made."""

    __slots__ = ("text",)
    json_kind = "number with a fraction"

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class _JsonConstant(_JsonFloat):
    """NaN, Infinity or -Infinity in the JSON text: refused where its field is known."""

    __slots__ = ()
    json_kind = "non-finite number"


def _refuse_constant(value: object) -> None:
    if isinstance(value, _JsonConstant):
        raise NonFiniteNumber(f"{value.text} is not a number orderkit accepts", value=value.text)


def _strict_text(value: object, _: object) -> str:
    _refuse_constant(value)
    if not isinstance(value, str):
        raise WrongType("text", value)
    if len(value) > MAX_NOTE_LENGTH:
        raise ValueTooLong(
            f"is {len(value)} characters long; the limit is {MAX_NOTE_LENGTH}",
            value=value[:20] + "...",
        )
    return value


def _strict_int(value: object, _: object) -> int:
    _refuse_constant(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise WrongType("a whole number", value)
    return value


def _strict_money(value: object, _: object) -> Money:
    if not isinstance(value, dict):
        raise WrongType('an object like {"amount": "9.99", "currency": "EUR"}', value)
    extra = sorted(set(value) - {"amount", "currency"})
    if extra:
        raise UnknownField(f"unknown key(s) {extra}", field=extra[0], value=extra)
    if "amount" not in value or "currency" not in value:
        missing = "amount" if "amount" not in value else "currency"
        raise MissingField("is required", field=missing, value=None)
    amount, currency = value["amount"], value["currency"]
    if isinstance(amount, _JsonConstant):
        raise NonFiniteNumber(f"{amount.text} is not an amount", field="amount", value=amount.text)
    if isinstance(amount, _JsonFloat):
        raise InvalidMoney(
            'floats are not accepted for money; send the amount as a string such as "9.99"',
            field="amount",
            value=amount.text,
        )
    if isinstance(amount, bool) or not isinstance(amount, (str, int)):
        raise WrongType("a decimal string", amount, field="amount")
    if not isinstance(currency, str):
        raise WrongType("a currency code", currency, field="currency")
    return Money(amount, currency)


def _strict_enum(cls: type[Enum]) -> Callable[[object, object], Enum]:
    def structure(value: object, _: object) -> Enum:
        _refuse_constant(value)
        if not isinstance(value, str):
            raise WrongType("text", value)
        try:
            return cls(value)
        except ValueError:
            options = ", ".join(repr(member.value) for member in cls)
            raise InvalidPayload(f"must be one of {options}", value=value) from None

    return structure


def _strict_datetime(value: object, _: object) -> datetime:
    _refuse_constant(value)
    if not isinstance(value, str):
        raise WrongType("an ISO 8601 time such as 2026-01-05T09:00:00+00:00", value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidPayload("is not an ISO 8601 time", value=value[:40]) from None
    if moment.tzinfo is None:
        raise InvalidPayload("needs a time zone offset, such as +00:00", value=value[:40])
    return moment


def _strict_date(value: object, _: object) -> date:
    _refuse_constant(value)
    if not isinstance(value, str):
        raise WrongType("a date such as 2026-01-05", value)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidPayload("is not a date such as 2026-01-05", value=value[:40]) from None


def _strict_objects(converter: cattrs.Converter) -> Callable[[type], Callable[[Any, Any], Any]]:
    def factory(cls: type) -> Callable[[Any, Any], Any]:
        inner: Callable[[Any, Any], Any] = make_dict_structure_fn(
            cls, converter, _cattrs_forbid_extra_keys=True
        )

        def structure(value: object, target: Any) -> Any:
            _refuse_constant(value)
            if not isinstance(value, dict):
                raise WrongType("an object", value)
            return inner(value, target)

        return structure

    return factory


def _strict_sequences(converter: cattrs.Converter) -> Callable[[Any], Callable[[Any, Any], Any]]:
    def factory(target: Any) -> Callable[[Any, Any], Any]:
        inner: Callable[[Any, Any], Any] = homogenous_tuple_structure_factory(target, converter)

        def structure(value: object, kind: Any) -> Any:
            _refuse_constant(value)
            if not isinstance(value, list):
                raise WrongType("a list", value)
            return inner(value, kind)

        return structure

    return factory


def _is_homogenous_tuple(target: Any) -> bool:
    args: tuple[Any, ...] = getattr(target, "__args__", ())
    return getattr(target, "__origin__", None) is tuple and args[1:] == (...,)


def make_strict_converter() -> cattrs.Converter:
    """The converter for untrusted data: no coercion, no unknown keys, typed errors."""
    converter = cattrs.Converter(forbid_extra_keys=True)
    _register_common(converter)
    converter.register_structure_hook(str, _strict_text)
    converter.register_structure_hook(int, _strict_int)
    converter.register_structure_hook(Money, _strict_money)
    # registered per class: the str hook would otherwise take these str-based enums
    converter.register_structure_hook(datetime, _strict_datetime)
    converter.register_structure_hook(date, _strict_date)
    for enum_class in (SalesChannel, ContactChannel, GatewayEventKind, TrackingStatus):
        converter.register_structure_hook(enum_class, _strict_enum(enum_class))
    converter.register_structure_hook_factory(_is_homogenous_tuple, _strict_sequences(converter))
    converter.register_structure_hook_factory(
        lambda t: attrs.has(t) and t is not Money, _strict_objects(converter)
    )
    return converter


_TRUSTED = make_converter()
_STRICT = make_strict_converter()


def dumps(obj: Any) -> str:
    """JSON text of any orderkit object: compact, keys in field order (equal in, equal out)."""
    return json.dumps(_TRUSTED.unstructure(obj), separators=(",", ":"))


def loads(text: str | bytes, cls: type[T]) -> T:
    """Rebuild a ``cls`` from :func:`dumps` output (trusted data: storage, the outbox)."""
    return _TRUSTED.structure(json.loads(text), cls)


def event_tag(cls: type[DomainEvent]) -> str:
    """The ``"type"`` tag of an event class: its name for orderkit's own events,
    ``module:qualname`` for others, so that any process can import it back."""
    if cls.__module__.startswith("orderkit."):
        return cls.__name__
    return f"{cls.__module__}:{cls.__qualname__}"


@cache
def _event_class(tag: str) -> type[DomainEvent]:
    if ":" in tag:
        module_name, _, qualname = tag.partition(":")
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    else:
        target = getattr(events_module, tag, None) or getattr(return_events_module, tag, None)
    if not (isinstance(target, type) and issubclass(target, DomainEvent)):
        raise TypeError(f"{tag!r} is not a DomainEvent class")
    return target


def dumps_event(event: DomainEvent) -> str:
    """JSON text of an event with its class under ``"type"`` (see :func:`event_tag`)."""
    data = _TRUSTED.unstructure(event)
    data["type"] = event_tag(type(event))
    return json.dumps(data, separators=(",", ":"))


def loads_event(text: str | bytes) -> DomainEvent:
    """Rebuild an event written by :func:`dumps_event`, importing a user's event module
    if this process has not imported it yet."""
    data = json.loads(text)
    return _TRUSTED.structure(data, _event_class(data.pop("type")))


class _DuplicateKeys:
    """Collects the objects that repeat a key while JSON is parsed, to report them with a path."""

    def __init__(self) -> None:
        self.found: list[tuple[dict[str, Any], str]] = []

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result and not self.found:
                self.found.append((result, key))
            result[key] = value
        return result


def _locate(tree: Any, target: object, path: str = "") -> str | None:
    """The path of the object ``target`` (by identity) inside parsed JSON."""
    if tree is target:
        return path
    children: list[tuple[str, Any]] = []
    if isinstance(tree, dict):
        children = [(f"{path}.{key}" if path else key, value) for key, value in tree.items()]
    elif isinstance(tree, list):
        children = [(f"{path}[{index}]", value) for index, value in enumerate(tree)]
    for child_path, child in children:
        found = _locate(child, target, child_path)
        if found is not None:
            return found
    return None


def _path_of(error: BaseException) -> tuple[BaseException, str]:
    """Descend a cattrs exception group to its first leaf; return it with its field path."""
    path = ""
    while isinstance(error, (ClassValidationError, IterableValidationError)):
        with_notes, without = error.group_exceptions()
        if with_notes:
            error, note = with_notes[0]
            name = getattr(note, "name", None)
            path += f".{name}" if name is not None else f"[{getattr(note, 'index', '?')}]"
        else:
            error = without[0]
    return error, path.lstrip(".")


def loads_untrusted(text: str | bytes, cls: type[T]) -> T:
    """Parse untrusted JSON into a ``cls`` (a command such as :class:`PlaceOrder`), strictly.

    Raises an :class:`~orderkit.errors.InvalidInput` subclass naming the field
    path and value; see the module docstring for the full list.
    """
    if not isinstance(text, (str, bytes, bytearray)):
        raise InvalidPayload(f"must be JSON text or bytes, not {type(text).__name__}")
    size = len(text.encode() if isinstance(text, str) else text)
    if size > MAX_PAYLOAD_BYTES:
        raise InvalidPayload(f"payload is {size} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    duplicates = _DuplicateKeys()
    try:
        data = json.loads(
            text, parse_constant=_JsonConstant, parse_float=_JsonFloat, object_pairs_hook=duplicates
        )
    except (ValueError, RecursionError) as error:
        raise InvalidPayload(f"not valid JSON: {error}") from None
    if duplicates.found:
        holder, key = duplicates.found[0]
        where = _locate(data, holder)
        raise InvalidPayload(
            "key appears twice in one object", field=f"{where}.{key}" if where else key, value=key
        )
    if not isinstance(data, dict):
        raise WrongType("a JSON object", data)
    try:
        return _STRICT.structure(data, cls)
    except (ClassValidationError, IterableValidationError, InvalidInput) as group:
        leaf, path = _path_of(group)
        if isinstance(leaf, ForbiddenExtraKeysError):
            extra = sorted(leaf.extra_fields)
            where = f"{path}." if path else ""
            raise UnknownField(
                f"unknown key(s) {extra}", field=f"{where}{extra[0]}", value=extra
            ) from None
        if isinstance(leaf, KeyError):
            raise MissingField("is required", field=path or str(leaf), value=None) from None
        if isinstance(leaf, InvalidInput):
            raise leaf.at(path) from None
        raise InvalidPayload(f"{type(leaf).__name__}: {leaf}", field=path or None) from None
