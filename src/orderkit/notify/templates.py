"""Message templates: e-mail (plain text and HTML) and SMS text for every notification kind.

Rendered with Jinja2 (HTML autoescaped, templates sandboxed, undefined names are
errors) and formatted for the customer's locale with Babel. Needs the extra
``orderkit[notify]``.

Each notification kind has four templates, found by name:

* ``<kind>.subject.txt``: the e-mail subject (whitespace, line breaks included, is
  collapsed to single spaces);
* ``<kind>.txt`` and ``<kind>.html``: the e-mail's two parts;
* ``<kind>.sms.txt``: the text message.

A shop overrides any of them by giving templates of the same name, as strings
(``overrides``) or files in a ``directory``; a template under a locale's folder
(``de/order_confirmation.txt``, ``de_AT/...``) wins for customers of that locale.
Kinds without templates (a shop's own notifications) use ``_generic.*``, which
shows the notification's own subject and text.

Templates see the notification's ``facts`` by name (``order_id``, ``customer_name``,
``total``, ``promised_delivery``, ``tracking_url`` ...; see each built-in template),
plus ``notification`` and ``locale``, and two filters: ``money`` (a
:class:`~orderkit.money.Money` in the customer's locale: ``1.234,50 €`` for
``de-DE``) and ``date`` (``date`` or ``date("short")``: ``3. März 2026``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from orderkit.domain.values import ContactChannel
from orderkit.errors import InvalidSettings, MissingExtra, TemplateError
from orderkit.money import Money
from orderkit.notify.render import RenderedMessage
from orderkit.ports import Notification

try:
    import jinja2
    from babel import Locale, UnknownLocaleError
    from babel.dates import format_date
    from babel.numbers import format_currency
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError as missing:  # pragma: no cover - exercised without the extra
    raise MissingExtra(
        f"message templates need Jinja2 and Babel ({missing.name} is not installed); "
        "install them with: pip install 'orderkit[notify]'"
    ) from None

__all__ = ["MessageTemplates"]

_BUILT_IN = Path(__file__).with_name("templates")


class MessageTemplates:
    """Renders notifications from templates, for the customer's locale.

    ``locale`` is used for customers whose notification has none (or an unknown one);
    ``directory`` and ``overrides`` (name → template source) take precedence over the
    built-in templates, in that order: ``overrides`` first.
    """

    def __init__(
        self,
        *,
        locale: str = "en",
        directory: str | Path | None = None,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        parsed = _parse_locale(locale)
        if parsed is None:
            raise InvalidSettings("is not a locale Babel knows", field="locale", value=locale)
        self._locale: Locale = parsed
        loaders: list[jinja2.BaseLoader] = []
        if overrides:
            loaders.append(jinja2.DictLoader(dict(overrides)))
        if directory is not None:
            if not Path(directory).is_dir():
                raise InvalidSettings("is not a directory", field="directory", value=directory)
            loaders.append(jinja2.FileSystemLoader(str(directory)))
        loaders.append(jinja2.FileSystemLoader(str(_BUILT_IN)))
        self._env = ImmutableSandboxedEnvironment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html",), default_for_string=False, default=False
            ),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self._env.filters["money"] = _money
        self._env.filters["date"] = _date

    def render(
        self, notification: Notification, channel: ContactChannel | None = None
    ) -> RenderedMessage:
        """Render ``notification`` for ``channel`` (its own channel by default): subject,
        text and HTML for e-mail; subject and text (no HTML) for SMS.

        Raises :class:`~orderkit.errors.TemplateError` naming the template when one is
        missing, does not parse, or uses a name it was not given."""
        channel = channel or notification.channel
        locale = _parse_locale(notification.locale) or self._locale
        context = dict(notification.facts)
        context.update(notification=notification, locale=locale)
        if channel is ContactChannel.SMS:
            text = self._render(notification.kind, "sms.txt", locale, context)
            # Babel's no-break spaces are not in GSM-7: one would make the SMS UCS-2
            text = text.replace("\xa0", " ").replace("\u202f", " ")
            subject = " ".join(notification.subject.split())
            return RenderedMessage(subject=subject, text=text, html=None)
        subject = " ".join(self._render(notification.kind, "subject.txt", locale, context).split())
        text = self._render(notification.kind, "txt", locale, context)
        html = self._render(notification.kind, "html", locale, context)
        return RenderedMessage(subject=subject, text=text + "\n", html=html + "\n")

    def _render(self, kind: str, suffix: str, locale: Locale, context: dict[str, Any]) -> str:
        names = [f"{kind}.{suffix}", f"_generic.{suffix}"]
        folders = [str(locale), locale.language, ""] if locale.territory else [locale.language, ""]
        candidates = [
            f"{folder}/{name}" if folder else name for name in names for folder in folders
        ]
        try:
            template = self._env.select_template(candidates)
            return template.render(context).strip()
        except jinja2.TemplateNotFound as error:
            raise TemplateError(f"no template for {kind!r}: looked for {error}") from None
        except jinja2.TemplateError as error:
            where = getattr(error, "name", None) or f"{kind}.{suffix}"
            raise TemplateError(f"template {where} failed: {error}") from None


def _parse_locale(tag: str | None) -> Locale | None:
    if not tag:
        return None
    try:
        return Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return None


@jinja2.pass_context
def _money(context: Any, value: Money) -> str:
    if not isinstance(value, Money):
        raise jinja2.TemplateRuntimeError(f"money filter needs a Money, got {type(value).__name__}")
    return str(format_currency(value.amount, value.currency, locale=context["locale"]))


@jinja2.pass_context
def _date(context: Any, value: date | datetime, format: str = "long") -> str:
    if isinstance(value, datetime):
        value = value.date()
    return str(format_date(value, format=format, locale=context["locale"]))
