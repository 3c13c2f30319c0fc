"""Public testing kit: hypothesis strategies and the stateful lifecycle machine.

Needs the ``test`` extra (hypothesis). Users run the same checks against their
own adapters; see :mod:`orderkit.testing.lifecycle`.
"""

from orderkit.testing.lifecycle import EXPECTED_GRAPH, OrderLifecycleMachine

__all__ = ["EXPECTED_GRAPH", "OrderLifecycleMachine"]
