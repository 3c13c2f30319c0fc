"""Lifecycle diagrams as SVG, drawn without Graphviz: states in rows by their distance
from the initial state, transitions as arrows labelled with their triggers (mermaid
text and Graphviz dot come from :class:`~orderkit.domain.lifecycle.Lifecycle`)."""

from __future__ import annotations

from collections import deque
from xml.sax.saxutils import escape

from orderkit.domain.lifecycle import LifecycleDefinition

__all__ = ["lifecycle_svg"]

_CHAR = 7.2  # px per character of the 12 px font
_BOX_H = 34
_ROW_GAP = 70
_COL_GAP = 36
_MARGIN = 30


def _layers(definition: LifecycleDefinition) -> list[list[str]]:
    """States by their distance from the initial state (unreachable ones last)."""
    edges: dict[str, list[str]] = {}
    for spec in definition.transitions:
        for source in spec.sources:
            edges.setdefault(source, []).append(spec.dest)
    depth = {definition.initial: 0}
    queue = deque([definition.initial])
    while queue:
        state = queue.popleft()
        for dest in edges.get(state, []):
            if dest not in depth:
                depth[dest] = depth[state] + 1
                queue.append(dest)
    last = max(depth.values(), default=0) + 1
    rows: list[list[str]] = [[] for _ in range(last + 1)]
    for state in definition.states:
        rows[depth.get(state, last)].append(state)
    return [row for row in rows if row]


def lifecycle_svg(definition: LifecycleDefinition) -> str:
    """An SVG drawing of ``definition``'s state graph (final states with a double border)."""
    rows = _layers(definition)
    width = {state: len(state) * _CHAR + 28 for row in rows for state in row}
    row_widths = [sum(width[s] for s in row) + _COL_GAP * (len(row) - 1) for row in rows]
    canvas_w = max(row_widths) + 2 * _MARGIN + 160
    centre: dict[str, tuple[float, float]] = {}
    for index, row in enumerate(rows):
        left = (canvas_w - row_widths[index]) / 2
        top = _MARGIN + index * (_BOX_H + _ROW_GAP)
        for state in row:
            centre[state] = (left + width[state] / 2, top + _BOX_H / 2)
            left += width[state] + _COL_GAP
    canvas_h = _MARGIN * 2 + len(rows) * _BOX_H + (len(rows) - 1) * _ROW_GAP
    labels: dict[tuple[str, str], list[str]] = {}
    for spec in definition.transitions:
        for source in spec.sources:
            labels.setdefault((source, spec.dest), []).append(spec.trigger)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{canvas_w:.0f}" '
        f'height="{canvas_h:.0f}" viewBox="0 0 {canvas_w:.0f} {canvas_h:.0f}" '
        'font-family="sans-serif" font-size="12">',
        f"<title>{escape(definition.aggregate)} lifecycle</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/>'
        "</marker></defs>",
    ]
    for (source, dest), triggers in labels.items():
        parts.append(_edge(source, dest, ", ".join(triggers), centre, width))
    final = set(definition.final)
    for state, (cx, cy) in centre.items():
        x, y, w = cx - width[state] / 2, cy - _BOX_H / 2, width[state]
        fill = "#e8f0fe" if state == definition.initial else "#ffffff"
        box = (
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{_BOX_H}" rx="8" '
            f'fill="{fill}" stroke="#333"/>'
        )
        if state in final:
            box += (
                f'<rect x="{x + 3:.1f}" y="{y + 3:.1f}" width="{w - 6:.1f}" '
                f'height="{_BOX_H - 6}" rx="6" fill="none" stroke="#333"/>'
            )
        parts.append(
            f'<g class="state" data-state="{escape(state)}">{box}'
            f'<text x="{cx:.1f}" y="{cy + 4:.1f}" text-anchor="middle">{escape(state)}</text></g>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _edge(
    source: str,
    dest: str,
    label: str,
    centre: dict[str, tuple[float, float]],
    width: dict[str, float],
) -> str:
    (sx, sy), (dx, dy) = centre[source], centre[dest]
    half = _BOX_H / 2
    if source == dest:  # a loop on the right of the box
        x = sx + width[source] / 2
        d = (
            f"M{x:.1f},{sy - 6:.1f} C{x + 40:.1f},{sy - 30:.1f} "
            f"{x + 40:.1f},{sy + 30:.1f} {x:.1f},{sy + 6:.1f}"
        )
        lx, ly = x + 44, sy + 4
    elif dy > sy:  # down the page
        d = f"M{sx:.1f},{sy + half:.1f} L{dx:.1f},{dy - half:.1f}"
        lx, ly = (sx + dx) / 2 + 4, (sy + dy) / 2
    else:  # back up (or across): bend out to the side
        side = 1 if dx >= sx else -1
        x1, x2 = sx + side * width[source] / 2, dx + side * width[dest] / 2
        bend = max(x1, x2) + 60 if side > 0 else min(x1, x2) - 60
        d = f"M{x1:.1f},{sy:.1f} C{bend:.1f},{sy:.1f} {bend:.1f},{dy:.1f} {x2:.1f},{dy:.1f}"
        lx, ly = bend, (sy + dy) / 2
    return (
        f'<g class="transition" data-from="{escape(source)}" data-to="{escape(dest)}">'
        f'<path d="{d}" fill="none" stroke="#555" marker-end="url(#arrow)"/>'
        f'<text x="{lx:.1f}" y="{ly:.1f}" fill="#333">{escape(label)}</text></g>'
    )
