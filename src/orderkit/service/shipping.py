"""The shipping service (stage 4): rates, labels, hand-over, tracking, claims.

Reach it as ``shop.shipping``. Handing a shipment over commits its stock (on hand
goes down) and, once every open unit of the order has left, marks the order
shipped, in one transaction. Carrier scans arrive through
:meth:`ShippingService.apply_tracking_event` (a webhook) or :meth:`ShippingService.poll`;
each is applied at most once and in any order, and the order is marked delivered
when all its shipments are. Customers are told by the notification handlers
(:mod:`orderkit.service.notifications`), payments captured by the payment policies.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from orderkit.domain.carrier import CarrierChoice, CheapestOnTime, Rate, TrackingEvent
from orderkit.domain.inventory import StockDemand
from orderkit.domain.order import Order
from orderkit.domain.shipment import Shipment, arrived_units, expected_delivery
from orderkit.domain.stock_changes import Allocate, Reserve, Ship
from orderkit.errors import (
    CarrierError,
    CarrierUnavailable,
    ConcurrencyError,
    FulfilmentError,
    IdempotencyConflict,
    InvalidField,
    InvalidTransition,
    OrderkitError,
    OutOfStock,
    ShipmentNotFound,
)
from orderkit.ports import Carrier, Clock, IdSource, UnitOfWork, UnitOfWorkFactory
from orderkit.serialization import loads_untrusted
from orderkit.service.dispatch import Dispatcher
from orderkit.service.fulfilment import follow_shipments
from orderkit.service.inventory import check_cover
from orderkit.service.payments import PaymentService, gateway_key
from orderkit.service.settings import ShopSettings
from orderkit.service.transaction import CommandRunner

__all__ = ["ShippingService"]


log = logging.getLogger("orderkit.shipping")


class ShippingService(CommandRunner):
    """Carriers, labels, hand-over and tracking. Reach it as ``shop.shipping``."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        *,
        carriers: Sequence[Carrier],
        clock: Clock,
        ids: IdSource,
        settings: ShopSettings,
        dispatcher: Dispatcher,
        payments: PaymentService,
        choice: CarrierChoice | None = None,
    ) -> None:
        self._uow = uow
        self.carriers = {carrier.name: carrier for carrier in carriers}
        self._clock = clock
        self._ids = ids
        self._settings = settings
        self._dispatcher = dispatcher
        self._payments = payments
        self._lifecycle = settings.order_lifecycle.build()
        self.choice: CarrierChoice = choice or CheapestOnTime(settings.delivery.calendar)

    # -- rates and labels -------------------------------------------------------------------

    def quote(self, shipment_id: str) -> list[Rate]:
        """Every carrier's rates for the packed shipment, cheapest first. A carrier that
        cannot be reached is left out; raises :class:`CarrierError` when none quotes."""
        shipment = self._get(shipment_id)
        if not shipment.parcels:
            raise FulfilmentError(f"shipment {shipment_id} is not packed yet: pack it first")
        rates: list[Rate] = []
        for carrier in self._require_carriers():
            try:
                rates.extend(carrier.quote(shipment))
            except CarrierUnavailable:
                continue
        if not rates:
            raise CarrierError(f"no carrier quoted a rate for shipment {shipment_id}")
        return sorted(rates, key=lambda r: (r.price.amount, r.transit_days, r.carrier, r.rate_id))

    def buy_label(self, shipment_id: str, rate: Rate | None = None) -> Shipment:
        """Buy the label for ``rate`` (by default the shop's choice among the quotes: the
        cheapest that arrives by the promised date) and attach it to the shipment.

        The carrier is asked once per shipment (the idempotency key is the shipment's):
        a retry after a lost answer gets the same label.
        """
        shipment = self._get(shipment_id)
        if shipment.label is not None:
            return shipment
        if rate is not None:
            if not isinstance(rate, Rate):
                raise InvalidField("must be a Rate from quote()", field="rate", value=rate)
            self._carrier(rate.carrier)  # an unknown carrier: refused before anything is kept
        if shipment.rate is None:
            if rate is None:
                rates = self.quote(shipment_id)
                with self._uow() as uow:
                    promised = uow.orders.get(shipment.order_id).promised_delivery
                rate = self.choice.choose(rates, ship_date=self._today(), promised=promised)
            chosen = rate

            def choose(uow: UnitOfWork, now: datetime) -> Shipment:
                current = uow.shipments.get(shipment_id)
                if current.rate is None:
                    current.choose_rate(chosen)
                    uow.shipments.save(current)
                return current

            shipment = self._run(choose)  # a retry after a lost answer buys the same rate
        if rate is not None and rate != shipment.rate:
            raise IdempotencyConflict(
                gateway_key("label", shipment.id), shipment.id, what="shipment's label rate"
            )
        bought = shipment.rate
        if bought is None:  # pragma: no cover - choose() always sets it
            raise FulfilmentError(f"shipment {shipment_id} has no rate chosen")
        carrier = self._carrier(bought.carrier)
        try:
            label = carrier.buy_label(
                shipment, bought, idempotency_key=gateway_key("label", shipment.id)
            )
        except CarrierUnavailable:
            raise  # unknown outcome: the retry asks again for the same rate and key
        except CarrierError:  # refused for good: nothing was bought, choose again

            def forget(uow: UnitOfWork, now: datetime) -> None:
                current = uow.shipments.get(shipment_id)
                current.forget_rate()
                uow.shipments.save(current)

            self._run(forget)
            raise

        def attach(uow: UnitOfWork, now: datetime) -> Shipment:
            current = uow.shipments.get(shipment_id)
            if current.label is None:
                current.attach_label(bought, label, now)
                uow.shipments.save(current)
            return current

        try:
            return self._run(attach)
        except InvalidTransition:  # cancelled while the label was being bought
            self._carrier(bought.carrier).cancel_label(label.tracking_number)
            raise

    # -- hand-over and tracking ---------------------------------------------------------------

    def hand_over(self, shipment_id: str) -> Shipment:
        """The carrier took the labelled shipment: its stock leaves on hand and, when it
        was the last open unit of the order, the order is marked shipped. Repeating it
        (or after the carrier's scan did it) returns the shipment unchanged."""

        def work(uow: UnitOfWork, now: datetime) -> Shipment:
            shipment = uow.shipments.get(shipment_id)
            if shipment.is_handed_over:
                return shipment
            shipment.hand_over(now, self._eta(shipment))
            self._after_move(uow, shipment, "labelled", now)
            return shipment

        return self._run(work)

    def apply_tracking_event(self, event: TrackingEvent) -> str:
        """Apply a carrier scan at most once (``"duplicate"``, ``"recorded"`` or
        ``"moved"``); the order follows (shipped, delivered). Raises
        :class:`ShipmentNotFound` for an unknown tracking number."""
        if not isinstance(event, TrackingEvent):
            raise InvalidField("must be a TrackingEvent", field="event", value=event)

        def work(uow: UnitOfWork, now: datetime) -> str:
            shipment = uow.shipments.by_tracking_number(event.tracking_number)
            if shipment is None:
                raise ShipmentNotFound(f"no shipment has tracking number {event.tracking_number!r}")
            before = shipment.state
            outcome = shipment.apply_scan(event, now)
            if outcome != "duplicate":
                self._after_move(uow, shipment, before, now)
            return outcome

        return self._run(work)

    def apply_tracking_event_json(self, payload: str | bytes) -> str:
        """Parse a scan in orderkit's JSON shape of :class:`TrackingEvent` strictly
        (unknown keys, wrong types, unknown statuses and times without a zone are refused
        with an :class:`~orderkit.errors.InvalidPayload` subclass), then apply it."""
        return self.apply_tracking_event(loads_untrusted(payload, TrackingEvent))

    def poll(self) -> int:
        """Ask the carriers for the scans of every shipment handed over and not yet
        arrived, and apply them; returns how many scans were new. (A labelled shipment is
        polled only once it is handed over: its scans arrive by webhook otherwise.) A
        carrier that fails for one parcel is logged and skipped; the others go on."""
        due: list[Shipment] = []
        for state in ("in_transit", "out_for_delivery", "delivery_failed", "lost"):
            offset = 0
            while True:  # the whole list first: applying scans moves shipments between states
                with self._uow() as uow:
                    page = uow.shipments.list(state=state, limit=500, offset=offset)
                due.extend(page)
                if len(page) < 500:
                    break
                offset += 500
        new = 0
        for shipment in due:
            if shipment.rate is None or shipment.tracking_number is None:
                continue
            carrier = self.carriers.get(shipment.rate.carrier)
            if carrier is None:
                continue
            try:
                scans = carrier.track(shipment.tracking_number)
                known = {scan.id for scan in shipment.scans}
                for scan in scans:
                    if scan.id not in known:
                        new += self.apply_tracking_event(scan) != "duplicate"
            except OrderkitError as error:
                log.warning("tracking %s failed: %s", shipment.tracking_number, error)
        return new

    def expected_delivery(self, order_id: str) -> date | None:
        """When the order should arrive: the latest carrier ETA of its shipments still on
        their way, else the date promised at acknowledgement."""
        with self._uow() as uow:
            order = uow.orders.get(order_id)
            shipments = uow.shipments.for_order(order_id)
        return expected_delivery(order.promised_delivery, shipments)

    # -- cancellation and claims --------------------------------------------------------------

    def stop_labelled(self, order_id: str) -> None:
        """Before an order is cancelled: void the labels of its labelled shipments at their
        carriers. When a carrier refuses because it has the parcel already, its scans are
        applied (the shipment is on its way) and :class:`FulfilmentError` is raised."""
        with self._uow() as uow:
            shipments = uow.shipments.for_order(order_id)
        if any(shipment.is_handed_over for shipment in shipments):
            raise FulfilmentError(
                f"order {order_id} has a shipment on its way; cancel the lines not yet "
                "shipped with cancel_lines instead"
            )
        labelled = [
            (shipment.id, self._carrier(shipment.rate.carrier), shipment.tracking_number)
            for shipment in shipments
            if shipment.state == "labelled"
            and shipment.rate is not None
            and shipment.tracking_number is not None
        ]
        # Ask first, void after: a refusal must not leave another parcel's label dead.
        for shipment_id, carrier, tracking in labelled:
            if carrier.track(tracking):
                self._refuse_cancel(order_id, shipment_id, carrier, tracking)
        for shipment_id, carrier, tracking in labelled:
            try:
                carrier.cancel_label(tracking)
            except CarrierUnavailable:
                raise
            except CarrierError:  # scanned between our asking and voiding
                self._refuse_cancel(order_id, shipment_id, carrier, tracking)

    def _refuse_cancel(
        self, order_id: str, shipment_id: str, carrier: Carrier, tracking: str
    ) -> None:
        """The carrier has the parcel: learn its scans, and refuse the cancellation."""
        for scan in carrier.track(tracking):
            self.apply_tracking_event(scan)
        raise FulfilmentError(
            f"order {order_id}: the carrier has shipment {shipment_id} already; "
            "cancel the lines not yet shipped instead"
        )

    def cancel_label(self, shipment: Shipment) -> None:
        """Void the shipment's unused label at its carrier (handler for cancellations)."""
        if shipment.rate is None or shipment.tracking_number is None:
            return
        self._carrier(shipment.rate.carrier).cancel_label(shipment.tracking_number)

    def resolve_claim(self, shipment_id: str, resolution: str) -> Shipment:
        """Settle a lost, returned or damaged shipment: ``"reship"`` sends its units again
        in a new shipment from stock (returned: the new shipment), ``"refund"`` pays their
        share back to the customer (through the outbox, as the claim's event is handled).
        Raises :class:`FulfilmentError` for a shipment that
        cannot be claimed, and :class:`OutOfStock` when a reship finds no stock."""
        if resolution not in ("reship", "refund"):
            raise InvalidField("must be 'reship' or 'refund'", field="resolution", value=resolution)

        def work(uow: UnitOfWork, now: datetime) -> Shipment:
            shipment = uow.shipments.get(shipment_id)
            order = uow.orders.get(shipment.order_id)
            if shipment.arrived:
                _check_not_returned(shipment, uow.shipments.for_order(order.id), uow)
            replacement = None
            if resolution == "reship":
                replacement = self._reship(uow, order, shipment, now)
                uow.shipments.add(replacement)
            shipment.resolve_claim(resolution, now, replacement.id if replacement else None)
            uow.shipments.save(shipment)
            self._follow(uow, order, now, [shipment, *([replacement] if replacement else [])])
            return replacement or shipment

        return self._run(work, retry_on=(ConcurrencyError, OutOfStock))

    def _reship(self, uow: UnitOfWork, order: Order, lost: Shipment, now: datetime) -> Shipment:
        replacement_id = self._ids.new_id("shipment")
        if self._settings.track_stock:
            demands = [StockDemand(x.line_id, x.sku, x.quantity) for x in lost.lines]
            levels = uow.stock.levels({d.sku for d in demands}, now)
            picks = self._settings.sourcing.source(demands, levels, uow.stock.locations())
            check_cover(demands, picks)
            locations = {pick.location for pick in picks}
            if len(locations) != 1:
                raise FulfilmentError(
                    f"no single location can reship shipment {lost.id}; receive stock first"
                )
            pending = {
                (location, reservation.line_id)
                for _, location, reservation in uow.stock.reservations(order.id)
                if reservation.shipment_id is not None
            }
            if any((pick.location, pick.line_id) in pending for pick in picks):
                # a reservation is kept per order line and location: a second shipment of
                # the line there would merge with the one still waiting to leave
                raise FulfilmentError(
                    f"shipment {lost.id}'s lines still have a parcel waiting at "
                    f"{picks[0].location}; hand it over before reshipping"
                )
            uow.stock.stage(Reserve(order.id, tuple(picks), None, now))
            location = picks[0].location
            for line in lost.lines:
                uow.stock.stage(Allocate(order.id, line.line_id, replacement_id, now, location))
        else:
            location = lost.location
        return Shipment.create(
            shipment_id=replacement_id,
            order_id=order.id,
            location=location,
            ship_to=order.shipping_address,
            lines=lost.lines,
            at=now,
        )

    # -- internals -----------------------------------------------------------------------------

    def _after_move(self, uow: UnitOfWork, shipment: Shipment, before: str, now: datetime) -> None:
        """Stage the shipment, the stock it took with it (on hand-over), and the order."""
        if before == "labelled" and shipment.is_handed_over and self._settings.track_stock:
            for line in shipment.lines:
                uow.stock.stage(Ship(shipment.order_id, line.line_id, now, shipment.location))
        uow.shipments.save(shipment)
        self._follow(uow, uow.orders.get(shipment.order_id), now, [shipment])

    def _follow(
        self, uow: UnitOfWork, order: Order, now: datetime, changed: Sequence[Shipment] = ()
    ) -> None:
        follow_shipments(uow, order, now, self._lifecycle, changed)

    def _eta(self, shipment: Shipment) -> date | None:
        if shipment.rate is None:
            return None
        calendar = self._settings.delivery.calendar
        return calendar.add_business_days(self._today(), shipment.rate.transit_days)

    def _today(self) -> date:
        zone = ZoneInfo(self._settings.delivery.timezone)
        return self._clock.now().astimezone(zone).date()

    def _get(self, shipment_id: str) -> Shipment:
        with self._uow() as uow:
            return uow.shipments.get(shipment_id)

    def _carrier(self, name: str) -> Carrier:
        carrier = self.carriers.get(name)
        if carrier is None:
            raise CarrierError(f"this shop has no carrier named {name!r}")
        return carrier

    def _require_carriers(self) -> list[Carrier]:
        if not self.carriers:
            raise CarrierError(
                "this shop has no carriers; open it with Shop.open(..., carriers=[...])"
            )
        return list(self.carriers.values())


def _check_not_returned(claimed: Shipment, shipments: Sequence[Shipment], uow: UnitOfWork) -> None:
    """A delivered parcel cannot be claimed (damaged) for units the customer is returning:
    those are settled by their return. Raises :class:`FulfilmentError`."""
    others = arrived_units(s for s in shipments if s.id != claimed.id)
    returns = uow.returns.for_order(claimed.order_id)
    for line_id in claimed.units():
        taken = sum(request.units().get(line_id, 0) for request in returns)
        if taken > others.get(line_id, 0):
            raise FulfilmentError(
                f"shipment {claimed.id}: units of line {line_id} are being returned "
                f"({', '.join(r.id for r in returns if r.units().get(line_id))}); "
                "settle them through the return"
            )
