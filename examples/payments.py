"""Payments end to end with the reference gateway: python examples/payments.py

Authorize at placement, a declined card, capture per shipment, a refund, and the
gateway's callbacks (webhooks) applied at most once however often they arrive.
"""

import orderkit as ok
from orderkit.adapters.memory_gateway import MemoryGateway

gateway = MemoryGateway(seed=1)  # swap in your provider's adapter in production
settings = ok.ShopSettings(currency="EUR", capture="on_shipment", track_stock=False)
shop = ok.Shop.open("memory://", settings=settings, gateway=gateway)


def checkout(token: str, key: str) -> ok.PlaceOrder:
    return ok.PlaceOrder(
        customer=ok.Customer("cust-1", "Ada Lovelace", "ada@example.com"),
        shipping_address=ok.Address("Ada Lovelace", "12 Analytical Row", "London", "N1 9GU", "GB"),
        lines=[
            ok.LineItem("L1", "MUG-01", "Stoneware mug", 3, ok.Money("12.50", "EUR")),
            ok.LineItem("L2", "TEA-GR", "Green tea, 100 g", 1, ok.Money("8.90", "EUR")),
        ],
        payment_token=token,
        shipping_charge=ok.Money("4.90", "EUR"),
        idempotency_key=key,
    )


try:
    shop.orders.place(checkout("tok_decline", "checkout-1"))
except ok.PaymentDeclined as declined:
    print("declined:", declined.reason, "- orders stored:", len(shop.orders.list()))

order = shop.orders.place(checkout("tok_visa_4242", "checkout-2"))
print(order.id, order.totals.total, shop.payments.status(order.id).value)  # authorized

# The first parcel holds two mugs: capture their share (and the shipping charge).
payment = shop.payments.capture_lines(order.id, {"L1": 2}, reference="parcel-1")
print("captured", payment.captured, shop.payments.status(order.id).value)  # partially_paid

# The rest ships: the order is marked shipped and the rest is captured.
shop.orders.acknowledge(order.id)
shop.orders.transition(order.id, "start_fulfilment")
shop.orders.transition(order.id, "mark_shipped")
payment = shop.payments.for_order(order.id)[-1]
print("captured", payment.captured, "of", payment.authorized, payment.status.value)  # paid

# A mug arrived broken: refund it. The same reference again refunds nothing more.
shop.payments.refund(order.id, ok.Money("12.50", "EUR"), reference="claim-1")
payment = shop.payments.refund(order.id, ok.Money("12.50", "EUR"), reference="claim-1")
print("refunded", payment.refunded, payment.status.value)  # partially_refunded

# The gateway's webhooks, each delivered twice: every operation is already recorded.
outcomes = [shop.payments.apply_payment_event(event) for event in gateway.take_callbacks() * 2]
print({outcome: outcomes.count(outcome) for outcome in sorted(set(outcomes))})
