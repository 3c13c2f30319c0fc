"""Outgoing signed webhooks (Standard Webhooks), delivered through the outbox.

The endpoints are real HTTP servers on loopback, started by the tests; signatures are
checked three ways: by the ``standardwebhooks`` package (an independent implementation),
by a few lines of ``hmac`` here, and by :func:`orderkit.webhooks.verify_webhook`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import socket
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from orderkit import PlaceOrder, Shop, ShopSettings
from orderkit.adapters.memory import ManualClock, SequentialIds
from orderkit.adapters.sqlite import SqliteStore
from orderkit.domain.events import DomainEvent, OrderAcknowledged, OrderPlaced, ShipmentDelivered
from orderkit.errors import (
    InvalidField,
    OrderkitError,
    WebhookDeliveryFailed,
    WebhookVerificationFailed,
)
from orderkit.money import Money
from orderkit.serialization import dumps_event, loads_event
from orderkit.webhooks import (
    WebhookEndpoint,
    WebhookSender,
    new_webhook_secret,
    sign_webhook,
    verify_webhook,
    webhook_id,
    webhook_payload,
)

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
SECOND = timedelta(seconds=1)
HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


# --- a real endpoint on loopback ------------------------------------------------------


@dataclass
class Request:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.body)
        return document


@dataclass
class Receiver:
    """Records every request; answers 200 unless told otherwise for the next requests."""

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    plan: deque[int | str] = field(default_factory=deque)
    status: int = 200  # the answer once the plan is used up
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, count: int, status: int = 500) -> None:
        self.plan.extend([status] * count)

    def hang_next(self, count: int = 1) -> None:
        """The next requests get no answer until the test ends (past any timeout)."""
        self.plan.extend(["hang"] * count)

    def next_answer(self, request: Request) -> int | str:
        with self.lock:
            self.requests.append(request)
            return self.plan.popleft() if self.plan else self.status


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        request = Request(
            self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)
        )
        answer = self.server.receiver.next_answer(request)
        try:
            if answer == "hang":
                self.server.receiver.release.wait(10)
                answer = 200
            assert isinstance(answer, int)
            self.send_response(answer)
            if 300 <= answer < 400:
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        except OSError:  # the sender gave up (timeout) and closed the connection
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver


@pytest.fixture
def serve() -> Iterator[Any]:
    """``serve()`` starts one more endpoint server and returns its :class:`Receiver`."""
    started: list[tuple[_Server, threading.Thread]] = []

    def start() -> Receiver:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.receiver = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hooks")
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        started.append((server, thread))
        return server.receiver

    yield start
    for server, thread in started:
        server.receiver.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def receiver(serve: Any) -> Receiver:
    result: Receiver = serve()
    return result


# --- shops ------------------------------------------------------------------------------


def now_utc() -> datetime:
    # the standardwebhooks package checks timestamps against the system clock
    return datetime.now(timezone.utc).replace(microsecond=0)


def make_shop(store: Any = "memory://", *, clock: ManualClock | None = None) -> Shop:
    settings = ShopSettings(
        track_stock=False, handler_attempts=3, retry_delay=SECOND, dispatch="worker"
    )
    clock = clock or ManualClock(now_utc())
    if isinstance(store, str):
        return Shop.open(store, clock=clock, ids=SequentialIds(), settings=settings)
    return Shop(store, clock=clock, ids=SequentialIds(), settings=settings)


def add_webhook(shop: Shop, endpoint: WebhookEndpoint) -> None:
    shop.add_webhook(endpoint)


def clock_of(shop: Shop) -> ManualClock:
    assert isinstance(shop.clock, ManualClock)
    return shop.clock


def event_types(requests: list[Request]) -> list[str]:
    return [request.payload["type"] for request in requests]


def hand_signature(secret: str, headers: dict[str, str], body: bytes) -> str:
    """The Standard Webhooks signature, written out: HMAC-SHA256 of ``id.timestamp.body``."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def an_event(order_id: str = "order-1", when: datetime | None = None) -> OrderPlaced:
    return OrderPlaced(
        occurred_at=when or datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc),
        order_id=order_id,
        customer_id="cust-ada",
        total=Money("52.04", "EUR"),
    )


