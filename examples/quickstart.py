"""The README's quickstart, runnable: python examples/quickstart.py"""

import orderkit as ok

shop = ok.Shop.open("memory://", settings=ok.ShopSettings(currency="EUR", shop_name="Tea & Cups"))
shop.inventory.add_location(ok.Location("main", "Main warehouse"))
shop.inventory.receive("MUG-01", location="main", quantity=50)
shop.inventory.receive("TEA-GR", location="main", quantity=20)

order = shop.orders.place(
    ok.PlaceOrder(
        customer=ok.Customer("cust-1", "Ada Lovelace", "ada@example.com"),
        shipping_address=ok.Address("Ada Lovelace", "12 Analytical Row", "London", "N1 9GU", "GB"),
        lines=[
            ok.LineItem("L1", "MUG-01", "Stoneware mug", 2, ok.Money("12.50", "EUR")),
            ok.LineItem("L2", "TEA-GR", "Green tea, 100 g", 1, ok.Money("8.90", "EUR")),
        ],
        payment_token="tok_from_your_gateway",  # never a card number
        shipping_charge=ok.Money("4.90", "EUR"),
        idempotency_key="checkout-7f3a",  # a retried request returns this same order
    )
)
print(order.id, order.state, order.totals.total)  # ... placed 38.80 EUR

order = shop.orders.acknowledge(order.id)  # confirmation e-mail with a delivery date
print(order.state, order.promised_delivery)
print(shop.notifier.sent[-1].subject)

shop.orders.hold(order.id, "manual_review", note="large first order")
shop.orders.release(order.id, "manual_review")
shop.orders.cancel(order.id, "customer asked to cancel")
print(shop.orders.get(order.id).state)  # cancelled
print(ok.ORDER_LIFECYCLE.build().to_mermaid())
