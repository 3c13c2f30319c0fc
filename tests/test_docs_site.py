"""The documentation site: every code sample runs, the output it shows is what it prints,
the lifecycle diagrams are drawn from the code, and Sphinx builds it with warnings as errors.

Each page's ```python blocks are concatenated, in order, into one script, run in a
subprocess from an empty temporary directory. A block preceded by a
``<!-- not run: reason -->`` comment is left out (only for samples that need a real
outside server). A ```text block right after a ```python block is that block's output:
when a page shows any, its script must print exactly the concatenation of them.

The full Sphinx build (25 s here, more on a slow machine) is over this suite's budget
per file; it runs when ``ORDERKIT_DOCS_BUILD=1`` is set, and ``nox -s docs`` builds the
site the same way.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SKIP_MARK = re.compile(r"^<!--\s*not run:\s*(?P<reason>\S.*?)\s*-->$")
FENCE = re.compile(r"^(?P<fence>`{3,})(?P<info>[^`]*)$")
MAX_SKIPPED = 3
"""Samples left out of the run across the whole site: keep them rare."""


@dataclass
class Block:
    """One fenced code block of a page."""

    language: str
    code: str
    line: int
    skip_reason: str | None = None
    adjacent_line: int = 0
    """Where the code of a block right after this one (blank lines between) would start."""


@dataclass
class Page:
    """A page's runnable script and the output it claims."""

    path: Path
    blocks: list[Block] = field(default_factory=list)

    @property
    def runnable(self) -> list[Block]:
        return [b for b in self.blocks if b.language == "python" and b.skip_reason is None]

    @property
    def script(self) -> str:
        parts = [f"# --- {self.path.name}, line {b.line}\n{b.code}" for b in self.runnable]
        return "\n".join(parts)

    @property
    def expected_output(self) -> str | None:
        """The ```text blocks that directly follow a run ```python block, joined; None
        when the page shows no output."""
        shown = [
            after.code
            for before, after in pairwise(self.blocks)
            if after.language == "text"
            and before.language == "python"
            and before.skip_reason is None
            and after.line == before.adjacent_line
        ]
        return "".join(shown) if shown else None


def parse_blocks(text: str) -> list[Block]:
    """Every fenced block of a Markdown page, with its language (the first word of the
    info string), code, first code line, and the reason of a ``not run`` mark before it.

    ``Block.adjacent_line`` lets an output block be matched to the code right above it.
    """
    lines = text.splitlines(keepends=True)
    blocks: list[Block] = []
    index = 0
    last_text_line = ""
    while index < len(lines):
        stripped = lines[index].rstrip("\n")
        opening = FENCE.match(stripped)
        if not opening:
            if stripped.strip():
                last_text_line = stripped.strip()
            index += 1
            continue
        fence, info = opening.group("fence"), opening.group("info").strip()
        language = info.split()[0] if info else ""
        start = index + 1
        end = start
        while end < len(lines) and not lines[end].rstrip("\n").startswith(fence):
            end += 1
        mark = SKIP_MARK.match(last_text_line)
        following = end + 1
        while following < len(lines) and not lines[following].strip():
            following += 1
        blocks.append(
            Block(
                language=language,
                code="".join(lines[start:end]),
                line=start + 1,
                skip_reason=mark.group("reason") if mark else None,
                adjacent_line=following + 2,
            )
        )
        last_text_line = ""
        index = end + 1
    return blocks


def load_page(path: Path) -> Page:
    return Page(path, parse_blocks(path.read_text(encoding="utf-8")))


def site_pages() -> list[Path]:
    return sorted(
        path
        for path in DOCS.rglob("*.md")
        if not {"_build", "_generated"} & set(path.relative_to(DOCS).parts)
    )


PAGES = site_pages()
RUNNABLE = [path for path in PAGES if load_page(path).runnable]


def _page_id(path: Path) -> str:
    return str(path.relative_to(DOCS))


