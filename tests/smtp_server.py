"""A real SMTP server on the loopback interface, for tests of the e-mail notifier.

:class:`LoopbackSmtp` runs aiosmtpd's threaded ``Controller`` on ``127.0.0.1`` and a free
port, and records every message it accepts as a :class:`ReceivedMail` (the parsed
``EmailMessage`` with the envelope, and whether the session was TLS and authenticated).
It can speak STARTTLS (``tls_context``) or TLS from the first byte (``ssl_context``),
require a login (``username``/``password``, over TLS only unless told otherwise), and
refuse the next N ``DATA`` commands with a code of the test's choosing (``fail_data``).

>>> with LoopbackSmtp() as server:            # doctest: +SKIP
...     notifier = SmtpNotifier("127.0.0.1", server.port, sender=..., security="none")
...     notifier.send(notification)
...     (mail,) = server.messages

:func:`tls_contexts` makes the server's and a trusting client's ``SSLContext`` from a
``trustme`` CA, with a certificate for ``127.0.0.1``.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from types import TracebackType
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = ["HOST", "LoopbackSmtp", "ReceivedMail", "free_port", "tls_contexts"]

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A TCP port nothing listens on right now (aiosmtpd's ``Controller`` cannot bind
    port 0 itself: it connects to its own port to check that it started)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def tls_contexts(ca: trustme.CA, host: str = HOST) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """``(server, client)``: a server context holding a certificate for ``host`` issued
    by ``ca``, and a client context (hostname checked) that trusts ``ca`` only."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(host).configure_cert(server)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client)
    return server, client


