"""examples/fastapi_app.py through FastAPI's TestClient: placement (idempotent, refused with a
problem document naming the field, nothing stored), reading an order back, and the payment
and carrier webhooks applied at most once."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import orderkit as ok
from orderkit.adapters.memory import ManualClock, MemoryNotifier, SequentialIds
from orderkit.adapters.memory_carrier import MemoryCarrier
from orderkit.adapters.memory_gateway import MemoryGateway
from orderkit.serialization import dumps
from orderkit.webhooks import new_webhook_secret, sign_webhook

with warnings.catch_warnings():
    # Starlette >= 1.2 prefers httpx2 and warns when it falls back to httpx; with httpx2
    # installed (the test extra should list it) nothing is filtered here.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent
CARD = "4111 1111 1111 1111"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "example_fastapi_app", ROOT / "examples" / "fastapi_app.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


example = _load_example()


def checkout(**changes: Any) -> dict[str, Any]:
    """The example's checkout (two mugs, 29.90 EUR with shipping) with ``changes``."""
    body: dict[str, Any] = json.loads(example.CHECKOUT)
    body.update(changes)
    return body


def open_test_shop(gateway: MemoryGateway, clock: ManualClock) -> ok.Shop:
    shop = ok.Shop.open(
        "memory://",
        clock=clock,
        ids=SequentialIds(),
        gateway=gateway,
        carriers=[MemoryCarrier(clock=clock, seed=3)],
        settings=ok.ShopSettings(
            currency="EUR", capture="manual", gateway_retry_delay=timedelta(0)
        ),
    )
    shop.inventory.add_location(ok.Location("main", "Main warehouse"))
    shop.inventory.receive("MUG-01", location="main", quantity=5)
    return shop


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def gateway(clock: ManualClock) -> MemoryGateway:
    return MemoryGateway(seed=3, clock=clock)


@pytest.fixture
def shop(gateway: MemoryGateway, clock: ManualClock) -> Iterator[ok.Shop]:
    with open_test_shop(gateway, clock) as shop:
        yield shop


@pytest.fixture
def client(shop: ok.Shop) -> Iterator[TestClient]:
    with TestClient(example.create_app(shop)) as client:
        yield client


def post(client: TestClient, path: str, body: Any, **headers: str) -> Any:
    content = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(path, content=content, headers=headers)


def assert_nothing_stored(shop: ok.Shop, gateway: MemoryGateway) -> None:
    assert shop.orders.list() == []
    assert gateway.authorization_count() == 0
    assert [level.reserved for level in shop.inventory.levels("MUG-01")] == [0]


# -- POST /orders ---------------------------------------------------------------------------


def test_placing_an_order_answers_201_with_the_order_and_where_it_lives(
    client: TestClient, shop: ok.Shop
) -> None:
    answer = post(client, "/orders", checkout())
    assert answer.status_code == 201
    order = answer.json()
    assert answer.headers["location"] == f"/orders/{order['id']}"
    assert order["state"] == "placed"
    assert order["totals"]["total"] == "29.90"
    assert order["payment_status"] == "authorized"
    assert order["lines"][0] == {
        "line_id": "L1",
        "sku": "MUG-01",
        "name": "Stoneware mug",
        "quantity": 2,
        "unit_price": "12.50",
    }
    assert "payment_token" not in answer.text
    assert [o.id for o in shop.orders.list()] == [order["id"]]


