"""The operator's commands against a shop's database: what every one of them shares.

The commands themselves live by noun: ``orderkit orders ...``
(:mod:`orderkit.cli.operations_orders`), ``orderkit fulfil / ship / deliver``
(:mod:`orderkit.cli.operations_shipping`), ``orderkit returns ...``
(:mod:`orderkit.cli.operations_returns`), ``orderkit stock ...``
(:mod:`orderkit.cli.operations_stock`) and ``orderkit inquiries ...``
(:mod:`orderkit.cli.operations_inquiries`). Each is declared with :func:`operation`,
which gives it the shared options and turns errors into exit codes:

``--db URL``
    The store, as :meth:`orderkit.Shop.open` takes it (``sqlite:///shop.db``,
    ``memory://``). Default: ``$ORDERKIT_STORE``, else ``sqlite:///orderkit.db``.
``--shop MODULE:CALLABLE`` (or ``$ORDERKIT_SHOP``)
    A function returning the shop as the business runs it: its settings, payment
    gateway, carriers and notifier. It is called with one argument, the ``--db`` URL (None
    when ``--db`` is not given: then it opens its own default, as ``Shop.open(None)``
    does). Without it the shop is opened with default settings, no gateway and no
    notifier, and the commands leave the events they raise in the outbox
    (``ShopSettings(dispatch="worker")``) for the shop's own dispatcher: customer
    notifications and payment captures then happen where the gateway and notifier are
    configured, never in a process that would mark them done without doing them.
    Shipping commands use a simulated carrier
    (:class:`~orderkit.adapters.memory_carrier.MemoryCarrier`) and say so.
``--json``
    One JSON document on stdout and nothing else (:mod:`orderkit.cli.output`).

Exit codes (for scripts):

== =====================================================================================
0  success
1  refused by the shop's rules: an :class:`~orderkit.OrderkitError` such as
   InvalidTransition, OutOfStock, HoldError, FulfilmentError, ReturnError, CarrierError
2  bad usage or invalid input: click's usage errors, :class:`~orderkit.InvalidInput`
   (UnknownLocation, InvalidField, ...), an unsupported ``--db`` URL, a ``--shop``
   that cannot be loaded
3  not found: :class:`~orderkit.NotFound` (OrderNotFound, ShipmentNotFound,
   ReturnNotFound, InquiryNotFound, ...)
4  storage problem: :class:`~orderkit.StorageError` (not an orderkit database, a newer
   schema, locked past the busy timeout, a file that cannot be opened)
5  unexpected error (a bug: ``ORDERKIT_DEBUG=1`` shows its traceback)
== =====================================================================================

Errors are one line on stderr, ``Error: ...``; never a traceback.
"""

from __future__ import annotations

import functools
import importlib
import os
import secrets
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from attrs import define, field
from rich.console import Console

import orderkit as ok
from orderkit.adapters.memory_carrier import MemoryCarrier
from orderkit.adapters.system import SystemClock
from orderkit.cli import main
from orderkit.cli.output import console, echo_json
from orderkit.shop import DEFAULT_STORE, STORE_ENV

__all__ = [
    "EXIT_CODES",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_STORAGE",
    "EXIT_UNEXPECTED",
    "EXIT_USAGE",
    "CommandFailed",
    "Operator",
    "exit_codes",
    "operation",
]

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_STORAGE = 4
EXIT_UNEXPECTED = 5

SHOP_ENV = "ORDERKIT_SHOP"
DEBUG_ENV = "ORDERKIT_DEBUG"

EXIT_CODES = """\b
Exit codes:
  0  success
  1  refused by the shop's rules (InvalidTransition, OutOfStock, HoldError, ...)
  2  bad usage or invalid input (usage errors, InvalidInput, a bad --db or --shop)
  3  not found (OrderNotFound, ShipmentNotFound, ReturnNotFound, ...)
  4  storage problem (StorageError: not an orderkit database, locked, ...)
  5  unexpected error (ORDERKIT_DEBUG=1 shows the traceback)
Errors are one line on stderr: "Error: ...".
"""

main.epilog = EXIT_CODES  # the group's help ends with them (its docstring is the demo's)