def signed_headers(
    body: bytes, *, secret: str = SECRET, msg_id: str = "msg_1", ts: int = 0
) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign_webhook(secret, msg_id, ts, body),
    }


TS = 1_767_603_600  # 2026-01-05 09:00 UTC
AT_TS = datetime.fromtimestamp(TS, timezone.utc)


# --- end to end ---------------------------------------------------------------------------


def test_a_shop_posts_signed_events_the_endpoint_subscribed_to(
    receiver: Receiver, place_command: PlaceOrder
) -> None:
    shop = make_shop()
    endpoint = WebhookEndpoint(
        receiver.url, SECRET, events={"OrderPlaced", "OrderAcknowledged"}, timeout=5
    )
    add_webhook(shop, endpoint)
    order = shop.orders.place(place_command)
    shop.orders.hold(order.id, "manual_review")  # an OrderHoldPlaced: not subscribed
    shop.orders.acknowledge(order.id)

    report = shop.events.run_pending()

    assert report.dead == report.retried == 0
    assert event_types(receiver.requests) == ["OrderPlaced", "OrderAcknowledged"]
    ids = set()
    for request in receiver.requests:
        headers, body = request.headers, request.body
        assert request.path == "/hooks"
        assert headers["content-type"] == "application/json"
        assert headers["user-agent"] == "orderkit-webhooks"
        assert re.fullmatch(r"msg_[0-9]+_[0-9a-f]{32}", headers["webhook-id"])
        assert headers["webhook-timestamp"] == str(int(shop.clock.now().timestamp()))
        # three independent checks of one signature
        assert Webhook(SECRET).verify(body, headers) == request.payload
        assert headers["webhook-signature"] == hand_signature(SECRET, headers, body)
        assert verify_webhook(body, headers, SECRET, now=shop.clock.now()) == request.payload
        assert request.payload["data"]["order_id"] == order.id
        ids.add(headers["webhook-id"])
    assert len(ids) == 2
    placed = receiver.requests[0].payload
    assert placed["timestamp"] == shop.clock.now().isoformat().replace("+00:00", "Z")
    assert placed["data"]["total"] == {"amount": "52.04", "currency": "EUR"}
    assert "type" not in placed["data"]