def test_the_same_idempotency_key_twice_places_one_order_and_charges_once(
    client: TestClient, shop: ok.Shop, gateway: MemoryGateway
) -> None:
    first = post(client, "/orders", checkout(), **{"Idempotency-Key": "checkout-1"})
    again = post(client, "/orders", checkout(), **{"Idempotency-Key": "checkout-1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert len(shop.orders.list()) == 1
    assert gateway.authorization_count() == 1
    assert [level.reserved for level in shop.inventory.levels("MUG-01")] == [2]
    other = post(client, "/orders", checkout(), **{"Idempotency-Key": "checkout-2"})
    assert other.json()["id"] != first.json()["id"]


def test_an_idempotency_key_reused_for_another_checkout_is_refused(
    client: TestClient, shop: ok.Shop
) -> None:
    post(client, "/orders", checkout(), **{"Idempotency-Key": "checkout-1"})
    other = checkout(payment_token="tok_other_card")
    answer = post(client, "/orders", other, **{"Idempotency-Key": "checkout-1"})
    assert answer.status_code == 422
    assert answer.json()["error"] == "IdempotencyConflict"
    assert len(shop.orders.list()) == 1


def test_a_body_key_that_differs_from_the_header_is_refused(
    client: TestClient, shop: ok.Shop, gateway: MemoryGateway
) -> None:
    body = checkout(idempotency_key="from-the-body")
    answer = post(client, "/orders", body, **{"Idempotency-Key": "from-the-header"})
    assert answer.status_code == 422
    assert answer.json()["field"] == "idempotency_key"
    assert_nothing_stored(shop, gateway)
    assert post(client, "/orders", body, **{"Idempotency-Key": "from-the-body"}).status_code == 201


def _line(**changes: Any) -> list[dict[str, Any]]:
    return [{**checkout()["lines"][0], **changes}]


BAD_CHECKOUTS = [
    pytest.param("{not json", "InvalidPayload", None, id="not-json"),
    pytest.param(json.dumps(checkout())[:-1], "InvalidPayload", None, id="cut-short"),
    pytest.param(json.dumps(checkout(coupon="FREE")), "UnknownField", "coupon", id="unknown-key"),
    pytest.param(
        json.dumps(checkout(lines=_line(colour="red"))),
        "UnknownField",
        "lines[0].colour",
        id="unknown-nested-key",
    ),
    pytest.param(
        json.dumps(checkout(payment_token=CARD)),
        "CardNumberRejected",
        "payment_token",
        id="card-number",
    ),
    pytest.param(
        json.dumps(checkout(payment_token=int(CARD.replace(" ", "")))),
        "WrongType",
        "payment_token",
        id="card-number-as-a-number",
    ),
    pytest.param(
        json.dumps(checkout(lines=_line(quantity=0))),
        "InvalidQuantity",
        "lines[0].quantity",
        id="zero-quantity",
    ),
    pytest.param(
        json.dumps(checkout(lines=_line(unit_price={"amount": 12.5, "currency": "EUR"}))),
        "InvalidMoney",
        "lines[0].unit_price.amount",
        id="float-money",
    ),
    pytest.param(
        json.dumps(checkout(lines=_line(sku="NO-SUCH-SKU"))),
        "UnknownSku",
        "lines[0].sku",
        id="unknown-sku",
    ),
    pytest.param("[]", "WrongType", None, id="not-an-object"),
]


@pytest.mark.parametrize(("body", "error", "field"), BAD_CHECKOUTS)
def test_bad_input_is_a_422_problem_naming_the_field_and_nothing_is_stored(
    client: TestClient,
    shop: ok.Shop,
    gateway: MemoryGateway,
    body: str,
    error: str,
    field: str | None,
) -> None:
    answer = post(client, "/orders", body, **{"Idempotency-Key": "checkout-1"})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == 422
    assert problem["error"] == error
    assert problem["field"] == field
    assert problem["detail"]
    assert CARD.replace(" ", "") not in answer.text
    assert CARD not in answer.text
    assert_nothing_stored(shop, gateway)


def test_out_of_stock_is_409_naming_the_sku_and_nothing_is_stored(
    client: TestClient, shop: ok.Shop, gateway: MemoryGateway
) -> None:
    answer = post(client, "/orders", checkout(lines=_line(quantity=6)))
    assert answer.status_code == 409
    problem = answer.json()
    assert (problem["error"], problem["sku"], problem["requested"], problem["available"]) == (
        "OutOfStock",
        "MUG-01",
        6,
        5,
    )
    assert_nothing_stored(shop, gateway)  # stock is checked before the card is authorized


def test_a_declined_card_is_402_with_the_reason_and_nothing_is_stored(
    client: TestClient, shop: ok.Shop, gateway: MemoryGateway
) -> None:
    answer = post(client, "/orders", checkout(payment_token="tok_decline"))
    assert answer.status_code == 402
    assert answer.json()["error"] == "PaymentDeclined"
    assert answer.json()["reason"] == "card_declined"
    assert shop.orders.list() == []
    assert [level.reserved for level in shop.inventory.levels("MUG-01")] == [0]


def test_an_unreachable_gateway_is_503_with_retry_after(clock: ManualClock) -> None:
    down = MemoryGateway(seed=3, clock=clock, unavailable_rate=1.0)
    with open_test_shop(down, clock) as shop, TestClient(example.create_app(shop)) as client:
        answer = post(client, "/orders", checkout(), **{"Idempotency-Key": "checkout-1"})
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "30"
        assert answer.json()["error"] == "GatewayUnavailable"
        assert shop.orders.list() == []


# -- GET /orders/{id} -----------------------------------------------------------------------


def test_get_gives_the_order_and_404_for_an_unknown_one(client: TestClient) -> None:
    placed = post(client, "/orders", checkout()).json()
    answer = client.get(f"/orders/{placed['id']}")
    assert answer.status_code == 200
    assert answer.json() == placed
    missing = client.get("/orders/order-999999")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["error"] == "OrderNotFound"


# -- POST /webhooks/payments ----------------------------------------------------------------


def test_a_payment_callback_posted_twice_is_applied_once(
    client: TestClient, shop: ok.Shop, gateway: MemoryGateway
) -> None:
    order = post(client, "/orders", checkout()).json()
    (payment,) = shop.payments.for_order(order["id"])
    assert payment.authorization_id is not None
    gateway.take_callbacks()
    # captured in the gateway's dashboard: the shop hears of it only through the webhook
    gateway.capture(payment.authorization_id, ok.Money("10.00", "EUR"), idempotency_key="dash-1")
    (captured,) = gateway.take_callbacks()
    body = dumps(captured)
    outcomes = [post(client, "/webhooks/payments", body).json()["outcome"] for _ in range(2)]
    assert outcomes == ["applied", "duplicate"]
    assert shop.payments.for_order(order["id"])[0].captured == ok.Money("10.00", "EUR")
    assert client.get(f"/orders/{order['id']}").json()["payment_status"] == "partially_paid"


def test_a_callback_for_an_unknown_authorization_is_404_so_the_gateway_retries(
    client: TestClient,
) -> None:
    body = {
        "id": "evt_1",
        "kind": "captured",
        "authorization_id": "auth_unknown",
        "occurred_at": "2026-01-05T09:00:00+00:00",
        "operation_id": "cap_1",
        "amount": {"amount": "1.00", "currency": "EUR"},
    }
    answer = post(client, "/webhooks/payments", body)
    assert answer.status_code == 404
    assert answer.json()["error"] == "PaymentNotFound"


def test_a_malformed_payment_callback_is_422(client: TestClient) -> None:
    body = {
        "id": "evt_1",
        "kind": "captured",
        "authorization_id": "auth_1",
        "occurred_at": "2026-01-05T09:00:00+00:00",
        "amount": {"amount": 1.0, "currency": "EUR"},
    }
    answer = post(client, "/webhooks/payments", body)
    assert answer.status_code == 422
    assert answer.json()["field"] == "amount.amount"


# -- POST /webhooks/carrier -----------------------------------------------------------------


def _handed_over(client: TestClient, shop: ok.Shop) -> tuple[str, str]:
    """Place an order through the API and ship it; returns (order id, tracking number)."""
    order_id = post(client, "/orders", checkout()).json()["id"]
    shop.orders.acknowledge(order_id)
    (shipment,) = shop.fulfilment.start(order_id)
    shop.fulfilment.pick(shipment.id)
    shop.fulfilment.pack(shipment.id, [ok.Parcel(900, 300, 200, 100)])
    shipment = shop.shipping.hand_over(shop.shipping.buy_label(shipment.id).id)
    assert shipment.tracking_number is not None
    return order_id, shipment.tracking_number


def _scan(tracking_number: str, status: str, hours: int) -> dict[str, Any]:
    at = datetime(2026, 1, 6, 8, tzinfo=timezone.utc) + timedelta(hours=hours)
    return {
        "id": f"{tracking_number}-{status}",
        "tracking_number": tracking_number,
        "status": status,
        "occurred_at": at.isoformat(),
    }


def test_tracking_scans_move_the_order_to_delivered_once(client: TestClient, shop: ok.Shop) -> None:
    order_id, number = _handed_over(client, shop)
    assert client.get(f"/orders/{order_id}").json()["state"] == "shipped"
    out = post(client, "/webhooks/carrier", _scan(number, "out_for_delivery", 0))
    assert out.json() == {"outcome": "moved"}
    delivered = _scan(number, "delivered", 6)
    outcomes = [post(client, "/webhooks/carrier", delivered).json()["outcome"] for _ in range(2)]
    assert outcomes == ["moved", "duplicate"]
    order = client.get(f"/orders/{order_id}").json()
    assert order["state"] == "delivered"
    assert [s["state"] for s in order["shipments"]] == ["delivered"]
    assert isinstance(shop.notifier, MemoryNotifier)
    assert [n.kind for n in shop.notifier.sent].count("delivered") == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"status": "teleported"}, "status", id="unknown-status"),
        pytest.param({"occurred_at": "2026-01-06T08:00:00"}, "occurred_at", id="no-time-zone"),
        pytest.param({"signed_by": "Ada"}, "signed_by", id="unknown-key"),
        pytest.param({"id": 7}, "id", id="number-for-text"),
    ],
)
def test_a_malformed_scan_is_422_and_moves_nothing(
    client: TestClient, shop: ok.Shop, changes: dict[str, Any], field: str
) -> None:
    order_id, number = _handed_over(client, shop)
    answer = post(client, "/webhooks/carrier", {**_scan(number, "delivered", 0), **changes})
    assert answer.status_code == 422
    assert answer.json()["field"] == field
    assert client.get(f"/orders/{order_id}").json()["state"] == "shipped"


