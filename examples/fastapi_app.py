"""A FastAPI service wrapping orderkit: python examples/fastapi_app.py

Four endpoints a web shop needs:

* ``POST /orders`` places an order from the checkout's JSON (the README's "Untrusted input"
  shape). Send an ``Idempotency-Key`` header: a retried checkout gets the same order back and
  the card is charged once. Answers 201 with the order.
* ``GET /orders/{order_id}`` reads it back.
* ``POST /webhooks/payments`` takes the payment gateway's callbacks, ``POST /webhooks/carrier``
  the carrier's tracking scans. Each is applied at most once, so redeliveries are harmless.

Every refusal is an RFC 9457 problem document (``application/problem+json``) that says what
was wrong and, for bad input, which ``field`` and ``value``: 422 for bad input or an
idempotency key reused for another checkout (nothing is stored), 402 for a declined card,
409 for stock that ran out or a step the order's state refuses, 404 for an unknown order,
401 for an unsigned webhook, 503 when the gateway or carrier cannot be reached.

Serve it from the repository's root (``pip install fastapi uvicorn``)::

    uvicorn examples.fastapi_app:app                                  # memory://, demo stock
    ORDERKIT_STORE=sqlite:///shop.db uvicorn examples.fastapi_app:app  # a durable shop

In production set ``ORDERKIT_WEBHOOK_SECRET`` (or check your provider's signature instead):
an unsigned webhook endpoint lets anyone mark a parcel delivered.

Run as a script, it prints that and tries itself once through FastAPI's ``TestClient``.
"""

import json
import os
import re
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Annotated, Any

import attrs
from fastapi import Depends, FastAPI, Header, Request, Response
from fastapi.responses import JSONResponse

import orderkit as ok
from orderkit.adapters.memory_carrier import MemoryCarrier
from orderkit.adapters.memory_gateway import MemoryGateway
from orderkit.adapters.system import SystemClock
from orderkit.serialization import dumps
from orderkit.webhooks import verify_webhook

# Checked in this order: the first class an error is an instance of gives the status.
STATUS_OF: list[tuple[type[ok.OrderkitError], int]] = [
    (ok.PaymentDeclined, 402),
    (ok.GatewayUnavailable, 503),
    (ok.CarrierUnavailable, 503),
    (ok.NotFound, 404),
    (ok.WebhookVerificationFailed, 401),
    (ok.IdempotencyConflict, 422),  # as draft-ietf-httpapi-idempotency-key-header advises
    (ok.InvalidInput, 422),
    (ok.OutOfStock, 409),
]
_CARD_LIKE = re.compile(r"\d[\d\s-]{10,}\d")


async def raw_body(request: Request) -> bytes:
    """The request body exactly as sent: orderkit parses it strictly itself."""
    return await request.body()


# Endpoints are plain ``def``: FastAPI runs them in its thread pool, so orderkit's blocking
# store calls never stall the event loop.
RawBody = Annotated[bytes, Depends(raw_body)]


def problem(error: ok.OrderkitError) -> JSONResponse:
    """The RFC 9457 problem document for ``error``, with what a client can act on."""
    status = next((code for kind, code in STATUS_OF if isinstance(error, kind)), 409)
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": str(error),
        "error": type(error).__name__,
    }
    if isinstance(error, ok.InvalidInput):
        body["field"] = error.field
        body["value"] = shown(error.value)
    elif isinstance(error, ok.OutOfStock):
        body.update(sku=error.sku, requested=error.requested, available=error.available)
    elif isinstance(error, ok.PaymentDeclined):
        body["reason"] = error.reason
    headers = {"Retry-After": "30"} if status == 503 else None
    return JSONResponse(body, status, headers=headers, media_type="application/problem+json")


def shown(value: object) -> object:
    """A rejected value as it may be echoed: short JSON scalars only, never a card number."""
    if value is None or isinstance(value, (bool, int, str)):
        if _CARD_LIKE.search(str(value)):
            return "<redacted digits>"
        return value if len(str(value)) <= 60 else str(value)[:57] + "..."
    return f"<{type(value).__name__}>"


def order_view(shop: ok.Shop, order: ok.Order) -> dict[str, Any]:
    """What the API shows of an order (no payment token, no internal fingerprints)."""
    money = {
        name: str(getattr(order.totals, name).amount)
        for name in ("subtotal", "discount", "tax", "shipping", "total")
    }
    return {
        "id": order.id,
        "state": order.state,
        "customer_id": order.customer.id,
        "currency": order.currency,
        "lines": [
            {
                "line_id": line.line_id,
                "sku": line.sku,
                "name": line.name,
                "quantity": line.quantity,
                "unit_price": str(line.unit_price.amount),
            }
            for line in order.lines
        ],
        "totals": money,
        "holds": [hold.reason for hold in order.holds],
        "payment_status": shop.payments.status(order.id).value,
        "shipments": [
            {"id": s.id, "state": s.state, "tracking_number": s.tracking_number}
            for s in shop.fulfilment.shipments(order.id)
        ],
    }