def run_script(script: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``script`` as a file in ``cwd`` with this interpreter, outside any store or shop
    the environment names."""
    target = cwd / "page_script.py"
    target.write_text(script, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERKIT_")}
    return subprocess.run(
        [sys.executable, str(target)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- the pages' code ----------------------------------------------------------------------


def test_the_site_has_its_pages() -> None:
    names = {_page_id(path) for path in PAGES}
    assert {
        "index.md",
        "tutorial.md",
        "lifecycles.md",
        "deployment.md",
        "howto/custom-lifecycle-state.md",
        "howto/carrier-adapter.md",
        "howto/payment-gateway-adapter.md",
        "howto/store-adapter.md",
        "howto/dispatch-workers.md",
        "howto/notifications.md",
        "explanation/invariants.md",
        "explanation/concurrency.md",
        "explanation/idempotency.md",
        "explanation/outbox.md",
        "reference/index.md",
    } <= names
    for required in ("tutorial.md", "howto/custom-lifecycle-state.md", "howto/carrier-adapter.md"):
        assert DOCS / required in RUNNABLE, f"{required} has no runnable code"


@pytest.mark.parametrize("path", RUNNABLE, ids=_page_id)
def test_page_code_runs_and_prints_what_the_page_shows(path: Path, tmp_path: Path) -> None:
    page = load_page(path)
    result = run_script(page.script, tmp_path)
    assert result.returncode == 0, f"{_page_id(path)} failed:\n{result.stderr[-4000:]}"
    expected = page.expected_output
    if expected is not None:
        assert result.stdout == expected


def test_the_tutorial_tells_the_whole_story() -> None:
    page = load_page(DOCS / "tutorial.md")
    shown = page.expected_output
    assert shown is not None
    for line in (
        "order-000001 placed 38.80 EUR authorized",
        "retried: order-000001",
        "acknowledged - promised for 2026-01-09",
        "in_transit | order: shipped | payment: paid",
        "closed 12.50 EUR | payment: partially_refunded",
        "reopened: shipped",
    ):
        assert line in shown.splitlines()
    assert "sqlite:///tutorial.db" in page.script
    assert "memory://" in page.script


def test_samples_left_out_are_rare_and_say_why() -> None:
    skipped = [
        (path, block)
        for path in PAGES
        for block in load_page(path).blocks
        if block.language == "python" and block.skip_reason is not None
    ]
    assert len(skipped) <= MAX_SKIPPED, [(_page_id(p), b.line) for p, b in skipped]
    for path, block in skipped:
        assert re.search(r"server|postgres|smtp|http", block.skip_reason, re.IGNORECASE), (
            f"{_page_id(path)}:{block.line}: a sample is left out only when it needs a real "
            f"outside server, not for {block.skip_reason!r}"
        )


def test_a_failing_sample_fails_its_page(tmp_path: Path) -> None:
    page = Page(
        DOCS / "x.md",
        parse_blocks("```python\nprint('one')\n```\n\n```python\nraise SystemExit(3)\n```\n"),
    )
    assert run_script(page.script, tmp_path).returncode == 3


# -- the block parser ---------------------------------------------------------------------


def test_parser_reads_languages_lines_marks_and_output() -> None:
    text = (
        "# Title\n"
        "\n"
        "```python\n"
        "print('hi')\n"
        "```\n"
        "\n"
        "```text\n"
        "hi\n"
        "```\n"
        "<!-- not run: needs a real SMTP server -->\n"
        "```python\n"
        "send()\n"
        "```\n"
        "````md\n"
        "```python\n"
        "nested()\n"
        "```\n"
        "````\n"
        "```sh\n"
        "pip install orderkit\n"
        "```\n"
    )
    page = Page(DOCS / "x.md", parse_blocks(text))
    assert [b.language for b in page.blocks] == ["python", "text", "python", "md", "sh"]
    assert page.blocks[0].line == 4
    assert page.blocks[2].skip_reason == "needs a real SMTP server"
    assert page.script == "# --- x.md, line 4\nprint('hi')\n"
    assert page.expected_output == "hi\n"


def test_output_far_from_its_code_is_not_taken_as_its_output() -> None:
    text = "```python\nprint(1)\n```\nSome prose.\n```text\n1\n```\n"
    assert Page(DOCS / "x.md", parse_blocks(text)).expected_output is None


_CODE_LINE = st.text(
    alphabet=st.characters(codec="ascii", exclude_characters="`\r\n"), max_size=30
).map(str.rstrip)


@given(st.lists(st.lists(_CODE_LINE, min_size=0, max_size=4), min_size=1, max_size=5))
def test_parser_returns_every_python_block_in_order(bodies: list[list[str]]) -> None:
    text = "".join(
        "Some prose.\n\n```python\n" + "".join(f"{line}\n" for line in body) + "```\n\n"
        for body in bodies
    )
    blocks = parse_blocks(text)
    assert [b.code for b in blocks] == ["".join(f"{line}\n" for line in body) for body in bodies]
    assert all(b.language == "python" and b.skip_reason is None for b in blocks)


# -- the lifecycle diagrams ---------------------------------------------------------------


def _conf() -> ModuleType:
    spec = importlib.util.spec_from_file_location("orderkit_docs_conf", DOCS / "conf.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_diagrams_are_drawn_from_the_lifecycle_definitions(tmp_path: Path) -> None:
    from orderkit.cli.diagram import LIFECYCLES

    written = _conf().write_lifecycle_diagrams(tmp_path)
    assert {p.name for p in written if p.suffix == ".svg"} == {
        f"{name}-lifecycle.svg" for name in LIFECYCLES
    }
    for name, definition in LIFECYCLES.items():
        svg = ET.parse(tmp_path / f"{name}-lifecycle.svg").getroot()
        drawn = {g.get("data-state") for g in svg.iter("{http://www.w3.org/2000/svg}g")}
        assert set(definition.states) <= drawn, name
        mermaid = (tmp_path / f"{name}-lifecycle.mmd").read_text(encoding="utf-8")
        assert mermaid == definition.build().to_mermaid()
    lifecycles_page = (DOCS / "lifecycles.md").read_text(encoding="utf-8")
    for name in LIFECYCLES:
        assert f"_generated/{name}-lifecycle.svg" in lifecycles_page


def test_public_api_table_names_every_export(tmp_path: Path) -> None:
    import orderkit

    table = _conf().write_public_api(tmp_path).read_text(encoding="utf-8")
    for name in orderkit.__all__:
        assert f"`{name}`" in table or f".{name}`" in table, name


# -- the build ----------------------------------------------------------------------------


@pytest.mark.skipif(
    os.environ.get("ORDERKIT_DOCS_BUILD") != "1",
    reason="the Sphinx build takes 25-60 s, over this suite's budget: set ORDERKIT_DOCS_BUILD=1 "
    "(nox -s docs builds it too)",
)
def test_sphinx_builds_the_site_with_warnings_as_errors(tmp_path: Path) -> None:
    for module in ("sphinx", "myst_parser", "furo"):
        pytest.importorskip(module)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    html = tmp_path / "html"
    for page in PAGES:
        assert (html / page.relative_to(DOCS).with_suffix(".html")).exists(), page
    lifecycles = (html / "lifecycles.html").read_text(encoding="utf-8")
    assert lifecycles.count(".svg") >= 5
    assert "Shop.open" in (html / "reference" / "shop.html").read_text(encoding="utf-8")
