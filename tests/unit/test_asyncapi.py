"""docs/asyncapi.yaml is what the models say, names every reason code and topic, and is a
valid AsyncAPI document: every `$ref` resolves inside it, and the AsyncAPI CLI (pinned in
tools/asyncapi-cli, installed by `make test`) finds no error and no warning in it."""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cases.workflow import RefusalCode
from gateway.errors import Reason
from gateway.protocols import casework

ROOT = Path(__file__).parents[2]
DOCUMENT = ROOT / "docs/asyncapi.yaml"
CLI_DIR = ROOT / "tools/asyncapi-cli"
CLI = CLI_DIR / "node_modules/.bin/asyncapi"


def _tool() -> dict[str, Any]:
    return runpy.run_path(str(ROOT / "tools/asyncapi.py"))


def _document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    return document


def test_committed_document_matches_the_models() -> None:
    generated = _tool()["render"]()
    committed = DOCUMENT.read_text(encoding="utf-8")
    assert committed == generated, "run: .venv/bin/python tools/asyncapi.py > docs/asyncapi.yaml"


def test_every_reason_code_and_channel_is_documented() -> None:
    document = _document()
    assert set(document["x-reason-codes"]) == {reason.value for reason in Reason}
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {
        "cgt/v1/{device_id}/report",
        "cgt/v1/{device_id}/media/{media_id}/{seq}",
        "cgt/v1/{device_id}/status",
        "cgt/v1/{device_id}/track",
        "cgt/v1/{device_id}/ack",
        "cgt/v1/{device_id}/task",
        "cgt/v1/{device_id}/config",
        "cgt/v1/{device_id}/error",
        "cgt/v1/normalized/{kind}/{class_code}",
        "cgt/v1/cases/commands/{account}",
        "cgt/v1/cases/answers/{account}",
        "cgt/v1/cases/events/{case_no}",
    }
    # A casework answer's codes: every refusal of the case's rules, and the wire's own.
    casework_codes = set(document["x-casework-reason-codes"])
    assert casework_codes == set(casework.reason_text())
    assert {code.value for code in RefusalCode} <= casework_codes
    assert casework_codes - {code.value for code in RefusalCode} <= {r.value for r in Reason}
    # The topics the code builds are the ones documented.
    assert casework.commands_topic("{account}") == "cgt/v1/cases/commands/{account}"
    assert casework.answers_topic("{account}") == "cgt/v1/cases/answers/{account}"
    assert casework.events_topic("{case_no}") == "cgt/v1/cases/events/{case_no}"
    for message in document["components"]["messages"].values():
        assert message["payload"], message["name"]


def _walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (path, value) of the document, depth first."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*path, str(index)))


def _resolve(document: dict[str, Any], ref: str) -> Any:
    """A local JSON Pointer reference (`#/a/b`), or KeyError."""
    assert ref.startswith("#/"), f"{ref}: not a reference inside the document"
    node: Any = document
    for escaped in ref[2:].split("/"):
        token = escaped.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def _is_keyword(path: tuple[str, ...]) -> bool:
    """Whether the last step of `path` is a keyword, not a property named like one (the
    normalized report has a property `$schema`)."""
    return len(path) < 2 or path[-2] != "properties"


def test_every_ref_resolves_inside_the_document() -> None:
    document = _document()
    refs = 0
    for path, value in _walk(document):
        if not path or not _is_keyword(path):
            continue
        where = ".".join(path)
        if path[-1] == "$ref":
            refs += 1
            try:
                _resolve(document, value)
            except (KeyError, IndexError, ValueError, TypeError):
                pytest.fail(f"{where}: {value} does not resolve inside the document")
        # A payload's own `$defs` would be where its refs point; `$id` would move their base.
        assert path[-1] not in {"$defs", "definitions", "$id", "$schema"}, where
    assert refs > 30, "expected the payloads to refer to components.schemas"


def test_nested_models_are_components_schemas() -> None:
    schemas = _document()["components"]["schemas"]
    # Of the wire models, and of the normalized report.
    assert {"Fix", "MediaManifest", "ReasonBody", "TaskLocation"} <= set(schemas)
    assert {"Location", "Media", "Wgs84", "ReportClass", "Clock"} <= set(schemas)


def test_two_different_schemas_of_one_name_fail_loudly() -> None:
    schemas = _tool()["Schemas"]()
    schemas.add("Report", {"Location": {"type": "object"}})
    schemas.add("Track", {"Location": {"type": "object"}})  # the same schema: kept once
    with pytest.raises(ValueError, match="'Location'"):
        schemas.add("Task", {"Location": {"type": "string"}})


def test_unplaceable_refs_fail_loudly() -> None:
    with pytest.raises(ValueError, match="cannot place"):
        _tool()["_rewrite_refs"]({"items": {"$ref": "other.json#/Thing"}})


@pytest.mark.skipif(
    not CLI.exists(),
    reason="the AsyncAPI CLI is not installed in tools/asyncapi-cli (`make test` installs it)",
)
def test_asyncapi_cli_finds_the_document_valid(tmp_path: Path) -> None:
    pinned = json.loads((CLI_DIR / "package.json").read_text())["dependencies"]["@asyncapi/cli"]
    installed = json.loads((CLI_DIR / "node_modules/@asyncapi/cli/package.json").read_text())
    assert installed["version"] == pinned, "run make test (it runs npm ci)"
    # A home of its own: the CLI is to write nothing there (its analytics are off).
    home = tmp_path / "home"
    home.mkdir()
    result = subprocess.run(
        [CLI_DIR / "asyncapi", "validate", "docs/asyncapi.yaml", "--fail-severity", "warn"],
        cwd=ROOT,
        env=os.environ | {"HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "docs/asyncapi.yaml is valid" in output, output
    # Stylish diagnostics read `LINE:COLUMN  SEVERITY  CODE  MESSAGE`.
    assert not re.search(r"\d+:\d+ +(error|warning) ", output), output
    # No word about analytics, nor a failed attempt to send them.
    assert "metrics" not in output, output
    assert "tracks" not in output, output
    assert not list(home.iterdir()), "the CLI wrote to its home"
