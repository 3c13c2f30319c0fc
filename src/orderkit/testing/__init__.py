"""The public testing kit: check your own adapters, handlers and lifecycle extensions
with the checks orderkit runs on its own.

* :mod:`orderkit.testing.strategies`: hypothesis strategies for every command, value
  object and aggregate (aggregates in any state of their lifecycles, built by their
  own methods)::

      from orderkit.testing import strategies as oks

      @given(oks.place_order_commands(), oks.shipments(state="in_transit"))
      def test_my_handler(command, shipment): ...

* :class:`OrderLifecycleMachine` (:mod:`orderkit.testing.lifecycle`): a hypothesis
  state machine that walks orders through a shop at random and checks every step;
  subclass it and override ``make_shop`` to run it on your store and adapters.
* Contract suites, one per port; subclass one, implement its ``make_...`` method and
  let pytest collect it::

      from orderkit.testing import StoreContract

      class TestMyStore(StoreContract):
          def make_store(self, tmp_path):
              return MyStore(tmp_path / "shop.db")

  :class:`StoreContract` (repositories, unit of work, outbox and stock: it includes
  :class:`PaymentStoreContract`, :class:`ShipmentStoreContract`,
  :class:`ReturnStoreContract`, :class:`InquiryStoreContract` and
  :class:`OrderHistoryContract`), :class:`PaymentGatewayContract`,
  :class:`CarrierContract`, :class:`NotifierContract`, :class:`SmsSenderContract`,
  :class:`OptOutListContract`, :class:`ClockContract` and :class:`IdSourceContract`.

Needs the ``test`` extra (hypothesis and pytest). The contract suites are imported on
first use, so the strategies and the state machine need no pytest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from orderkit.testing import strategies
from orderkit.testing.lifecycle import EXPECTED_GRAPH, OrderLifecycleMachine

if TYPE_CHECKING:
    from orderkit.testing.carriers import CONTRACT_START, CarrierContract, packed_shipment
    from orderkit.testing.contracts import (
        STOCK_SKUS,
        StoreContract,
        assert_ledger_matches_on_hand,
        make_order,
    )
    from orderkit.testing.inquiry_store import InquiryStoreContract, OrderHistoryContract
    from orderkit.testing.notify import (
        Delivery,
        NotifierContract,
        OptOutListContract,
        SmsSenderContract,
    )
    from orderkit.testing.payment_store import PaymentStoreContract
    from orderkit.testing.payments import CARD_NUMBERS, PaymentGatewayContract
    from orderkit.testing.return_store import ReturnStoreContract
    from orderkit.testing.shipment_store import ShipmentStoreContract
    from orderkit.testing.system import ID_KINDS, ClockContract, IdSourceContract

_LAZY = {
    "CARD_NUMBERS": "payments",
    "CONTRACT_START": "carriers",
    "CarrierContract": "carriers",
    "ClockContract": "system",
    "Delivery": "notify",
    "ID_KINDS": "system",
    "IdSourceContract": "system",
    "InquiryStoreContract": "inquiry_store",
    "NotifierContract": "notify",
    "OptOutListContract": "notify",
    "OrderHistoryContract": "inquiry_store",
    "PaymentGatewayContract": "payments",
    "PaymentStoreContract": "payment_store",
    "ReturnStoreContract": "return_store",
    "STOCK_SKUS": "contracts",
    "ShipmentStoreContract": "shipment_store",
    "SmsSenderContract": "notify",
    "StoreContract": "contracts",
    "assert_ledger_matches_on_hand": "contracts",
    "make_order": "contracts",
    "packed_shipment": "carriers",
}

__all__ = [
    "CARD_NUMBERS",
    "CONTRACT_START",
    "EXPECTED_GRAPH",
    "ID_KINDS",
    "STOCK_SKUS",
    "CarrierContract",
    "ClockContract",
    "Delivery",
    "IdSourceContract",
    "InquiryStoreContract",
    "NotifierContract",
    "OptOutListContract",
    "OrderHistoryContract",
    "OrderLifecycleMachine",
    "PaymentGatewayContract",
    "PaymentStoreContract",
    "ReturnStoreContract",
    "ShipmentStoreContract",
    "SmsSenderContract",
    "StoreContract",
    "assert_ledger_matches_on_hand",
    "make_order",
    "packed_shipment",
    "strategies",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'orderkit.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"orderkit.testing.{module}"), name)
    globals()[name] = value
    return value
