"""The project's `config/` tables the simulator reads as well (class codes, road segments).

Found without importing the gateway, which the simulator must not depend on: beside this
package in a checkout, or where the wheel puts them, under `gateway/_config`.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path


def config_path(name: str, instead: str) -> Path:
    """`config/NAME` (a file or a directory); `instead` names the argument that can say
    where it is when neither place holds it."""
    candidates = [Path(__file__).resolve().parent.parent / "config" / name]
    spec = find_spec("gateway")
    if spec is not None and spec.origin is not None:
        candidates.append(Path(spec.origin).parent / "_config" / name)
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"no config/{name} found; pass {instead}")
