"""Every document the code or the docs cite by path is in the project."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
CITED = re.compile(
    r"`?((?:docs|config|gateway|firmware_sim|tools|bench|tests)/[A-Za-z0-9_./-]+\.(?:md|yaml|json|toml|csv|geojson|py))`?"
)


def cited_paths() -> dict[str, set[Path]]:
    found: dict[str, set[Path]] = {}
    sources = [*ROOT.glob("*.md"), *ROOT.glob("docs/*.md")]
    for package in ("gateway", "firmware_sim", "tools", "bench", "fuzz"):
        sources += (
            path for path in ROOT.glob(f"{package}/**/*.py") if "node_modules" not in path.parts
        )
    for source in sources:
        for match in CITED.finditer(source.read_text(encoding="utf-8")):
            found.setdefault(match[1].rstrip("."), set()).add(source.relative_to(ROOT))
    return found


# Not files of the checkout: what `make bench` writes, and placeholders (`scenarios/NAME.toml`).
GENERATED = ("bench/results/",)
PLACEHOLDER = re.compile(r"/[A-Z_]+\.")


def test_every_cited_file_exists() -> None:
    missing = {
        path: sorted(map(str, where))
        for path, where in cited_paths().items()
        if not path.startswith(GENERATED)
        and not PLACEHOLDER.search(path)
        and not (ROOT / path).exists()
    }
    assert missing == {}


def test_the_wire_contract_the_simulator_is_written_from_is_in_the_project() -> None:
    assert "docs/wire-v1.md" in (ROOT / "firmware_sim/wire.py").read_text(encoding="utf-8")
    contract = (ROOT / "docs/wire-v1.md").read_text(encoding="utf-8")
    assert "# Terminal wire contract, version 1" in contract