def create_app(shop: ok.Shop, *, webhook_secret: str | None = None) -> FastAPI:
    """The service for ``shop``. With a ``webhook_secret`` ("whsec_..."), webhook calls must
    be signed the Standard Webhooks way; put your provider's own check there instead."""
    app = FastAPI(title="orderkit example shop")

    @app.exception_handler(ok.OrderkitError)
    async def refused(_request: Request, error: ok.OrderkitError) -> JSONResponse:
        return problem(error)

    @app.post("/orders", status_code=201)
    def place_order(
        body: RawBody,
        response: Response,
        idempotency_key: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        command = ok.PlaceOrder.from_json(body)
        if idempotency_key is not None:
            if command.idempotency_key not in (None, idempotency_key):
                raise ok.InvalidField(
                    "differs from the Idempotency-Key header; send one or the other",
                    field="idempotency_key",
                    value=command.idempotency_key,
                )
            command = attrs.evolve(command, idempotency_key=idempotency_key)
        order = shop.orders.place(command)
        response.headers["Location"] = f"/orders/{order.id}"
        return order_view(shop, order)

    @app.get("/orders/{order_id}")
    def get_order(order_id: str) -> dict[str, Any]:
        return order_view(shop, shop.orders.get(order_id))

    def check_signature(request: Request, body: bytes) -> None:
        if webhook_secret is not None:
            verify_webhook(body, request.headers, webhook_secret)

    # The webhook bodies are orderkit's JSON of a PaymentGatewayEvent and a TrackingEvent. A
    # provider that posts its own shape: map it to those and call apply_payment_event or
    # apply_tracking_event. A 404 (no payment or parcel knows it yet) makes them redeliver.
    @app.post("/webhooks/payments")
    def payment_callback(request: Request, body: RawBody) -> dict[str, str]:
        check_signature(request, body)
        return {"outcome": shop.payments.apply_payment_event_json(body)}

    @app.post("/webhooks/carrier")
    def tracking_scan(request: Request, body: RawBody) -> dict[str, str]:
        check_signature(request, body)
        return {"outcome": shop.shipping.apply_tracking_event_json(body)}

    return app


def open_shop(url: str | None = None) -> ok.Shop:
    """The shop this module serves: ``$ORDERKIT_STORE`` (default ``memory://``) with the
    reference gateway and carrier, and demo stock when the store has no location yet."""
    clock = SystemClock()
    shop = ok.Shop.open(
        url or os.environ.get("ORDERKIT_STORE", "memory://"),
        clock=clock,
        gateway=MemoryGateway(clock=clock),  # your provider's adapter in production
        carriers=[MemoryCarrier(clock=clock)],
        settings=ok.ShopSettings(currency="EUR"),
    )
    if not shop.inventory.locations():
        shop.inventory.add_location(ok.Location("main", "Main warehouse"))
        shop.inventory.receive("MUG-01", location="main", quantity=50)
        shop.inventory.receive("TEA-GR", location="main", quantity=20)
    return shop


shop = open_shop()
app = create_app(shop, webhook_secret=os.environ.get("ORDERKIT_WEBHOOK_SECRET"))

CHECKOUT = """{
  "customer": {"id": "cust-1", "name": "Ada Lovelace", "email": "ada@example.com"},
  "shipping_address": {"recipient": "Ada Lovelace", "line1": "12 Analytical Row",
                       "city": "London", "postal_code": "N1 9GU", "country": "GB"},
  "lines": [{"line_id": "L1", "sku": "MUG-01", "name": "Stoneware mug", "quantity": 2,
             "unit_price": {"amount": "12.50", "currency": "EUR"}}],
  "payment_token": "tok_from_your_gateway",
  "shipping_charge": {"amount": "4.90", "currency": "EUR"}
}"""
"""A checkout as a shop's front end posts it to ``POST /orders``."""


def main() -> None:
    """Say how to serve the app, then try each endpoint once."""
    from fastapi.testclient import TestClient

    print("Serve it with:  uvicorn examples.fastapi_app:app  (from the repository root)")
    with TestClient(app) as client:
        headers = {"Idempotency-Key": "checkout-7f3a"}
        placed = client.post("/orders", content=CHECKOUT, headers=headers)
        again = client.post("/orders", content=CHECKOUT, headers=headers)
        order = placed.json()
        print("POST /orders", placed.status_code, order["id"], order["state"], order["totals"])
        print("  retried with the same Idempotency-Key: same order?", again.json() == order)
        card = CHECKOUT.replace("tok_from_your_gateway", "4111 1111 1111 1111")
        refused = client.post("/orders", content=card)
        print("  a card number instead of a token:", refused.status_code, refused.json()["detail"])
        print("GET /orders/...", client.get(f"/orders/{order['id']}").json()["payment_status"])
        print("GET /orders/nope", client.get("/orders/nope").status_code)

        shop.orders.acknowledge(order["id"])  # the warehouse's side, done by hand here
        (shipment,) = shop.fulfilment.start(order["id"])
        shop.fulfilment.pick(shipment.id)
        shop.fulfilment.pack(shipment.id, [ok.Parcel(900, 300, 200, 100)])
        shipment = shop.shipping.hand_over(shop.shipping.buy_label(shipment.id).id)
        scan = {
            "id": f"{shipment.tracking_number}-delivered",
            "tracking_number": shipment.tracking_number,
            "status": "delivered",
            "occurred_at": datetime.now(timezone.utc).isoformat(),
        }
        for _ in range(2):  # carriers redeliver webhooks
            answer = client.post("/webhooks/carrier", content=json.dumps(scan))
            print("POST /webhooks/carrier", answer.status_code, answer.json())
        print("order is now", client.get(f"/orders/{order['id']}").json()["state"])

        # The gateway confirms by webhook what the shop did (authorized, captured at hand-over)
        gateway = shop.payments.gateway
        assert isinstance(gateway, MemoryGateway)
        for event in gateway.take_callbacks():
            answer = client.post("/webhooks/payments", content=dumps(event))
            print("POST /webhooks/payments", event.kind.value, answer.json())


if __name__ == "__main__":
    main()
