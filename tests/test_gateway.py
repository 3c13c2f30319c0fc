"""The payment gateway contract run against MemoryGateway, and what only MemoryGateway does:
its test tokens, callbacks, seeded determinism, simulated outages and thread safety."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import pytest

from orderkit.adapters.memory import ManualClock
from orderkit.adapters.memory_gateway import TEST_TOKENS, MemoryGateway
from orderkit.domain.payment import (
    GatewayAuthorization,
    GatewayEventKind,
    PaymentGatewayEvent,
)
from orderkit.errors import (
    GatewayUnavailable,
    IdempotencyConflict,
    InvalidField,
    InvalidPaymentOperation,
    PaymentDeclined,
)
from orderkit.money import Money
from orderkit.ports import PaymentGateway
from orderkit.testing.payments import PaymentGatewayContract


class TestMemoryGateway(PaymentGatewayContract):
    def make_gateway(self) -> PaymentGateway:
        return MemoryGateway(seed=1234)


def eur(amount: str) -> Money:
    return Money(amount, "EUR")


# -- test tokens ------------------------------------------------------------------------------


def test_every_documented_token_is_covered_here() -> None:
    assert set(TEST_TOKENS) == {
        "tok_approve",
        "tok_decline",
        "tok_insufficient_funds",
        "tok_timeout_after_success",
        "tok_duplicate_callback",
    }


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("tok_decline", "card_declined"),
        ("tok_decline_42", "card_declined"),
        ("tok_insufficient_funds", "insufficient_funds"),
        ("tok_insufficient_funds_x", "insufficient_funds"),
    ],
)
def test_decline_tokens_decline_with_their_reason_and_move_nothing(token: str, reason: str) -> None:
    gateway = MemoryGateway()
    for _ in range(2):  # the same key repeats the decline
        with pytest.raises(PaymentDeclined) as caught:
            gateway.authorize(eur("10.00"), token, idempotency_key="k-1")
        assert caught.value.reason == reason
    assert gateway.authorization_count() == 0
    assert gateway.take_callbacks() == []
    # the declined key is taken: approving with it is another request
    with pytest.raises(IdempotencyConflict):
        gateway.authorize(eur("10.00"), "tok_approve", idempotency_key="k-1")
    assert gateway.authorization_count() == 0


@pytest.mark.parametrize("token", ["tok_approve", "tok_visa", "tok_duplicate_callback", "x"])
def test_other_tokens_are_approved(token: str) -> None:
    gateway = MemoryGateway()
    authorization = gateway.authorize(eur("10.00"), token, idempotency_key="k-1")
    assert authorization.amount == eur("10.00")
    assert gateway.authorization_count() == 1


def test_timeout_after_success_authorize_happens_once() -> None:
    gateway = MemoryGateway()
    with pytest.raises(GatewayUnavailable):
        gateway.authorize(eur("50.00"), "tok_timeout_after_success", idempotency_key="a-1")
    assert gateway.authorization_count() == 1  # the work was done, only the answer was lost
    authorization = gateway.authorize(
        eur("50.00"), "tok_timeout_after_success", idempotency_key="a-1"
    )
    assert authorization.amount == eur("50.00")
    assert gateway.authorization_count() == 1
    again = gateway.authorize(eur("50.00"), "tok_timeout_after_success", idempotency_key="a-1")
    assert again == authorization
    assert gateway.authorization_count() == 1
    assert [e.kind for e in gateway.take_callbacks()] == [GatewayEventKind.AUTHORIZED]
    # every new key's first call times out again
    with pytest.raises(GatewayUnavailable):
        gateway.authorize(eur("50.00"), "tok_timeout_after_success", idempotency_key="a-2")
    assert gateway.authorization_count() == 2


def _timed_out_authorization(gateway: MemoryGateway, amount: Money) -> GatewayAuthorization:
    with pytest.raises(GatewayUnavailable):
        gateway.authorize(amount, "tok_timeout_after_success", idempotency_key="auth")
    return gateway.authorize(amount, "tok_timeout_after_success", idempotency_key="auth")


def test_timeout_after_success_capture_happens_once() -> None:
    gateway = MemoryGateway()
    authorization = _timed_out_authorization(gateway, eur("50.00"))
    with pytest.raises(GatewayUnavailable):
        gateway.capture(authorization.id, eur("30.00"), idempotency_key="c-1")
    assert gateway.captured(authorization.id) == eur("30.00")
    capture = gateway.capture(authorization.id, eur("30.00"), idempotency_key="c-1")
    assert (capture.authorization_id, capture.amount) == (authorization.id, eur("30.00"))
    assert gateway.capture(authorization.id, eur("30.00"), idempotency_key="c-1") == capture
    assert gateway.captured(authorization.id) == eur("30.00")
    kinds = [e.kind for e in gateway.take_callbacks()]
    assert kinds == [GatewayEventKind.AUTHORIZED, GatewayEventKind.CAPTURED]
    # 20.00 are left, not 20.00 - 30.00: the retries captured nothing
    with pytest.raises(InvalidPaymentOperation):
        gateway.capture(authorization.id, eur("20.01"), idempotency_key="c-2")
    with pytest.raises(GatewayUnavailable):
        gateway.capture(authorization.id, eur("20.00"), idempotency_key="c-3")
    assert gateway.captured(authorization.id) == eur("50.00")


def test_timeout_after_success_refund_happens_once() -> None:
    gateway = MemoryGateway()
    authorization = _timed_out_authorization(gateway, eur("50.00"))
    with pytest.raises(GatewayUnavailable):
        gateway.capture(authorization.id, eur("50.00"), idempotency_key="c-1")
    capture = gateway.capture(authorization.id, eur("50.00"), idempotency_key="c-1")
    with pytest.raises(GatewayUnavailable):
        gateway.refund(capture.id, eur("20.00"), idempotency_key="r-1")
    assert gateway.refunded(authorization.id) == eur("20.00")
    refund = gateway.refund(capture.id, eur("20.00"), idempotency_key="r-1")
    assert (refund.capture_id, refund.amount) == (capture.id, eur("20.00"))
    assert gateway.refund(capture.id, eur("20.00"), idempotency_key="r-1") == refund
    assert gateway.refunded(authorization.id) == eur("20.00")
    refunds = [e for e in gateway.take_callbacks() if e.kind is GatewayEventKind.REFUNDED]
    assert [e.operation_id for e in refunds] == [refund.id]


def test_timeout_after_success_void_happens_once() -> None:
    gateway = MemoryGateway()
    authorization = _timed_out_authorization(gateway, eur("50.00"))
    with pytest.raises(GatewayUnavailable):
        gateway.void(authorization.id, idempotency_key="v-1")
    assert gateway.is_voided(authorization.id)
    void = gateway.void(authorization.id, idempotency_key="v-1")
    assert void.authorization_id == authorization.id
    assert gateway.void(authorization.id, idempotency_key="v-1") == void
    voids = [e for e in gateway.take_callbacks() if e.kind is GatewayEventKind.VOIDED]
    assert [e.operation_id for e in voids] == [void.id]


def test_duplicate_callback_token_queues_every_callback_twice_with_one_event_id() -> None:
    gateway = MemoryGateway()
    authorization = gateway.authorize(eur("50.00"), "tok_duplicate_callback", idempotency_key="a-1")
    capture = gateway.capture(authorization.id, eur("30.00"), idempotency_key="c-1")
    refund = gateway.refund(capture.id, eur("10.00"), idempotency_key="r-1")
    void = gateway.void(authorization.id, idempotency_key="v-1")
    events = gateway.take_callbacks()
    assert len(events) == 8
    pairs = list(zip(events[::2], events[1::2], strict=True))
    for first, second in pairs:
        assert first == second
        assert first.id == second.id
    assert [(e.kind, e.operation_id) for e, _ in pairs] == [
        (GatewayEventKind.AUTHORIZED, authorization.id),
        (GatewayEventKind.CAPTURED, capture.id),
        (GatewayEventKind.REFUNDED, refund.id),
        (GatewayEventKind.VOIDED, void.id),
    ]
    assert len({e.id for e, _ in pairs}) == 4
    # another token's callbacks on the same gateway come once
    gateway.authorize(eur("5.00"), "tok_approve", idempotency_key="a-2")
    assert len(gateway.take_callbacks()) == 1


# -- callbacks -------------------------------------------------------------------------------


def test_callbacks_describe_each_operation_and_are_drained() -> None:
    clock = ManualClock()
    gateway = MemoryGateway(clock=clock)
    assert gateway.take_callbacks() == []
    authorization = gateway.authorize(Money("100", "JPY"), "tok_approve", idempotency_key="a")
    capture = gateway.capture(authorization.id, Money("60", "JPY"), idempotency_key="c")
    refund = gateway.refund(capture.id, Money("25", "JPY"), idempotency_key="r")
    void = gateway.void(authorization.id, idempotency_key="v")
    events = gateway.take_callbacks()
    assert [
        (e.kind, e.authorization_id, e.operation_id, e.amount, e.capture_id, e.reason)
        for e in events
    ] == [
        (
            GatewayEventKind.AUTHORIZED,
            authorization.id,
            authorization.id,
            Money("100", "JPY"),
            None,
            None,
        ),
        (GatewayEventKind.CAPTURED, authorization.id, capture.id, Money("60", "JPY"), None, None),
        (
            GatewayEventKind.REFUNDED,
            authorization.id,
            refund.id,
            Money("25", "JPY"),
            capture.id,
            None,
        ),
        # a void reports the released rest
        (GatewayEventKind.VOIDED, authorization.id, void.id, Money("40", "JPY"), None, None),
    ]
    assert all(isinstance(e, PaymentGatewayEvent) for e in events)
    assert all(e.occurred_at == clock.now() for e in events)
    assert len({e.id for e in events}) == 4
    assert gateway.take_callbacks() == []


def test_repeats_and_refusals_queue_no_callbacks() -> None:
    gateway = MemoryGateway()
    authorization = gateway.authorize(eur("10.00"), "tok_approve", idempotency_key="a")
    capture = gateway.capture(authorization.id, eur("10.00"), idempotency_key="c")
    gateway.take_callbacks()
    gateway.authorize(eur("10.00"), "tok_approve", idempotency_key="a")
    gateway.capture(authorization.id, eur("10.00"), idempotency_key="c")
    with pytest.raises(InvalidPaymentOperation):
        gateway.capture(authorization.id, eur("0.01"), idempotency_key="c-2")
    with pytest.raises(InvalidPaymentOperation):
        gateway.void(authorization.id, idempotency_key="v")
    with pytest.raises(InvalidPaymentOperation):
        gateway.refund(capture.id, eur("10.01"), idempotency_key="r")
    with pytest.raises(IdempotencyConflict):
        gateway.authorize(eur("10.01"), "tok_approve", idempotency_key="a")
    assert gateway.take_callbacks() == []


# -- determinism --------------------------------------------------------------------------


def _script(gateway: MemoryGateway) -> list[str]:
    """A fixed sequence of calls; every id they produce, callbacks included."""
    ids: list[str] = []
    for n in range(3):
        authorization = gateway.authorize(
            Money("1.500", "KWD"), "tok_approve", idempotency_key=f"a-{n}"
        )
        capture = gateway.capture(authorization.id, Money("1.000", "KWD"), idempotency_key=f"c-{n}")
        refund = gateway.refund(capture.id, Money("0.250", "KWD"), idempotency_key=f"r-{n}")
        void = gateway.void(authorization.id, idempotency_key=f"v-{n}")
        ids += [authorization.id, capture.id, refund.id, void.id]
    ids += [e.id for e in gateway.take_callbacks()]
    return ids


def test_same_seed_same_calls_give_identical_ids() -> None:
    first = _script(MemoryGateway(seed=7))
    assert first == _script(MemoryGateway(seed=7))
    assert len(set(first)) == len(first) == 24


def test_different_seeds_give_different_ids() -> None:
    first, second = _script(MemoryGateway(seed=7)), _script(MemoryGateway(seed=8))
    assert set(first).isdisjoint(second)


# -- simulated outages ------------------------------------------------------------------------


def test_unavailable_rate_one_always_raises_and_moves_nothing() -> None:
    gateway = MemoryGateway(unavailable_rate=1.0)
    for n in range(50):
        with pytest.raises(GatewayUnavailable):
            gateway.authorize(eur("10.00"), "tok_approve", idempotency_key=f"a-{n}")
    with pytest.raises(GatewayUnavailable):
        gateway.authorize(eur("10.00"), "tok_approve", idempotency_key="a-0")  # its retry too
    assert gateway.authorization_count() == 0
    assert gateway.take_callbacks() == []


def test_unavailable_rate_one_refuses_capture_void_and_refund_without_moving_money() -> None:
    gateway = MemoryGateway()
    authorization = gateway.authorize(eur("10.00"), "tok_approve", idempotency_key="a")
    capture = gateway.capture(authorization.id, eur("4.00"), idempotency_key="c")
    gateway.take_callbacks()
    gateway.unavailable_rate = 1.0
    calls: list[Callable[[], Any]] = [
        lambda: gateway.capture(authorization.id, eur("1.00"), idempotency_key="c-2"),
        lambda: gateway.void(authorization.id, idempotency_key="v"),
        lambda: gateway.refund(capture.id, eur("1.00"), idempotency_key="r"),
        lambda: gateway.authorize(eur("1.00"), "tok_approve", idempotency_key="a-2"),
    ]
    for call in calls:
        with pytest.raises(GatewayUnavailable):
            call()
    assert gateway.captured(authorization.id) == eur("4.00")
    assert gateway.refunded(authorization.id) == eur("0.00")
    assert not gateway.is_voided(authorization.id)
    assert gateway.authorization_count() == 1
    assert gateway.take_callbacks() == []
    # a call answered before the outage is still answered from the key
    assert gateway.capture(authorization.id, eur("4.00"), idempotency_key="c") == capture


def _outage_pattern(seed: int, calls: int = 200) -> list[bool]:
    gateway = MemoryGateway(seed=seed, unavailable_rate=0.3)
    pattern = []
    for n in range(calls):
        try:
            gateway.authorize(eur("1.00"), "tok_approve", idempotency_key=f"k-{n}")
        except GatewayUnavailable:
            pattern.append(False)
        else:
            pattern.append(True)
    assert gateway.authorization_count() == sum(pattern)
    return pattern


def test_unavailable_rate_with_a_fixed_seed_repeats_its_pattern() -> None:
    pattern = _outage_pattern(seed=42)
    assert pattern == _outage_pattern(seed=42)
    assert 0.2 < pattern.count(False) / len(pattern) < 0.4
    assert pattern != _outage_pattern(seed=43)


def test_retrying_through_outages_with_one_key_authorizes_once() -> None:
    gateway = MemoryGateway(seed=3, unavailable_rate=0.5)
    results: list[GatewayAuthorization] = []
    failures = 0
    while len(results) < 5:
        try:
            results.append(gateway.authorize(eur("9.99"), "tok_approve", idempotency_key="k"))
        except GatewayUnavailable:
            failures += 1
            assert not results, "a remembered key is answered, never lost to an outage"
    assert len({r.id for r in results}) == 1
    assert gateway.authorization_count() == 1
    assert failures < 50


@pytest.mark.parametrize("rate", [-0.01, 1.01, 2, -1, math.nan, math.inf, -math.inf])
def test_unavailable_rate_outside_zero_to_one_is_refused(rate: float) -> None:
    with pytest.raises(InvalidField) as caught:
        MemoryGateway(unavailable_rate=rate)
    assert caught.value.field == "unavailable_rate"


@pytest.mark.parametrize("rate", [0, 0.0, 0.5, 1, 1.0])
def test_unavailable_rate_bounds_are_accepted(rate: float) -> None:
    assert MemoryGateway(unavailable_rate=rate).unavailable_rate == rate


# -- concurrency -----------------------------------------------------------------------------


def _in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads released together; results (or errors) by i."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as error:
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_idempotency_storm_sixteen_threads_one_key_one_authorization() -> None:
    gateway = MemoryGateway()
    results = _in_threads(
        16, lambda _: gateway.authorize(eur("25.00"), "tok_approve", idempotency_key="storm")
    )
    assert all(isinstance(r, GatewayAuthorization) for r in results), results
    assert len({r.id for r in results}) == 1
    assert gateway.authorization_count() == 1
    assert len(gateway.take_callbacks()) == 1


def test_capture_storm_one_key_captures_once() -> None:
    gateway = MemoryGateway()
    authorization = gateway.authorize(eur("25.00"), "tok_approve", idempotency_key="a")
    results = _in_threads(
        16, lambda _: gateway.capture(authorization.id, eur("10.00"), idempotency_key="c")
    )
    assert len({r.id for r in results}) == 1
    assert gateway.captured(authorization.id) == eur("10.00")


def test_concurrent_captures_with_distinct_keys_never_over_capture() -> None:
    gateway = MemoryGateway()
    authorization = gateway.authorize(eur("0.10"), "tok_approve", idempotency_key="a")
    results = _in_threads(
        16, lambda i: gateway.capture(authorization.id, eur("0.01"), idempotency_key=f"c-{i}")
    )
    refused = [r for r in results if isinstance(r, InvalidPaymentOperation)]
    assert len(refused) == 6
    assert len(results) - len(refused) == 10
    assert gateway.captured(authorization.id) == eur("0.10")
