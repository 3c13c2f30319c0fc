"""The orderkit command, driven the way a user runs it."""

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from orderkit.cli import main
from orderkit.shop import Shop


def test_demo_places_and_summarises_orders() -> None:
    result = CliRunner().invoke(main, ["demo", "--orders", "60", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "orders placed" in result.output
    assert "confirmations by email" in result.output
    assert "dead letters" in result.output
    # every order ends acknowledged or cancelled; the two rows add up to the orders placed
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in result.output.splitlines()
        if line.count("│") >= 3
    }
    placed = int(rows["orders placed"])
    declined = sum(int(v) for k, v in rows.items() if k.startswith("refused: payment declined"))
    assert placed + int(rows["refused: out of stock"]) + declined == 60
    states = ("acknowledged", "fulfilling", "shipped", "delivered", "completed", "cancelled")
    assert sum(int(rows.get(state, "0")) for state in states) == placed
    assert int(rows["completed"]) > 0  # delivered, and the return window closed
    assert int(rows["shipments delivered"]) > 0
    assert int(rows["notifications: shipped"]) > 0
    assert rows["dead letters"] == "0"
    assert rows["events still in the outbox"] == "0"


def test_demo_is_repeatable_for_a_seed() -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["demo", "--orders", "30", "--seed", "11"]).output
    second = runner.invoke(main, ["demo", "--orders", "30", "--seed", "11"]).output

    def stable(text: str) -> list[str]:
        return [
            line
            for line in text.splitlines()
            if "wall clock" not in line and "━" not in line and not line.startswith("Store:")
        ]

    assert stable(first) == stable(second)


def test_demo_refuses_an_unknown_store() -> None:
    result = CliRunner().invoke(main, ["demo", "--orders", "5", "--store", "nosuch://x"])
    assert result.exit_code == 1
    assert "Error: no orderkit store for 'nosuch://x'" in result.output
    assert "Traceback" not in result.output


def test_demo_refuses_a_non_positive_order_count() -> None:
    result = CliRunner().invoke(main, ["demo", "--orders", "-5"])
    assert result.exit_code == 2
    assert "-5 is not in the range" in result.output


def test_demo_can_run_twice_on_one_kept_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/kept.db"
    placed = 0
    for _ in range(2):
        result = CliRunner().invoke(main, ["demo", "--orders", "15", "--store", url])
        assert result.exit_code == 0, result.output
        row = next(line for line in result.output.splitlines() if "orders placed" in line)
        placed += int(row.split("│")[2])
    with Shop.open(url) as shop:
        assert len(shop.orders.list(limit=100)) == placed > 15


def test_diagram_prints_mermaid_and_dot() -> None:
    mermaid = CliRunner().invoke(main, ["diagram"])
    assert mermaid.exit_code == 0
    assert mermaid.output.startswith("stateDiagram-v2")
    assert "acknowledged --> fulfilling : start_fulfilment [no holds]" in mermaid.output
    dot = CliRunner().invoke(main, ["diagram", "--format", "dot"])
    assert dot.exit_code == 0
    assert dot.output.startswith('digraph "order"')


def test_console_script_is_installed() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orderkit.cli", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "demo" in result.stdout


def test_diagram_draws_the_payment_lifecycle() -> None:
    result = CliRunner().invoke(main, ["diagram", "payment"])
    assert result.exit_code == 0, result.output
    assert "partially_captured --> captured : void_rest" in result.output
    assert "captured --> refunded : refund_rest" in result.output


def test_demo_money_adds_up() -> None:
    """Captured minus refunded is the value of the orders that were not cancelled."""
    result = CliRunner().invoke(main, ["demo", "--orders", "80", "--seed", "5"])
    assert result.exit_code == 0, result.output
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in result.output.splitlines()
        if line.count("│") >= 3
    }

    def euros(row: str) -> Decimal:
        return Decimal(rows[row].removesuffix(" EUR").replace(",", ""))

    assert any(row.startswith("refused: payment declined") for row in rows)
    # captured on shipment: exactly the value of the orders that shipped; the rest of
    # what was authorized is voided (cancellations) or still held (orders on hold)
    assert euros("money captured") == euros("order value shipped")
    assert euros("money captured") + euros("money voided") <= euros("money authorized")


def test_demo_handles_returns_exchanges_and_inquiries_after_delivery() -> None:
    result = CliRunner().invoke(main, ["demo", "--orders", "300", "--seed", "7"])
    assert result.exit_code == 0, result.output
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in result.output.splitlines()
        if line.count("│") >= 3
    }
    returns = {k: int(v) for k, v in rows.items() if k.startswith("returns ")}
    assert sum(returns.values()) > 0
    # every approved return was told its instructions, every rejected one its reason
    approved = sum(n for k, n in returns.items() if k not in ("returns rejected",))
    assert int(rows["notifications: return_approved"]) == approved
    assert int(rows["notifications: return_rejected"]) == returns.get("returns rejected", 0)
    assert int(rows["exchanges placed"]) >= 1
    assert int(rows["notifications: exchange_shipped"]) == int(rows["exchanges placed"])
    restocked, written_off = (
        int(x) for x in rows["returned units restocked / written off"].split("/")
    )
    assert restocked + written_off > 0
    assert rows["return refunds due"] == rows["return refunds paid out"]
    assert int(rows["inquiries resolved"]) + int(rows.get("inquiries answered", "0")) > 0
    assert int(rows["notifications: inquiry_answered"]) > 0
    assert rows["dead letters"] == "0"


def test_demo_runs_on_its_policies() -> None:
    """Nobody acknowledges or releases by hand: the policies do, large baskets are held
    for review (half released), and delivered orders are completed a month later."""
    result = CliRunner().invoke(main, ["demo", "--orders", "200", "--seed", "2"])
    assert result.exit_code == 0, result.output
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in result.output.splitlines()
        if line.count("│") >= 3
    }
    assert "placed" not in rows  # every order was acknowledged by the policy
    assert int(rows["still on hold (manual review)"]) > 0
    # (exchange orders, not counted among the day's orders, are completed too)
    assert int(rows["completed a month later (exchange orders too)"]) >= int(rows["completed"]) > 0
    assert rows["dead letters"] == "0"
