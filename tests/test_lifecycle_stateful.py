"""The stateful lifecycle machine from orderkit.testing, run against every store."""

import shutil
import tempfile
from datetime import timedelta

from hypothesis import HealthCheck, settings

from orderkit.adapters.memory import ManualClock, SequentialIds
from orderkit.adapters.memory_gateway import MemoryGateway
from orderkit.service.settings import ShopSettings
from orderkit.shop import Shop
from orderkit.testing import OrderLifecycleMachine

SETTINGS = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class SqliteOrderLifecycle(OrderLifecycleMachine):
    """The same walk on a real SQLite file, one fresh file per example."""

    def make_shop(self) -> Shop:
        self.folder = tempfile.mkdtemp(prefix="orderkit-stateful-")
        return Shop.open(f"{self.folder}/shop.db", clock=ManualClock(), ids=SequentialIds())

    def teardown(self) -> None:
        self.shop.close()
        shutil.rmtree(self.folder, ignore_errors=True)


OrderLifecycleMachine.TestCase.settings = SETTINGS
SqliteOrderLifecycle.TestCase.settings = settings(SETTINGS, max_examples=25)
TestOrderLifecycleInMemory = OrderLifecycleMachine.TestCase
TestOrderLifecycleOnSqlite = SqliteOrderLifecycle.TestCase


class PayingOrderLifecycle(OrderLifecycleMachine):
    """The walk in a shop that takes payments and captures each parcel as it ships."""

    capture = "on_shipment"

    def make_shop(self) -> Shop:
        clock = ManualClock()
        return Shop.open(
            "memory://",
            clock=clock,
            ids=SequentialIds(),
            gateway=MemoryGateway(seed=3, clock=clock),
            settings=ShopSettings(capture=self.capture, gateway_retry_delay=timedelta(0)),
        )


class SqlitePayingOrderLifecycle(SqliteOrderLifecycle):
    """Payments captured at placement, on a real SQLite file."""

    def make_shop(self) -> Shop:
        self.folder = tempfile.mkdtemp(prefix="orderkit-stateful-")
        clock = ManualClock()
        return Shop.open(
            f"{self.folder}/shop.db",
            clock=clock,
            ids=SequentialIds(),
            gateway=MemoryGateway(seed=4, clock=clock),
            settings=ShopSettings(capture="on_placement", gateway_retry_delay=timedelta(0)),
        )


PayingOrderLifecycle.TestCase.settings = settings(SETTINGS, max_examples=30)
SqlitePayingOrderLifecycle.TestCase.settings = settings(SETTINGS, max_examples=10)
TestPayingOrderLifecycleInMemory = PayingOrderLifecycle.TestCase
TestPayingOrderLifecycleOnSqlite = SqlitePayingOrderLifecycle.TestCase
