"""The README's quick-start commands, read from README.md so that `.ci/run` and
tests/test_newcomer.py run exactly what a newcomer copies.

Each command is a one-line ``sh`` block right after a ``<!-- quick-start: NAME -->``
marker. Standard library only: `.ci/run` calls this with the system Python, before any
virtual environment exists (``python3 tests/support/readme.py README.md serve``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

_BLOCK = re.compile(r"<!-- quick-start: (\w+) -->\s*```sh\n(.*?)\n```", re.DOTALL)


def quick_start_commands(readme: str) -> dict[str, str]:
    """``{"serve": line, "test": line}``; ValueError if a block is missing or not one line."""
    commands = {name: body.strip() for name, body in _BLOCK.findall(readme)}
    for name in ("serve", "test"):
        if name not in commands:
            raise ValueError(f"README.md has no <!-- quick-start: {name} --> sh block")
        if "\n" in commands[name]:
            raise ValueError(f"README.md quick-start {name!r} must be one line")
    return commands


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: readme.py README.md serve|test")
    print(quick_start_commands(Path(sys.argv[1]).read_text(encoding="utf-8"))[sys.argv[2]])
