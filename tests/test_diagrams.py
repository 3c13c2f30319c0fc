"""Lifecycle diagrams: SVG drawn without Graphviz, and the `orderkit lifecycle diagram` command."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

import orderkit as ok
from orderkit.cli import main
from orderkit.cli.diagram import LIFECYCLES
from orderkit.diagrams import lifecycle_svg

SVG = "{http://www.w3.org/2000/svg}"


def _groups(svg: str, kind: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == kind]


@pytest.mark.parametrize("aggregate", sorted(LIFECYCLES))
def test_every_state_and_transition_is_drawn(aggregate: str) -> None:
    definition = LIFECYCLES[aggregate]
    svg = lifecycle_svg(definition)
    states = {g.get("data-state"): g for g in _groups(svg, "state")}
    assert set(states) == set(definition.states)
    for state, group in states.items():
        assert group.find(f"{SVG}text").text == state  # type: ignore[union-attr]
        borders = len(group.findall(f"{SVG}rect"))
        assert borders == (2 if state in definition.final else 1)
    pairs = {(g.get("data-from"), g.get("data-to")): g for g in _groups(svg, "transition")}
    expected: dict[tuple[str, str], set[str]] = {}
    for spec in definition.transitions:
        for source in spec.sources:
            expected.setdefault((source, spec.dest), set()).add(spec.trigger)
    assert set(pairs) == set(expected)
    for pair, group in pairs.items():
        label = group.find(f"{SVG}text").text or ""  # type: ignore[union-attr]
        assert set(label.split(", ")) == expected[pair]  # type: ignore[index]


def test_states_are_drawn_in_rows_from_the_initial_state() -> None:
    svg = lifecycle_svg(ok.ORDER_LIFECYCLE)
    y = {
        g.get("data-state"): float(g.find(f"{SVG}rect").get("y"))  # type: ignore[union-attr, arg-type]
        for g in _groups(svg, "state")
    }
    assert y["placed"] < y["acknowledged"] < y["fulfilling"] < y["shipped"] < y["delivered"]
    assert y["cancelled"] == y["acknowledged"]  # one step from placed, like acknowledged


def test_an_extended_lifecycle_is_drawn_with_its_new_state() -> None:
    extended = ok.ORDER_LIFECYCLE.extend(
        states=["fraud_review"],
        transitions=[
            ok.TransitionSpec("review", ["placed"], "fraud_review"),
            ok.TransitionSpec("clear", ["fraud_review"], "acknowledged"),
        ],
    )
    states = {g.get("data-state") for g in _groups(lifecycle_svg(extended), "state")}
    assert "fraud_review" in states


@pytest.mark.parametrize("fmt", ["mermaid", "svg", "dot"])
def test_the_command_prints_each_format(fmt: str) -> None:
    result = CliRunner().invoke(main, ["lifecycle", "diagram", "return", "--format", fmt])
    assert result.exit_code == 0, result.output
    if fmt == "svg":
        assert result.output == lifecycle_svg(ok.RETURN_LIFECYCLE)
    elif fmt == "mermaid":
        assert result.output.startswith("stateDiagram-v2")
        assert "inspected --> refunded : refund" in result.output
    else:
        assert result.output.lstrip().startswith("digraph")


def test_an_unknown_lifecycle_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["lifecycle", "diagram", "invoice"])
    assert result.exit_code == 2
    assert "invoice" in result.output
