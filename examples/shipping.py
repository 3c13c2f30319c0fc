"""From acknowledgement to the customer's door: python examples/shipping.py

A split order (no warehouse has everything), pick lists, packing, labels chosen for
the promised date, hand-over, carrier tracking, and the customer told at each step.
"""

from datetime import timedelta
from pathlib import Path
from tempfile import gettempdir

import orderkit as ok
from orderkit.adapters.memory import ManualClock
from orderkit.adapters.memory_carrier import MemoryCarrier
from orderkit.adapters.memory_gateway import MemoryGateway

clock = ManualClock()  # a simulation: we move time ourselves
shop = ok.Shop.open(
    "memory://",
    clock=clock,
    gateway=MemoryGateway(seed=1),
    carriers=[MemoryCarrier(clock=clock, seed=1)],  # your carriers' adapters in production
    settings=ok.ShopSettings(currency="EUR", capture="on_shipment"),
)
shop.inventory.add_location(ok.Location("berlin", "Berlin", priority=1, bins={"MUG-01": "A-03"}))
shop.inventory.add_location(ok.Location("hamburg", "Hamburg", priority=2))
shop.inventory.receive("MUG-01", location="berlin", quantity=5)
shop.inventory.receive("TEA-GR", location="hamburg", quantity=5)

order = shop.orders.place(
    ok.PlaceOrder(
        customer=ok.Customer("cust-1", "Ada Lovelace", "ada@example.com"),
        shipping_address=ok.Address("Ada Lovelace", "12 Analytical Row", "London", "N1 9GU", "GB"),
        lines=[
            ok.LineItem("L1", "MUG-01", "Stoneware mug", 2, ok.Money("12.50", "EUR")),
            ok.LineItem("L2", "TEA-GR", "Green tea, 100 g", 1, ok.Money("8.90", "EUR")),
        ],
        payment_token="tok_visa",
        shipping_charge=ok.Money("4.90", "EUR"),
    )
)
shop.orders.acknowledge(order.id)

shipments = shop.fulfilment.start(order.id)  # one per warehouse
for row in shop.fulfilment.pick_list([s.id for s in shipments]):
    print(f"pick {row.quantity} x {row.sku} at {row.location} bin {row.bin or '-'}")

for shipment in shipments:
    shop.fulfilment.pick(shipment.id)
    shop.fulfilment.pack(shipment.id, [ok.Parcel(900, 300, 200, 100)])
    shipment = shop.shipping.buy_label(shipment.id)  # the cheapest that arrives in time
    assert shipment.label is not None
    assert shipment.rate is not None
    label = Path(gettempdir()) / f"{shipment.tracking_number}.pdf"
    label.write_bytes(shipment.label.document)  # print it: a 4x6-inch PDF
    shop.shipping.hand_over(shipment.id)  # stock leaves; this parcel's share is captured
    print(shipment.location, shipment.rate.service, shipment.tracking_number, "->", label.name)

print("order", shop.orders.get(order.id).state, "| paid:", shop.payments.status(order.id).value)

for _ in range(6):  # the days go by; a worker would poll (or receive webhooks)
    clock.advance(timedelta(days=1))
    shop.shipping.poll()
print("order", shop.orders.get(order.id).state)
for notification in shop.notifier.sent:  # a MemoryNotifier by default
    print(f"  {notification.kind:20} {notification.subject}")
