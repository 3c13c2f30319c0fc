"""Shop-wide policies, set once when the shop is opened."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any, Literal

from attrs import Attribute, field, frozen

from orderkit.domain.calendar import DeliveryPromise
from orderkit.domain.inventory import PriorityThenSplit, SourcingStrategy
from orderkit.domain.lifecycle import LifecycleDefinition
from orderkit.domain.order import ORDER_LIFECYCLE
from orderkit.domain.values import MAX_TEXT_LENGTH, check_text
from orderkit.errors import InvalidSettings
from orderkit.money import minor_unit
from orderkit.service.automation import AutomationSettings

__all__ = ["CAPTURE_POLICIES", "ShopSettings"]

CAPTURE_POLICIES = ("on_placement", "on_shipment", "manual")
"""When a shop captures the money it authorized at placement."""


def _currency(_instance: object, attribute: Attribute[Any], value: str) -> None:
    minor_unit(value)


def _retries(_instance: object, attribute: Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise InvalidSettings(
            "must be a whole number from 0 to 100", field=attribute.name, value=value
        )


def _name(_instance: object, attribute: Attribute[Any], value: object) -> None:
    check_text(value, field=attribute.name, limit=MAX_TEXT_LENGTH)
    if any(c in value for c in "\r\n\v\f\x85\u2028\u2029") if isinstance(value, str) else False:
        raise InvalidSettings(
            "must be one line: it goes into e-mail subjects", field=attribute.name, value=value
        )


def _dispatch(_instance: object, attribute: Attribute[Any], value: object) -> None:
    if value not in ("inline", "worker"):
        raise InvalidSettings("must be 'inline' or 'worker'", field=attribute.name, value=value)


def _attempts(_instance: object, attribute: Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise InvalidSettings(
            "must be a whole number from 1 to 100", field=attribute.name, value=value
        )


def _delay(_instance: object, attribute: Attribute[Any], value: object) -> None:
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise InvalidSettings("must be a timedelta >= 0", field=attribute.name, value=value)


def _ttl(_instance: object, attribute: Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, timedelta) or value <= timedelta(0)):
        raise InvalidSettings(
            "must be None or a positive timedelta", field=attribute.name, value=value
        )


def _capture(_instance: object, attribute: Attribute[Any], value: object) -> None:
    if value not in CAPTURE_POLICIES:
        raise InvalidSettings(
            f"must be one of {', '.join(CAPTURE_POLICIES)}", field=attribute.name, value=value
        )


def _window(_instance: object, attribute: Attribute[Any], value: object) -> None:
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise InvalidSettings("must be a timedelta >= 0", field=attribute.name, value=value)


def _fraction(_instance: object, attribute: Attribute[Any], value: object) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or not 0 <= value <= 1:
        raise InvalidSettings(
            "must be a Decimal from 0 to 1 (0.1 is ten percent)", field=attribute.name, value=value
        )


def _automation(instance: ShopSettings, attribute: Attribute[Any], value: object) -> None:
    if not isinstance(value, AutomationSettings):
        raise InvalidSettings("must be an AutomationSettings", field=attribute.name, value=value)
    threshold = value.holds.total_over
    if threshold is not None and threshold.currency != instance.currency:
        raise InvalidSettings(
            f"is in {threshold.currency}, the shop in {instance.currency}",
            field="automation.holds.total_over",
            value=str(threshold),
        )


def _lifecycle(_instance: object, attribute: Attribute[Any], value: LifecycleDefinition) -> None:
    value.build()  # validate now, not at the first order


@frozen
class ShopSettings:
    """The policies of one shop.

    * ``currency``: the ISO 4217 currency orders are placed in.
    * ``delivery``: how the promised delivery date is computed (handling days,
      cut-off, transit days, time zone, business calendar).
    * ``order_lifecycle``: the order state graph; extend :data:`ORDER_LIFECYCLE`
      to add states, transitions or guards.
    * ``concurrency_retries``: how often a command is re-run from a fresh load
      when another writer saved the same order first.
    * ``shop_name``: used in customer notifications.
    * ``dispatch``: ``"inline"`` delivers events right after each command's
      commit, in the same process; ``"worker"`` leaves them in the outbox for
      worker processes (``shop.events.run_worker()``).
    * ``handler_attempts``: attempts per handler and event before a dead letter.
    * ``retry_delay``: the first retry's delay; each further retry doubles it.
    * ``track_stock``: placement reserves stock for every line (unknown SKUs and
      short stock are refused) and cancellation releases it. Turn it off for a
      shop that keeps stock elsewhere.
    * ``reservation_ttl``: how long a placement's reservation holds before it
      expires (None: until released or allocated).
    * ``sourcing``: which locations serve an order (default :class:`PriorityThenSplit`).
    * ``capture``: when authorized money is captured (with a payment gateway):
      ``"on_placement"`` right after placement; ``"on_shipment"`` (the default)
      each shipment's share as it ships, and the rest when the order ships;
      ``"manual"`` only when ``shop.payments.capture`` is called.
    * ``gateway_attempts``: calls per gateway operation when it is unavailable
      (each retry reuses the idempotency key, so nothing happens twice).
    * ``gateway_retry_delay``: the wait before the first retry; it doubles each time.
    * ``return_window``: how long after delivery a customer may ask to return units
      (``timedelta(0)``: no returns).
    * ``restocking_fee``: the fraction of a returned unit's price kept back when it
      comes back for the customer's own reasons (changed mind, size or fit, other);
      never for damaged, defective, wrong or not-as-described items.
    * ``return_instructions``: what an approved return tells the customer to do.
    * ``automation``: the policies that process orders without an operator (all off:
      manual processing); see :class:`AutomationSettings`.
    """

    currency: str = field(default="EUR", validator=_currency)
    delivery: DeliveryPromise = field(factory=DeliveryPromise)
    order_lifecycle: LifecycleDefinition = field(default=ORDER_LIFECYCLE, validator=_lifecycle)
    concurrency_retries: int = field(default=3, validator=_retries)
    shop_name: str = field(default="Our shop", validator=_name)
    dispatch: Literal["inline", "worker"] = field(default="inline", validator=_dispatch)
    handler_attempts: int = field(default=5, validator=_attempts)
    retry_delay: timedelta = field(default=timedelta(seconds=1), validator=_delay)
    track_stock: bool = True
    reservation_ttl: timedelta | None = field(default=timedelta(hours=24), validator=_ttl)
    sourcing: SourcingStrategy = field(factory=PriorityThenSplit)
    capture: Literal["on_placement", "on_shipment", "manual"] = field(
        default="on_shipment", validator=_capture
    )
    gateway_attempts: int = field(default=3, validator=_attempts)
    gateway_retry_delay: timedelta = field(default=timedelta(milliseconds=200), validator=_delay)
    return_window: timedelta = field(default=timedelta(days=30), validator=_window)
    restocking_fee: Decimal = field(default=Decimal(0), validator=_fraction)
    automation: AutomationSettings = field(factory=AutomationSettings, validator=_automation)
    return_instructions: str = field(
        default="Pack the items with the order number inside and send them to our returns desk.",
        validator=_name,
    )
