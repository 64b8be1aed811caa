"""The `gateway` command as operators and technicians run it: in a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def gateway(*arguments: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """`gateway ARGUMENTS...`, to its end (the test fails past `timeout_s`)."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", *arguments],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def json_lines(*arguments: str) -> list[dict[str, Any]]:
    """What a command printed, one JSON object a line; it must have succeeded."""
    done = gateway(*arguments)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]
