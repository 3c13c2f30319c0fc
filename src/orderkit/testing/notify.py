"""Contract suites for the messaging ports: ``Notifier``, ``SmsSender`` and ``OptOutList``.

Written once, run against every implementation: this repository runs them against
:class:`~orderkit.adapters.memory.MemoryNotifier`,
:class:`~orderkit.notify.MemorySmsSender` and :class:`~orderkit.notify.MemoryOptOuts`;
run them against your SMS provider's adapter (in its sandbox) or your opt-out table.
Subclass, implement the ``make_...`` method and the hook that reads back what was
delivered, and let pytest collect the class::

    from orderkit.testing.notify import SmsSenderContract

    class TestMySmsProvider(SmsSenderContract):
        def make_sender(self):
            return MySmsSender(api_key=os.environ["SANDBOX_KEY"])

        def sent(self, sender):                  # what the sandbox says it accepted
            return [(m.to, m.body, m.client_ref) for m in sender.sandbox_messages()]

Each test makes a fresh implementation, and the property tests (hypothesis) run
:attr:`examples` examples each, so that a sandbox is not flooded; keys are fresh and
random, so a provider that remembers keys across runs never sees one twice by accident.

What they check:

* :class:`NotifierContract`: a notifier delivers what it is given (its key, to its
  recipient), in the order given, on the channels it serves, or raises an
  :class:`~orderkit.errors.OrderkitError` and delivers nothing; it never invents a
  new key for a repeated one.
* :class:`SmsSenderContract`: a text to an E.164 number arrives intact (GSM-7 and
  UCS-2, up to :attr:`SmsSenderContract.longest_segments` segments, which is what
  :class:`~orderkit.notify.SmsNotifier` may hand it); one message per key however often
  it is sent; numbers that are not E.164 and empty texts are refused with an
  :class:`~orderkit.errors.OrderkitError` and nothing is sent; when the provider cannot
  be reached it raises :class:`~orderkit.errors.NotificationError`, and the same key
  goes through once it can.
* :class:`OptOutListContract`: nobody is opted out at first; opting out is per channel,
  idempotent, undone by opting in, and matches e-mail addresses regardless of case and
  surrounding space and phone numbers regardless of spaces, dashes, dots and brackets;
  any sequence of changes leaves the list as a plain set would.

Needs pytest and hypothesis (the ``test`` extra).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderkit.domain.values import ContactChannel
from orderkit.errors import NotificationError, OrderkitError
from orderkit.notify.sms import GSM7_BASIC, GSM7_EXTENSION, sms_segments
from orderkit.ports import Notification, Notifier, OptOutList, SmsSender
from orderkit.testing._value_strategies import email_addresses, notifications, phone_numbers

__all__ = ["Delivery", "NotifierContract", "OptOutListContract", "SmsSenderContract"]


def _key() -> str:
    return f"contract-{uuid.uuid4().hex}"


@attrs.frozen
class Delivery:
    """What a notifier handed on: the message's de-duplication ``key`` and its ``recipient``."""

    key: str
    recipient: str


