"""Contract suite: what every payment gateway adapter (the ``PaymentGateway`` port) must do.

Written once, run against every gateway: this repository runs it against the
in-memory :class:`~orderkit.adapters.memory_gateway.MemoryGateway`, and you can run it
against your own adapter, talking to your provider's sandbox. Subclass, implement
:meth:`PaymentGatewayContract.make_gateway`, name the sandbox's test tokens, and let
pytest collect the class::

    from orderkit.testing.payments import PaymentGatewayContract

    class TestMyGateway(PaymentGatewayContract):
        approve_token = "pm_card_visa"              # the sandbox's always-approved token
        decline_token = "pm_card_chargeDeclined"    # ... and its always-declined one
        currencies = ("EUR", "JPY")                 # what your account can charge

        def make_gateway(self):
            return MyGateway(api_key=os.environ["SANDBOX_KEY"])

The defaults are the :class:`MemoryGateway` test tokens ``tok_approve`` and
``tok_decline`` and the currencies EUR (2 decimals), JPY (0) and KWD (3); every
test that moves money runs once per currency, with amounts given in minor units.
Each test uses fresh random idempotency keys, so a sandbox that remembers keys
across runs never sees a key twice by accident.

What it checks, for every gateway:

* authorize holds exactly the asked amount and returns the gateway's id;
* a call repeated with its idempotency key and the same arguments returns the first
  result (declines included) and moves no money again; with other arguments it raises
  :class:`~orderkit.errors.IdempotencyConflict`;
* declines raise :class:`~orderkit.errors.PaymentDeclined` with a reason;
* the gateway's own books are enforced with
  :class:`~orderkit.errors.InvalidPaymentOperation`: partial captures up to the
  authorized amount and no further, nothing captured after a void, no void after a
  full capture, refunds up to each capture's amount and no further, unknown ids refused;
* amounts in another currency, and zero or negative amounts, are refused with an
  :class:`~orderkit.errors.OrderkitError`;
* a card number passed as a token is refused with
  :class:`~orderkit.errors.CardNumberRejected`, without echoing the number.

Needs pytest (the ``test`` extra).
"""

from __future__ import annotations

import uuid

import pytest

from orderkit.domain.payment import (
    GatewayAuthorization,
    GatewayCapture,
    GatewayRefund,
    GatewayVoid,
)
from orderkit.errors import (
    CardNumberRejected,
    IdempotencyConflict,
    InvalidPaymentOperation,
    OrderkitError,
    PaymentDeclined,
)
from orderkit.money import Money
from orderkit.ports import PaymentGateway

__all__ = ["CARD_NUMBERS", "PaymentGatewayContract"]

CARD_NUMBERS = (
    "4242424242424242",
    "4242 4242 4242 4242",
    "4111-1111-1111-1111",
    "5555555555554444",
    "378282246310005",
)
"""Well-known test card numbers (they pass the Luhn check); no gateway may take one as token."""

AUTHORIZED = 10_000
"""The amount every test authorizes, in minor units (100.00 EUR, 10000 JPY, 10.000 KWD)."""


def money(minor_units: int, currency: str) -> Money:
    """``minor_units`` of ``currency`` (1999 EUR is 19.99 EUR, 1999 JPY is 1999 JPY)."""
    return Money.from_minor(minor_units, currency)


def _other_currency(currency: str) -> str:
    return next(c for c in ("EUR", "JPY", "KWD", "USD") if c != currency)