def test_standard_webhooks_reference_vector() -> None:
    # the example the spec's libraries test against
    signature = sign_webhook(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_payload_is_compact_utf8_json_with_type_timestamp_and_data() -> None:
    event = OrderPlaced(
        occurred_at=datetime(2026, 1, 5, 11, 30, tzinfo=timezone(timedelta(hours=2))),
        order_id="order-é",
        customer_id="cust-ß",
        total=Money("1.50", "EUR"),
    )
    body = webhook_payload(event)
    document = json.loads(body.decode("utf-8"))
    assert document == {
        "type": "OrderPlaced",
        "timestamp": "2026-01-05T09:30:00Z",
        "data": {k: v for k, v in json.loads(dumps_event(event)).items() if k != "type"},
    }
    assert body == json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    assert "order-é".encode() in body


def test_webhook_id_is_stable_across_the_outbox_round_trip_and_differs_per_event() -> None:
    event = an_event()
    assert webhook_id(loads_event(dumps_event(event))) == webhook_id(event)
    assert re.fullmatch(r"msg_[0-9a-f]{32}", webhook_id(event))  # outside dispatch: no seq
    assert re.fullmatch(r"msg_7_[0-9a-f]{32}", webhook_id(event, seq=7))
    assert webhook_id(event, seq=7) == webhook_id(loads_event(dumps_event(event)), seq=7)
    assert webhook_id(event, seq=8) != webhook_id(event, seq=7)
    assert webhook_id(an_event("order-2")) != webhook_id(event)
    later = an_event(when=datetime(2026, 1, 5, 9, 0, 1, tzinfo=timezone.utc))
    assert webhook_id(later) != webhook_id(event)


class Crash(BaseException):
    """The process dies right after the endpoint got the request (before it is recorded)."""


def test_after_a_crash_the_redelivery_carries_the_same_webhook_id(
    receiver: Receiver, place_command: PlaceOrder, tmp_path: Path
) -> None:
    endpoint = WebhookEndpoint(receiver.url, SECRET, events={"OrderPlaced"})
    first = make_shop(SqliteStore(tmp_path / "shop.db"))
    sender = WebhookSender(endpoint, clock=first.clock)

    def send_then_die(event: DomainEvent) -> None:
        sender(event)
        raise Crash

    first.events.subscribe(DomainEvent, send_then_die, name=endpoint.handler_name)
    first.orders.place(place_command)
    with pytest.raises(Crash):
        first.events.run_pending()
    first.close()

    second = make_shop(SqliteStore(tmp_path / "shop.db"))  # a restarted process
    add_webhook(second, endpoint)
    second.events.run_pending()
    second.close()

    assert len(receiver.requests) == 2
    before, after = receiver.requests
    assert after.headers["webhook-id"] == before.headers["webhook-id"]
    assert after.body == before.body


def test_distinct_events_at_the_same_instant_get_distinct_webhook_ids(
    receiver: Receiver, place_command: PlaceOrder
) -> None:
    # the two holds are equal field by field: the outbox seq in the id tells them apart
    shop = make_shop()
    add_webhook(shop, WebhookEndpoint(receiver.url, SECRET))
    order = shop.orders.place(place_command)
    shop.orders.hold(order.id, "manual_review")
    shop.orders.release(order.id, "manual_review")
    shop.orders.hold(order.id, "manual_review")
    shop.events.run_pending()
    assert event_types(receiver.requests) == [
        "OrderPlaced",
        "OrderHoldPlaced",
        "OrderHoldReleased",
        "OrderHoldPlaced",
    ]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 4


# --- verification -----------------------------------------------------------------------


def test_verify_accepts_case_insensitive_headers_text_bodies_and_secrets_without_prefix() -> None:
    body = b'{"type":"OrderPlaced"}'
    headers = {k.upper(): v for k, v in signed_headers(body, ts=TS).items()}
    expected = {"type": "OrderPlaced"}
    assert verify_webhook(body, headers, SECRET, now=AT_TS) == expected
    assert verify_webhook(body.decode(), headers, SECRET, now=AT_TS) == expected
    assert verify_webhook(body, headers, SECRET.removeprefix("whsec_"), now=AT_TS) == expected


def test_verify_accepts_several_signatures_one_of_which_matches() -> None:
    body = b"{}"
    headers = signed_headers(body, ts=TS)
    other = sign_webhook(new_webhook_secret(), "msg_1", TS, body)
    headers["webhook-signature"] = f"v1a,AAAA {other} v1,!!garbage {headers['webhook-signature']}"
    assert verify_webhook(body, headers, SECRET, now=AT_TS) == {}
    headers["webhook-signature"] = headers["webhook-signature"].replace("v1,!!garbage ", "")
    theirs = Webhook(SECRET)
    with pytest.MonkeyPatch.context() as patch:  # the package reads the system clock
        patch.setattr(theirs, "_Webhook__verify_timestamp", lambda _stamp: AT_TS)
        assert theirs.verify(body, headers) == {}
    with pytest.raises(WebhookVerificationFailed):
        verify_webhook(
            body, {**headers, "webhook-signature": f"v1a,AAAA {other}"}, SECRET, now=AT_TS
        )


def test_verify_rejects_a_tampered_body_and_a_wrong_secret() -> None:
    body = b'{"total":"52.04"}'
    headers = signed_headers(body, ts=TS)
    with pytest.raises(WebhookVerificationFailed, match="no v1 signature"):
        verify_webhook(b'{"total":"0.01"}', headers, SECRET, now=AT_TS)
    with pytest.raises(WebhookVerificationFailed, match="no v1 signature"):
        verify_webhook(body, headers, new_webhook_secret(), now=AT_TS)


@pytest.mark.parametrize("missing", HEADERS)
def test_verify_rejects_a_missing_header(missing: str) -> None:
    headers = signed_headers(b"{}", ts=TS)
    del headers[missing]
    with pytest.raises(WebhookVerificationFailed, match=f"the {missing} header is missing"):
        verify_webhook(b"{}", headers, SECRET, now=AT_TS)
    with pytest.raises(WebhookVerificationFailed, match=f"the {missing} header is missing"):
        verify_webhook(b"{}", {**headers, missing: " "}, SECRET, now=AT_TS)


@pytest.mark.parametrize(
    ("shift", "message"),
    [(timedelta(seconds=301), "old"), (-timedelta(seconds=301), "in the future")],
)
def test_verify_rejects_stale_and_future_timestamps(shift: timedelta, message: str) -> None:
    headers = signed_headers(b"{}", ts=TS)
    with pytest.raises(WebhookVerificationFailed, match=message):
        verify_webhook(b"{}", headers, SECRET, now=AT_TS + shift)
    # the edges of the window still pass, and a wider tolerance lets the message in
    edge = timedelta(seconds=300) if shift > timedelta(0) else -timedelta(seconds=300)
    assert verify_webhook(b"{}", headers, SECRET, now=AT_TS + edge) == {}
    wide = timedelta(minutes=10)
    assert verify_webhook(b"{}", headers, SECRET, now=AT_TS + shift, tolerance=wide) == {}


@pytest.mark.parametrize(
    "stamp", ["1767603600.0", "abc", "-5", "+1767603600", "\uff11\uff17", "9" * 40]
)
def test_verify_rejects_a_timestamp_that_is_not_whole_seconds(stamp: str) -> None:
    headers = {**signed_headers(b"{}", ts=TS), "webhook-timestamp": stamp}
    with pytest.raises(WebhookVerificationFailed, match="not whole Unix seconds"):
        verify_webhook(b"{}", headers, SECRET, now=AT_TS)


@pytest.mark.parametrize(
    "signature",
    ["garbage", "v1", "v1,", "v1,!!!!", "v1,AAAA", "v2,{valid}", "{valid}x", "V1,{valid}"],
)
def test_verify_rejects_garbage_signatures(signature: str) -> None:
    headers = signed_headers(b"{}", ts=TS)
    valid = headers["webhook-signature"].removeprefix("v1,")
    headers["webhook-signature"] = signature.replace("{valid}", valid)
    with pytest.raises(WebhookVerificationFailed, match="no v1 signature"):
        verify_webhook(b"{}", headers, SECRET, now=AT_TS)


def test_verify_rejects_a_signed_body_that_is_not_a_json_object() -> None:
    for body in (b"not json", b"[1, 2]"):
        with pytest.raises(WebhookVerificationFailed, match=r"not (a )?JSON"):
            verify_webhook(body, signed_headers(body, ts=TS), SECRET, now=AT_TS)


msg_ids = st.from_regex(r"[A-Za-z0-9_\-]{1,40}", fullmatch=True)
timestamps = st.integers(min_value=0, max_value=253_402_300_000)
json_bodies = st.dictionaries(
    st.text(max_size=10), st.text(max_size=20) | st.integers() | st.booleans(), max_size=5
).map(lambda doc: json.dumps(doc, ensure_ascii=False).encode())


@given(body=json_bodies, msg_id=msg_ids, ts=timestamps)
def test_sign_then_verify_round_trips_and_agrees_with_standardwebhooks(
    body: bytes, msg_id: str, ts: int
) -> None:
    headers = signed_headers(body, msg_id=msg_id, ts=ts)
    assert verify_webhook(
        body, headers, SECRET, now=datetime.fromtimestamp(ts, timezone.utc)
    ) == json.loads(body)
    assert headers["webhook-signature"] == hand_signature(SECRET, headers, body)
    theirs = Webhook(SECRET).sign(msg_id, datetime.fromtimestamp(ts, timezone.utc), body.decode())
    assert theirs == headers["webhook-signature"]


@given(body=st.binary(min_size=1, max_size=200), data=st.data(), msg_id=msg_ids, ts=timestamps)
def test_any_single_byte_change_of_the_body_fails_verification(
    body: bytes, data: st.DataObject, msg_id: str, ts: int
) -> None:
    headers = signed_headers(body, msg_id=msg_id, ts=ts)
    index = data.draw(st.integers(0, len(body) - 1))
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != body[index]))
    changed = body[:index] + bytes([byte]) + body[index + 1 :]
    with pytest.raises(WebhookVerificationFailed, match="no v1 signature"):
        verify_webhook(changed, headers, SECRET, now=datetime.fromtimestamp(ts, timezone.utc))