class NotifierContract:
    """The contract of a :class:`~orderkit.ports.Notifier`; subclass and implement
    :meth:`make_notifier` and :meth:`delivered`."""

    channels: tuple[ContactChannel, ...] = (ContactChannel.EMAIL, ContactChannel.SMS)
    """The channels the notifier serves (an e-mail-only notifier: ``(ContactChannel.EMAIL,)``)."""

    examples: int = 25
    """Examples per property test."""

    def make_notifier(self) -> Notifier:
        """A fresh notifier that delivers to where :meth:`delivered` reads."""
        raise NotImplementedError

    def delivered(self, notifier: Notifier) -> Sequence[Delivery]:
        """What ``notifier`` delivered so far, oldest first."""
        raise NotImplementedError

    def make_failing_notifier(self) -> Notifier | None:
        """A notifier whose channel cannot deliver (its server down, say), read by
        :meth:`delivered`; None (the default) skips the test that needs one."""
        return None

    def _cases(self) -> st.SearchStrategy[list[Notification]]:
        one = st.sampled_from(self.channels).flatmap(lambda channel: notifications(channel))
        return st.lists(one, min_size=1, max_size=4, unique_by=lambda n: n.key)

    def test_delivers_each_notification_once_in_order(self) -> None:
        @settings(max_examples=self.examples, deadline=None)
        @given(self._cases())
        def check(messages: list[Notification]) -> None:
            notifier = self.make_notifier()
            for message in messages:
                notifier.send(message)
            got = list(self.delivered(notifier))
            assert got == [Delivery(m.key, m.recipient) for m in messages]

        check()

    def test_a_repeated_key_is_never_replaced(self) -> None:
        @settings(max_examples=self.examples, deadline=None)
        @given(st.sampled_from(self.channels).flatmap(lambda channel: notifications(channel)))
        def check(message: Notification) -> None:
            notifier = self.make_notifier()
            notifier.send(message)
            notifier.send(message)
            got = list(self.delivered(notifier))
            assert 1 <= len(got) <= 2
            assert all(delivery == Delivery(message.key, message.recipient) for delivery in got)

        check()

    def test_a_notifier_that_cannot_deliver_raises_and_delivers_nothing(self) -> None:
        notifier = self.make_failing_notifier()
        if notifier is None:
            pytest.skip("make_failing_notifier() gives no failing notifier")
        channel = self.channels[0]
        message = Notification(
            order_id="order-1",
            kind="order_confirmation",
            channel=channel,
            recipient="+4915112345678" if channel is ContactChannel.SMS else "ada@example.com",
            subject="Your order",
            body="Thank you for your order.",
            key=_key(),
            email="ada@example.com",
        )
        with pytest.raises(OrderkitError):
            notifier.send(message)
        assert not list(self.delivered(notifier))


_GSM7 = "".join(sorted(GSM7_BASIC | GSM7_EXTENSION))
_TEXTS = st.one_of(
    st.text(alphabet=_GSM7, min_size=1, max_size=480),
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
        min_size=1,
        max_size=200,
    ),
)
_NOT_E164 = (
    "",
    "4915112345678",
    "+0151123456",
    "+49 151 12345678",
    "+49-151-12345678",
    "0049 151 12345678",
    "+123456",
    "+1234567890123456",
    "+49151abc5678",
)


class SmsSenderContract:
    """The contract of an :class:`~orderkit.ports.SmsSender`; subclass and implement
    :meth:`make_sender` and :meth:`sent`."""

    longest_segments: int = 3
    """The longest text (in segments) the sender must take: your
    :class:`~orderkit.notify.SmsNotifier`'s ``max_segments`` (3 by default)."""

    examples: int = 25
    """Examples per property test."""

    def make_sender(self) -> SmsSender:
        """A fresh sender, whose messages :meth:`sent` reads."""
        raise NotImplementedError

    def sent(self, sender: SmsSender) -> Sequence[tuple[str, str, str]]:
        """The messages ``sender`` sent so far, oldest first, as ``(to, text, key)``."""
        raise NotImplementedError

    def set_available(self, sender: SmsSender, available: bool) -> bool:
        """Make the provider reachable or not; return False (the default) when the
        sender cannot simulate an outage, which skips the test that needs one."""
        return False

    def test_a_text_arrives_intact_once(self) -> None:
        longest = self.longest_segments

        @settings(max_examples=self.examples, deadline=None)
        @given(phone_numbers(), _TEXTS.filter(lambda t: sms_segments(t).segments <= longest))
        def check(to: str, text: str) -> None:
            sender = self.make_sender()
            key = _key()
            sender.send_sms(to, text, key=key)
            assert list(self.sent(sender)) == [(to, text, key)]

        check()

    def test_one_message_per_key(self) -> None:
        sender = self.make_sender()
        first, second = _key(), _key()
        for key in (first, first, second, first):
            sender.send_sms("+447700900123", "Your parcel is on its way.", key=key)
        assert [key for _, _, key in self.sent(sender)] == [first, second]

    @pytest.mark.parametrize("number", _NOT_E164)
    def test_a_number_not_in_e164_form_is_refused(self, number: str) -> None:
        sender = self.make_sender()
        with pytest.raises(OrderkitError):
            sender.send_sms(number, "Your parcel is on its way.", key=_key())
        assert not list(self.sent(sender))

    def test_an_empty_text_is_refused(self) -> None:
        sender = self.make_sender()
        with pytest.raises(OrderkitError):
            sender.send_sms("+447700900123", "", key=_key())
        assert not list(self.sent(sender))

    def test_an_unreachable_provider_raises_and_the_key_goes_through_later(self) -> None:
        sender = self.make_sender()
        if not self.set_available(sender, False):
            pytest.skip("set_available() cannot simulate an outage")
        key = _key()
        with pytest.raises(NotificationError):
            sender.send_sms("+447700900123", "Delivered today.", key=key)
        assert not list(self.sent(sender))
        self.set_available(sender, True)
        sender.send_sms("+447700900123", "Delivered today.", key=key)
        sender.send_sms("+447700900123", "Delivered today.", key=key)
        assert list(self.sent(sender)) == [("+447700900123", "Delivered today.", key)]