class PaymentGatewayContract:
    """The contract of a :class:`~orderkit.ports.PaymentGateway`; subclass and implement
    ``make_gateway`` (and name your sandbox's tokens and currencies)."""

    approve_token: str = "tok_approve"
    """A token whose authorizations the gateway always approves."""

    decline_token: str = "tok_decline"
    """A token whose authorizations the gateway always declines."""

    currencies: tuple[str, ...] = ("EUR", "JPY", "KWD")
    """The currencies the money-moving tests run in (one test per currency)."""

    def make_gateway(self) -> PaymentGateway:
        """A gateway to test (it may hold earlier runs' payments; keys are always fresh)."""
        raise NotImplementedError

    def new_key(self, what: str) -> str:
        """A new idempotency key, never used before (``what`` only helps reading logs)."""
        return f"{what}-{uuid.uuid4().hex}"

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Run every test that takes ``currency`` once per entry of :attr:`currencies`."""
        if "currency" in metafunc.fixturenames:
            metafunc.parametrize("currency", self.currencies)

    @pytest.fixture
    def gateway(self) -> PaymentGateway:
        return self.make_gateway()

    def _authorize(
        self, gateway: PaymentGateway, currency: str, minor_units: int = AUTHORIZED
    ) -> GatewayAuthorization:
        amount = money(minor_units, currency)
        return gateway.authorize(amount, self.approve_token, idempotency_key=self.new_key("auth"))

    def _capture(
        self, gateway: PaymentGateway, authorization_id: str, amount: Money
    ) -> GatewayCapture:
        return gateway.capture(authorization_id, amount, idempotency_key=self.new_key("capture"))

    def _refund(self, gateway: PaymentGateway, capture_id: str, amount: Money) -> GatewayRefund:
        return gateway.refund(capture_id, amount, idempotency_key=self.new_key("refund"))

    # -- authorize ------------------------------------------------------------------------

    def test_authorize_holds_the_asked_amount_and_returns_an_id(
        self, gateway: PaymentGateway, currency: str
    ) -> None:
        amount = money(12_345, currency)
        authorization = gateway.authorize(
            amount, self.approve_token, idempotency_key=self.new_key("auth")
        )
        assert isinstance(authorization, GatewayAuthorization)
        assert isinstance(authorization.id, str)
        assert authorization.id.strip()
        assert authorization.amount == amount
        assert authorization.amount.currency == currency
        other = self._authorize(gateway, currency)
        assert other.id != authorization.id, "two keys must make two authorizations"

    def test_same_key_and_request_returns_the_first_authorization(
        self, gateway: PaymentGateway, currency: str
    ) -> None:
        key = self.new_key("auth")
        amount = money(AUTHORIZED, currency)
        first = gateway.authorize(amount, self.approve_token, idempotency_key=key)
        again = gateway.authorize(amount, self.approve_token, idempotency_key=key)
        assert again == first
        # No second hold: the one authorization can be captured in full exactly once.
        self._capture(gateway, first.id, amount)
        with pytest.raises(InvalidPaymentOperation):
            self._capture(gateway, again.id, money(1, currency))

    def test_same_key_with_other_arguments_is_an_idempotency_conflict(
        self, gateway: PaymentGateway, currency: str
    ) -> None:
        key = self.new_key("auth")
        amount = money(AUTHORIZED, currency)
        first = gateway.authorize(amount, self.approve_token, idempotency_key=key)
        others = [
            (money(AUTHORIZED + 1, currency), self.approve_token),
            (money(AUTHORIZED, _other_currency(currency)), self.approve_token),
            (amount, self.decline_token),
        ]
        for other_amount, token in others:
            with pytest.raises(IdempotencyConflict):
                gateway.authorize(other_amount, token, idempotency_key=key)
        assert gateway.authorize(amount, self.approve_token, idempotency_key=key) == first

    def test_a_key_used_for_one_operation_cannot_be_used_for_another(
        self, gateway: PaymentGateway, currency: str
    ) -> None:
        key = self.new_key("auth")
        authorization = gateway.authorize(
            money(AUTHORIZED, currency), self.approve_token, idempotency_key=key
        )
        with pytest.raises(IdempotencyConflict):
            gateway.capture(authorization.id, money(100, currency), idempotency_key=key)
        with pytest.raises(IdempotencyConflict):
            gateway.void(authorization.id, idempotency_key=key)
        # the refused calls moved nothing: the whole amount is still capturable
        self._capture(gateway, authorization.id, money(AUTHORIZED, currency))

    def test_decline_raises_with_a_reason_and_the_same_key_repeats_it(
        self, gateway: PaymentGateway, currency: str
    ) -> None:
        key = self.new_key("auth")
        amount = money(AUTHORIZED, currency)
        with pytest.raises(PaymentDeclined) as first:
            gateway.authorize(amount, self.decline_token, idempotency_key=key)
        assert isinstance(first.value.reason, str)
        assert first.value.reason.strip()
        with pytest.raises(PaymentDeclined) as again:
            gateway.authorize(amount, self.decline_token, idempotency_key=key)
        assert again.value.reason == first.value.reason

    # -- capture ----------------------------------------------------------------------------

    def test_partial_captures_up_to_the_authorized_amount_then_over_capture_is_refused(
        self, gateway: PaymentGateway, currency: str
    ) -> None:
        authorization = self._authorize(gateway, currency)
        parts = [money(2_500, currency), money(1, currency), money(7_499, currency)]
        captures = [self._capture(gateway, authorization.id, part) for part in parts]
        for capture, part in zip(captures, parts, strict=True):
            assert isinstance(capture, GatewayCapture)
            assert capture.id.strip()
            assert capture.authorization_id == authorization.id
            assert capture.amount == part
        assert len({c.id for c in captures}) == len(captures)
        with pytest.raises(InvalidPaymentOperation):
            self._capture(gateway, authorization.id, money(1, currency))

    def test_capturing_more_than_authorized_at_once_is_refused_and_moves_nothing(
        self, gateway: PaymentGateway, currency: str
    ) -> None:
        authorization = self._authorize(gateway, currency)
        with pytest.raises(InvalidPaymentOperation):
            self._capture(gateway, authorization.id, money(AUTHORIZED + 1, currency))
        capture = self._capture(gateway, authorization.id, money(AUTHORIZED, currency))
        assert capture.amount == authorization.amount

    def test_same_key_and_request_returns_the_first_capture(
        self, gateway: PaymentGateway, currency: str
    ) -> None:
        authorization = self._authorize(gateway, currency)
        key = self.new_key("capture")
        part = money(4_000, currency)
        first = gateway.capture(authorization.id, part, idempotency_key=key)
        again = gateway.capture(authorization.id, part, idempotency_key=key)
        assert again == first
        with pytest.raises(IdempotencyConflict):
            gateway.capture(authorization.id, money(4_001, currency), idempotency_key=key)
        # the repeat captured nothing: the remaining 6000 minor units are still there
        self._capture(gateway, authorization.id, money(6_000, currency))
        with pytest.raises(InvalidPaymentOperation):
            self._capture(gateway, authorization.id, money(1, currency))

    def test_capture_of_an_unknown_authorization_is_refused(
        self, gateway: PaymentGateway, currency: str
    ) -> None:
        with pytest.raises(InvalidPaymentOperation):
            self._capture(gateway, f"auth_unknown_{uuid.uuid4().hex}", money(100, currency))

    # -- void ----------------------------------------------------------------------------

    def test_capture_after_void_is_refused(self, gateway: PaymentGateway, currency: str) -> None:
        authorization = self._authorize(gateway, currency)
        void = gateway.void(authorization.id, idempotency_key=self.new_key("void"))
        assert isinstance(void, GatewayVoid)
        assert void.id.strip()
        assert void.authorization_id == authorization.id
        with pytest.raises(InvalidPaymentOperation):
            self._capture(gateway, authorization.id, money(1, currency))

    def test_void_after_partial_captures_releases_the_rest(
        self, gateway: PaymentGateway, currency: str
    ) -> None:
        authorization = self._authorize(gateway, currency)
        capture = self._capture(gateway, authorization.id, money(4_000, currency))
        gateway.void(authorization.id, idempotency_key=self.new_key("void"))
        with pytest.raises(InvalidPaymentOperation):
            self._capture(gateway, authorization.id, money(1, currency))
        # what was captured before the void can still be refunded
        refund = self._refund(gateway, capture.id, money(4_000, currency))
        assert refund.amount == capture.amount

    def test_void_after_a_full_capture_is_refused(
        self, gateway: PaymentGateway, currency: str
    ) -> None:
        authorization = self._authorize(gateway, currency)
        self._capture(gateway, authorization.id, money(3_000, currency))
        self._capture(gateway, authorization.id, money(7_000, currency))
        with pytest.raises(InvalidPaymentOperation):
            gateway.void(authorization.id, idempotency_key=self.new_key("void"))

    def test_void_is_idempotent_by_key_and_happens_once(
        self, gateway: PaymentGateway, currency: str
    ) -> None:
        authorization = self._authorize(gateway, currency)
        key = self.new_key("void")
        first = gateway.void(authorization.id, idempotency_key=key)
        assert gateway.void(authorization.id, idempotency_key=key) == first
        with pytest.raises(InvalidPaymentOperation):
            gateway.void(authorization.id, idempotency_key=self.new_key("void"))

    # -- refund ----------------------------------------------------------------------------

    def test_refunds_up_to_each_capture_then_refused(
        self, gateway: PaymentGateway, currency: str
    ) -> None:
        authorization = self._authorize(gateway, currency)
        first = self._capture(gateway, authorization.id, money(6_000, currency))
        second = self._capture(gateway, authorization.id, money(4_000, currency))
        refunds = [
            self._refund(gateway, first.id, money(1_000, currency)),
            self._refund(gateway, first.id, money(1, currency)),
            self._refund(gateway, first.id, money(4_999, currency)),
        ]
        for refund, minor in zip(refunds, (1_000, 1, 4_999), strict=True):
            assert isinstance(refund, GatewayRefund)
            assert refund.id.strip()
            assert refund.capture_id == first.id
            assert refund.amount == money(minor, currency)
        assert len({r.id for r in refunds}) == len(refunds)
        with pytest.raises(InvalidPaymentOperation):
            self._refund(gateway, first.id, money(1, currency))
        # the limit is per capture: the second one still has all of its 4000
        with pytest.raises(InvalidPaymentOperation):
            self._refund(gateway, second.id, money(4_001, currency))
        assert self._refund(gateway, second.id, money(4_000, currency)).capture_id == second.id
        with pytest.raises(InvalidPaymentOperation):
            self._refund(gateway, second.id, money(1, currency))

    def test_same_key_and_request_returns_the_first_refund(
        self, gateway: PaymentGateway, currency: str
    ) -> None:
        authorization = self._authorize(gateway, currency)
        capture = self._capture(gateway, authorization.id, money(AUTHORIZED, currency))
        key = self.new_key("refund")
        part = money(3_000, currency)
        first = gateway.refund(capture.id, part, idempotency_key=key)
        again = gateway.refund(capture.id, part, idempotency_key=key)
        assert again == first
        with pytest.raises(IdempotencyConflict):
            gateway.refund(capture.id, money(2_000, currency), idempotency_key=key)
        # the repeat refunded nothing: the remaining 7000 minor units are still refundable
        self._refund(gateway, capture.id, money(7_000, currency))
        with pytest.raises(InvalidPaymentOperation):
            self._refund(gateway, capture.id, money(1, currency))

    def test_refund_of_an_unknown_capture_is_refused(
        self, gateway: PaymentGateway, currency: str
    ) -> None:
        with pytest.raises(InvalidPaymentOperation):
            self._refund(gateway, f"cap_unknown_{uuid.uuid4().hex}", money(100, currency))

    # -- amounts and tokens ----------------------------------------------------------------

    def test_amounts_in_another_currency_are_refused(
        self, gateway: PaymentGateway, currency: str
    ) -> None:
        other = _other_currency(currency)
        authorization = self._authorize(gateway, currency)
        with pytest.raises(OrderkitError):
            self._capture(gateway, authorization.id, money(1_000, other))
        capture = self._capture(gateway, authorization.id, money(AUTHORIZED, currency))
        with pytest.raises(OrderkitError):
            self._refund(gateway, capture.id, money(1_000, other))
        assert self._refund(gateway, capture.id, money(AUTHORIZED, currency)).amount == (
            capture.amount
        )

    @pytest.mark.parametrize("minor_units", [0, -1, -AUTHORIZED])
    def test_zero_and_negative_amounts_are_refused(
        self, gateway: PaymentGateway, currency: str, minor_units: int
    ) -> None:
        bad = money(minor_units, currency)
        with pytest.raises(OrderkitError):
            gateway.authorize(bad, self.approve_token, idempotency_key=self.new_key("auth"))
        authorization = self._authorize(gateway, currency)
        with pytest.raises(OrderkitError):
            self._capture(gateway, authorization.id, bad)
        capture = self._capture(gateway, authorization.id, money(AUTHORIZED, currency))
        with pytest.raises(OrderkitError):
            self._refund(gateway, capture.id, bad)
        # nothing was refunded: the whole capture still is refundable
        self._refund(gateway, capture.id, money(AUTHORIZED, currency))

    @pytest.mark.parametrize("card_number", CARD_NUMBERS)
    def test_a_card_number_as_token_is_rejected_without_echoing_it(
        self, gateway: PaymentGateway, card_number: str
    ) -> None:
        with pytest.raises(CardNumberRejected) as caught:
            gateway.authorize(
                money(AUTHORIZED, self.currencies[0]),
                card_number,
                idempotency_key=self.new_key("auth"),
            )
        digits = "".join(ch for ch in card_number if ch.isdigit())
        shown = f"{caught.value} {caught.value.args!r} {getattr(caught.value, 'value', '')!r}"
        assert digits not in "".join(ch for ch in shown if ch.isdigit())
