"""Sphinx configuration of the orderkit documentation site (Sphinx + MyST + furo).

Build it with warnings as errors::

    sphinx-build -W --keep-going -b html docs docs/_build/html

The lifecycle diagrams on the "Lifecycles" page are drawn from the code at every build
(see :func:`write_lifecycle_diagrams`), into ``docs/_generated/`` (git-ignored).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
GENERATED = DOCS / "_generated"

# A checkout without an installed orderkit still builds: import from src/.
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

import orderkit  # noqa: E402

project = "orderkit"
author = "orderkit developers"
copyright = "orderkit developers, MIT licence"
release = orderkit.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_generated/*.md", "Thumbs.db", ".DS_Store"]

# MyST: Markdown pages like the README; ``{py:class}`` roles and ``:::`` fences for notes.
myst_enable_extensions = ["colon_fence", "deflist", "fieldlist"]
myst_heading_anchors = 3

# autodoc: the docstrings are reST with :class: roles and ``literals``; signatures keep
# their annotations, written as in the source (``from __future__ import annotations``).
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_default_options: dict[str, Any] = {"members": True, "show-inheritance": True}

html_theme = "furo"
html_title = "orderkit"
html_static_path: list[str] = []
html_extra_path: list[str] = []

pygments_style = "sphinx"
pygments_dark_style = "monokai"

LIFECYCLE_NAMES = ("order", "payment", "shipment", "return", "inquiry")


def write_lifecycle_diagrams(target: Path = GENERATED) -> list[Path]:
    """Draw the order, payment, shipment, return and inquiry lifecycles as SVG (and
    mermaid text) into ``target``, from the definitions orderkit runs on."""
    from orderkit.diagrams import lifecycle_svg
    from orderkit.domain.inquiries import INQUIRY_LIFECYCLE
    from orderkit.domain.order import ORDER_LIFECYCLE
    from orderkit.domain.payment import PAYMENT_LIFECYCLE
    from orderkit.domain.returns import RETURN_LIFECYCLE
    from orderkit.domain.shipment import SHIPMENT_LIFECYCLE

    definitions = {
        "order": ORDER_LIFECYCLE,
        "payment": PAYMENT_LIFECYCLE,
        "shipment": SHIPMENT_LIFECYCLE,
        "return": RETURN_LIFECYCLE,
        "inquiry": INQUIRY_LIFECYCLE,
    }
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in LIFECYCLE_NAMES:
        definition = definitions[name]
        svg = target / f"{name}-lifecycle.svg"
        _write_if_changed(svg, lifecycle_svg(definition))
        mermaid = target / f"{name}-lifecycle.mmd"
        _write_if_changed(mermaid, definition.build().to_mermaid())
        written += [svg, mermaid]
    return written


def write_public_api(target: Path = GENERATED) -> Path:
    """Write the table of ``orderkit.__all__``: each public name, what it is and the module
    it is documented in (the top-level module re-exports it from there)."""
    rows = ["| name | kind | documented in |", "|---|---|---|"]
    for name in sorted(orderkit.__all__, key=str.lower):
        obj = getattr(orderkit, name)
        module = getattr(obj, "__module__", None)
        if name.startswith("__") or not isinstance(module, str) or not hasattr(obj, "__qualname__"):
            rows.append(f"| `{name}` | value | `orderkit` |")
            continue
        kind = "class" if isinstance(obj, type) else "function"
        if isinstance(obj, type) and issubclass(obj, BaseException):
            kind = "exception"
        role = "py:exc" if kind == "exception" else ("py:class" if kind == "class" else "py:func")
        rows.append(f"| {{{role}}}`~{module}.{obj.__qualname__}` | {kind} | `{module}` |")
    target.mkdir(parents=True, exist_ok=True)
    path = target / "public-api.md"
    _write_if_changed(path, "\n".join(rows) + "\n")
    return path


def write_testing_reference(target: Path = GENERATED) -> Path:
    """Write the reference of every public module of :mod:`orderkit.testing` (the kit
    grows: a new contract suite appears here without editing the page)."""
    import pkgutil

    import orderkit.testing

    names = sorted(
        f"orderkit.testing.{info.name}"
        for info in pkgutil.iter_modules(orderkit.testing.__path__)
        if not info.name.startswith("_")
    )
    parts = [f"## `{name}`\n\n```{{eval-rst}}\n.. automodule:: {name}\n```\n" for name in names]
    target.mkdir(parents=True, exist_ok=True)
    path = target / "testing-modules.md"
    _write_if_changed(path, "\n".join(parts))
    return path


def _write_if_changed(path: Path, text: str) -> None:
    # Rewriting an unchanged file would make Sphinx think every page showing it is outdated.
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _on_builder_inited(app: Any) -> None:
    write_lifecycle_diagrams(GENERATED)
    write_public_api(GENERATED)
    write_testing_reference(GENERATED)


def setup(app: Any) -> dict[str, Any]:
    """Draw the lifecycle diagrams when the builder starts."""
    app.connect("builder-inited", _on_builder_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