_CHANNELS = st.sampled_from(ContactChannel)


def _address(channel: ContactChannel) -> st.SearchStrategy[str]:
    return phone_numbers() if channel is ContactChannel.SMS else email_addresses()


class OptOutListContract:
    """The contract of an :class:`~orderkit.ports.OptOutList`; subclass and implement
    :meth:`make_opt_outs`."""

    examples: int = 50
    """Examples per property test."""

    def make_opt_outs(self) -> OptOutList:
        """A fresh, empty list."""
        raise NotImplementedError

    def test_nobody_is_opted_out_at_first(self) -> None:
        opt_outs = self.make_opt_outs()
        assert not opt_outs.is_opted_out(ContactChannel.EMAIL, "ada@example.com")
        assert not opt_outs.is_opted_out(ContactChannel.SMS, "+447700900123")

    def test_opting_out_is_per_channel_idempotent_and_undone_by_opting_in(self) -> None:
        opt_outs = self.make_opt_outs()
        opt_outs.opt_out(ContactChannel.SMS, "+447700900123")
        opt_outs.opt_out(ContactChannel.SMS, "+447700900123")
        assert opt_outs.is_opted_out(ContactChannel.SMS, "+447700900123")
        assert not opt_outs.is_opted_out(ContactChannel.EMAIL, "+447700900123")
        assert not opt_outs.is_opted_out(ContactChannel.SMS, "+447700900124")
        opt_outs.opt_in(ContactChannel.SMS, "+447700900123")
        assert not opt_outs.is_opted_out(ContactChannel.SMS, "+447700900123")
        opt_outs.opt_in(ContactChannel.SMS, "+447700900123")
        opt_outs.opt_in(ContactChannel.EMAIL, "nobody@example.com")
        assert not opt_outs.is_opted_out(ContactChannel.EMAIL, "nobody@example.com")

    @pytest.mark.parametrize(
        ("channel", "stored", "asked"),
        [
            (ContactChannel.EMAIL, "Ada@Example.COM", "ada@example.com"),
            (ContactChannel.EMAIL, "  ada@example.com ", "ADA@example.com"),
            (ContactChannel.SMS, "+44 7700 900123", "+447700900123"),
            (ContactChannel.SMS, "+44-7700-900-123", "+44 (7700) 900.123"),
        ],
    )
    def test_addresses_match_as_people_write_them(
        self, channel: ContactChannel, stored: str, asked: str
    ) -> None:
        opt_outs = self.make_opt_outs()
        opt_outs.opt_out(channel, stored)
        assert opt_outs.is_opted_out(channel, asked)
        opt_outs.opt_in(channel, asked)
        assert not opt_outs.is_opted_out(channel, stored)

    def test_any_sequence_of_changes_acts_like_a_set(self) -> None:
        step = _CHANNELS.flatmap(
            lambda channel: st.tuples(st.booleans(), st.just(channel), _address(channel))
        )

        @settings(max_examples=self.examples, deadline=None)
        @given(st.lists(step, max_size=12), st.data())
        def check(steps: list[tuple[bool, ContactChannel, str]], data: Any) -> None:
            opt_outs = self.make_opt_outs()
            model: set[tuple[ContactChannel, str]] = set()
            for out, channel, address in steps:
                if out:
                    opt_outs.opt_out(channel, address)
                    model.add((channel, address))
                else:
                    opt_outs.opt_in(channel, address)
                    model.discard((channel, address))
            for _, channel, address in steps:
                assert opt_outs.is_opted_out(channel, address) == ((channel, address) in model)
            other = data.draw(_CHANNELS.flatmap(lambda c: st.tuples(st.just(c), _address(c))))
            assert opt_outs.is_opted_out(*other) == (other in model)

        check()
