"""A carrier adapter of your own: python examples/custom_carrier.py

orderkit talks to carriers through the ``Carrier`` port (``orderkit.ports.Carrier``): a
``name``, ``quote``, ``buy_label`` (idempotent per key), ``track`` and ``cancel_label``.
:class:`ParcelHubCarrier` implements it for "ParcelHub", an imagined carrier with a small
JSON API, the way you would for your own carrier: it turns the shop's shipment into the
carrier's request, the carrier's answer into orderkit's values (``Rate``, ``Label``,
``TrackingEvent``), and the carrier's refusals into orderkit's errors:

* ``CarrierUnavailable`` (retryable) when ParcelHub cannot be reached, times out, is
  rate-limited or answers 5xx: the shop may try again with the same idempotency key;
* ``IdempotencyConflict`` when ParcelHub says a key was used for another request;
* ``CarrierError`` for every other refusal (unknown quote, parcel already scanned, bad API
  key) and for an answer the adapter cannot read.

So that the example runs anywhere, :class:`FakeParcelHub` serves that API on loopback
(``http.server`` in a thread), with a parcel timeline driven by the shop's clock. It stands
in for the carrier's sandbox and is not part of an adapter. Check your adapter with
``orderkit.testing.carriers.CarrierContract`` (``tests/test_example_carrier.py`` does).
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import orderkit as ok
from orderkit.adapters.memory import ManualClock
from orderkit.labels import render_label

log = logging.getLogger(__name__)

# -- the adapter: what a shop writes for its carrier --------------------------------------------

STATUSES = {
    "PICKED_UP": ok.TrackingStatus.IN_TRANSIT,
    "IN_TRANSIT": ok.TrackingStatus.IN_TRANSIT,
    "OUT_FOR_DELIVERY": ok.TrackingStatus.OUT_FOR_DELIVERY,
    "DELIVERED": ok.TrackingStatus.DELIVERED,
    "DELIVERY_ATTEMPTED": ok.TrackingStatus.DELIVERY_FAILED,
    "LOST": ok.TrackingStatus.LOST,
    "RETURNED": ok.TrackingStatus.RETURNED_TO_SENDER,
}
"""ParcelHub's event codes that move a parcel, as orderkit's tracking statuses."""

PAPERWORK = {"LABEL_CREATED", "LABEL_VOIDED"}
"""Codes about the label rather than the parcel: not scans, so not passed on."""


class ParcelHubCarrier:
    """The ``Carrier`` port for ParcelHub's API at ``base_url`` (``/v1/...``, JSON, bearer
    ``api_key``). Stateless and thread-safe: every call is one HTTP request, so a shop's
    worker threads and processes can share it. Raises as the module docstring says."""

    def __init__(
        self, base_url: str, *, api_key: str, name: str = "parcelhub", timeout: float = 10.0
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._name = name
        self._timeout = timeout

    @property
    def name(self) -> str:
        """The carrier's id in the shop (``Rate.carrier`` of its rates)."""
        return self._name

    def quote(self, shipment: ok.Shipment) -> Sequence[ok.Rate]:
        """One rate per ParcelHub service for the packed ``shipment``."""
        answer = self._call("POST", "/v1/quotes", _shipment_request(shipment))
        with self._reading("quote"):
            return [
                ok.Rate(
                    carrier=self._name,
                    service=offer["service"],
                    price=ok.Money.from_minor(offer["price"]["cents"], offer["price"]["currency"]),
                    transit_days=offer["transit_days"],
                    rate_id=offer["quote_id"],
                )
                for offer in answer["quotes"]
            ]

    def buy_label(self, shipment: ok.Shipment, rate: ok.Rate, *, idempotency_key: str) -> ok.Label:
        """Buy the label for ``rate``; ParcelHub replays the first answer for a repeated key."""
        if not isinstance(idempotency_key, str) or not idempotency_key.strip():
            raise ok.InvalidField(
                "must be non-blank text", field="idempotency_key", value=idempotency_key
            )
        if rate.carrier != self._name:
            raise ok.CarrierError(f"rate {rate.rate_id!r} is {rate.carrier}'s, not {self._name}'s")
        request = {"quote_id": rate.rate_id, **_shipment_request(shipment)}
        answer = self._call("POST", "/v1/labels", request, idempotency_key=idempotency_key)
        with self._reading("label"):
            return ok.Label(
                carrier=self._name,
                service=answer["service"],
                tracking_number=answer["tracking_number"],
                format=answer["label"]["format"],
                document=base64.b64decode(answer["label"]["data"], validate=True),
                tracking_url=answer.get("tracking_url"),
            )

    def track(self, tracking_number: str) -> Sequence[ok.TrackingEvent]:
        """The parcel's scans so far, oldest first (label paperwork left out)."""
        answer = self._call("GET", f"/v1/parcels/{quote(tracking_number, safe='')}/events")
        scans = []
        with self._reading("tracking"):
            for event in answer["events"]:
                status = STATUSES.get(event["code"])
                if status is None:
                    if event["code"] not in PAPERWORK:  # a code added after this adapter
                        log.warning("ParcelHub event code %r not understood", event["code"])
                    continue
                eta = event.get("estimated_delivery")
                scans.append(
                    ok.TrackingEvent(
                        id=event["event_id"],
                        tracking_number=tracking_number,
                        status=status,
                        occurred_at=datetime.fromisoformat(event["timestamp"]),
                        eta=date.fromisoformat(eta) if eta else None,
                        description=event.get("message"),
                    )
                )
        return sorted(scans, key=lambda scan: scan.occurred_at)

    def cancel_label(self, tracking_number: str) -> None:
        """Void the label; ParcelHub answers 204 again for a label already voided."""
        self._call("DELETE", f"/v1/labels/{quote(tracking_number, safe='')}")

    # -- HTTP ------------------------------------------------------------------------------------

    def _call(
        self, method: str, path: str, body: Any = None, *, idempotency_key: str | None = None
    ) -> Any:
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self._base_url + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            try:
                raise self._refusal(error.code, error.read(), idempotency_key) from None
            finally:
                error.close()
        except (OSError, http.client.HTTPException) as error:  # refused, reset, timed out
            raise ok.CarrierUnavailable(f"{self._name} unreachable: {error}") from None
        if not raw:
            return None
        with self._reading("answer"):
            return json.loads(raw)

    def _refusal(self, status: int, raw: bytes, key: str | None) -> ok.OrderkitError:
        try:
            error = dict(json.loads(raw)["error"])
        except (ValueError, KeyError, TypeError):  # a proxy's HTML page, say
            error = {"message": raw[:200].decode("utf-8", "replace")}
        code, message = error.get("code", "unknown"), error.get("message", "")
        if status == 409 and code == "idempotency_key_reused" and key is not None:
            return ok.IdempotencyConflict(key, str(error.get("tracking_number")), what="label")
        if status in (408, 429) or status >= 500:
            return ok.CarrierUnavailable(f"{self._name} answered HTTP {status}: {message}")
        return ok.CarrierError(f"{self._name} refused ({status} {code}): {message}")

    @contextmanager
    def _reading(self, what: str) -> Iterator[None]:
        """Turn a surprise in ParcelHub's answer (a missing key, a bad date) into CarrierError."""
        try:
            yield
        except (KeyError, TypeError, ValueError) as error:  # orderkit's InvalidInput included
            raise ok.CarrierError(
                f"{self._name} sent a {what} this adapter cannot read: {error!r}"
            ) from None