class CommandFailed(click.ClickException):
    """An error reported as one line on stderr (``Error: ...``) with an exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(" ".join(message.split()))
        # click types exit_code as a class constant; ours is chosen per error
        object.__setattr__(self, "exit_code", exit_code)


@contextmanager
def exit_codes() -> Iterator[None]:
    """Turn what a command raises into one line on stderr and the documented exit code."""
    try:
        yield
    except (click.ClickException, click.exceptions.Exit, click.Abort):
        raise
    except (ok.InvalidInput, ok.UnsupportedStore) as error:
        raise CommandFailed(str(error), EXIT_USAGE) from None
    except ok.NotFound as error:
        raise CommandFailed(str(error), EXIT_NOT_FOUND) from None
    except ok.StorageError as error:
        raise CommandFailed(str(error), EXIT_STORAGE) from None
    except sqlite3.Error as error:  # from a --shop factory's own Shop.open
        raise CommandFailed(f"the database cannot be used: {error}", EXIT_STORAGE) from None
    except ok.OrderkitError as error:
        raise CommandFailed(str(error) or type(error).__name__, EXIT_REFUSED) from None
    except Exception as error:
        if os.environ.get(DEBUG_ENV):
            raise
        raise CommandFailed(
            f"unexpected {type(error).__name__}: {error} (set {DEBUG_ENV}=1 for the traceback)",
            EXIT_UNEXPECTED,
        ) from None


@define
class Operator:
    """How one command reaches its shop and prints: the shared options, parsed."""

    db: str | None
    shop_spec: str | None
    as_json: bool
    wants_carrier: bool = False
    allow_simulated: bool = False
    simulated_carrier: bool = False
    out: Console = field(factory=console)

    @property
    def configured(self) -> bool:
        """True when the shop came from ``--shop`` (its own gateway, carriers, notifier)."""
        return self.shop_spec is not None

    def open_shop(self) -> ok.Shop:
        """The shop of ``--shop``, or the store of ``--db`` with default settings (and the
        simulated carrier when the command ships)."""
        if self.shop_spec is not None:
            return _shop_from(self.shop_spec, self.db)
        clock = SystemClock()
        settings = ok.ShopSettings(dispatch="worker")
        carriers: list[ok.Carrier] = []
        url = self.db or os.environ.get(STORE_ENV) or DEFAULT_STORE
        if self.wants_carrier and url != "memory://" and not self.allow_simulated:
            # its tracking numbers would reach real customers once the shop dispatches
            raise CommandFailed(
                "shipping needs your carriers: pass --shop MODULE:CALLABLE (or "
                "--simulated-carrier to try it out with a simulated one)",
                EXIT_USAGE,
            )
        if self.wants_carrier:
            # tracking numbers must differ between runs on one database, like a real carrier's
            carriers.append(
                MemoryCarrier(
                    clock=clock, ids_seed=secrets.randbits(64), currency=settings.currency
                )
            )
            self.simulated_carrier = True
        try:
            return ok.Shop.open(url, settings=settings, clock=clock, carriers=carriers)
        except sqlite3.Error as error:  # a file SQLite cannot open at all
            raise ok.StorageError(f"{url}: {error}") from None

    def emit(self, document: dict[str, Any], show: Callable[[Console], None]) -> None:
        """Print ``document`` as JSON with ``--json``, else let ``show`` draw it."""
        if self.as_json:
            echo_json(document)
        else:
            show(self.out)

    def note(self, text: str) -> None:
        """A remark for people (never in ``--json`` output)."""
        if not self.as_json:
            self.out.print(text, style="dim", soft_wrap=True)


def _shop_from(spec: str, db: str | None) -> ok.Shop:
    module_name, colon, attribute = spec.partition(":")
    if not (colon and module_name and attribute):
        raise CommandFailed(
            f"--shop {spec!r}: give MODULE:CALLABLE, such as myshop.config:open_shop", EXIT_USAGE
        )
    here = os.getcwd()
    if here not in sys.path:  # as `python -m` would: the shop's module may sit right here
        sys.path.insert(0, here)
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise CommandFailed(
            f"--shop {spec!r}: cannot import {module_name}: {error}", EXIT_USAGE
        ) from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise CommandFailed(
                f"--shop {spec!r}: {module_name} has no attribute {attribute!r}", EXIT_USAGE
            )
        target = getattr(target, part)
    if not callable(target):
        raise CommandFailed(f"--shop {spec!r}: {attribute} is not a function", EXIT_USAGE)
    try:
        shop = target(db)
    except ok.OrderkitError:
        raise  # the shop's own refusal (a foreign file, say): its usual exit code
    except Exception as error:  # the factory itself failed: a bad --shop, not our bug
        raise CommandFailed(
            f"--shop {spec!r} failed: {type(error).__name__}: {error}", EXIT_USAGE
        ) from None
    if not isinstance(shop, ok.Shop):
        raise CommandFailed(
            f"--shop {spec!r} returned a {type(shop).__name__}, not an orderkit Shop", EXIT_USAGE
        )
    return shop


Command = Callable[..., None]


def operation(*, carrier: bool = False, writes: bool = False) -> Callable[[Command], Command]:
    """Declare an operator command ``run(operator, shop, **params)``: add ``--db``,
    ``--shop`` and ``--json``, open the shop (with a carrier when ``carrier``), close it
    after, and turn errors into exit codes. A command that ``writes`` says, for people,
    when its events wait in the outbox for the shop's dispatcher."""

    def decorate(run: Command) -> Command:
        @functools.wraps(run)
        def command(db: str | None, shop_spec: str | None, as_json: bool, **params: Any) -> None:
            simulated = bool(params.pop("simulated_carrier", False))
            operator = Operator(
                db, shop_spec, as_json, wants_carrier=carrier, allow_simulated=simulated
            )
            with exit_codes():
                shop = operator.open_shop()
                with shop:
                    run(operator, shop, **params)
                    if writes and not operator.configured:
                        _remind_of_outbox(operator, shop)

        options = [
            click.option(
                "--db",
                metavar="URL",
                default=None,
                help="Store URL, such as sqlite:///shop.db "
                "[default: $ORDERKIT_STORE, else sqlite:///orderkit.db].",
            ),
            click.option(
                "--shop",
                "shop_spec",
                metavar="MODULE:CALLABLE",
                envvar=SHOP_ENV,
                default=None,
                help="A function returning your configured orderkit.Shop (gateway, carriers, "
                "notifier), called with the --db URL or None [env: ORDERKIT_SHOP].",
            ),
            click.option(
                "--json", "as_json", is_flag=True, help="Print one JSON document, nothing else."
            ),
        ]
        if carrier:
            options.append(
                click.option(
                    "--simulated-carrier",
                    is_flag=True,
                    help="Without --shop: ship with orderkit's simulated carrier (its labels "
                    "and tracking numbers are not real).",
                )
            )
        for option in options:
            command = option(command)
        return command

    return decorate


def _remind_of_outbox(operator: Operator, shop: ok.Shop) -> None:
    waiting = shop.events.pending()
    if waiting:
        operator.note(
            f"{waiting} event(s) wait in the outbox for your shop's dispatcher "
            "(notifications, payment policies); pass --shop to run them here."
        )