def test_a_scan_of_an_unknown_parcel_is_404(client: TestClient) -> None:
    answer = post(client, "/webhooks/carrier", _scan("NOPE123", "delivered", 0))
    assert answer.status_code == 404
    assert answer.json()["error"] == "ShipmentNotFound"


def test_with_a_secret_only_signed_webhooks_are_applied(
    shop: ok.Shop, gateway: MemoryGateway
) -> None:
    secret = new_webhook_secret()
    with TestClient(example.create_app(shop, webhook_secret=secret)) as client:
        order_id, number = _handed_over(client, shop)
        body = json.dumps(_scan(number, "delivered", 0))
        unsigned = post(client, "/webhooks/carrier", body)
        assert unsigned.status_code == 401
        assert unsigned.json()["error"] == "WebhookVerificationFailed"
        assert shop.orders.get(order_id).state == "shipped"
        stamp = int(datetime.now(timezone.utc).timestamp())
        headers = {
            "webhook-id": "msg_1",
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign_webhook(secret, "msg_1", stamp, body.encode()),
        }
        assert post(client, "/webhooks/carrier", body, **headers).status_code == 200
        assert shop.orders.get(order_id).state == "delivered"


# -- whatever a client sends ----------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)


def _paths(document: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(document, dict):
        for key, value in document.items():
            found += _paths(value, (*path, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += _paths(value, (*path, index))
    return found


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_mangled_checkout_is_placed_or_refused_with_a_problem_and_nothing_stored(
    data: st.DataObject,
) -> None:
    clock = ManualClock()
    gateway = MemoryGateway(seed=3, clock=clock)
    body = checkout()
    path = data.draw(st.sampled_from(_paths(body)[1:]), label="path")
    holder = body
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = data.draw(JSON_VALUES, label="value")
    with open_test_shop(gateway, clock) as shop, TestClient(example.create_app(shop)) as client:
        answer = post(client, "/orders", body)
        if answer.status_code == 201:
            assert len(shop.orders.list()) == 1
        else:
            assert answer.status_code in (402, 409, 422), answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert_nothing_stored(shop, gateway)


def test_the_script_tries_every_endpoint_without_a_server() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "fastapi_app.py")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "uvicorn examples.fastapi_app:app" in result.stdout
    assert "POST /orders 201" in result.stdout
    assert "same order? True" in result.stdout
    assert "a card number instead of a token: 422" in result.stdout
    assert "order is now delivered" in result.stdout
    assert "POST /webhooks/payments captured {'outcome': 'known'}" in result.stdout
