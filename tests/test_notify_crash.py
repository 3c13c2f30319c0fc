"""Kill the dispatcher mid-send, restart it: each customer gets each message once per key.

A worker process e-mails order confirmations (and posts every event to a webhook
receiver) from a SQLite store. The test's SMTP server and webhook receiver hold one
message at a chosen point, the test SIGKILLs the worker there, and a new worker
finishes the job. Where the kill lands decides what the receiving end sees:

* before the server took the message (the SMTP envelope, before DATA): it arrives
  exactly once, from the restarted worker;
* after the server took it but before the worker recorded that (the unavoidable
  at-least-once window, the network round trip): it arrives again *with the same
  Message-ID / webhook-id*, the de-duplication key, so the receiver keeps one.
"""

from __future__ import annotations

import asyncio
import email
import re
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from orderkit.webhooks import verify_webhook

WORKER = str(Path(__file__).with_name("notify_worker.py"))
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ORDERS = 6

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Trap:
    """Holds the ``number``-th arrival at a point until released; tells when it is held."""

    def __init__(self, number: int | None) -> None:
        self.number = number
        self.arrivals = 0
        self.held = threading.Event()
        self.released = threading.Event()
        self.lock = threading.Lock()

    def should_hold(self) -> bool:
        with self.lock:
            self.arrivals += 1
            return self.arrivals == self.number


class Mailbox:
    """An SMTP server that keeps every message it accepts; ``rcpt`` or ``data`` traps hold
    a message in the envelope (not yet taken) or after taking it (before answering)."""

    def __init__(self, *, rcpt: int | None = None, data: int | None = None) -> None:
        self.messages: list[EmailMessage] = []
        self.rcpt_trap, self.data_trap = Trap(rcpt), Trap(data)
        self.controller = Controller(self, hostname="127.0.0.1", port=_free_port())

    async def _wait(self, trap: Trap) -> None:
        trap.held.set()
        while not trap.released.is_set():
            await asyncio.sleep(0.01)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.rcpt_trap.should_hold():
            await self._wait(self.rcpt_trap)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)  # taken: from here on it counts as delivered
        if self.data_trap.should_hold():
            await self._wait(self.data_trap)
        return "250 OK"


class Receiver(ThreadingHTTPServer):
    """A webhook receiver that keeps every post it answers and can hold one before answering."""

    def __init__(self, hold: int | None = None) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.trap = Trap(hold)
        super().__init__(("127.0.0.1", 0), _Hook)


class _Hook(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.server.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
        if self.server.trap.should_hold():
            self.server.trap.held.set()
            self.server.trap.released.wait(30)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def mailbox_factory() -> Iterator[Any]:
    started: list[Mailbox] = []

    def start(**traps: int) -> Mailbox:
        box = Mailbox(**traps)
        box.controller.start()
        started.append(box)
        return box

    yield start
    for box in started:
        box.rcpt_trap.released.set()
        box.data_trap.released.set()
        box.controller.stop()


@pytest.fixture
def receiver_factory() -> Iterator[Any]:
    started: list[tuple[Receiver, threading.Thread]] = []

    def start(hold: int | None = None) -> Receiver:
        server = Receiver(hold)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        started.append((server, thread))
        return server

    yield start
    for server, thread in started:
        server.trap.released.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def _run(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, WORKER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(process: subprocess.Popen[str], timeout: float = 60) -> None:
    _out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err


def _kill_when(held: threading.Event, process: subprocess.Popen[str]) -> None:
    assert held.wait(30), "the worker never reached the trap"
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL


def _placed(tmp_path: Path) -> str:
    db = str(tmp_path / "shop.db")
    _finish(_run("place", db, str(ORDERS)))
    return db


def _by_message_id(box: Mailbox) -> Counter[str]:
    return Counter(str(message["Message-ID"]) for message in box.messages)


def test_a_kill_before_the_server_took_the_message_sends_each_one_once(
    tmp_path: Path, mailbox_factory: Any
) -> None:
    db = _placed(tmp_path)
    box = mailbox_factory(rcpt=3)
    worker = _run("dispatch", db, str(box.controller.port), "0")
    _kill_when(box.rcpt_trap.held, worker)
    assert len(box.messages) == 2  # the third was in its envelope when the worker died
    box.rcpt_trap.released.set()
    _finish(_run("dispatch", db, str(box.controller.port), "0"))

    recipients = Counter(str(message["To"]) for message in box.messages)
    assert recipients == Counter({f"c{n}@example.com": 1 for n in range(ORDERS)})
    ids = _by_message_id(box)
    assert len(ids) == ORDERS
    assert set(ids.values()) == {1}
    for message in box.messages:  # complete messages, both parts, German money and dates
        assert message.get_content_type() == "multipart/alternative"
        assert "Crash Test Shop" in message["Subject"]
        text = message.get_body(("plain",))
        assert text is not None
        assert re.search(r"Total  \d+,\d\d\xa0€", text.get_content())
        assert re.search(r"Expected delivery: \d{1,2}\. \w+ 20\d\d", text.get_content())


def test_a_kill_after_the_server_took_the_message_resends_it_under_the_same_message_id(
    tmp_path: Path, mailbox_factory: Any
) -> None:
    db = _placed(tmp_path)
    box = mailbox_factory(data=4)
    worker = _run("dispatch", db, str(box.controller.port), "0")
    _kill_when(box.data_trap.held, worker)
    taken = str(box.messages[-1]["Message-ID"])
    box.data_trap.released.set()
    _finish(_run("dispatch", db, str(box.controller.port), "0"))

    ids = _by_message_id(box)
    # every customer's confirmation, each key under one Message-ID; only the message
    # in flight at the kill came twice, and as the same message
    assert len(ids) == ORDERS
    assert {key: count for key, count in ids.items() if count > 1} == {taken: 2}
    recipients = {str(m["To"]) for m in box.messages}
    assert recipients == {f"c{n}@example.com" for n in range(ORDERS)}


def test_a_kill_mid_post_resends_the_webhook_under_the_same_webhook_id(
    tmp_path: Path, mailbox_factory: Any, receiver_factory: Any
) -> None:
    db = _placed(tmp_path)
    box = mailbox_factory()
    hooks = receiver_factory(hold=5)
    port = str(hooks.server_address[1])
    worker = _run("dispatch", db, str(box.controller.port), port)
    _kill_when(hooks.trap.held, worker)
    in_flight = hooks.posts[-1][0]["webhook-id"]
    hooks.trap.released.set()
    _finish(_run("dispatch", db, str(box.controller.port), port))

    ids = Counter(headers["webhook-id"] for headers, _ in hooks.posts)
    assert {key: count for key, count in ids.items() if count > 1} == {in_flight: 2}
    # what a receiver keeps after de-duplicating by webhook-id: every event exactly once
    kept = {
        headers["webhook-id"]: verify_webhook(body, headers, SECRET, tolerance=timedelta(days=1))
        for headers, body in hooks.posts
    }
    kinds = Counter((payload["type"], payload["data"]["order_id"]) for payload in kept.values())
    orders = {order_id for _, order_id in kinds}
    assert len(orders) == ORDERS
    assert kinds == Counter(
        {
            (kind, order_id): 1
            for kind in ("OrderPlaced", "OrderAcknowledged")
            for order_id in orders
        }
    )
    assert len(box.messages) == ORDERS  # and the e-mails went out once each meanwhile
    assert set(_by_message_id(box).values()) == {1}
