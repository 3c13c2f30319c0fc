"""The operator's commands, end to end on a temporary SQLite database: through click's
runner and as a real ``python -m orderkit.cli`` process. Orders are placed with the
Python API (as a web shop would); everything after that goes through the command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import orderkit as ok
from orderkit.adapters.memory import MemoryNotifier
from orderkit.adapters.memory_carrier import MemoryCarrier
from orderkit.adapters.memory_gateway import MemoryGateway
from orderkit.adapters.system import SystemClock
from orderkit.cli import main
from orderkit.cli.operations_shipping import manual_delivery_id, parse_parcel

# -- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A fresh shop database with one location holding 10 mugs and 5 tins of tea."""
    store = f"sqlite:///{tmp_path}/shop.db"
    with ok.Shop.open(store) as shop:
        shop.inventory.add_location(ok.Location("berlin", "Berlin warehouse", priority=10))
        shop.inventory.receive("MUG-01", location="berlin", quantity=10)
        shop.inventory.receive("TEA-GR", location="berlin", quantity=5)
    return store


def place(url: str, key: str = "k1", *, gateway: ok.PaymentGateway | None = None) -> str:
    """Place a two-line order (2 mugs, 1 tea; 38.80 EUR with shipping) as a web shop would."""
    with ok.Shop.open(url, gateway=gateway) as shop:
        order = shop.orders.place(
            ok.PlaceOrder(
                customer=ok.Customer("cust-1", "Ada Lovelace", "ada@example.com"),
                shipping_address=ok.Address(
                    "Ada Lovelace", "12 Analytical Row", "London", "N1 9GU", "GB"
                ),
                lines=[
                    ok.LineItem("L1", "MUG-01", "Stoneware mug", 2, ok.Money("12.50", "EUR")),
                    ok.LineItem("L2", "TEA-GR", "Green tea", 1, ok.Money("8.90", "EUR")),
                ],
                payment_token="tok_visa",
                shipping_charge=ok.Money("4.90", "EUR"),
                idempotency_key=key,
            )
        )
        return order.id


def deliver_with_api(url: str, order_id: str, *, gateway: ok.PaymentGateway | None = None) -> None:
    """Take an order to the door with the Python API (for the tests of what comes after)."""
    clock = SystemClock()
    carrier = MemoryCarrier(clock=clock, ids_seed=hash(order_id) & 0xFFFF_FFFF)
    with ok.Shop.open(url, clock=clock, carriers=[carrier], gateway=gateway) as shop:
        shop.orders.acknowledge(order_id)
        for shipment in shop.fulfilment.start(order_id):
            shop.fulfilment.pick(shipment.id)
            shop.fulfilment.pack(shipment.id, [ok.Parcel(1200, 300, 200, 150)])
            labelled = shop.shipping.buy_label(shipment.id)
            shop.shipping.hand_over(shipment.id)
            assert labelled.tracking_number is not None
            shop.shipping.apply_tracking_event(
                ok.TrackingEvent(
                    f"scan-{shipment.id}",
                    labelled.tracking_number,
                    ok.TrackingStatus.DELIVERED,
                    datetime.now(timezone.utc),
                )
            )
        assert shop.orders.get(order_id).state == "delivered"


def cli(url: str | None, *args: str, code: int = 0) -> Result:
    """Run ``orderkit ARGS --db URL`` in this process; check the exit code."""
    result = CliRunner().invoke(main, [*args, *(["--db", url] if url else [])])
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    if code == 0:
        assert result.stderr == ""
    return result


def cli_json(url: str | None, *args: str) -> Any:
    """Run a command with ``--json``: stdout is exactly one JSON document."""
    result = cli(url, *args, "--json")
    return json.loads(result.stdout)


def one_line_error(result: Result | subprocess.CompletedProcess[str], fragment: str) -> None:
    """The error is one readable line on stderr, nothing on stdout, no traceback."""
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


