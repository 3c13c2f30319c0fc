"""The stateful lifecycle machine from orderkit.testing, run against every store."""

import shutil
import tempfile

from hypothesis import HealthCheck, settings

from orderkit.adapters.memory import ManualClock, SequentialIds
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