def _shipment_request(shipment: ok.Shipment) -> dict[str, Any]:
    to = shipment.ship_to
    return {
        "reference": shipment.id,
        "ship_to": {
            "name": to.recipient,
            "street": to.line1,
            "street2": to.line2,
            "city": to.city,
            "postcode": to.postal_code,
            "country": to.country,
        },
        "parcels": [
            {
                "weight_g": p.weight_grams,
                "length_mm": p.length_mm,
                "width_mm": p.width_mm,
                "height_mm": p.height_mm,
            }
            for p in shipment.parcels
        ],
    }


# -- a stand-in for ParcelHub's sandbox, served on loopback --------------------------------------

SERVICES = {"eco": (3, 450, 50), "express": (1, 1200, 150)}
"""ParcelHub's services: business days in transit, base price and price per started kg
(euro cents)."""

PICK_UP = timedelta(hours=2)
"""How long after its purchase a label's parcel is picked up (and can no longer be voided)."""


class FakeParcelHub:
    """ParcelHub's API as this example imagines it, on ``127.0.0.1`` (a context manager).

    A label is picked up two hours after it is bought, out for delivery at 08:00 UTC on its
    delivery day and delivered at 14:00, as ``clock`` tells; it can be voided until pick-up.
    ``unavailable = True`` makes every call answer 503.
    """

    def __init__(self, *, clock: ok.Clock, api_key: str = "sandbox-key") -> None:
        self.clock = clock
        self.api_key = api_key
        self.unavailable = False
        self._lock = threading.Lock()
        self._quotes: dict[str, dict[str, Any]] = {}
        self._labels: dict[str, dict[str, Any]] = {}
        self._keys: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._server = _HubServer(("127.0.0.1", 0), _Handler)
        self._server.hub = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """Where the API answers, such as ``http://127.0.0.1:54321``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeParcelHub:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def voided(self, tracking_number: str) -> bool:
        """Whether the label was voided (for tests)."""
        with self._lock:
            return bool(self._labels[tracking_number]["voided"])

    def answer(self, method: str, path: str, key: str | None, body: Any) -> tuple[int, Any]:
        """One API call: ``(status, JSON document or None)``."""
        if self.unavailable:
            return _error(503, "maintenance", "ParcelHub is down for maintenance")
        parts = path.strip("/").split("/")
        now = self.clock.now()
        with self._lock:
            if (method, parts) == ("POST", ["v1", "quotes"]):
                return self._quote(body)
            if (method, parts) == ("POST", ["v1", "labels"]):
                return self._buy(body, key, now)
            if method == "GET" and len(parts) == 4 and parts[:2] == ["v1", "parcels"]:
                label = self._labels.get(parts[2])
                return (200, {"events": _events(label, now)}) if label else _unknown(parts[2])
            if method == "DELETE" and len(parts) == 3 and parts[:2] == ["v1", "labels"]:
                return self._void(parts[2], now)
        return _error(404, "no_route", f"no route {method} {path}")

    def _quote(self, body: dict[str, Any]) -> tuple[int, Any]:
        kilograms = -(-sum(parcel["weight_g"] for parcel in body["parcels"]) // 1000)
        offers = []
        for service, (days, base, per_kg) in SERVICES.items():
            quote_id = f"q_{uuid.uuid4().hex[:16]}"
            self._quotes[quote_id] = {"service": service, "days": days, **body}
            price = {"cents": base + per_kg * kilograms, "currency": "EUR"}
            offers.append(
                {"quote_id": quote_id, "service": service, "price": price, "transit_days": days}
            )
        return 200, {"quotes": offers}

    def _buy(self, body: dict[str, Any], key: str | None, now: datetime) -> tuple[int, Any]:
        if not key:
            return _error(400, "idempotency_key_missing", "send an Idempotency-Key header")
        if key in self._keys:
            first_request, first_answer = self._keys[key]
            if first_request != body:
                conflict = _error(409, "idempotency_key_reused", "key used for another label")
                conflict[1]["error"]["tracking_number"] = first_answer["tracking_number"]
                return conflict
            return 200, first_answer
        quoted = self._quotes.get(body["quote_id"])
        if quoted is None or quoted["reference"] != body["reference"]:
            return _error(404, "quote_not_found", f"no quote {body['quote_id']} for this parcel")
        if quoted.get("bought"):
            return _error(409, "quote_used", "this quote was bought already; ask for a new one")
        quoted["bought"] = True
        number = f"PH{uuid.uuid4().int % 10**10:010d}"
        to = body["ship_to"]
        document = render_label(
            carrier="ParcelHub",
            service=quoted["service"],
            tracking_number=number,
            ship_to=ok.Address(
                to["name"],
                to["street"],
                to["city"],
                to["postcode"],
                to["country"],
                line2=to["street2"],
            ),
            ship_from="Shop, via ParcelHub",
            parcels=[
                ok.Parcel(p["weight_g"], p["length_mm"], p["width_mm"], p["height_mm"])
                for p in body["parcels"]
            ],
            reference=body["reference"],
        )
        answer = {
            "tracking_number": number,
            "service": quoted["service"],
            "label": {"format": "application/pdf", "data": base64.b64encode(document).decode()},
            "tracking_url": f"https://parcelhub.example/track/{number}",
        }
        eta = ok.BusinessCalendar().add_business_days(now.date(), quoted["days"])
        self._labels[number] = {"number": number, "bought_at": now, "eta": eta, "voided": False}
        self._keys[key] = (body, answer)
        return 201, answer

    def _void(self, number: str, now: datetime) -> tuple[int, Any]:
        label = self._labels.get(number)
        if label is None:
            return _unknown(number)
        if not label["voided"] and now >= label["bought_at"] + PICK_UP:
            return _error(409, "already_scanned", f"parcel {number} was picked up already")
        label["voided"] = True
        return 204, None


def _events(label: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    bought, eta = label["bought_at"], label["eta"]
    timeline = [("LABEL_CREATED", bought)]
    if label["voided"]:
        timeline.append(("LABEL_VOIDED", bought))
    else:
        timeline += [
            ("PICKED_UP", bought + PICK_UP),
            ("OUT_FOR_DELIVERY", datetime.combine(eta, time(8), tzinfo=timezone.utc)),
            ("DELIVERED", datetime.combine(eta, time(14), tzinfo=timezone.utc)),
        ]
    return [
        {
            "event_id": f"{label['number']}-{n}",
            "code": code,
            "timestamp": at.isoformat(),
            "estimated_delivery": eta.isoformat(),
            "message": code.replace("_", " ").lower(),
        }
        for n, (code, at) in enumerate(timeline)
        if at <= now
    ]


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"code": code, "message": message}}


def _unknown(number: str) -> tuple[int, dict[str, Any]]:
    return _error(404, "parcel_not_found", f"no parcel {number}")


class _HubServer(ThreadingHTTPServer):
    daemon_threads = True
    hub: FakeParcelHub


class _Handler(BaseHTTPRequestHandler):
    server: _HubServer

    def do_GET(self) -> None:
        hub = self.server.hub
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Authorization") != f"Bearer {hub.api_key}":
            status, document = _error(401, "unauthorized", "unknown API key")
        else:
            try:
                body = json.loads(raw) if raw else None
                status, document = hub.answer(
                    self.command, self.path, self.headers.get("Idempotency-Key"), body
                )
            except (ValueError, KeyError, TypeError) as error:  # includes orderkit's InvalidInput
                status, document = _error(400, "invalid_request", str(error))
        data = b"" if document is None else json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the example prints what matters."""


