"""The JSON Schema of the normalized report, generated from its model.

    python -m gateway.normalize.schema > gateway/schemas/normalized-report.schema.json

`tests/unit/test_normalized_schema.py` fails when the checked-in file and the model
drift apart, and validates real reports against it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import CoreSchema

from gateway.normalize.model import SCHEMA_ID, NormalizedReport

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schemas" / "normalized-report.schema.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


class _Generator(GenerateJsonSchema):
    """Pydantic titles each field after its name ("Skew S"), which the names say already,
    and keeps a docstring's line breaks in a description, which readers of the schema
    (and the AsyncAPI document it goes into) would see as breaks mid-sentence."""

    def field_title_should_be_set(self, schema: CoreSchema) -> bool:
        return False

    def generate(self, schema: CoreSchema, mode: JsonSchemaMode = "validation") -> JsonSchemaValue:
        unwrapped: JsonSchemaValue = _unwrapped(super().generate(schema, mode))
        return unwrapped


def _unwrapped(node: Any) -> Any:
    """Every description's lines joined into one paragraph."""
    if isinstance(node, dict):
        return {
            key: " ".join(value.split()) if key == "description" and isinstance(value, str)
            else _unwrapped(value)
            for key, value in node.items()
        }  # fmt: skip
    if isinstance(node, list):
        return [_unwrapped(item) for item in node]
    return node


def schema() -> dict[str, Any]:
    """The schema of a report as the gateway sends it (every field present)."""
    body = NormalizedReport.model_json_schema(
        by_alias=True, mode="serialization", schema_generator=_Generator
    )
    return {"$schema": DIALECT, "$id": SCHEMA_ID, **body}


def render() -> str:
    return json.dumps(schema(), ensure_ascii=False, indent=2) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
