"""Generate docs/asyncapi.yaml from the wire models, so the document cannot drift.

    .venv/bin/python tools/asyncapi.py > docs/asyncapi.yaml

tests/unit/test_asyncapi.py fails when the committed file differs from this output.
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from gateway.errors import REASON_TEXT, Reason
from gateway.normalize.model import SCHEMA_ID
from gateway.normalize.schema import schema as normalized_schema
from gateway.protocols import casework
from gateway.protocols.payloads import (
    Ack,
    ErrorNotice,
    ReportEnvelope,
    Status,
    Task,
    TerminalConfig,
    Track,
    WireLimits,
)
from gateway.runtime.settings import LimitsSettings

ROOT = Path(__file__).resolve().parents[1]
DEVICE = {"device_id": {"description": "1-64 of A-Z a-z 0-9 _ - (`normalized` is reserved)"}}
# The project's licence (an SPDX identifier), for info.license.
LICENSE: str = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]["text"]
COMPONENT_SCHEMAS = "#/components/schemas/"


class Schemas:
    """`components.schemas`: every `$defs` of every payload, hoisted.

    Pydantic puts a model's nested models in the payload's own `$defs` and refers to them as
    `#/$defs/Name`; inside an AsyncAPI document that points at the document's root, where
    nothing is (the CLI: `invalid-ref`). So each payload's `$defs` move here and every
    `$ref` points at `#/components/schemas/Name`. Two different schemas of the same name
    (say a `Location` of the wire and one of the normalized report) would overwrite each
    other: that fails here, rename one model; the same schema twice (`Fix` of a report and
    of a track) is kept once.
    """

    def __init__(self) -> None:
        self.schemas: dict[str, dict[str, Any]] = {}
        self._origin: dict[str, str] = {}

    def add(self, origin: str, defs: dict[str, dict[str, Any]]) -> None:
        for name, body in defs.items():
            if name in self.schemas and self.schemas[name] != body:
                raise ValueError(
                    f"two different payload schemas are named {name!r} ({self._origin[name]} "
                    f"and {origin}): rename one of the models"
                )
            self.schemas.setdefault(name, body)
            self._origin.setdefault(name, origin)

    def model(self, model: Any) -> dict[str, Any]:
        """A wire model's payload schema; its nested models go to components.schemas."""
        body: dict[str, Any] = model.model_json_schema(
            mode="validation", ref_template=COMPONENT_SCHEMAS + "{model}"
        )
        self.add(model.__name__, body.pop("$defs", {}))
        return body

    def normalized(self) -> dict[str, Any]:
        """The normalized report's payload: gateway/schemas/normalized-report.schema.json,
        its `$defs` hoisted and its `$ref`s rewritten.

        Its `$schema` (JSON Schema 2020-12) and `$id` are left out. AsyncAPI 3.0's payload
        schemas are its Schema Object, a superset of draft-07, and no 2020-12 dialect can be
        declared in them; inside the document, `$id` would also set a new base URI, against
        which `#/components/schemas/...` would no longer resolve. Without `$defs` the schema
        uses no keyword that means something else in draft-07 (`const`, `anyOf` with
        `{"type": "null"}`, `format`, `pattern` are draft-07's own); the message's
        description names the file and its `$id`.
        """
        body = normalized_schema()
        body.pop("$schema", None)
        body.pop("$id", None)
        defs = body.pop("$defs", {})
        self.add("NormalizedReport", _rewrite_refs(defs))
        return _rewrite_refs(body)  # type: ignore[no-any-return]