# -- a shop shipping with ParcelHub --------------------------------------------------------------


def main() -> None:
    """One order from the shelf to the door through ParcelHub, days passing on a manual clock."""
    clock = ManualClock()  # Monday 2026-01-05 09:00 UTC
    with FakeParcelHub(clock=clock) as hub:
        carrier = ParcelHubCarrier(hub.url, api_key=hub.api_key)
        with ok.Shop.open("memory://", clock=clock, carriers=[carrier]) as shop:
            ship_one_order(shop, clock)


def ship_one_order(shop: ok.Shop, clock: ManualClock) -> ok.Order:
    """Place, pack, label and hand over one order, then let the days pass until it arrives."""
    shop.inventory.add_location(ok.Location("main", "Main warehouse"))
    shop.inventory.receive("MUG-01", location="main", quantity=10)
    order = shop.orders.place(
        ok.PlaceOrder(
            customer=ok.Customer("cust-1", "Ada Lovelace", "ada@example.com"),
            shipping_address=ok.Address(
                "Ada Lovelace", "12 Analytical Row", "London", "N1 9GU", "GB"
            ),
            lines=[ok.LineItem("L1", "MUG-01", "Stoneware mug", 2, ok.Money("12.50", "EUR"))],
            payment_token="tok_from_your_gateway",
        )
    )
    shop.orders.acknowledge(order.id)
    (shipment,) = shop.fulfilment.start(order.id)
    shop.fulfilment.pick(shipment.id)
    shop.fulfilment.pack(shipment.id, [ok.Parcel(1400, 300, 200, 150)])
    for rate in shop.shipping.quote(shipment.id):
        print(f"ParcelHub quotes {rate.service:8} {rate.price}  {rate.transit_days} day(s)")
    shipment = shop.shipping.buy_label(shipment.id)  # the cheapest that arrives in time
    assert shipment.label is not None
    print(f"bought label {shipment.tracking_number}: {len(shipment.label.document)} bytes of PDF")
    shop.shipping.hand_over(shipment.id)
    for _ in range(14):  # a week, in half days
        clock.advance(timedelta(hours=12))
        shop.shipping.poll()  # a worker's job; ParcelHub could call a webhook instead
        print(clock.now().strftime("%a %H:%M"), "parcel", shop.fulfilment.get(shipment.id).state)
        if shop.orders.get(order.id).state == "delivered":
            break
    order = shop.orders.get(order.id)
    print("order", order.id, order.state)
    return order


if __name__ == "__main__":
    main()