@pytest.mark.parametrize("msg_id", ["", "msg.1", "msg 1", "msg\n1"])
def test_sign_refuses_ids_that_would_make_the_signed_text_or_header_ambiguous(msg_id: str) -> None:
    with pytest.raises(InvalidField, match="msg_id"):
        sign_webhook(SECRET, msg_id, TS, b"{}")


# --- retries, dead letters, failures ------------------------------------------------------


def test_a_failing_endpoint_is_retried_with_the_same_id_and_a_fresh_timestamp(
    receiver: Receiver, place_command: PlaceOrder
) -> None:
    shop = make_shop()
    clock = clock_of(shop)
    add_webhook(shop, WebhookEndpoint(receiver.url, SECRET, events={"OrderPlaced"}))
    receiver.fail_next(2)
    shop.orders.place(place_command)

    assert shop.events.run_pending().retried == 1
    clock.advance(SECOND / 2)
    shop.events.run_pending()
    assert len(receiver.requests) == 1  # backing off: not yet
    clock.advance(SECOND / 2)
    assert shop.events.run_pending().retried == 1
    clock.advance(2 * SECOND)
    assert shop.events.run_pending().delivered == 1

    assert len(receiver.requests) == 3
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert len({r.body for r in receiver.requests}) == 1
    stamps = [int(r.headers["webhook-timestamp"]) for r in receiver.requests]
    start = int(clock.now().timestamp()) - 3
    assert stamps == [start, start + 1, start + 3]
    for request in receiver.requests:
        verify_webhook(request.body, request.headers, SECRET, now=clock.now())
    assert shop.events.pending() == 0


