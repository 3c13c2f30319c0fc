"""Developer sessions.

``nox`` runs tests (this interpreter), lint and typecheck; ``nox -s tests_all``
runs the tests on every Python 3.10-3.13 installed; ``nox -s bench`` runs the
benchmarks.
"""

from __future__ import annotations

import glob
import os

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

# pyenv's shims answer only for its selected versions; put every installed
# 3.10-3.13 on PATH so that nox finds them all.
_PYENV = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
_BINS = [sorted(glob.glob(f"{_PYENV}/versions/{version}.*/bin"))[-1:] for version in PYTHONS]
os.environ["PATH"] = os.pathsep.join([b for found in _BINS for b in found] + [os.environ["PATH"]])

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.error_on_missing_interpreters = False
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite on the interpreter running nox."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=PYTHONS)
def tests_all(session: nox.Session) -> None:
    """The test suite on every Python 3.10-3.13 installed here (missing ones are skipped)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "benchmarks", "examples", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "examples", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src/."""
    session.install("-e", ".[test]", "mypy")
    session.run("mypy", "--strict", "src/orderkit")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: ratios against hand-written baselines measured in the same process."""
    session.install("-e", ".")
    session.run("python", "benchmarks/run.py", *session.posargs)
    session.run("python", "benchmarks/inventory.py", *session.posargs)
    session.run("python", "benchmarks/payments.py", *session.posargs)
    session.install("-e", ".[postgres]")
    session.run("python", "benchmarks/postgres.py", *session.posargs)


@nox.session
def stress(session: nox.Session) -> None:
    """The multi-process, crash (100 SIGKILLs) and oversell (5 rounds) tests, with figures."""
    session.install("-e", ".[test]")
    session.env["ORDERKIT_CRASH_RUNS"] = "100"
    session.env["ORDERKIT_OVERSELL_ROUNDS"] = "5"
    session.run(
        "python",
        "-m",
        "pytest",
        "-q",
        "-s",
        "tests/test_processes.py",
        "tests/test_oversell.py",
        *session.posargs,
    )


@nox.session
def postgres(session: nox.Session) -> None:
    """PostgreSQL at length: the returns suite end to end on PostgreSQL too, and 4 producers
    carrying 10,000 orders through the lifecycle while 8 dispatch workers deliver them (one
    SIGKILLed midway), with figures."""
    session.install("-e", ".[test]")
    session.env["ORDERKIT_PG_FULL"] = "1"
    session.env["ORDERKIT_PG_SCALE_ORDERS"] = "10000"
    session.env["ORDERKIT_PG_SCALE_TIMEOUT"] = "2400"
    session.run(
        "python",
        "-m",
        "pytest",
        "-q",
        "-s",
        "tests/test_returns.py",
        "tests/test_postgres_scale.py",
        *session.posargs,
    )


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site (Sphinx, MyST, furo), warnings as errors."""
    session.install("-e", ".[docs,test]")
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")