@dataclass(frozen=True)
class ReceivedMail:
    """One message the server accepted: the envelope, the parsed message (policy
    ``default``, so it is an ``EmailMessage``), the raw bytes, and the session."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes
    tls: bool
    """The message came over TLS (STARTTLS or implicit)."""
    tls_version: str | None
    login: str | None
    """The user name the client authenticated as, or None."""
    mechanism: str | None
    """The AUTH mechanism it used (``"LOGIN"``, ``"PLAIN"``), or None."""

    def __getitem__(self, header: str) -> Any:
        return self.message[header]


class _Handler:
    """aiosmtpd handler: records messages, refuses DATA on demand, checks logins."""

    def __init__(self, owner: LoopbackSmtp) -> None:
        self._owner = owner

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self._owner._username is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self._owner._on_data(server, session, envelope)


class _CountingController(Controller):
    """Counts the SMTP sessions (connections) the server makes a protocol for."""

    def __init__(self, owner: LoopbackSmtp, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._owner = owner

    def factory(self) -> SMTP:
        with self._owner._lock:
            self._owner.sessions += 1
        server: SMTP = super().factory()  # type: ignore[no-untyped-call]
        return server


class LoopbackSmtp:
    """An aiosmtpd server on ``127.0.0.1`` (see the module docstring).

    ``tls_context``: offer STARTTLS with this server context (and, with
    ``require_starttls``, refuse everything but EHLO/STARTTLS/QUIT before it);
    ``ssl_context``: speak TLS from the first byte. ``username``/``password``: offer
    AUTH (``auth_mechanisms``, by default LOGIN and PLAIN) and require it before MAIL;
    aiosmtpd refuses AUTH over a plain connection unless ``auth_require_tls`` is False
    (over implicit TLS it is always allowed).
    Start and stop it with :meth:`start`/:meth:`stop` or as a context manager.
    """

    def __init__(
        self,
        *,
        tls_context: ssl.SSLContext | None = None,
        require_starttls: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        username: str | None = None,
        password: str | None = None,
        auth_mechanisms: Iterable[str] = ("LOGIN", "PLAIN"),
        auth_require_tls: bool = True,
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        self._lock = threading.Lock()
        self._messages: list[ReceivedMail] = []
        self._refusals: list[tuple[int, str]] = []  # the replies the next DATAs get
        self._refuse_always: tuple[int, str] | None = None
        self._username = username
        self._password = password
        self.data_commands = 0
        """How many DATA commands reached the handler (accepted or refused)."""
        self.refused = 0
        self.failed_logins = 0
        self.sessions = 0
        """How many connections the server took since :meth:`start` (a client that
        never connected leaves it at 0)."""
        self.port = 0
        self._controller: Controller | None = None
        smtp: dict[str, Any] = {"server_hostname": "loopback.test"}
        if tls_context is not None:
            smtp["tls_context"] = tls_context
            smtp["require_starttls"] = require_starttls
        if username is not None:
            mechanisms = {m.upper() for m in auth_mechanisms}
            smtp["authenticator"] = self._authenticate
            # aiosmtpd counts only STARTTLS as TLS: over implicit TLS it would never
            # offer AUTH. MAIL is refused before a login by the handler instead of
            # aiosmtpd's auth_required (which warns when TLS is not required).
            smtp["auth_require_tls"] = auth_require_tls and ssl_context is None
            smtp["auth_exclude_mechanism"] = [m for m in ("LOGIN", "PLAIN") if m not in mechanisms]
        self._ssl_context = ssl_context
        self._smtp_kwargs = smtp

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> LoopbackSmtp:
        """Listen on a free port of 127.0.0.1 (``.port``) until :meth:`stop`."""
        if self._controller is not None:
            raise RuntimeError("already started")
        for _attempt in range(5):  # the free port may be taken between probe and bind
            port = free_port()
            controller = _CountingController(
                self,
                _Handler(self),
                hostname=HOST,
                port=port,
                ssl_context=self._ssl_context,
                ready_timeout=5.0,
                **self._smtp_kwargs,
            )
            try:
                controller.start()
            except OSError:
                controller.stop(no_assert=True)
                controller.loop.close()
                continue
            with self._lock:
                self.sessions = 0  # not the controller's own start-up probe
            self._controller, self.port = controller, port
            return self
        raise RuntimeError("no free port for the loopback SMTP server")

    def stop(self) -> None:
        """Stop listening and end the server's thread (idempotent)."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> LoopbackSmtp:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what the test controls and reads -----------------------------------------------

    @property
    def messages(self) -> list[ReceivedMail]:
        """The messages accepted so far, oldest first (a copy)."""
        with self._lock:
            return list(self._messages)

    @property
    def emails(self) -> list[EmailMessage]:
        """Just the parsed messages of :attr:`messages`."""
        return [mail.message for mail in self.messages]

    def clear(self) -> None:
        """Forget the messages received so far."""
        with self._lock:
            self._messages.clear()

    def fail_data(self, code: int, times: int | None = 1, text: str | None = None) -> None:
        """Answer the next ``times`` DATA commands with ``code`` (such as 451 or 550)
        instead of accepting the message; ``times=None`` for every one until
        :meth:`recover`."""
        reply = (code, text or ("Try again later" if code < 500 else "Rejected"))
        with self._lock:
            if times is None:
                self._refuse_always = reply
            else:
                self._refusals.extend([reply] * times)

    def recover(self) -> None:
        """Accept messages again (drop every pending :meth:`fail_data`)."""
        with self._lock:
            self._refusals.clear()
            self._refuse_always = None

    # -- server side (runs on the controller's thread) ----------------------------------

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self._username
            and auth_data.password.decode() == self._password
        )
        if not ok:
            with self._lock:
                self.failed_logins += 1
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=(self._username, mechanism))

    def _on_data(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            self.data_commands += 1
            refusal = self._refusals.pop(0) if self._refusals else self._refuse_always
            if refusal is not None:
                self.refused += 1
                return f"{refusal[0]} {refusal[1]}"
        raw = envelope.original_content or b""
        message = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        transport = server.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        login, mechanism = session.auth_data if session.authenticated else (None, None)  # type: ignore[misc]
        mail = ReceivedMail(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            message=message,
            raw=raw,
            tls=ssl_object is not None,
            tls_version=ssl_object.version() if ssl_object is not None else None,
            login=login,
            mechanism=mechanism,
        )
        with self._lock:
            self._messages.append(mail)
        return "250 OK"
