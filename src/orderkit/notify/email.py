"""E-mail over SMTP, with the standard library's ``smtplib`` and ``email.message``."""

from __future__ import annotations

import email.policy
import hashlib
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr
from typing import Literal

from orderkit.adapters.system import SystemClock
from orderkit.domain.values import ContactChannel
from orderkit.errors import HeaderInjection, InvalidField, InvalidSettings, NotificationError
from orderkit.notify.render import MessageRenderer, as_email, default_renderer
from orderkit.ports import Clock, Notification, OptOutList

__all__ = ["SmtpNotifier", "check_header"]

log = logging.getLogger("orderkit.notify")

Security = Literal["starttls", "ssl", "none"]
_DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "ssl": 465, "none": 25}
# Headers up to RFC 5322's hard limit before folding: the standard library folds a subject
# with one long word (an order id) into an empty first line, which mail clients then show
# with a leading space.
_POLICY = email.policy.default.clone(max_line_length=998)


def check_header(value: str, *, field: str) -> str:
    """Return ``value`` if it can be a header value: no CR, LF or other line break
    (which would start a header or a recipient of the attacker's choosing)."""
    if any(c in value for c in "\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029\x00"):
        raise HeaderInjection(
            "holds a line break, which would add headers to the e-mail; nothing was sent",
            field=field,
            value=value,
        )
    return value


def _one_address(address: str) -> str:
    """``address`` if it is exactly one mailbox, which a header cannot read as several."""
    found = getaddresses([address])
    if len(found) != 1 or found[0][1] != address.strip() or "@" not in found[0][1]:
        raise InvalidField("must be exactly one e-mail address", field="recipient", value=address)
    return address.strip()


class SmtpNotifier:
    """A :class:`~orderkit.ports.Notifier` that e-mails customers through an SMTP server.

    Each notification becomes one message with a plain-text and an HTML part
    (``renderer``; by default the built-in templates of ``orderkit[notify]``), sent to
    the customer's e-mail address, whatever channel they prefer (put an
    :class:`~orderkit.notify.SmsNotifier` in front to text those who prefer SMS).

    ``security``: ``"starttls"`` (the default, port 587) upgrades the connection
    before logging in, ``"ssl"`` (port 465) speaks TLS from the start, ``"none"``
    (port 25) is for a relay on a trusted network. The server's certificate is
    checked with ``ssl_context`` (the system's trust store by default).

    The message's ``Message-ID`` is derived from the notification's key, so a
    message sent again after a crash (the server accepted it, the process died
    before the dispatcher recorded it) carries the same id and mail systems can
    tell it is the same message. Customers who opted out of e-mail (``opt_outs``)
    are sent nothing. A header value holding a line break is refused with
    :class:`~orderkit.errors.HeaderInjection` and nothing is sent.
    """

    def __init__(
        self,
        host: str = "localhost",
        port: int | None = None,
        *,
        sender: str,
        security: Security = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        renderer: MessageRenderer | None = None,
        opt_outs: OptOutList | None = None,
        reply_to: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        if security not in _DEFAULT_PORTS:
            raise InvalidSettings(
                "must be 'starttls', 'ssl' or 'none'", field="security", value=security
            )
        for name, value in (("username", username), ("password", password)):
            if value is not None and not value.isascii():
                raise InvalidSettings(
                    "must be ASCII: smtplib sends only ASCII credentials", field=name
                )
        if (username is None) != (password is None):
            raise InvalidSettings("give both username and password, or neither", field="username")
        if username is not None and security == "none":
            raise InvalidSettings(
                "would send the password in clear text; use 'starttls' or 'ssl'", field="security"
            )
        _name, address = parseaddr(check_header(sender, field="sender"))
        if "@" not in address:
            raise InvalidSettings("must be an e-mail address", field="sender", value=sender)
        if reply_to is not None:
            check_header(reply_to, field="reply_to")
        self.host = host
        self.port = port or _DEFAULT_PORTS[security]
        self.sender = sender
        self.security = security
        self.timeout = timeout
        self.reply_to = reply_to
        self.renderer = renderer or default_renderer()
        self.opt_outs = opt_outs
        self._username = username
        self._password = password
        self._context = ssl_context
        self._domain = address.rpartition("@")[2]
        self._clock = clock or SystemClock()

    def __repr__(self) -> str:
        return f"SmtpNotifier({self.host!r}, {self.port}, security={self.security!r})"

    def message_for(self, notification: Notification) -> EmailMessage:
        """The e-mail :meth:`send` would send for ``notification`` (for previews and tests).

        Raises :class:`~orderkit.errors.HeaderInjection` for a line break in a header."""
        notification = as_email(notification)
        to = notification.recipient
        rendered = self.renderer.render(notification, ContactChannel.EMAIL)
        message = EmailMessage(policy=_POLICY)
        message["From"] = self.sender
        message["To"] = _one_address(check_header(to, field="recipient"))
        message["Subject"] = check_header(rendered.subject, field="subject")
        if self.reply_to:
            message["Reply-To"] = self.reply_to
        message["Date"] = format_datetime(self._clock.now())
        message["Message-ID"] = self.message_id(notification)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
        message["X-Orderkit-Kind"] = check_header(notification.kind, field="kind")
        message.set_content(rendered.text)
        if rendered.html is not None:
            message.add_alternative(rendered.html, subtype="html")
        return message

    def message_id(self, notification: Notification) -> str:
        """The ``Message-ID`` of ``notification``'s e-mail: the same for the same key."""
        digest = hashlib.sha256(notification.key.encode()).hexdigest()[:40]
        return f"<{digest}@{self._domain}>"

    def send(self, notification: Notification) -> None:
        """E-mail ``notification`` to the customer.

        Raises :class:`~orderkit.errors.NotificationError` when the server cannot be
        reached or refuses the message (the dispatcher retries it)."""
        address = notification.email or notification.recipient
        if self.opt_outs is not None and self.opt_outs.is_opted_out(ContactChannel.EMAIL, address):
            log.info("order %s: customer opted out of e-mail", notification.order_id)
            return
        message = self.message_for(notification)
        try:
            self._deliver(message, str(message["To"]))
        except (smtplib.SMTPException, OSError) as error:
            raise NotificationError(
                f"SMTP server {self.host}:{self.port} did not take {notification.kind} for "
                f"order {notification.order_id}: {_describe(error)}"
            ) from error

    def _deliver(self, message: EmailMessage, address: str) -> None:
        context = self._context or ssl.create_default_context()
        server: smtplib.SMTP
        if self.security == "ssl":
            server = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            server = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with server:
            if self.security == "starttls":
                server.starttls(context=context)
            if self._username is not None and self._password is not None:
                server.login(self._username, self._password)
            server.send_message(message, to_addrs=[address])  # never the header's parse


def _describe(error: Exception) -> str:
    """What went wrong, without what the server echoed: a refusal quotes the customer's
    address, and this text is kept in dead letters and logs."""
    code = getattr(error, "smtp_code", None)
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = sorted({answer[0] for answer in error.recipients.values()})
        return f"SMTPRecipientsRefused: {', '.join(map(str, codes))}"
    if code is not None:
        return f"{type(error).__name__}: {code}"
    if isinstance(error, OSError):
        return f"{type(error).__name__}: {error.strerror or error}"
    return type(error).__name__
