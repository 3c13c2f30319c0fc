"""Notifications over real channels: python examples/notifications.py

Needs ``pip install 'orderkit[notify]' aiosmtpd`` (aiosmtpd only to run a local SMTP
server for the example; a shop points SmtpNotifier at its mail provider instead).

Starts an SMTP server and a webhook receiver on this machine, then runs a shop whose
customers hear from it by e-mail (text and HTML, money and dates in their locale) or
by SMS (one of them opted out, and gets e-mail instead), and whose accounting system
gets every order event as a signed webhook, checked with ``verify_webhook``.
"""

import socket
import threading
from email import message_from_bytes
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

import orderkit as ok
from orderkit.notify import MemoryOptOuts, MemorySmsSender, SmsNotifier, SmtpNotifier
from orderkit.webhooks import WebhookEndpoint, new_webhook_secret, verify_webhook

# -- the outside world: a mail server and the accounting system's webhook endpoint ----------------
inbox = []


class MailServer:
    async def handle_DATA(self, server, session, envelope):
        inbox.append(message_from_bytes(envelope.content, policy=default))
        return "250 OK"


with socket.socket() as probe:  # a free port for the SMTP server
    probe.bind(("127.0.0.1", 0))
    smtp_port = probe.getsockname()[1]
mail = Controller(MailServer(), hostname="127.0.0.1", port=smtp_port)
mail.start()

secret = new_webhook_secret()
received = []


class Accounting(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        try:  # what the receiving system does with every post
            received.append(verify_webhook(body, dict(self.headers), secret))
            self.send_response(204)
        except ok.WebhookVerificationFailed:
            self.send_response(400)
        self.end_headers()

    def log_message(self, *args):
        pass


accounting = ThreadingHTTPServer(("127.0.0.1", 0), Accounting)
threading.Thread(target=accounting.serve_forever, daemon=True).start()

# -- the shop --------------------------------------------------------------------------------------
opt_outs = MemoryOptOuts()
texts = MemorySmsSender()
email = SmtpNotifier(
    "127.0.0.1",
    smtp_port,
    sender="Tea & Mugs <orders@shop.example>",
    security="none",
    opt_outs=opt_outs,
)  # in production: SmtpNotifier("smtp.provider.example", sender=..., username=..., password=...)
shop = ok.Shop.open(
    "memory://",
    notifier=SmsNotifier(texts, opt_outs=opt_outs, fallback=email),
    webhooks=[
        WebhookEndpoint(
            f"http://127.0.0.1:{accounting.server_address[1]}/orderkit",
            secret,
            events={"OrderPlaced", "OrderCancelled"},
            name="accounting",
        )
    ],
    settings=ok.ShopSettings(shop_name="Tea & Mugs", track_stock=False),
)


def order_for(customer: ok.Customer) -> ok.Order:
    order = shop.orders.place(
        ok.PlaceOrder(
            customer=customer,
            shipping_address=ok.Address(customer.name, "Hauptstr. 1", "Berlin", "10115", "DE"),
            lines=[ok.LineItem("L1", "MUG-01", "Mug", 120, ok.Money("10.29", "EUR"))],
            payment_token="tok_visa",
        )
    )
    shop.orders.acknowledge(order.id)
    return order


order_for(ok.Customer("c1", "Jana Schmidt", "jana@example.com", locale="de-DE"))
order_for(
    ok.Customer("c2", "Sam Lee", "sam@example.com", phone="+447700900123", preferred_contact="sms")
)
opt_outs.opt_out(ok.ContactChannel.SMS, "+33612345678")  # replied STOP last month
cancelled = order_for(
    ok.Customer(
        "c3",
        "Léa Martin",
        "lea@example.com",
        phone="+33612345678",
        preferred_contact="sms",
        locale="fr-FR",
    )
)
shop.orders.cancel(cancelled.id, "customer asked")

# -- what arrived ----------------------------------------------------------------------------------
first = inbox[0]
print(f"e-mail to {first['To']}: {first['Subject']}")
print(first.get_body(("plain",)).get_content())
print(
    f"SMS to {texts.sent[0].to}: {texts.sent[0].text} "
    f"({texts.sent[0].segments.segments} segment, {texts.sent[0].segments.encoding})"
)
print("e-mails:", [(str(m["To"]), str(m["X-Orderkit-Kind"])) for m in inbox])
print("webhooks:", [(hook["type"], hook["data"]["order_id"]) for hook in received])

shop.close()
mail.stop()
accounting.shutdown()
accounting.server_close()