def _rewrite_refs(node: Any) -> Any:
    """`#/$defs/Name` → `#/components/schemas/Name`, everywhere in a JSON Schema."""
    if isinstance(node, list):
        return [_rewrite_refs(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            if not value.startswith("#/$defs/"):
                raise ValueError(f"cannot place $ref {value!r} in the AsyncAPI document")
            out[key] = COMPONENT_SCHEMAS + value.removeprefix("#/$defs/")
        else:
            out[key] = _rewrite_refs(value)
    return out


def message(
    name: str, title: str, payload: dict[str, Any], summary: str, description: str = ""
) -> dict[str, Any]:
    return {
        "name": name,
        "title": title,
        "summary": summary,
        **({"description": description} if description else {}),
        "contentType": "application/json",
        "payload": payload,
    }


def build() -> dict[str, Any]:
    limits = WireLimits()
    schemas = Schemas()
    schema = schemas.model
    chunk = {
        "type": "string",
        "format": "binary",
        "maxLength": limits.chunk_bytes,
        "description": "Raw bytes of chunk `seq` (0-based). Every chunk but the last is exactly "
        "the manifest's `chunk_bytes` long.",
    }
    messages = {
        "report": message(
            "report",
            "Report envelope",
            schema(ReportEnvelope),
            "A problem report. Re-publishing the same report_id asks where it stands; it never "
            "makes a second case. At most 64 KiB.",
        ),
        "mediaChunk": {
            "name": "mediaChunk",
            "title": "Media chunk",
            "contentType": "application/octet-stream",
            "summary": "One chunk of a media file; chunks may come in any order, twice, or before "
            "their report.",
            "payload": chunk,
        },
        "status": message(
            "status",
            "Terminal status",
            schema(Status),
            'Retained; the terminal\'s last will publishes {"online": false}. Going online makes '
            "the gateway list the chunks still missing of that terminal's uploads.",
        ),
        "track": message("track", "Patrol track", schema(Track), "The inspector's patrol fixes."),
        "ack": message(
            "ack",
            "Answer about a report",
            schema(Ack),
            "`accepted` (with case_no) only once the report and all its media are durably "
            "stored and the case is registered (a verification report's case_no is its task's "
            "case); `incomplete` lists missing chunks by media id; `rejected` carries a reason "
            "code from x-reason-codes.",
        ),
        "error": message(
            "error",
            "Error notice",
            schema(ErrorNotice),
            "Added by cgt-gateway: an uplink that cannot be tied to a report (a bad chunk, "
            "status, track, or an envelope without a readable report_id) is answered here.",
        ),
        "task": message(
            "task",
            "Task for the inspector",
            schema(Task),
            "E.g. an on-site verification (核查) of a handled case. The terminal answers with "
            "a report carrying the task_id (a verification report), filed under case_no. "
            "At least once: deduplicate by task_id.",
        ),
        "config": message(
            "config",
            "Terminal settings",
            schema(TerminalConfig),
            "Retained: chunk size, photo size, upload windows.",
        ),
        "normalized": message(
            "normalized",
            "Normalized report",
            schemas.normalized(),
            "The standard component/event message, once per report, QoS 1 (at least once: "
            "deduplicate by report_id).",
            "The payload is the JSON Schema gateway/schemas/normalized-report.schema.json "
            f"(`$id` {SCHEMA_ID}), its `$defs` under components.schemas.",
        ),
    }
    messages |= {
        "caseCommand": message(
            "caseCommand",
            "Casework command",
            schema(casework.CaseCommand),
            "A casework backend asks one step of a case's lifecycle. Answered once on the "
            "sender's answers topic; applied once per command_id (sent again: `repeated`).",
            "The gateway commits the outcome to the case registry before its PUBACK, so an "
            "acknowledged command is never lost; the gateway's clock dates the step.",
        ),
        "caseAnswer": message(
            "caseAnswer",
            "Answer to a casework command",
            schema(casework.CaseAnswer),
            "`applied`, `repeated` or `refused` (with a code of x-casework-reason-codes). Not "
            "stored: a backend that missed it sends the command again with the same command_id.",
        ),
        "caseEvent": message(
            "caseEvent",
            "Case lifecycle event",
            schema(casework.CaseEventMessage),
            "Every transition of every case, whatever channel made it (MQTT, CLI, console), "
            "with the state after it. At least once: deduplicate and order by (case_no, seq).",
        ),
    }
    uplink = {"report": "report", "status": "status", "track": "track"}
    channels: dict[str, Any] = {
        name: {
            "address": f"cgt/v1/{{device_id}}/{name}",
            "parameters": DEVICE,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        for name in [*uplink, "ack", "task", "config", "error"]
    }
    channels["mediaChunk"] = {
        "address": "cgt/v1/{device_id}/media/{media_id}/{seq}",
        "parameters": DEVICE
        | {
            "media_id": {"description": "the manifest's media id, a UUID"},
            "seq": {"description": f"decimal, no leading zeros, below {limits.chunks_per_media}"},
        },
        "messages": {"mediaChunk": {"$ref": "#/components/messages/mediaChunk"}},
    }
    channels["normalized"] = {
        "address": "cgt/v1/normalized/{kind}/{class_code}",
        "parameters": {
            "kind": {"enum": ["component", "event"]},
            "class_code": {"description": "4- or 5-digit class code of the code profile"},
        },
        "messages": {"normalized": {"$ref": "#/components/messages/normalized"}},
    }
    account = {
        "account": {
            "description": "the casework account's username, casework.<1-32 of a-z 0-9 _ ->; "
            "the broker lets each account write only its own commands and read only its own "
            "answers"
        }
    }
    channels |= {
        "caseCommands": {
            "address": "cgt/v1/cases/commands/{account}",
            "parameters": account,
            "messages": {"caseCommand": {"$ref": "#/components/messages/caseCommand"}},
        },
        "caseAnswers": {
            "address": "cgt/v1/cases/answers/{account}",
            "parameters": account,
            "messages": {"caseAnswer": {"$ref": "#/components/messages/caseAnswer"}},
        },
        "caseEvents": {
            "address": "cgt/v1/cases/events/{case_no}",
            "parameters": {
                "case_no": {"description": "the case's number, e.g. E010220261128000042"}
            },
            "messages": {"caseEvent": {"$ref": "#/components/messages/caseEvent"}},
        },
    }
    operations = {
        f"receive_{name}": {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{name}"},
            "summary": "Terminal → gateway, QoS 1.",
        }
        for name in [*uplink, "mediaChunk"]
    } | {
        f"send_{name}": {
            "action": "send",
            "channel": {"$ref": f"#/channels/{name}"},
            "summary": "Gateway → terminal, QoS 1."
            if name != "normalized"
            else "Gateway → backend subscribers, QoS 1.",
        }
        for name in ["ack", "task", "config", "error", "normalized"]
    }
    operations |= {
        "receive_caseCommands": {
            "action": "receive",
            "channel": {"$ref": "#/channels/caseCommands"},
            "summary": "Casework backend → gateway, QoS 1.",
        },
        "send_caseAnswers": {
            "action": "send",
            "channel": {"$ref": "#/channels/caseAnswers"},
            "summary": "Gateway → the commanding backend, QoS 1.",
        },
        "send_caseEvents": {
            "action": "send",
            "channel": {"$ref": "#/channels/caseEvents"},
            "summary": "Gateway → casework backends, QoS 1.",
        },
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "cgt-gateway terminal and backend API",
            "version": "1.0.0",
            "description": (
                "The wire contract (wire-v1) between 城管通 terminals and cgt-gateway, the "
                "normalized stream for backends, and the casework topics on which backends "
                "drive the case lifecycle. Every message is MQTT QoS 1; JSON is UTF-8; "
                "times are RFC 3339 with an offset. Generated from the gateway's models by "
                "tools/asyncapi.py."
            ),
            "license": {"name": LICENSE, "url": f"https://spdx.org/licenses/{LICENSE}.html"},
        },
        "servers": {
            "production": {
                "host": "broker.example:8883",
                "protocol": "mqtts",
                "description": "TLS; every terminal has its own credentials and may "
                "use only its own topics.",
            },
            "demo": {
                "host": "127.0.0.1:1883",
                "protocol": "mqtt",
                "description": "`make demo`'s own broker on a free port.",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": dict(sorted(schemas.schemas.items())), "messages": messages},
        "x-reason-codes": {reason.value: REASON_TEXT[reason] for reason in Reason},
        # What a casework answer's `reason.code` may be: the wire's shape, the case's rules.
        "x-casework-reason-codes": casework.reason_text(),
        # A casework account's grants on the broker (`gateway devices casework add NAME`).
        "x-casework-acl": {
            "write": ["cgt/v1/cases/commands/{account}"],
            "read": [
                "cgt/v1/cases/answers/{account}",
                casework.EVENTS_SUBSCRIPTION,
                "cgt/v1/normalized/#",
            ],
        },
        "x-limits": {name: getattr(limits, name) for name in limits.__dataclass_fields__},
        # Each device's budgets (defaults; `[limits]` in the gateway's config): over one,
        # a message gets its `limit.*` code, and the terminal keeps it for later.
        "x-device-limits": asdict(LimitsSettings().device()),
    }


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def render() -> str:
    header = "# Generated by tools/asyncapi.py from gateway/protocols/payloads.py; do not edit.\n"
    body = yaml.dump(build(), Dumper=_NoAliases, allow_unicode=True, sort_keys=False, width=100)
    return header + body


if __name__ == "__main__":
    sys.stdout.write(render())
