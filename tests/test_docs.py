"""The README's quickstart and the examples run exactly as written."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _quickstart() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quickstart", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "README has no quickstart code block"
    return match.group(1)


def test_readme_quickstart_runs_and_prints_what_it_says() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _quickstart()], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("placed 38.80 EUR")
    assert lines[1].startswith("acknowledged ")
    assert "is confirmed" in lines[2]
    assert lines[3] == "cancelled"


def test_quickstart_example_matches_the_readme() -> None:
    example = (ROOT / "examples" / "quickstart.py").read_text(encoding="utf-8")
    assert _quickstart().strip() in example


def test_examples_run() -> None:
    for script in sorted((ROOT / "examples").glob("*.py")):
        result = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"{script.name}: {result.stderr}"
