"""``orderkit worker``: a dispatch worker, delivering the outbox's events to the shop's
handlers until stopped (SIGTERM or Ctrl-C end it once the events it claimed are delivered)."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import timedelta
from types import FrameType

import click

import orderkit as ok
from orderkit.cli import main
from orderkit.cli.operations import EXIT_USAGE, SHOP_ENV, CommandFailed, _shop_from, exit_codes
from orderkit.service.dispatch import DispatchReport

__all__ = ["worker"]

log = logging.getLogger("orderkit.worker")


@main.command()
@click.option("--db", metavar="URL", default=None, help="Store URL [default: $ORDERKIT_STORE].")
@click.option(
    "--shop",
    "shop_spec",
    metavar="MODULE:CALLABLE",
    envvar=SHOP_ENV,
    default=None,
    help="A function returning your configured orderkit.Shop, whose handlers (notifier, "
    "gateway, webhooks, policies) the worker runs [env: ORDERKIT_SHOP].",
)
@click.option(
    "--default-handlers",
    is_flag=True,
    help="Without --shop: run orderkit's default handlers only (notifications are kept in "
    "memory, not sent; no payment policies). For trying it out.",
)
@click.option("--batch", default=100, show_default=True, help="Events claimed at a time.")
@click.option(
    "--poll",
    default=5.0,
    show_default=True,
    help="Seconds to wait when idle (PostgreSQL wakes workers sooner, on commit).",
)
@click.option(
    "--lease", default=60.0, show_default=True, help="Seconds a claimed event stays this worker's."
)
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
@click.option("--name", default=None, help="Worker name in leases [default: host:pid:thread].")
def worker(
    db: str | None,
    shop_spec: str | None,
    default_handlers: bool,
    batch: int,
    poll: float,
    lease: float,
    once: bool,
    name: str | None,
) -> None:
    """Run a dispatch worker: deliver committed events to the shop's handlers.

    Run as many as you like, on as many hosts, against one PostgreSQL (or SQLite file on
    one host): they share the work, keep each order's events in order, and a killed
    worker's events come back to the others when its lease ends.

    The handlers are your shop's: give --shop (or $ORDERKIT_SHOP). A worker without them
    would mark your notifications and payment captures done without doing them, so it
    refuses, unless --default-handlers says that is what you want.
    """
    if shop_spec is None and not default_handlers:
        raise CommandFailed(
            "a worker runs your shop's handlers: pass --shop MODULE:CALLABLE (or set "
            f"${SHOP_ENV}); --default-handlers runs orderkit's own only, for trying it out",
            EXIT_USAGE,
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping once the claimed events are delivered", signum)
        stop.set()

    with exit_codes():
        shop = (
            _shop_from(shop_spec, db)
            if shop_spec is not None
            else ok.Shop.open(db, settings=ok.ShopSettings(dispatch="worker"))
        )
        with shop:
            shop.events.lease = timedelta(seconds=lease)
            totals = [0, 0, 0]

            def report(round_: DispatchReport) -> None:
                totals[0] += round_.delivered
                totals[1] += round_.retried
                totals[2] += round_.dead
                if round_.delivered or round_.retried or round_.dead:
                    log.info(
                        "delivered %s, retried %s, dead letters %s (pending %s)",
                        round_.delivered,
                        round_.retried,
                        round_.dead,
                        shop.events.pending(),
                    )

            if once:
                report(shop.events.run_pending(worker=name, batch=batch))
            else:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(signum, request_stop)
                log.info("worker started (%s handlers)", len(shop.events.handler_names()))
                shop.events.run_worker(
                    worker=name,
                    poll_interval=poll,
                    should_stop=stop.is_set,
                    on_report=report,
                    batch=batch,
                )
            click.echo(f"delivered {totals[0]}, retried {totals[1]}, dead letters {totals[2]}")