def test_an_endpoint_down_for_good_gets_a_dead_letter_that_can_be_retried(
    receiver: Receiver, place_command: PlaceOrder
) -> None:
    shop = make_shop()
    endpoint = WebhookEndpoint(receiver.url, SECRET, events={"OrderPlaced"})
    add_webhook(shop, endpoint)
    receiver.status = 500
    shop.orders.place(place_command)
    reports = []
    for _ in range(3):
        reports.append(shop.events.run_pending())
        clock_of(shop).advance(10 * SECOND)
    assert [r.dead for r in reports] == [0, 0, 1]
    assert len(receiver.requests) == 3
    (letter,) = shop.events.dead_letters()
    assert letter.handler == endpoint.handler_name
    assert receiver.url in letter.error
    assert "HTTP 500" in letter.error
    assert SECRET.removeprefix("whsec_") not in letter.error

    assert shop.events.retry_dead_letter(letter) is False  # still down
    receiver.status = 200
    (letter,) = shop.events.dead_letters()
    assert shop.events.retry_dead_letter(letter) is True
    assert shop.events.dead_letters() == []
    assert len(receiver.requests) == 5
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert verify_webhook(
        receiver.requests[-1].body, receiver.requests[-1].headers, SECRET, now=shop.clock.now()
    )


def test_one_failing_endpoint_does_not_block_or_resend_to_another(
    serve: Any, place_command: PlaceOrder
) -> None:
    down, up = serve(), serve()
    down.status = 500
    shop = make_shop()
    add_webhook(shop, WebhookEndpoint(down.url, SECRET, name="down"))
    add_webhook(shop, WebhookEndpoint(up.url, new_webhook_secret(), name="up"))
    order = shop.orders.place(place_command)
    shop.orders.acknowledge(order.id)

    shop.events.run_pending()
    # "up" got OrderPlaced at once, though "down" failed; OrderAcknowledged waits for
    # down's retries of OrderPlaced to end, as the dispatcher keeps one order's events in
    # commit order for every handler
    assert event_types(up.requests) == ["OrderPlaced"]
    for _ in range(8):
        clock_of(shop).advance(10 * SECOND)
        shop.events.run_pending()

    assert event_types(up.requests) == ["OrderPlaced", "OrderAcknowledged"]  # each once
    assert event_types(down.requests) == ["OrderPlaced"] * 3 + ["OrderAcknowledged"] * 3
    assert {d.handler for d in shop.events.dead_letters()} == {"orderkit.webhook.down"}


