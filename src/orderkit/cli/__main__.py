"""``python -m orderkit.cli``: the ``orderkit`` command."""

from orderkit.cli import main

main()
