"""Text messages: segment counting against a model written here, the reference SMS
sender and opt-out list, ``SmsNotifier`` (opt-outs, e-mail fallback, length limit), and a
shop texting an SMS customer end to end.

The model encodes a text the way it travels: GSM 03.38 septets (an escape septet before
each extension character) or UTF-16 code units, and cuts the units into segments of 153
septets or 67 code units, moving a cut back by one when it would separate an escape
from its character or a high surrogate from its low one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderkit import (
    Address,
    Customer,
    InvalidField,
    LineItem,
    Location,
    Money,
    Notification,
    NotificationError,
    Order,
    Parcel,
    PlaceOrder,
    Replacement,
    ReturnLine,
    SalesChannel,
    Shop,
    ShopSettings,
)
from orderkit.adapters.memory import ManualClock, MemoryNotifier, SequentialIds
from orderkit.adapters.memory_carrier import MemoryCarrier
from orderkit.adapters.memory_gateway import MemoryGateway
from orderkit.domain.carrier import Label, Rate, TrackingEvent
from orderkit.domain.shipment import Shipment
from orderkit.domain.values import ContactChannel
from orderkit.errors import InvalidSettings, SmsTooLong
from orderkit.notify import (
    MemoryOptOuts,
    MemorySmsSender,
    MessageTemplates,
    PlainRenderer,
    SmsNotifier,
    SmsSegments,
    sms_segments,
)
from orderkit.service.notifications import order_confirmation

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)  # a Monday
PHONE = "+4915112345678"
EMAIL = "ada@example.com"
NAME = "Ada Lovelace"

# -- the model -----------------------------------------------------------------------------

# GSM 03.38 default alphabet, in code order (0x1B, the escape, is a placeholder here)
GSM_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
ESC = 0x1B
GSM_EXTENSION = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F}
GSM_EXTENSION |= {"[": 0x3C, "~": 0x3D, "]": 0x3E, "|": 0x40, "€": 0x65}
GSM_BASIC = {c: code for code, c in enumerate(GSM_TABLE) if code != ESC}


def model_units(text: str) -> tuple[str, list[int]]:
    """The encoding and the units (septets or UTF-16 code units) ``text`` is sent as."""
    if all(c in GSM_BASIC or c in GSM_EXTENSION for c in text):
        septets: list[int] = []
        for c in text:
            septets += [ESC, GSM_EXTENSION[c]] if c in GSM_EXTENSION else [GSM_BASIC[c]]
        return "GSM-7", septets
    raw = text.encode("utf-16-be")
    return "UCS-2", [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


def model_split(encoding: str, units: Sequence[int]) -> list[list[int]]:
    """The segments ``units`` travel in."""
    single, size = (160, 153) if encoding == "GSM-7" else (70, 67)
    if not units:
        return []
    if len(units) <= single:
        return [list(units)]
    segments, start = [], 0
    while start < len(units):
        end = min(start + size, len(units))
        if end < len(units):
            last = units[end - 1]
            # an escape's character, or a high surrogate's low one, is cut off: move it on
            # (0x1B is no character's code, so a segment ending in it ends in an escape)
            escape_cut = encoding == "GSM-7" and last == ESC
            surrogate_cut = encoding == "UCS-2" and 0xD800 <= last <= 0xDBFF
            if escape_cut or surrogate_cut:
                end -= 1
        segments.append(list(units[start:end]))
        start = end
    return segments


def model(text: str) -> SmsSegments:
    encoding, units = model_units(text)
    return SmsSegments(encoding, len(units), len(model_split(encoding, units)))  # type: ignore[arg-type]


def test_the_model_splits_where_a_phone_would() -> None:
    # the model itself, on cases worked out by hand
    assert model("") == SmsSegments("GSM-7", 0, 0)
    assert model("a" * 152 + "€" + "a" * 152) == SmsSegments("GSM-7", 306, 3)
    encoding, units = model_units("a" * 152 + "€" + "a" * 152)
    assert [len(s) for s in model_split(encoding, units)] == [152, 153, 1]
    assert model("й" * 66 + "😀" + "й" * 66) == SmsSegments("UCS-2", 134, 3)
    assert model("😀") == SmsSegments("UCS-2", 2, 1)


GSM_CHARS = st.sampled_from(sorted(GSM_BASIC))
EXTENSION_CHARS = st.sampled_from(sorted(GSM_EXTENSION))
OTHER_CHARS = st.characters(blacklist_categories=["Cs"]).filter(
    lambda c: c not in GSM_BASIC and c not in GSM_EXTENSION
)
# emoji outside the Basic Multilingual Plane, alone and in sequences (skin tone, flag)
EMOJI = st.sampled_from(["😀", "🚚", "📦", "👍🏽", "🇩🇪", "\U0001f9ea", "\U00010348"])
gsm_texts = st.text(st.one_of(GSM_CHARS, GSM_CHARS, GSM_CHARS, EXTENSION_CHARS), max_size=700)
mixed_texts = st.lists(
    st.one_of(GSM_CHARS, GSM_CHARS, EXTENSION_CHARS, OTHER_CHARS, EMOJI), max_size=400
).map("".join)
mostly_gsm_texts = st.builds(
    lambda head, odd, tail: head + odd + tail,
    gsm_texts,
    st.one_of(st.just(""), OTHER_CHARS, EMOJI),
    gsm_texts,
)

# a two-unit character (an extension character in GSM-7, an emoji in UCS-2) placed at or
# next to where a segment ends, between random texts sized so that the total is close to
# full segments: where moving the pair costs a segment
NEAR_GSM_CUTS = st.sampled_from([*range(150, 162), *range(303, 309), *range(456, 462)])
NEAR_UCS_CUTS = st.sampled_from([*range(64, 72), *range(131, 137), *range(198, 204)])
boundary_texts = st.one_of(
    st.builds(
        lambda head, pair, tail: "".join(head) + pair + tail,
        NEAR_GSM_CUTS.flatmap(lambda n: st.lists(GSM_CHARS, min_size=n, max_size=n)),
        EXTENSION_CHARS,
        st.sampled_from(range(148, 157)).flatmap(
            lambda n: st.lists(GSM_CHARS, min_size=n, max_size=n).map("".join)
        ),
    ),
    st.builds(
        lambda head, pair, tail: "".join(head) + pair + "".join(tail),
        NEAR_UCS_CUTS.flatmap(
            lambda n: st.lists(st.one_of(GSM_CHARS, OTHER_CHARS), min_size=n, max_size=n)
        ),
        EMOJI,
        st.sampled_from(range(62, 70)).flatmap(
            lambda n: st.lists(st.one_of(GSM_CHARS, OTHER_CHARS), min_size=n, max_size=n)
        ),
    ),
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(gsm_texts, mixed_texts, mostly_gsm_texts, boundary_texts))
def test_sms_segments_agree_with_the_model(text: str) -> None:
    assert sms_segments(text) == model(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", SmsSegments("GSM-7", 0, 0)),
        ("a" * 160, SmsSegments("GSM-7", 160, 1)),
        ("a" * 161, SmsSegments("GSM-7", 161, 2)),
        ("a" * 153 * 2, SmsSegments("GSM-7", 306, 2)),
        ("a" * (153 * 2 + 1), SmsSegments("GSM-7", 307, 3)),
        ("a" * 153 * 3, SmsSegments("GSM-7", 459, 3)),
        ("€" * 80, SmsSegments("GSM-7", 160, 1)),
        ("€" * 81, SmsSegments("GSM-7", 162, 2)),
        ("a" * 159 + "€", SmsSegments("GSM-7", 161, 2)),
        # the escape pair would straddle the cut after 153 septets: it moves on
        ("a" * 152 + "€" + "a" * 152, SmsSegments("GSM-7", 306, 3)),
        ("a" * 151 + "€" + "a" * 153, SmsSegments("GSM-7", 306, 2)),
        ("й" * 70, SmsSegments("UCS-2", 70, 1)),
        ("й" * 71, SmsSegments("UCS-2", 71, 2)),
        ("й" * 67 * 2, SmsSegments("UCS-2", 134, 2)),
        ("й" * (67 * 2 + 1), SmsSegments("UCS-2", 135, 3)),
        ("a" * 69 + "ç", SmsSegments("UCS-2", 70, 1)),  # ç (lower case) is not GSM: UCS-2
        ("😀" * 35, SmsSegments("UCS-2", 70, 1)),
        ("😀" * 36, SmsSegments("UCS-2", 72, 2)),
        # the surrogate pair would straddle the cut after 67 units: it moves on
        ("й" * 66 + "😀" + "й" * 66, SmsSegments("UCS-2", 134, 3)),
        ("й" * 65 + "😀" + "й" * 67, SmsSegments("UCS-2", 134, 2)),
        ("a" * 160 + "😀", SmsSegments("UCS-2", 162, 3)),
    ],
)
def test_sms_segment_boundaries(text: str, expected: SmsSegments) -> None:
    assert sms_segments(text) == expected
    assert model(text) == expected


# -- the reference sender ------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    ["015112345678", "4915112345678", "+0151123456", "+49 151 12345678", "+123456", "+1" + "2" * 15,
     "+49151123456x", "", "+4915112345678\n"],
)  # fmt: skip
def test_the_memory_sender_takes_only_e164_numbers(number: str) -> None:
    sender = MemorySmsSender()
    with pytest.raises(InvalidField) as refused:
        sender.send_sms(number, "hello", key="k1")
    assert refused.value.field == "to"
    assert sender.sent == []
    sender.send_sms(PHONE, "hello", key="k1")  # the key was not used up by the refusal
    assert len(sender.sent) == 1


def test_the_memory_sender_refuses_an_empty_text() -> None:
    sender = MemorySmsSender()
    with pytest.raises(InvalidField):
        sender.send_sms(PHONE, "", key="k1")
    assert sender.sent == []


def test_the_memory_sender_sends_each_key_once() -> None:
    sender = MemorySmsSender()
    sender.send_sms(PHONE, "first", key="a")
    sender.send_sms(PHONE, "first again", key="a")
    sender.send_sms(PHONE, "first", key="b")
    sender.send_sms("+447700900123", "other", key="c")

    assert [(s.text, s.key) for s in sender.sent] == [
        ("first", "a"),
        ("first", "b"),
        ("other", "c"),
    ]
    assert [s.key for s in sender.to(PHONE)] == ["a", "b"]
    assert sender.sent[0].segments == sms_segments("first")


def test_an_unavailable_provider_raises_and_a_retry_sends_once() -> None:
    sender = MemorySmsSender()
    sender.available = False
    with pytest.raises(NotificationError):
        sender.send_sms(PHONE, "hello", key="k")
    assert sender.sent == []
    sender.available = True
    sender.send_sms(PHONE, "hello", key="k")
    sender.send_sms(PHONE, "hello", key="k")
    assert len(sender.sent) == 1


def test_the_memory_sender_refuses_more_segments_than_it_takes() -> None:
    sender = MemorySmsSender(max_segments=2)
    sender.send_sms(PHONE, "a" * 306, key="two")
    with pytest.raises(SmsTooLong):
        sender.send_sms(PHONE, "a" * 307, key="three")
    with pytest.raises(NotificationError):  # SmsTooLong is a NotificationError
        sender.send_sms(PHONE, "й" * 135, key="three-ucs")
    assert [s.key for s in sender.sent] == ["two"]


# -- opt-outs ------------------------------------------------------------------------------


def test_opt_outs_compare_normalized_addresses_per_channel() -> None:
    out = MemoryOptOuts()
    out.opt_out(ContactChannel.SMS, " +49 (151) 123-456.78 ")
    out.opt_out(ContactChannel.EMAIL, "  Ada@Example.COM ")

    assert out.is_opted_out(ContactChannel.SMS, PHONE)
    assert out.is_opted_out(ContactChannel.SMS, "+49-151-12345678")
    assert out.is_opted_out(ContactChannel.EMAIL, EMAIL)
    assert out.is_opted_out("email", "ADA@EXAMPLE.COM")  # type: ignore[arg-type]
    assert not out.is_opted_out(ContactChannel.EMAIL, PHONE)
    assert not out.is_opted_out(ContactChannel.SMS, EMAIL)
    assert not out.is_opted_out(ContactChannel.SMS, "+4915112345679")
    # e-mail addresses keep their inner characters
    assert not out.is_opted_out(ContactChannel.EMAIL, "ada(work)@example.com")

    out.opt_in(ContactChannel.SMS, "+4915112345678")
    out.opt_in(ContactChannel.SMS, "+4915112345678")  # idempotent
    out.opt_out(ContactChannel.EMAIL, EMAIL)  # idempotent
    assert not out.is_opted_out(ContactChannel.SMS, " +49 (151) 123-456.78 ")
    assert out.is_opted_out(ContactChannel.EMAIL, EMAIL)
    out.opt_in(ContactChannel.EMAIL, " ada@EXAMPLE.com")
    assert not out.is_opted_out(ContactChannel.EMAIL, EMAIL)


# -- SmsNotifier ---------------------------------------------------------------------------


def placed(*, sms: bool = True, locale: str | None = None) -> Order:
    order = Order.place(
        order_id="order-77",
        customer=Customer(
            "cust-1",
            NAME,
            EMAIL,
            phone=PHONE,
            preferred_contact=ContactChannel.SMS if sms else ContactChannel.EMAIL,
            locale=locale,
        ),
        shipping_address=Address(NAME, "1 Main St", "Berlin", "10115", "DE"),
        channel=SalesChannel.WEB,
        currency="EUR",
        lines=[LineItem("L1", "SKU-1", "Vase", 1, Money("1229.60", "EUR"))],
        shipping_charge=Money("4.90", "EUR"),
        payment_token="tok_test",
        placed_at=T0,
    )
    order.acknowledge(date(2026, 1, 9), T0)
    return order


def test_an_sms_customer_gets_the_rendered_text_with_the_notifications_key() -> None:
    sender = MemorySmsSender()
    notice = order_confirmation(placed(locale="de-DE"), "Shop")
    assert notice.channel is ContactChannel.SMS

    SmsNotifier(sender).send(notice)

    (sms,) = sender.sent
    assert (sms.to, sms.key) == (PHONE, notice.key)
    assert sms.key == "order_confirmation:order-77"
    assert sms.text == "Shop: order order-77 confirmed, 1.234,50 €. Expected delivery 09.01.2026."
    assert sms.segments == sms_segments(sms.text)


def test_an_opted_out_customer_gets_the_email_fallback_and_never_a_text() -> None:
    sender, opt_outs, fallback = MemorySmsSender(), MemoryOptOuts(), MemoryNotifier()
    opt_outs.opt_out(ContactChannel.SMS, "+49 151 12345678")
    notifier = SmsNotifier(sender, opt_outs=opt_outs, fallback=fallback)
    notice = order_confirmation(placed(), "Shop")

    notifier.send(notice)
    notifier.send(notice)

    assert sender.sent == []
    assert len(fallback.sent) == 2  # de-duplicating e-mail is the fallback's job (Message-ID)
    mail = fallback.sent[0]
    assert (mail.channel, mail.recipient, mail.key) == (ContactChannel.EMAIL, EMAIL, notice.key)
    assert mail.kind == "order_confirmation"
    assert mail.order_id == "order-77"
    # what the fallback renders is an e-mail greeting the customer
    rendered = MessageTemplates().render(mail)
    assert rendered.html is not None
    assert rendered.text.startswith(f"Dear {NAME},")


def test_an_opted_out_customer_without_a_fallback_hears_nothing() -> None:
    sender, opt_outs = MemorySmsSender(), MemoryOptOuts()
    opt_outs.opt_out(ContactChannel.SMS, PHONE)

    SmsNotifier(sender, opt_outs=opt_outs).send(order_confirmation(placed(), "Shop"))

    assert sender.sent == []


def test_an_opt_in_texts_again() -> None:
    sender, opt_outs, fallback = MemorySmsSender(), MemoryOptOuts(), MemoryNotifier()
    opt_outs.opt_out(ContactChannel.SMS, PHONE)
    opt_outs.opt_in(ContactChannel.SMS, PHONE)
    SmsNotifier(sender, opt_outs=opt_outs, fallback=fallback).send(
        order_confirmation(placed(), "Shop")
    )
    assert len(sender.sent) == 1
    assert fallback.sent == []


def test_an_email_notification_goes_to_the_fallback_or_raises() -> None:
    sender, fallback = MemorySmsSender(), MemoryNotifier()
    notice = order_confirmation(placed(sms=False), "Shop")
    assert notice.channel is ContactChannel.EMAIL

    SmsNotifier(sender, fallback=fallback).send(notice)
    assert fallback.sent == [notice]
    with pytest.raises(NotificationError, match="order-77"):
        SmsNotifier(sender).send(notice)
    assert sender.sent == []


def test_a_text_longer_than_max_segments_raises_sms_too_long_and_sends_nothing() -> None:
    sender = MemorySmsSender()
    long_template = "{{ shop_name }}: " + "{{ order_id }} " * 40  # 6 + 9 * 40 - 1 = 365 septets
    renderer = MessageTemplates(overrides={"order_confirmation.sms.txt": long_template})
    notice = order_confirmation(placed(), "Shop")
    assert sms_segments(renderer.render(notice).text).segments == 3

    SmsNotifier(sender, renderer=renderer, max_segments=3).send(notice)
    assert len(sender.sent) == 1
    with pytest.raises(SmsTooLong, match="order-77"):
        SmsNotifier(MemorySmsSender(), renderer=renderer, max_segments=2).send(notice)
    shouting = MessageTemplates(
        overrides={"order_confirmation.sms.txt": long_template + "{{ total|money }} 😀"}
    )
    too_long = MemorySmsSender()
    with pytest.raises(SmsTooLong):
        SmsNotifier(too_long, renderer=shouting).send(notice)
    assert too_long.sent == []


def test_max_segments_must_be_at_least_one() -> None:
    with pytest.raises(InvalidSettings):
        SmsNotifier(MemorySmsSender(), max_segments=0)


def test_an_unavailable_provider_surfaces_as_notification_error() -> None:
    sender = MemorySmsSender()
    sender.available = False
    notice = order_confirmation(placed(), "Shop")
    with pytest.raises(NotificationError):
        SmsNotifier(sender).send(notice)
    sender.available = True
    SmsNotifier(sender).send(notice)
    assert [s.key for s in sender.sent] == [notice.key]


# -- a shop texting its customer -----------------------------------------------------------

BERLIN = Location("berlin", "Berlin", priority=1)
BOX = Parcel(weight_grams=900, length_mm=300, width_mm=200, height_mm=100)
LONG_SHOP = "Lovelace & Babbage Fine Ceramics, Berlin"  # 40 characters
TRACKING_URL = "https://tracking.example-carrier.com/de/parcel?number="  # 54 + 10 digits


class LongUrlCarrier:
    """The memory carrier, with the longer tracking links real carriers give."""

    def __init__(self, inner: MemoryCarrier) -> None:
        self._inner = inner

    @property
    def name(self) -> str:
        return self._inner.name

    def quote(self, shipment: Shipment) -> Sequence[Rate]:
        return self._inner.quote(shipment)

    def buy_label(self, shipment: Shipment, rate: Rate, *, idempotency_key: str) -> Label:
        label = self._inner.buy_label(shipment, rate, idempotency_key=idempotency_key)
        url = TRACKING_URL + label.tracking_number[-6:]
        return attrs.evolve(label, tracking_url=url)

    def track(self, tracking_number: str) -> Sequence[TrackingEvent]:
        return self._inner.track(tracking_number)

    def cancel_label(self, tracking_number: str) -> None:
        self._inner.cancel_label(tracking_number)


@dataclass
class Rig:
    shop: Shop
    clock: ManualClock


def open_shop(notifier: object, *, dispatch: str = "inline", failed: float = 0.0) -> Rig:
    clock = ManualClock(T0)
    shop = Shop.open(
        "memory://",
        settings=ShopSettings(
            gateway_retry_delay=timedelta(0), shop_name=LONG_SHOP, dispatch=dispatch
        ),
        clock=clock,
        ids=SequentialIds(),
        gateway=MemoryGateway(seed=3, clock=clock),
        carriers=[LongUrlCarrier(MemoryCarrier(clock=clock, seed=5, failed_delivery_rate=failed))],
        notifier=notifier,  # type: ignore[arg-type]
    )
    shop.inventory.add_location(BERLIN)
    for sku in ("MUG-01", "TEA-GR", "MUG-04"):
        shop.inventory.receive(sku, location="berlin", quantity=10)
    return Rig(shop, clock)


def command(customer: Customer) -> PlaceOrder:
    return PlaceOrder(
        customer=customer,
        shipping_address=Address(NAME, "12 Analytical Row", "London", "N1 9GU", "GB"),
        lines=[
            LineItem("L1", "MUG-01", "Stoneware mug", 3, Money("412.50", "EUR")),
            LineItem("L2", "TEA-GR", "Green tea", 1, Money("8.90", "EUR")),
        ],
        payment_token="tok_visa",
        shipping_charge=Money("4.90", "EUR"),
    )


SMS_CUSTOMER = Customer(
    "cust-ada", NAME, EMAIL, phone=PHONE, preferred_contact=ContactChannel.SMS, locale="de-DE"
)


def ship(shop: Shop, order_id: str) -> None:
    for shipment in shop.fulfilment.start(order_id):
        shop.fulfilment.pick(shipment.id)
        shop.fulfilment.pack(shipment.id, [BOX])
        shop.shipping.buy_label(shipment.id)
        shop.shipping.hand_over(shipment.id)


def deliver(rig: Rig, order_id: str) -> None:
    for _ in range(4 * 14):
        if rig.shop.orders.get(order_id).state == "delivered":
            return
        rig.clock.advance(timedelta(hours=6))
        rig.shop.shipping.poll()
        rig.shop.events.run_pending()
    raise AssertionError(f"order {order_id} was never delivered")


@pytest.mark.parametrize("dispatch", ["inline", "worker"])
def test_a_shop_texts_an_sms_customer_each_message_once(dispatch: str) -> None:
    sender, fallback = MemorySmsSender(), MemoryNotifier()
    notifier = SmsNotifier(sender, fallback=fallback, renderer=MessageTemplates())
    rig = open_shop(notifier, dispatch=dispatch)
    shop = rig.shop
    try:
        order = shop.orders.place(command(SMS_CUSTOMER))
        for _ in range(3):
            shop.events.run_pending()
        shop.orders.acknowledge(order.id)
        for _ in range(3):
            shop.events.run_pending()
        ship(shop, order.id)
        for _ in range(3):
            shop.events.run_pending()

        texts = sender.to(PHONE)
        assert [s.key.split(":")[0] for s in texts] == ["order_confirmation", "shipped"]
        confirmation, shipped = texts
        assert confirmation.key == f"order_confirmation:{order.id}"
        assert order.id in confirmation.text
        assert "1.251,30 €" in confirmation.text  # plain space: GSM-7, one segment
        assert confirmation.segments.encoding == "GSM-7"
        (shipment,) = shop.fulfilment.shipments(order.id)
        assert shipment.label is not None
        assert shipment.label.tracking_url is not None
        assert shipment.label.tracking_url in shipped.text
        assert shipped.key.startswith(f"shipped:{shipment.id}:")
        assert fallback.sent == []

        # the same notification sent again (a retry after a crash) texts nothing new
        notifier.send(order_confirmation(shop.orders.get(order.id), LONG_SHOP))
        shop.events.run_pending()
        assert [s.key for s in sender.sent] == [confirmation.key, shipped.key]
        assert all(s.segments.segments <= 3 for s in sender.sent)
    finally:
        shop.close()


def test_a_shop_emails_an_sms_customer_who_opted_out() -> None:
    sender, fallback, opt_outs = MemorySmsSender(), MemoryNotifier(), MemoryOptOuts()
    opt_outs.opt_out(ContactChannel.SMS, PHONE)
    rig = open_shop(SmsNotifier(sender, fallback=fallback, opt_outs=opt_outs))
    try:
        order = rig.shop.orders.place(command(SMS_CUSTOMER))
        rig.shop.orders.acknowledge(order.id)
        ship(rig.shop, order.id)
        assert sender.sent == []
        assert [(n.kind, n.channel, n.recipient) for n in fallback.sent] == [
            ("order_confirmation", ContactChannel.EMAIL, EMAIL),
            ("shipped", ContactChannel.EMAIL, EMAIL),
        ]
    finally:
        rig.shop.close()


# -- every built-in SMS template fits in three segments -----------------------------------


@pytest.fixture(scope="module")
def every_kind() -> Iterator[dict[str, Notification]]:
    """The first notification of every built-in kind from a shop run for an SMS customer
    (a 40-character shop name, 64-character tracking links, a failed first delivery)."""
    notifier = MemoryNotifier()
    rig = open_shop(notifier, failed=1.0)
    shop = rig.shop
    order = shop.orders.place(command(SMS_CUSTOMER))
    shop.orders.acknowledge(order.id)
    ship(shop, order.id)
    deliver(rig, order.id)
    refund = shop.returns.request(order.id, [ReturnLine("L1", 1, "damaged")])
    shop.returns.approve(refund.id)  # the default instructions
    shop.returns.receive(refund.id)
    shop.returns.inspect(refund.id)
    shop.returns.refund(refund.id)
    rejected = shop.returns.request(order.id, [ReturnLine("L2", 1, "changed_mind")])
    shop.returns.reject(
        rejected.id, "Opened food cannot be returned for hygiene reasons, sorry about that."
    )
    swap = shop.returns.request(order.id, [ReturnLine("L1", 2, "size_or_fit")])
    shop.returns.approve(swap.id)
    shop.returns.receive(swap.id)
    shop.returns.inspect(swap.id)
    exchanged = shop.returns.exchange(
        swap.id, [Replacement("L1", "MUG-04", "Small mug", Money("9.00", "EUR"))]
    )
    assert exchanged.exchange_order_id is not None
    ship(shop, exchanged.exchange_order_id)
    deliver(rig, exchanged.exchange_order_id)
    cancelled = shop.orders.place(command(SMS_CUSTOMER))
    shop.orders.cancel(cancelled.id, "changed my mind")
    inquiry = shop.inquiries.open(order.id, "Dishwasher safe?", "Can the mug go in there?")
    shop.inquiries.answer(
        inquiry.id,
        "Sam",
        "Yes, the glaze is dishwasher safe up to 60 degrees; please skip the microwave.",
    )
    first: dict[str, Notification] = {}
    for notice in notifier.sent:
        first.setdefault(notice.kind, notice)
    yield first
    shop.close()


KINDS = [
    "order_confirmation",
    "shipped",
    "out_for_delivery",
    "delivery_exception",
    "delivered",
    "exchange_shipped",
    "order_cancelled",
    "return_approved",
    "return_rejected",
    "refund_issued",
    "inquiry_answered",
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("tag", ["en", "de-DE", "fr-FR", "ja-JP"])
def test_every_built_in_sms_fits_in_three_segments(
    every_kind: dict[str, Notification], kind: str, tag: str
) -> None:
    notice = attrs.evolve(every_kind[kind], locale=tag)
    assert notice.channel is ContactChannel.SMS
    assert notice.facts["shop_name"] == LONG_SHOP
    if notice.facts.get("tracking_number"):
        assert len(str(notice.facts["tracking_url"])) >= 60

    text = MessageTemplates().render(notice, ContactChannel.SMS).text

    assert text.startswith(LONG_SHOP)
    assert sms_segments(text).segments <= 3, (sms_segments(text), text)
    sender = MemorySmsSender()
    SmsNotifier(sender).send(notice)  # the notifier's own limit: 3
    assert [s.text for s in sender.sent] == [text]


# -- after review: equal events, over-long texts, opt-outs on the fallback ----------------------


def test_two_equal_delivery_failures_at_one_instant_are_two_texts() -> None:
    sender = MemorySmsSender()
    rig = open_shop(SmsNotifier(sender, fallback=MemoryNotifier(), renderer=MessageTemplates()))
    shop = rig.shop
    order = shop.orders.place(command(SMS_CUSTOMER))
    shop.orders.acknowledge(order.id)
    ship(shop, order.id)
    shop.events.run_pending()
    with shop.store() as uow:
        tracking = uow.shipments.for_order(order.id)[0].tracking_number
    assert tracking is not None
    # two delivery attempts scanned while the shop's clock reads one instant: the events of
    # each attempt are equal field by field, the messages are not the same message
    scans = [
        ("s1", "out_for_delivery", 1, None),
        ("s2", "delivery_failed", 2, "nobody home"),
        ("s3", "out_for_delivery", 25, None),
        ("s4", "delivery_failed", 26, "nobody home"),
    ]
    for scan_id, status, hours, note in scans:
        shop.shipping.apply_tracking_event(
            TrackingEvent(scan_id, tracking, status, T0 + timedelta(hours=hours), description=note)
        )
    shop.events.run_pending()
    kinds = [sms.key.split(":")[0] for sms in sender.sent]
    assert kinds.count("out_for_delivery") == 2
    assert kinds.count("delivery_exception") == 2
    assert len({sms.key for sms in sender.sent}) == len(sender.sent)


def test_an_answer_too_long_for_sms_goes_by_email_instead_of_a_dead_letter() -> None:
    sender, fallback = MemorySmsSender(), MemoryNotifier()
    rig = open_shop(SmsNotifier(sender, fallback=fallback, renderer=MessageTemplates()))
    shop = rig.shop
    order = shop.orders.place(command(SMS_CUSTOMER))
    shop.orders.acknowledge(order.id)
    inquiry = shop.inquiries.open(order.id, "Glaze?", "Is the glaze dishwasher safe?")
    answer = "Yes — up to 60 °C; lid separately, strainer by hand. " * 5  # UCS-2, 5+ segments
    shop.inquiries.answer(inquiry.id, "Sam", answer)
    shop.events.run_pending()
    assert shop.events.dead_letters() == []
    [mail] = [n for n in fallback.sent if n.kind == "inquiry_answered"]
    assert mail.channel is ContactChannel.EMAIL
    assert mail.recipient == SMS_CUSTOMER.email
    assert answer.strip() in mail.body
    assert all(not sms.key.startswith("inquiry_answered") for sms in sender.sent)


def test_a_customer_opted_out_of_email_gets_no_fallback_email() -> None:
    fallback = MemoryNotifier()
    opt_outs = MemoryOptOuts()
    notifier = SmsNotifier(
        MemorySmsSender(), opt_outs=opt_outs, fallback=fallback, renderer=PlainRenderer()
    )
    by_mail = Notification(
        order_id="o1",
        kind="shipped",
        channel=ContactChannel.EMAIL,
        recipient="ada@example.com",
        subject="s",
        body="b",
        key="k1",
        email="ada@example.com",
    )
    by_sms = attrs.evolve(by_mail, channel=ContactChannel.SMS, recipient="+4915112345678", key="k2")
    opt_outs.opt_out(ContactChannel.EMAIL, " ADA@example.com")
    notifier.send(by_mail)
    assert fallback.sent == []
    opt_outs.opt_out(ContactChannel.SMS, "+49 151 12345678")
    notifier.send(by_sms)
    assert fallback.sent == []  # neither texted nor e-mailed
    opt_outs.opt_in(ContactChannel.EMAIL, "ada@example.com")
    notifier.send(by_sms)
    assert [n.recipient for n in fallback.sent] == ["ada@example.com"]
