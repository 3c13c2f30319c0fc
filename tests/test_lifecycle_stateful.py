"""The stateful lifecycle machine from orderkit.testing, run against the memory shop."""

from hypothesis import HealthCheck, settings

from orderkit.testing import OrderLifecycleMachine

OrderLifecycleMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestOrderLifecycle = OrderLifecycleMachine.TestCase
