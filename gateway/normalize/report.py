"""The standard component/event message (GB/T 30428 style), built from one report.

A pure function of the envelope, what the gateway knew when it arrived and the config:
the same inputs always give the same document, so a reprocessed report is identical.
The document's shape is `gateway/schemas/normalized-report.schema.json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.normalize.acceptance import AcceptanceWindow
from gateway.normalize.codes import ClassEntry
from gateway.object_keys import derivative_key, original_key
from gateway.protocols.payloads import ReportEnvelope

SCHEMA_ID = "https://cgt-gateway.example/schemas/normalized-report/1"


@dataclass(frozen=True, slots=True)
class Arrival:
    """What the gateway knew of a report when it arrived."""

    device_id: str
    received_at: datetime
    unit: str | None = None


def normalize(
    envelope: ReportEnvelope,
    arrival: Arrival,
    entry: ClassEntry,
    profile: str,
    window: AcceptanceWindow,
    location: dict[str, Any],
) -> dict[str, Any]:
    """Build the normalized report (without `case_no`, which the registry assigns).

    `location` is the geo stage's block (gateway.geo.location); the media's derivatives
    and metadata are added by `with_derivatives` once they exist.
    """
    return {
        "$schema": SCHEMA_ID,
        "report_id": envelope.report_id.lower(),
        "case_no": None,
        "class": {
            "type": entry.kind,
            "code": entry.code,
            "major": {"code": entry.major_code, "name": entry.major_name},
            "minor": {"code": entry.minor_code, "name": entry.minor_name},
            "name_en": entry.name_en,
            "profile": profile,
        },
        "object_code": envelope.object_code,
        "description": envelope.description,
        "location": location,
        "reporter": {
            "device_id": arrival.device_id,
            "inspector_id": envelope.inspector_id,
            "unit": arrival.unit,
        },
        "reported_at": envelope.created_at.isoformat(),
        "received_at": arrival.received_at.isoformat(),
        "acceptance": {
            "inside_window": window.contains(arrival.received_at),
            "window": window.label(),
            "timezone": window.timezone.key,
        },
        "clock": window.clock(envelope.created_at, arrival.received_at),
        "task_id": envelope.task_id and envelope.task_id.lower(),
        "media": [
            {
                "media_id": manifest.media_id.lower(),
                "kind": manifest.kind,
                "mime": manifest.mime,
                "original": {
                    "key": original_key(manifest.sha256, manifest.mime),
                    "sha256": manifest.sha256,
                    "bytes": manifest.bytes,
                },
                "derivatives": [],
                "metadata": {},
            }
            for manifest in envelope.media
        ],
    }


def with_case_no(report: dict[str, Any], case_no: str) -> dict[str, Any]:
    return {**report, "case_no": case_no}


def with_derivatives(
    report: dict[str, Any], derived: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]]
) -> dict[str, Any]:
    """The report with each media file's derivatives (keyed by object key) and metadata.

    `derived` maps a media id to (derivatives, metadata) as the media stage made them."""
    media = []
    for item in report["media"]:
        derivatives, metadata = derived.get(item["media_id"], ([], {}))
        keyed = [
            {"key": derivative_key(report["report_id"], item["media_id"], d["name"]), **d}
            for d in derivatives
        ]
        media.append({**item, "derivatives": keyed, "metadata": metadata})
    return {**report, "media": media}
