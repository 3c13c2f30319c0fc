"""After delivery: python examples/returns.py

A delivered order; the customer sends one mug back (changed their mind: a restocking
fee applies) and one broken tea tin (damaged: no fee, written off, shipping refunded);
then exchanges a T-shirt that did not fit for the other size, paying the difference;
and asks a question, answered with the order's whole history at hand.
"""

from datetime import timedelta
from decimal import Decimal

import orderkit as ok
from orderkit.adapters.memory import ManualClock
from orderkit.adapters.memory_carrier import MemoryCarrier
from orderkit.adapters.memory_gateway import MemoryGateway

clock = ManualClock()
shop = ok.Shop.open(
    "memory://",
    clock=clock,
    gateway=MemoryGateway(seed=1),
    carriers=[MemoryCarrier(clock=clock, seed=1)],
    settings=ok.ShopSettings(currency="EUR", restocking_fee=Decimal("0.10")),
)
shop.inventory.add_location(ok.Location("berlin", "Berlin"))
for sku in ("MUG-01", "TEA-GR", "TEE-M", "TEE-L"):
    shop.inventory.receive(sku, location="berlin", quantity=10)

# -- an order, shipped and delivered (see examples/shipping.py for these steps) -------------------
order = shop.orders.place(
    ok.PlaceOrder(
        customer=ok.Customer("cust-1", "Ada Lovelace", "ada@example.com"),
        shipping_address=ok.Address("Ada Lovelace", "12 Analytical Row", "London", "N1 9GU", "GB"),
        lines=[
            ok.LineItem("L1", "MUG-01", "Stoneware mug", 2, ok.Money("12.50", "EUR")),
            ok.LineItem("L2", "TEA-GR", "Green tea, 100 g", 1, ok.Money("8.90", "EUR")),
            ok.LineItem("L3", "TEE-M", "Organic T-shirt, M", 1, ok.Money("24.00", "EUR")),
        ],
        payment_token="tok_visa",
        shipping_charge=ok.Money("4.90", "EUR"),
    )
)
shop.orders.acknowledge(order.id)
for shipment in shop.fulfilment.start(order.id):
    shop.fulfilment.pick(shipment.id)
    shop.fulfilment.pack(shipment.id, [ok.Parcel(1200, 300, 200, 150)])
    shop.shipping.buy_label(shipment.id)
    shop.shipping.hand_over(shipment.id)
while shop.orders.get(order.id).state != "delivered":
    clock.advance(timedelta(days=1))
    shop.shipping.poll()
print("delivered; returnable:", shop.returns.returnable(order.id))

# -- a return, refunded ---------------------------------------------------------------------------
back = shop.returns.request(
    order.id,
    [
        ok.ReturnLine("L1", 1, "changed_mind"),
        ok.ReturnLine("L2", 1, "damaged", "the tin was dented"),
    ],
)
shop.returns.approve(back.id)  # the customer is sent the shop's return instructions
shop.returns.receive(back.id)  # the parcel arrived with everything asked for
shop.returns.inspect(back.id, [ok.Inspection("L1", restock=1), ok.Inspection("L2", 0, write_off=1)])
quote = shop.returns.quote_refund(back.id, refund_shipping=True)
print(f"refund: {quote.items} items - {quote.restocking_fee} fee + {quote.shipping} = {quote.due}")
back = shop.returns.refund(back.id, refund_shipping=True)  # through the gateway; closes it

mugs = shop.inventory.levels("MUG-01")[0].on_hand
print(f"due {back.amount_due}, paid out {back.amount_refunded}; mugs on hand: {mugs}")

# -- an exchange: the T-shirt in L instead of M, at a higher price --------------------------------
swap = shop.returns.request(order.id, [ok.ReturnLine("L3", 1, "size_or_fit")])
shop.returns.approve(swap.id)
shop.returns.receive(swap.id)
shop.returns.inspect(swap.id)  # None: every unit back on hand
swap = shop.returns.exchange(
    swap.id, [ok.Replacement("L3", "TEE-L", "Organic T-shirt, L", ok.Money("26.00", "EUR"))]
)
print(f"exchange: credit {swap.amount_due}, charged {swap.exchange_charged}")
for shipment in shop.fulfilment.start(swap.exchange_order_id):  # ships like any order
    shop.fulfilment.pick(shipment.id)
    shop.fulfilment.pack(shipment.id, [ok.Parcel(300, 300, 200, 50)])
    shop.shipping.buy_label(shipment.id)
    shop.shipping.hand_over(shipment.id)
while shop.returns.get(swap.id).state != "closed":  # closed when the exchange arrives
    clock.advance(timedelta(days=1))
    shop.shipping.poll()

# -- a question, answered with the order's history at hand ----------------------------------------
question = shop.inquiries.open(order.id, "Refund", "When will I see the money for the mug?")
case = shop.inquiries.case(question.id)
print(f"{len(case.history)} events in the order's history; the latest:")
for entry in case.history[-3:]:
    print(f"  {entry.at:%Y-%m-%d %H:%M}  {entry.summary}")
shop.inquiries.answer(question.id, "Sam", "It went back to your card; allow a few days.")
shop.inquiries.resolve(question.id, "answered")

for message in shop.notifier.for_order(order.id)[-6:]:
    print(f"  {message.kind:18} {message.subject}")
