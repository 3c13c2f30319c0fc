"""The JSON example in the README is accepted by the strict parser, as the README says."""

import re
from pathlib import Path

import orderkit as ok

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_readme_json_example_parses_to_a_valid_command() -> None:
    match = re.search(r"```json\n(.*?)```", README, re.DOTALL)
    assert match, "README has no JSON example"
    command = ok.PlaceOrder.from_json(match.group(1))
    assert command.lines[0].unit_price == ok.Money("12.50", "EUR")
    assert command.idempotency_key == "checkout-7f3a"
    shop = ok.Shop.open("memory://")
    shop.inventory.add_location(ok.Location("main", "Main warehouse"))
    shop.inventory.receive("MUG-01", location="main", quantity=2)
    assert shop.orders.place(command).totals.total == ok.Money("29.90", "EUR")