@pytest.fixture
def sender_for(receiver: Receiver) -> Any:
    def make(**options: Any) -> WebhookSender:
        endpoint = WebhookEndpoint(receiver.url, SECRET, **options)
        return WebhookSender(endpoint, clock=ManualClock(now_utc()))

    return make


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_is_delivered(receiver: Receiver, sender_for: Any, status: int) -> None:
    receiver.status = status
    sender_for()(an_event())
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("status", [301, 302, 307, 400, 404, 410, 429, 500, 503])
def test_any_other_status_is_a_failure_and_redirects_are_not_followed(
    receiver: Receiver, sender_for: Any, status: int
) -> None:
    receiver.fail_next(1, status)
    with pytest.raises(WebhookDeliveryFailed, match=f"HTTP {status}") as raised:
        sender_for()(an_event())
    assert [r.path for r in receiver.requests] == ["/hooks"]  # never "/elsewhere"
    assert receiver.url in str(raised.value)
    assert SECRET.removeprefix("whsec_") not in str(raised.value)
    assert raised.value.retryable


def test_a_timeout_is_a_failure_the_dispatcher_retries(
    receiver: Receiver, place_command: PlaceOrder, sender_for: Any
) -> None:
    receiver.hang_next()
    with pytest.raises(WebhookDeliveryFailed, match=r"timed out after 0\.2 s"):
        sender_for(timeout=0.2)(an_event())

    shop = make_shop()
    add_webhook(shop, WebhookEndpoint(receiver.url, SECRET, events={"OrderPlaced"}, timeout=0.2))
    receiver.hang_next()
    shop.orders.place(place_command)
    assert shop.events.run_pending().retried == 1
    clock_of(shop).advance(SECOND)
    assert shop.events.run_pending().delivered == 1
    assert len(receiver.requests) == 3


def test_a_refused_connection_is_a_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = WebhookEndpoint(f"http://127.0.0.1:{port}/hooks", SECRET)
    with pytest.raises(WebhookDeliveryFailed, match="connection failed") as raised:
        WebhookSender(endpoint, clock=ManualClock())(an_event())
    assert SECRET.removeprefix("whsec_") not in str(raised.value)


def test_events_the_endpoint_does_not_want_are_not_sent(
    receiver: Receiver, sender_for: Any
) -> None:
    sender = sender_for(events={"ShipmentDelivered"})
    sender(an_event())
    assert receiver.requests == []


# --- configuration ------------------------------------------------------------------------


def test_wants_follows_the_event_filter() -> None:
    every = WebhookEndpoint("https://example.com/h", SECRET)
    some = WebhookEndpoint("https://example.com/h", SECRET, events=["OrderPlaced"])
    shipments = WebhookEndpoint("https://example.com/h", SECRET, events={"ShipmentEvent"})
    assert every.wants(OrderPlaced)
    assert every.wants(ShipmentDelivered)
    assert some.wants(OrderPlaced)
    assert not some.wants(OrderAcknowledged)
    assert shipments.wants(ShipmentDelivered)
    assert not shipments.wants(OrderPlaced)
    own = WebhookEndpoint("https://example.com/h", SECRET, events={"shop.events:GiftWrapped"})
    assert own.events == frozenset({"shop.events:GiftWrapped"})


def test_handler_name_is_stable_and_prefixed() -> None:
    assert WebhookEndpoint("https://example.com/h", SECRET).handler_name == (
        "orderkit.webhook.https://example.com/h"
    )
    named = WebhookEndpoint("https://example.com/h", SECRET, name="crm")
    assert named.handler_name == "orderkit.webhook.crm"


def test_new_secrets_are_random_32_bytes_the_standard_library_accepts() -> None:
    first, second = new_webhook_secret(), new_webhook_secret()
    assert first != second
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32
    body = b"{}"
    headers = signed_headers(body, secret=first, ts=int(now_utc().timestamp()))
    assert Webhook(first).verify(body, headers) == {}