def run_process(
    *args: str, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """``python -m orderkit.cli ARGS`` as a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "orderkit.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env={**os.environ, **env},
        timeout=60,
    )


# -- orders, fulfilment, shipping -----------------------------------------------------------------


def test_an_order_from_hold_to_the_door(url: str, tmp_path: Path) -> None:
    order_id = place(url)
    listed = cli_json(url, "orders", "list")
    assert [o["id"] for o in listed["orders"]] == [order_id]
    assert listed["orders"][0]["state"] == "placed"
    assert listed["orders"][0]["total"] == {"amount": "38.80", "currency": "EUR"}
    assert cli_json(url, "orders", "list", "--state", "shipped")["orders"] == []
    assert cli_json(url, "orders", "list", "--customer", "cust-2")["orders"] == []

    assert "acknowledged" in cli(url, "orders", "acknowledge", order_id).stdout
    held = cli_json(url, "orders", "hold", order_id, "--reason", "manual_review", "--note", "big")
    assert held["order"]["holds"][0]["reason"] == "manual_review"
    assert held["order"]["holds"][0]["note"] == "big"
    blocked = cli(url, "fulfil", order_id, code=1)
    one_line_error(blocked, "blocked")
    cli(url, "orders", "release", order_id, "--reason", "manual_review")

    started = cli_json(url, "fulfil", order_id)
    [shipment] = started["shipments"]
    assert shipment["location"] == "berlin"
    assert [(p["sku"], p["quantity"]) for p in started["pick_list"]] == [
        ("MUG-01", 2),
        ("TEA-GR", 1),
    ]
    assert {p["shipment_id"] for p in started["pick_list"]} == {shipment["id"]}

    label = tmp_path / "label.pdf"
    shipped = cli_json(
        url,
        "ship",
        shipment["id"],
        "--parcel",
        "250x350x120:1400",
        "--label",
        str(label),
        "--simulated-carrier",
    )
    assert shipped["steps"] == ["picked", "packed in 1 parcel(s)", "labelled", "handed over"]
    assert shipped["carrier"] == "memcarrier"
    assert shipped["service"] in ("economy", "standard", "express")
    assert shipped["tracking_number"].startswith("MC")
    assert shipped["simulated_carrier"] is True
    assert shipped["shipment"]["state"] == "in_transit"
    assert shipped["shipment"]["parcels"] == [
        {"weight_grams": 1400, "length_mm": 350, "width_mm": 250, "height_mm": 120}
    ]
    assert "document" not in shipped["shipment"]["label"]  # the PDF goes to --label
    assert label.read_bytes().startswith(b"%PDF")
    again = cli(url, "ship", shipment["id"], "--simulated-carrier")  # nothing left: harmless
    assert "handed over already" in again.stdout
    assert "simulated" in again.stdout

    delivered = cli_json(url, "deliver", shipment["id"])
    assert delivered["outcome"] == "moved"
    assert delivered["scan_id"] == f"manual-delivered:{shipment['id']}"
    assert delivered["order_state"] == "delivered"
    assert cli_json(url, "deliver", shipment["id"])["outcome"] == "duplicate"

    shown = cli_json(url, "orders", "show", order_id)
    assert shown["order"]["state"] == "delivered"
    assert "payment_token" not in shown["order"]
    assert shown["totals"]["total"] == {"amount": "38.80", "currency": "EUR"}
    assert shown["payment_status"] == "unpaid"
    assert [(line["line_id"], line["shipped"], line["delivered"]) for line in shown["lines"]] == [
        ("L1", 2, 2),
        ("L2", 1, 1),
    ]
    assert [s["state"] for s in shown["shipments"]] == ["delivered"]
    kinds = [entry["kind"] for entry in shown["history"]]
    assert kinds[0] == "OrderPlaced"
    assert "OrderHoldPlaced" in kinds
    assert "OrderHoldReleased" in kinds
    assert kinds[-1] == "OrderDelivered"
    assert kinds.count("ShipmentDelivered") == 1  # the second confirmation changed nothing
    people = cli(url, "orders", "show", order_id).stdout
    for text in (order_id, "delivered", "38.80 EUR", "Put on hold: manual_review", "Lines"):
        assert text in people


def test_cancelling_an_order_releases_its_stock(url: str) -> None:
    order_id = place(url)
    assert cli_json(url, "stock", "show", "MUG-01")["levels"][0]["reserved"] == 2
    cancelled = cli_json(url, "orders", "cancel", order_id, "--reason", "customer asked")
    assert cancelled["order"]["state"] == "cancelled"
    assert cancelled["order"]["cancellation_reason"] == "customer asked"
    assert cli_json(url, "stock", "show", "MUG-01")["levels"][0]["reserved"] == 0
    one_line_error(cli(url, "orders", "acknowledge", order_id, code=1), "'cancelled'")


def test_deliver_refuses_a_shipment_without_a_label(url: str) -> None:
    order_id = place(url)
    cli(url, "orders", "acknowledge", order_id)
    [shipment] = cli_json(url, "fulfil", order_id)["shipments"]
    one_line_error(cli(url, "deliver", shipment["id"], code=1), "has no label")
    one_line_error(cli(url, "fulfil", order_id, code=1), "no line left to fulfil")


def test_without_shop_events_wait_for_the_shops_own_dispatcher(url: str) -> None:
    """The command has no notifier or gateway of the shop: it must not mark events done."""
    order_id = place(url)
    result = cli(url, "orders", "acknowledge", order_id)
    assert "wait in the outbox" in result.stdout
    notifier = MemoryNotifier()
    with ok.Shop.open(url, notifier=notifier) as shop:  # the shop as it runs
        assert shop.events.pending() == 1
        shop.events.run_pending()
    assert [n.kind for n in notifier.sent] == ["order_confirmation"]


# -- returns and inquiries ------------------------------------------------------------------------


def test_the_returns_desk(url: str) -> None:
    order_id = place(url)
    deliver_with_api(url, order_id)
    with ok.Shop.open(url) as shop:
        first = shop.returns.request(
            order_id,
            [ok.ReturnLine("L1", 1, "changed_mind"), ok.ReturnLine("L2", 1, "damaged", "dented")],
        )
        second = shop.returns.request(order_id, [ok.ReturnLine("L1", 1, "changed_mind")])

    listed = cli_json(url, "returns", "list", "--state", "requested")
    assert [r["id"] for r in listed["returns"]] == [first.id, second.id]
    assert listed["returns"][0]["units"] == {"L1": 1, "L2": 1}
    assert (
        cli_json(url, "returns", "reject", second.id, "--reason", "worn")["return"][
            "rejection_reason"
        ]
        == "worn"
    )

    approved = cli_json(url, "returns", "approve", first.id, "--instructions", "Use the label.")
    assert approved["return"]["instructions"] == "Use the label."
    assert cli_json(url, "returns", "receive", first.id)["return"]["state"] == "received"
    inspected = cli(url, "returns", "inspect", first.id).stdout
    assert "restocked 1 x L1" in inspected
    assert "written off 1 x L2" in inspected
    mugs = cli_json(url, "stock", "show", "MUG-01")["levels"][0]
    assert mugs["on_hand"] == 9  # 10 in, 2 shipped, 1 back

    shown = cli_json(url, "returns", "show", first.id)
    assert shown["return"]["state"] == "inspected"
    assert shown["refund_quote"]["items"] == {"amount": "21.40", "currency": "EUR"}
    refunded = cli_json(url, "returns", "refund", first.id, "--refund-shipping")
    assert refunded["return"]["state"] == "closed"
    assert refunded["return"]["amount_due"] == {"amount": "26.30", "currency": "EUR"}
    assert refunded["return"]["amount_refunded"] == {"amount": "0.00", "currency": "EUR"}
    again = cli_json(url, "returns", "refund", first.id)  # repeating it pays nothing twice
    assert again["return"]["amount_due"] == refunded["return"]["amount_due"]
    one_line_error(cli(url, "returns", "approve", first.id, code=1), "'closed'")
    history = [e["kind"] for e in cli_json(url, "orders", "show", order_id)["history"]]
    assert history[-2:] == ["ReturnRefunded", "ReturnClosed"]


def test_a_refund_of_a_paid_order_needs_the_shops_gateway(url: str) -> None:
    gateway = MemoryGateway(seed=3)
    order_id = place(url, gateway=gateway)
    deliver_with_api(url, order_id, gateway=gateway)
    with ok.Shop.open(url) as shop:
        request = shop.returns.request(order_id, [ok.ReturnLine("L2", 1, "defective")])
        shop.returns.approve(request.id)
        shop.returns.receive(request.id)
        shop.returns.inspect(request.id)
    one_line_error(cli(url, "returns", "refund", request.id, code=1), "--shop")
    assert cli_json(url, "returns", "show", request.id)["return"]["state"] == "inspected"


def test_the_support_queue(url: str) -> None:
    order_id = place(url)
    with ok.Shop.open(url) as shop:
        inquiry = shop.inquiries.open(order_id, "Invoice", "Could you send me an invoice?")
    listed = cli_json(url, "inquiries", "list", "--state", "open")
    assert [(i["id"], i["subject"]) for i in listed["inquiries"]] == [(inquiry.id, "Invoice")]
    answered = cli_json(
        url, "inquiries", "answer", inquiry.id, "--author", "Grace", "--message", "Sent."
    )
    assert answered["inquiry"]["state"] == "answered"
    case = cli_json(url, "inquiries", "show", inquiry.id)
    assert [(m["author"], m["text"]) for m in case["inquiry"]["messages"]] == [
        ("customer", "Could you send me an invoice?"),
        ("Grace", "Sent."),
    ]
    assert case["order"]["id"] == order_id
    assert next(e["kind"] for e in case["history"]) == "OrderPlaced"
    assert "InquiryAnswered" in [e["kind"] for e in case["history"]]
    cli(url, "inquiries", "answer", inquiry.id, "--author", "Grace", "--message", "[red]x[/] :-)")
    people = cli(url, "inquiries", "show", inquiry.id).stdout
    assert "Could you send me an invoice?" in people
    assert "[red]x[/] :-)" in people  # customers' and agents' words printed as they are
    resolved = cli_json(url, "inquiries", "resolve", inquiry.id, "--resolution", "invoice sent")
    assert resolved["inquiry"]["resolution"] == "invoice sent"
    assert cli_json(url, "inquiries", "list", "--state", "open")["inquiries"] == []


# -- stock ----------------------------------------------------------------------------------------


def test_stock_commands(url: str) -> None:
    added = cli_json(
        url, "stock", "add-location", "hamburg", "--name", "Hamburg", "--priority", "20"
    )
    assert [p["id"] for p in added["locations"]] == ["berlin", "hamburg"]
    assert [p["id"] for p in cli_json(url, "stock", "locations")["locations"]] == [
        "berlin",
        "hamburg",
    ]
    cli(url, "stock", "receive", "MUG-01", "--location", "hamburg", "--quantity", "4")
    adjusted = cli_json(
        url,
        "stock",
        "adjust",
        "MUG-01",
        "--location",
        "berlin",
        "--delta",
        "-3",
        "--reason",
        "count",
    )
    assert [(lv["location"], lv["on_hand"]) for lv in adjusted["levels"]] == [
        ("berlin", 7),
        ("hamburg", 4),
    ]
    place(url)  # reserves 2 mugs at berlin
    refused = cli(
        url,
        "stock",
        "adjust",
        "MUG-01",
        "--location",
        "berlin",
        "--delta",
        "-6",
        "--reason",
        "x",
        code=1,
    )
    one_line_error(refused, "out of stock")
    assert cli_json(url, "stock", "show", "NOPE")["levels"] == []
    renamed = cli_json(url, "stock", "add-location", "berlin", "--name", "Berlin main")
    assert [(p["id"], p["name"], p["priority"]) for p in renamed["locations"]] == [
        ("berlin", "Berlin main", 10),  # renamed; its priority kept
        ("hamburg", "Hamburg", 20),
    ]
    assert "Stock of MUG-01" in cli(url, "stock", "show", "MUG-01").stdout


# -- scripts: exit codes, errors, JSON ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["orders", "show", "order_nope"], 3, "no order with id 'order_nope'"),
        (["orders", "hold", "order_nope", "--reason", "x"], 3, "order_nope"),
        (["ship", "shipment_nope", "--simulated-carrier"], 3, "shipment_nope"),
        (["deliver", "shipment_nope"], 3, "shipment_nope"),
        (["returns", "show", "return_nope"], 3, "return_nope"),
        (["inquiries", "show", "inquiry_nope"], 3, "inquiry_nope"),
        (["orders", "list", "--state", "bogus"], 2, "state: must be one of placed"),
        (["returns", "list", "--state", "bogus"], 2, "state: must be one of"),
        (["stock", "receive", "X", "--location", "nowhere", "--quantity", "3"], 2, "location"),
        (["stock", "receive", "X", "--location", "berlin", "--quantity", "0"], 2, "quantity"),
        (["stock", "add-location", "x", "--name", "X", "--priority", "-1"], 2, "priority"),
        (
            ["ship", "shipment_nope", "--parcel", "big", "--simulated-carrier"],
            2,
            "WIDTHxLENGTHxHEIGHT:GRAMS",
        ),
    ],
)
def test_exit_codes(url: str, args: list[str], code: int, fragment: str) -> None:
    one_line_error(cli(url, *args, "--json", code=code), fragment)


def test_exit_codes_of_the_store(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("not a database")
    one_line_error(cli(f"sqlite:///{junk}", "orders", "list", code=4), "not a SQLite database")
    missing = f"sqlite:///{tmp_path}/no/such/dir/shop.db"
    one_line_error(cli(missing, "orders", "list", code=4), "unable to open")
    one_line_error(cli("nosuch://x", "orders", "list", code=2), "no orderkit store")


def test_usage_errors_are_clicks(url: str) -> None:
    result = cli(url, "orders", "list", "--limit", "0", code=2)
    assert "Error: Invalid value for '--limit'" in result.stderr
    assert "Traceback" not in result.stderr
    result = cli(url, "orders", "hold", "order_x", code=2)
    assert "Missing option '--reason'" in result.stderr


def test_every_read_command_prints_json_only(url: str) -> None:
    order_id = place(url)
    deliver_with_api(url, order_id)
    with ok.Shop.open(url) as shop:
        request = shop.returns.request(order_id, [ok.ReturnLine("L1", 1, "changed_mind")])
        inquiry = shop.inquiries.open(order_id, "Hello", "Where is it?")
    for args in (
        ["orders", "list"],
        ["orders", "show", order_id],
        ["returns", "list"],
        ["returns", "show", request.id],
        ["stock", "show", "MUG-01"],
        ["stock", "locations"],
        ["inquiries", "list"],
        ["inquiries", "show", inquiry.id],
    ):
        result = cli(url, *args, "--json")
        assert isinstance(json.loads(result.stdout), dict), args
        assert result.stdout.startswith("{")
        assert result.stdout.rstrip().endswith("}")


def test_parcels_and_manual_delivery_ids() -> None:
    assert parse_parcel("250x350x120:1400") == ok.Parcel(1400, 350, 250, 120)
    assert parse_parcel(" 10 X 20 x 30 : 5 ") == ok.Parcel(5, 20, 10, 30)
    with pytest.raises(ok.InvalidInput):
        parse_parcel("10x20:5")
    with pytest.raises(ok.InvalidInput):
        parse_parcel("0x20x30:5")
    assert manual_delivery_id("shipment_1") == "manual-delivered:shipment_1"
    long_id = "s" * 64
    assert manual_delivery_id(long_id) == manual_delivery_id(long_id)
    assert len(manual_delivery_id(long_id)) <= 64


# -- --shop: the shop as the business configured it ------------------------------------------------

FACTORY = """
import orderkit as ok
from orderkit.adapters.memory_carrier import MemoryCarrier
from orderkit.adapters.system import SystemClock


def open_shop(url=None):
    clock = SystemClock()
    settings = ok.ShopSettings(shop_name="Factory shop")
    carrier = MemoryCarrier("parcelco", clock=clock, ids_seed=7)
    return ok.Shop.open(url, settings=settings, clock=clock, carriers=[carrier])


def not_a_shop(url=None):
    return "a shop, honestly"


def broken(url=None):
    raise RuntimeError("the gateway key is missing")
"""


@pytest.fixture
def factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module ``cli_factory_<n>`` in the working directory with shop factories."""
    name = f"cli_factory_{abs(hash(str(tmp_path)))}"
    (tmp_path / f"{name}.py").write_text(FACTORY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_a_shop_from_a_factory(url: str, factory: str) -> None:
    order_id = place(url)
    cli(url, "orders", "acknowledge", order_id, "--shop", f"{factory}:open_shop")
    [shipment] = cli_json(url, "fulfil", order_id, "--shop", f"{factory}:open_shop")["shipments"]
    refused = cli(url, "ship", shipment["id"], "--shop", f"{factory}:open_shop", code=2)
    one_line_error(refused, "--parcel is needed")
    shipped = cli_json(
        url, "ship", shipment["id"], "--parcel", "200x300x100:900", "--shop", f"{factory}:open_shop"
    )
    assert shipped["carrier"] == "parcelco"
    assert shipped["simulated_carrier"] is False
    with ok.Shop.open(url) as shop:
        assert shop.events.pending() == 0  # the configured shop dispatched its own events


@pytest.mark.parametrize(
    ("spec", "code", "fragment"),
    [
        ("no_colon", 2, "give MODULE:CALLABLE"),
        ("cli_missing_module:open_shop", 2, "cannot import cli_missing_module"),
        ("{factory}:nothing_here", 2, "has no attribute 'nothing_here'"),
        ("{factory}:not_a_shop", 2, "returned a str, not an orderkit Shop"),
        ("{factory}:broken", 2, "failed: RuntimeError: the gateway key is missing"),
    ],
)
def test_a_shop_that_cannot_be_had(
    url: str, factory: str, spec: str, code: int, fragment: str
) -> None:
    result = cli(url, "orders", "list", "--shop", spec.format(factory=factory), code=code)
    one_line_error(result, fragment)


# -- a real process ------------------------------------------------------------------------------


def test_as_a_real_process(url: str, tmp_path: Path) -> None:
    order_id = place(url)
    env = {"ORDERKIT_STORE": url}  # the default store, as Shop.open(None) reads it
    listed = run_process("orders", "list", "--json", **env)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["orders"][0]["id"] == order_id
    assert listed.stderr == ""

    assert run_process("orders", "acknowledge", order_id, **env).returncode == 0
    fulfilled = run_process("fulfil", order_id, "--json", **env)
    [shipment] = json.loads(fulfilled.stdout)["shipments"]
    shipped = run_process("ship", shipment["id"], "--simulated-carrier", **env)
    assert shipped.returncode == 0, shipped.stderr
    assert "Carrier: simulated" in shipped.stdout
    assert "memcarrier" in shipped.stdout
    delivered = run_process("deliver", shipment["id"], "--json", **env)
    assert json.loads(delivered.stdout)["order_state"] == "delivered"

    missing = run_process("orders", "show", "order_nope", "--json", **env)
    assert missing.returncode == 3
    one_line_error(missing, "no order with id 'order_nope'")
    refused = run_process("orders", "hold", order_id, "--reason", "late", **env)
    assert refused.returncode == 1
    one_line_error(refused, "can no longer be held")

    (tmp_path / "proc_factory.py").write_text(FACTORY)
    shown = run_process(
        "orders", "show", order_id, "--shop", "proc_factory:open_shop", "--db", url, cwd=tmp_path
    )
    assert shown.returncode == 0, shown.stderr
    assert "Everything was delivered" in shown.stdout


def test_help_documents_the_exit_codes() -> None:
    for args in ([], ["orders"], ["ship"], ["returns"], ["stock"], ["inquiries"]):
        result = cli(None, *args, "--help")
        assert "Exit codes:" in result.stdout
        assert "3  not found" in result.stdout


def test_shipping_on_a_real_store_needs_the_shops_carriers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shop.db"
    result = CliRunner().invoke(main, ["ship", "shipment-1", "--db", url])
    assert result.exit_code == 2
    assert "pass --shop MODULE:CALLABLE" in result.output
    assert "--simulated-carrier" in result.output
