"""Customer inquiries and the order's history, end to end through ``orderkit.Shop``:
questions and complaints (open -> answered -> open again on the customer's reply ->
resolved), the answer sent to the customer, bad input, the case file an agent reads
(``shop.inquiries.case``), and ``shop.orders.history`` in commit order, on the memory
store and on a SQLite file (and after reopening that file).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from orderkit import (
    INQUIRY_KINDS,
    Address,
    Customer,
    HistoryEntry,
    Inquiry,
    InquiryNotFound,
    InquiryState,
    InvalidField,
    InvalidInput,
    InvalidTransition,
    LineItem,
    Location,
    Money,
    Notification,
    Order,
    OrderNotFound,
    OrderState,
    Parcel,
    PlaceOrder,
    ReturnLine,
    Shop,
    ShopSettings,
    ValueTooLong,
)
from orderkit.adapters.memory import ManualClock, MemoryNotifier, SequentialIds
from orderkit.adapters.memory_carrier import MemoryCarrier
from orderkit.adapters.memory_gateway import MemoryGateway

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)  # a Monday
STORES = ["memory", "sqlite"]
EUR = "EUR"
EMAIL = "ada@example.com"
BOX = Parcel(weight_grams=900, length_mm=300, width_mm=200, height_mm=100)


def command(customer_id: str = "cust-ada", email: str = EMAIL) -> PlaceOrder:
    return PlaceOrder(
        customer=Customer(customer_id, "Ada Lovelace", email),
        shipping_address=Address("Ada Lovelace", "12 Analytical Row", "London", "N1 9GU", "GB"),
        lines=[
            LineItem("L1", "MUG-01", "Stoneware mug", 2, Money("12.50", EUR)),
            LineItem("L2", "TEA-GR", "Green tea", 1, Money("8.90", EUR)),
        ],
        payment_token="tok_visa",
        shipping_charge=Money("4.90", EUR),
    )


# -- the rig ---------------------------------------------------------------------------------


@dataclass
class Rig:
    shop: Shop
    clock: ManualClock
    gateway: MemoryGateway
    notifier: MemoryNotifier
    url: str
    ids: SequentialIds


class Rigs:
    """Opens shops on fresh stores (memory, or a new SQLite file each) and closes them all."""

    def __init__(self, tmp_path: Path) -> None:
        self._tmp_path = tmp_path
        self._count = 0
        self._opened: list[Shop] = []

    def open(self, store: str, **shop_settings: Any) -> Rig:
        self._count += 1
        url = "memory://" if store == "memory" else str(self._tmp_path / f"inq-{self._count}.db")
        clock = ManualClock(T0)
        gateway = MemoryGateway(seed=3, clock=clock)
        notifier = MemoryNotifier()
        ids = SequentialIds()
        shop = self._shop(url, clock, gateway, notifier, ids, **shop_settings)
        shop.inventory.add_location(Location("berlin", "Berlin", priority=1))
        for sku in ("MUG-01", "TEA-GR"):
            shop.inventory.receive(sku, location="berlin", quantity=10)
        return Rig(shop, clock, gateway, notifier, url, ids)

    def reopen(self, rig: Rig) -> Rig:
        """Close the rig's shop and open its (SQLite) store again, with the same outside
        things and a fresh notifier."""
        rig.shop.close()
        notifier = MemoryNotifier()
        shop = self._shop(rig.url, rig.clock, rig.gateway, notifier, rig.ids)
        return Rig(shop, rig.clock, rig.gateway, notifier, rig.url, rig.ids)

    def _shop(
        self,
        url: str,
        clock: ManualClock,
        gateway: MemoryGateway,
        notifier: MemoryNotifier,
        ids: SequentialIds,
        **shop_settings: Any,
    ) -> Shop:
        shop = Shop.open(
            url,
            settings=ShopSettings(gateway_retry_delay=timedelta(0), **shop_settings),
            clock=clock,
            ids=ids,
            gateway=gateway,
            carriers=[MemoryCarrier(clock=clock, seed=5, ids_seed=self._count)],
            notifier=notifier,
        )
        self._opened.append(shop)
        return shop

    def close_all(self) -> None:
        for shop in self._opened:
            shop.close()


@pytest.fixture
def rigs(tmp_path: Path) -> Iterator[Rigs]:
    opened = Rigs(tmp_path)
    yield opened
    opened.close_all()


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- helpers ---------------------------------------------------------------------------------


def delivered(rig: Rig, cmd: PlaceOrder | None = None) -> Order:
    """Place, acknowledge, ship and deliver an order; assert that it arrived."""
    shop = rig.shop
    order = shop.orders.place(cmd or command())
    shop.orders.acknowledge(order.id)
    for shipment in shop.fulfilment.start(order.id):
        shop.fulfilment.pick(shipment.id)
        shop.fulfilment.pack(shipment.id, [BOX])
        shop.shipping.buy_label(shipment.id)
        shop.shipping.hand_over(shipment.id)
    for _ in range(4 * 14):
        if shop.orders.get(order.id).state == OrderState.DELIVERED.value:
            break
        rig.clock.advance(timedelta(hours=6))
        shop.shipping.poll()
    order = shop.orders.get(order.id)
    assert order.state == OrderState.DELIVERED.value
    assert all(s.state == "delivered" for s in shop.fulfilment.shipments(order.id))
    return order


def answers(rig: Rig, order_id: str) -> list[Notification]:
    return [n for n in rig.notifier.for_order(order_id) if n.kind == "inquiry_answered"]


def inquiry_view(inquiry: Inquiry) -> tuple[Any, ...]:
    """What an inquiry is, by value (an Inquiry compares by identity)."""
    return (
        inquiry.id,
        inquiry.state,
        inquiry.kind,
        inquiry.subject,
        inquiry.messages,
        inquiry.resolution,
        inquiry.version,
    )


def assert_commit_order(history: tuple[HistoryEntry, ...]) -> None:
    seqs = [entry.seq for entry in history]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    times = [entry.at for entry in history]
    assert times == sorted(times)
    for entry in history:
        assert entry.kind == type(entry.event).__name__
        assert entry.at == entry.event.occurred_at
        assert entry.summary.strip()


# -- the inquiry's lifecycle -----------------------------------------------------------------


def test_a_question_is_answered_asked_again_answered_and_resolved(rigs: Rigs, store: str) -> None:
    rig = rigs.open(store)
    shop = rig.shop
    order = delivered(rig)
    sent = len(rig.notifier.sent)

    inquiry = shop.inquiries.open(order.id, "Dishwasher safe?", "Can the mug go in the dishwasher?")

    assert inquiry.state == InquiryState.OPEN.value
    assert (inquiry.kind, inquiry.order_id, inquiry.customer_id) == (
        "question",
        order.id,
        "cust-ada",
    )
    (first,) = inquiry.messages
    assert first.from_customer
    assert first.text == "Can the mug go in the dishwasher?"
    assert len(rig.notifier.sent) == sent  # the shop answers; opening sends nothing
    assert [i.id for i in shop.inquiries.list(state="open")] == [inquiry.id]

    rig.clock.advance(timedelta(hours=1))
    answered = shop.inquiries.answer(inquiry.id, "Sam", "Yes, up to 60 degrees.")

    assert answered.state == InquiryState.ANSWERED.value
    assert answered.last_message.author == "Sam"
    assert not answered.last_message.from_customer
    (notice,) = answers(rig, order.id)
    assert notice.recipient == EMAIL
    assert notice.channel.value == "email"
    assert "Yes, up to 60 degrees." in notice.body
    assert "Dishwasher safe?" in notice.subject
    assert order.id in notice.body
    assert shop.inquiries.list(state="open") == []

    rig.clock.advance(timedelta(hours=1))
    reopened = shop.inquiries.reply(inquiry.id, "And in the microwave?")

    assert reopened.state == InquiryState.OPEN.value
    assert reopened.last_message.from_customer
    assert [i.id for i in shop.inquiries.list(state="open")] == [inquiry.id]
    assert len(answers(rig, order.id)) == 1  # the customer's own reply is not sent to them

    rig.clock.advance(timedelta(hours=1))
    shop.inquiries.answer(inquiry.id, "Kim", "Yes, it has no metal rim.")

    first_notice, second_notice = answers(rig, order.id)
    assert first_notice == notice
    assert "Yes, it has no metal rim." in second_notice.body
    assert "Yes, up to 60 degrees." not in second_notice.body
    assert second_notice.recipient == EMAIL

    resolved = shop.inquiries.resolve(inquiry.id, "answered both questions")

    assert resolved.state == InquiryState.RESOLVED.value
    assert resolved.resolution == "answered both questions"
    assert [(m.author, m.text) for m in shop.inquiries.get(inquiry.id).messages] == [
        ("customer", "Can the mug go in the dishwasher?"),
        ("Sam", "Yes, up to 60 degrees."),
        ("customer", "And in the microwave?"),
        ("Kim", "Yes, it has no metal rim."),
    ]
    assert [i.id for i in shop.inquiries.list(state="resolved")] == [inquiry.id]
    kinds = [e.kind for e in shop.orders.history(order.id)]
    assert kinds[-5:] == [
        "InquiryOpened",
        "InquiryAnswered",
        "InquiryCustomerReplied",
        "InquiryAnswered",
        "InquiryResolved",
    ]
    assert len(answers(rig, order.id)) == 2


def test_a_resolved_inquiry_takes_no_more_answers_replies_or_resolutions(
    rigs: Rigs, store: str
) -> None:
    rig = rigs.open(store)
    shop = rig.shop
    order = shop.orders.place(command())
    inquiry = shop.inquiries.open(order.id, "Gift wrap", "Can you wrap it?")
    shop.inquiries.resolve(inquiry.id, "the customer called; done by phone")
    before = inquiry_view(shop.inquiries.get(inquiry.id))
    history = shop.orders.history(order.id)
    sent = len(rig.notifier.sent)

    with pytest.raises(InvalidTransition) as caught:
        shop.inquiries.answer(inquiry.id, "Sam", "Yes we can.")
    assert (caught.value.aggregate, caught.value.state, caught.value.trigger) == (
        "inquiry",
        "resolved",
        "answer",
    )
    assert inquiry.id in str(caught.value)
    with pytest.raises(InvalidTransition):
        shop.inquiries.reply(inquiry.id, "Hello?")
    with pytest.raises(InvalidTransition):
        shop.inquiries.resolve(inquiry.id, "again")

    assert inquiry_view(shop.inquiries.get(inquiry.id)) == before
    assert shop.orders.history(order.id) == history
    assert len(rig.notifier.sent) == sent


def test_a_complaint_is_an_inquiry_of_its_own_kind(rigs: Rigs, store: str) -> None:
    rig = rigs.open(store)
    shop = rig.shop
    order = delivered(rig)

    complaint = shop.inquiries.open(
        order.id, "Chipped mug", "One mug arrived chipped.", kind="complaint"
    )
    rig.clock.advance(timedelta(minutes=1))  # "oldest first": ties are ordered by id
    question = shop.inquiries.open(order.id, "Refill?", "Do you sell refills of the tea?")

    assert shop.inquiries.get(complaint.id).kind == "complaint"
    assert [i.id for i in shop.inquiries.for_order(order.id)] == [complaint.id, question.id]
    (entry,) = [e for e in shop.orders.history(order.id) if e.kind == "InquiryOpened"][:1]
    assert entry.summary == f"Customer complaint {complaint.id}: Chipped mug"
    shop.inquiries.answer(complaint.id, "Sam", "Sorry! A new mug is on its way.")
    (notice,) = answers(rig, order.id)
    assert "Sorry! A new mug is on its way." in notice.body
    assert "Chipped mug" in notice.subject
    assert set(INQUIRY_KINDS) == {"question", "complaint"}


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "message", "kind", "error", "field"),
    [
        ("Hello", "Where is it?", "praise", InvalidField, "kind"),
        ("Hello", "Where is it?", "Question", InvalidField, "kind"),
        ("", "Where is it?", "question", InvalidInput, "subject"),
        ("   ", "Where is it?", "question", InvalidInput, "subject"),
        ("Hello", "", "question", InvalidInput, "message"),
        ("Hello", " \n\t ", "question", InvalidInput, "message"),
        ("Hello", None, "question", InvalidInput, "message"),
        ("x" * 100_000, "Where is it?", "question", ValueTooLong, "subject"),
        ("Hello", "x" * 1_000_000, "question", ValueTooLong, "message"),
    ],
    ids=[
        "unknown-kind",
        "kind-case",
        "empty-subject",
        "blank-subject",
        "empty-message",
        "blank-message",
        "no-message",
        "huge-subject",
        "huge-message",
    ],
)
def test_a_bad_inquiry_is_refused_with_the_field_named_and_nothing_stored(
    rigs: Rigs,
    store: str,
    subject: str,
    message: Any,
    kind: str,
    error: type[InvalidInput],
    field: str,
) -> None:
    rig = rigs.open(store)
    order = rig.shop.orders.place(command())
    history = rig.shop.orders.history(order.id)

    with pytest.raises(error) as caught:
        rig.shop.inquiries.open(order.id, subject, message, kind=kind)

    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert rig.shop.inquiries.for_order(order.id) == []
    assert rig.shop.inquiries.list() == []
    assert rig.shop.orders.history(order.id) == history


def test_an_inquiry_about_an_unknown_order_is_refused_and_stores_nothing(
    rigs: Rigs, store: str
) -> None:
    rig = rigs.open(store)

    with pytest.raises(OrderNotFound, match="order-nope"):
        rig.shop.inquiries.open("order-nope", "Where is it?", "It did not come.")

    assert rig.shop.inquiries.list() == []
    assert rig.shop.inquiries.for_order("order-nope") == []
    assert rig.shop.store.outbox.pending() == 0


@pytest.mark.parametrize(
    ("author", "message", "field"),
    [
        ("", "Yes.", "author"),
        ("Sam", "", "message"),
        ("Sam", "   ", "message"),
        ("customer", "Yes.", "author"),
    ],
    ids=["no-author", "empty-answer", "blank-answer", "customer-as-author"],
)
def test_a_bad_answer_is_refused_and_changes_nothing(
    rigs: Rigs, store: str, author: str, message: str, field: str
) -> None:
    rig = rigs.open(store)
    order = rig.shop.orders.place(command())
    inquiry = rig.shop.inquiries.open(order.id, "Gift wrap", "Can you wrap it?")
    before = inquiry_view(inquiry)
    sent = len(rig.notifier.sent)

    with pytest.raises(InvalidField) as caught:
        rig.shop.inquiries.answer(inquiry.id, author, message)

    assert caught.value.field == field
    assert inquiry_view(rig.shop.inquiries.get(inquiry.id)) == before
    assert len(rig.notifier.sent) == sent


def test_blank_replies_and_resolutions_are_refused(rigs: Rigs, store: str) -> None:
    rig = rigs.open(store)
    order = rig.shop.orders.place(command())
    inquiry = rig.shop.inquiries.open(order.id, "Gift wrap", "Can you wrap it?")
    before = inquiry_view(inquiry)

    with pytest.raises(InvalidInput, match="message"):
        rig.shop.inquiries.reply(inquiry.id, " ")
    with pytest.raises(InvalidInput, match="resolution"):
        rig.shop.inquiries.resolve(inquiry.id, "")

    assert inquiry_view(rig.shop.inquiries.get(inquiry.id)) == before


def test_unknown_inquiries_are_named_as_such(rigs: Rigs, store: str) -> None:
    rig = rigs.open(store)
    for step in (
        lambda: rig.shop.inquiries.get("inquiry_nope"),
        lambda: rig.shop.inquiries.answer("inquiry_nope", "Sam", "Yes."),
        lambda: rig.shop.inquiries.reply("inquiry_nope", "Hello?"),
        lambda: rig.shop.inquiries.resolve("inquiry_nope", "done"),
        lambda: rig.shop.inquiries.case("inquiry_nope"),
    ):
        with pytest.raises(InquiryNotFound):
            step()


# -- the case file and the order's history ---------------------------------------------------


def test_the_case_file_holds_the_order_its_parcels_payments_returns_and_history(
    rigs: Rigs, store: str
) -> None:
    rig = rigs.open(store)
    shop = rig.shop
    order = delivered(rig)
    other = shop.orders.place(command("cust-bob", "bob@example.com"))  # not in the case
    request = shop.returns.request(order.id, [ReturnLine("L1", 1, "damaged")])
    shop.returns.approve(request.id)
    rig.clock.advance(timedelta(days=1))
    inquiry = shop.inquiries.open(order.id, "My return", "Did you get the mug?", kind="complaint")
    shop.inquiries.open(other.id, "Other", "Not this one")
    shop.inquiries.answer(inquiry.id, "Sam", "Not yet; we will write when it arrives.")

    case = shop.inquiries.case(inquiry.id)

    assert case.inquiry.id == inquiry.id
    assert case.inquiry.state == InquiryState.ANSWERED.value
    assert len(case.inquiry.messages) == 2
    assert case.order.id == order.id
    assert case.order.state == OrderState.DELIVERED.value
    shipments = shop.fulfilment.shipments(order.id)
    assert [s.id for s in case.shipments] == [s.id for s in shipments]
    assert [s.state for s in case.shipments] == ["delivered"] * len(shipments)
    assert [p.id for p in case.payments] == [p.id for p in shop.payments.for_order(order.id)]
    assert case.payments[0].captured == order.totals.total
    assert [(r.id, r.state) for r in case.returns] == [(request.id, "approved")]
    # where each line stands: L1's unit is on its way back, not yet received
    assert [
        (p.line_id, p.ordered, p.shipped, p.delivered, p.returning, p.returned) for p in case.lines
    ] == [("L1", 2, 2, 2, 1, 0), ("L2", 1, 1, 1, 0, 0)]
    assert case.history == shop.orders.history(order.id)

    history = case.history
    assert_commit_order(history)
    assert {e.event.order_id for e in history} == {order.id}  # type: ignore[attr-defined]
    kinds = [e.kind for e in history]
    assert kinds[0] == "OrderPlaced"
    for kind in (
        "PaymentAuthorized",
        "OrderAcknowledged",
        "ShipmentCreated",
        "ShipmentLabelled",
        "ShipmentHandedOver",
        "PaymentCaptured",
        "ShipmentDelivered",
        "OrderDelivered",
        "ReturnRequested",
        "ReturnApproved",
        "InquiryOpened",
        "InquiryAnswered",
    ):
        assert kind in kinds, kind
    # commit order is the order things happened in
    assert (
        kinds.index("OrderPlaced")
        < kinds.index("ShipmentHandedOver")
        < kinds.index("ShipmentDelivered")
        < kinds.index("ReturnRequested")
        < kinds.index("ReturnApproved")
        < kinds.index("InquiryOpened")
        < kinds.index("InquiryAnswered")
    )
    assert kinds[-2:] == ["InquiryOpened", "InquiryAnswered"]
    opened = history[kinds.index("InquiryOpened")]
    assert opened.event.inquiry_id == inquiry.id  # type: ignore[attr-defined]
    assert opened.summary == f"Customer complaint {inquiry.id}: My return"
    labelled = history[kinds.index("ShipmentLabelled")]
    assert shipments[0].tracking_number is not None
    assert shipments[0].tracking_number in labelled.summary
    requested = history[kinds.index("ReturnRequested")]
    assert requested.summary == f"Return {request.id} requested: 1 x L1 (damaged)"
    assert history[kinds.index("InquiryAnswered")].summary.endswith("answered by Sam")
    # the other order's inquiry is in its own history only
    assert [e.kind for e in shop.orders.history(other.id)][-1] == "InquiryOpened"


def test_history_of_an_unknown_order_is_refused(rigs: Rigs, store: str) -> None:
    rig = rigs.open(store)
    rig.shop.orders.place(command())

    with pytest.raises(OrderNotFound, match="order_nope"):
        rig.shop.orders.history("order_nope")
    with pytest.raises(InvalidInput):
        rig.shop.orders.history("")


def test_history_and_inquiries_survive_reopening_the_sqlite_file(rigs: Rigs) -> None:
    rig = rigs.open("sqlite")
    order = delivered(rig)
    request = rig.shop.returns.request(order.id, [ReturnLine("L2", 1, "wrong_item", note="black")])
    inquiry = rig.shop.inquiries.open(order.id, "Wrong tea", "I got black tea.", kind="complaint")
    rig.shop.inquiries.answer(inquiry.id, "Sam", "Sorry, please send it back.")
    history = rig.shop.orders.history(order.id)
    case = rig.shop.inquiries.case(inquiry.id)

    again = rigs.reopen(rig)

    assert again.shop.orders.history(order.id) == history
    reread = again.shop.inquiries.get(inquiry.id)
    assert inquiry_view(reread) == inquiry_view(case.inquiry)
    assert again.shop.returns.get(request.id).lines == (
        ReturnLine("L2", 1, "wrong_item", note="black"),
    )
    assert again.shop.inquiries.case(inquiry.id).history == history
    # the story goes on in the reopened shop, after what was there
    again.clock.advance(timedelta(hours=2))
    again.shop.inquiries.reply(inquiry.id, "Sent it today.")
    again.shop.inquiries.resolve(inquiry.id, "return on its way")
    longer = again.shop.orders.history(order.id)
    assert longer[: len(history)] == history
    assert [e.kind for e in longer[len(history) :]] == ["InquiryCustomerReplied", "InquiryResolved"]
    assert_commit_order(longer)
    assert again.shop.inquiries.get(inquiry.id).state == InquiryState.RESOLVED.value


# -- a defect of the first version, fixed since (kept as a regression) -----------------------


def test_each_answer_is_sent_with_its_own_text_when_events_are_sent_later(
    rigs: Rigs, store: str
) -> None:
    # two answers by one author at one instant (a frozen clock, a coarse one), sent later
    rig = rigs.open(store, dispatch="worker")
    shop = rig.shop
    order = shop.orders.place(command())
    inquiry = shop.inquiries.open(order.id, "Gift wrap", "Can you wrap it?")
    shop.inquiries.answer(inquiry.id, "Sam", "Yes, we can.")
    shop.inquiries.answer(inquiry.id, "Sam", "It costs 2 EUR.")

    shop.events.run_pending()

    bodies = [n.body for n in answers(rig, order.id)]
    assert len(bodies) == 2
    assert "Yes, we can." in bodies[0]
    assert "It costs 2 EUR." in bodies[1]
