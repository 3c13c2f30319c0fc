"""Child process for the notification crash tests (run as a script, not collected).

python tests/notify_worker.py place DB COUNT                place and acknowledge COUNT orders
python tests/notify_worker.py dispatch DB SMTP_PORT HOOK_PORT  e-mail every pending notification

``dispatch`` sends through :class:`SmtpNotifier` to the test's SMTP server with a
short lease, until nothing is pending, then exits 0. ``HOOK_PORT`` (0 for none) is a
webhook receiver that gets every event too.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta

import orderkit as ok
from orderkit.notify import SmtpNotifier
from orderkit.webhooks import WebhookEndpoint

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # base64 of 24 bytes, test only


def command(number: int) -> ok.PlaceOrder:
    return ok.PlaceOrder(
        customer=ok.Customer(
            f"cust-{number}", f"Customer {number}", f"c{number}@example.com", locale="de-DE"
        ),
        shipping_address=ok.Address(f"Customer {number}", "1 Main St", "Berlin", "10115", "DE"),
        lines=[ok.LineItem("L1", "SKU-1", "Mug", 1 + number % 3, ok.Money("9.99", "EUR"))],
        payment_token="tok_test",
        idempotency_key=f"order-{number}",
    )


def main() -> None:
    action, path = sys.argv[1], sys.argv[2]
    settings = ok.ShopSettings(
        dispatch="worker", track_stock=False, shop_name="Crash Test Shop", handler_attempts=50
    )
    if action == "place":
        with ok.Shop.open(path, settings=settings) as shop:
            for number in range(int(sys.argv[3])):
                order = shop.orders.place(command(number))
                shop.orders.acknowledge(order.id)
        return
    smtp_port, hook_port = int(sys.argv[3]), int(sys.argv[4])
    notifier = SmtpNotifier(
        "127.0.0.1", smtp_port, sender="Crash Test Shop <orders@shop.example>", security="none"
    )
    hooks = [WebhookEndpoint(f"http://127.0.0.1:{hook_port}/hook", SECRET)] if hook_port else []
    with ok.Shop.open(path, settings=settings, notifier=notifier, webhooks=hooks) as shop:
        shop.events.lease = timedelta(seconds=1)  # a killed worker's events come back soon
        shop.events.retry_delay = timedelta(milliseconds=50)
        while shop.events.pending():
            shop.events.run_pending()
            time.sleep(0.05)


if __name__ == "__main__":
    main()