def test_the_secret_never_shows_in_repr() -> None:
    endpoint = WebhookEndpoint("https://example.com/h", SECRET)
    encoded = SECRET.removeprefix("whsec_")
    assert encoded not in repr(endpoint)
    assert encoded not in repr(WebhookSender(endpoint, clock=ManualClock()))
    assert "https://example.com/h" in repr(endpoint)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/h",
        "example.com/hooks",
        "https://",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "https://user:pw@example.com/h",
        "https://example.com:99999/h",
        "https://exa mple.com/h",
        "https://example.com/h\r\nX-Evil: 1",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidField) as raised:
        WebhookEndpoint(url, SECRET)
    assert raised.value.field == "url"
    assert isinstance(raised.value, OrderkitError)


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "whsec_",
        "whsec_not base64 at all!",
        "whsec_" + base64.b64encode(bytes(16)).decode(),  # too short
        "sk_live_" + "a" * 40,
    ],
)
def test_bad_secrets_are_refused_without_quoting_them(secret: str) -> None:
    with pytest.raises(InvalidField, match="secret") as raised:
        WebhookEndpoint("https://example.com/h", secret)
    assert raised.value.field == "secret"
    if secret.removeprefix("whsec_"):
        assert secret.removeprefix("whsec_") not in str(raised.value)
    assert raised.value.value is None


def test_unknown_event_names_are_refused_by_name() -> None:
    with pytest.raises(InvalidField, match="'OrderPlacd' is not an orderkit event"):
        WebhookEndpoint("https://example.com/h", SECRET, events={"OrderPlaced", "OrderPlacd"})
    with pytest.raises(InvalidField, match="collection of event names"):
        WebhookEndpoint("https://example.com/h", SECRET, events="OrderPlaced")
    with pytest.raises(InvalidField, match="names no event"):
        WebhookEndpoint("https://example.com/h", SECRET, events=set())


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1.0}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"name": " "}, "name"),
    ],
)
def test_bad_timeouts_and_names_are_refused(options: dict[str, Any], name: str) -> None:
    with pytest.raises(InvalidField) as raised:
        WebhookEndpoint("https://example.com/h", SECRET, **options)
    assert raised.value.field == name


def test_two_endpoints_under_one_handler_name_are_refused() -> None:
    shop = make_shop()
    add_webhook(shop, WebhookEndpoint("https://example.com/h", SECRET))
    with pytest.raises(OrderkitError, match="another handler"):
        add_webhook(shop, WebhookEndpoint("https://example.com/h", new_webhook_secret()))


# --- the shop's own wiring (the lead adds it to shop.py) -----------------------------------


def test_shop_open_takes_webhooks(receiver: Receiver, place_command: PlaceOrder) -> None:
    endpoint = WebhookEndpoint(receiver.url, SECRET, events={"OrderPlaced"})
    shop = Shop.open(
        "memory://",
        clock=ManualClock(now_utc()),
        settings=ShopSettings(track_stock=False, dispatch="worker"),
        webhooks=[endpoint],
    )
    shop.orders.place(place_command)
    shop.events.run_pending()
    assert event_types(receiver.requests) == ["OrderPlaced"]
    assert Webhook(SECRET).verify(receiver.requests[0].body, receiver.requests[0].headers)


def test_events_an_endpoint_does_not_want_cost_it_nothing(
    receiver: Receiver, place_command: PlaceOrder
) -> None:
    shop = make_shop()
    endpoint = WebhookEndpoint(receiver.url, SECRET, events={"OrderCancelled"})
    add_webhook(shop, endpoint)
    order = shop.orders.place(place_command)
    shop.orders.acknowledge(order.id)
    shop.events.run_pending()
    seqs = [record.seq for record in shop.store.outbox.history(order.id)]
    assert len(seqs) == 2
    # not even a processed mark (a write transaction on SQLite) for events it filters out
    assert not any(shop.store.outbox.is_processed(endpoint.handler_name, seq) for seq in seqs)
    assert receiver.requests == []
    shop.orders.cancel(order.id, "changed their mind")
    shop.events.run_pending()
    [cancelled] = [r.seq for r in shop.store.outbox.history(order.id) if r.seq not in seqs]
    assert shop.store.outbox.is_processed(endpoint.handler_name, cancelled)
    assert event_types(receiver.requests) == ["OrderCancelled"]
