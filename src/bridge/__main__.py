"""`python -m bridge ...`, the same as the `bridge` command."""

from __future__ import annotations

from bridge.cli import main

main()
