"""The normalized report, built from one report as it arrived.

A pure function of the envelope, what the gateway knew when it arrived and the config:
the same inputs always give the same report, so a reprocessed report is identical. Its
media get their derivatives and metadata later (`with_derivatives`), once the media step
has made them, and its case number from the registry (`NormalizedReport.with_case_no`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime

from gateway.media.jobs import VOICE, DerivedFile, MediaDerived
from gateway.normalize.acceptance import AcceptanceWindow
from gateway.normalize.codes import ClassEntry
from gateway.normalize.model import (
    Derivative,
    Location,
    NormalizedReport,
    PhotoDerivative,
    PhotoMetadata,
    VoiceDerivative,
    VoiceMetadata,
)
from gateway.object_keys import derivative_key, original_key
from gateway.protocols.payloads import ReportEnvelope


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
    location: Location,
) -> NormalizedReport:
    """Build the normalized report (without `case_no`, which the registry assigns).

    `location` is the geo stage's (gateway.geo.report_location); the media's derivatives
    and metadata are added by `with_derivatives` once they exist.
    """
    # Plain fields, checked in one validation: a third of the cost of making each part a
    # model of its own as it is built (docs/decisions.md, "Code shape").
    return NormalizedReport.model_validate(
        {
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
            "reported_at": envelope.created_at,
            "received_at": arrival.received_at,
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
                    "derivatives": (),
                    "metadata": None,
                }
                for manifest in envelope.media
            ],
        }
    )


def with_derivatives(
    report: NormalizedReport, derived: Mapping[str, MediaDerived]
) -> NormalizedReport:
    """The report with each media file's derivatives (under their object keys) and the
    metadata the media stage read, by media id. Both are checked against the model here,
    where the stage's output joins the report."""
    media = []
    for item in report.media:
        made = derived.get(item.media_id)
        if made is None:
            media.append(item)
            continue
        derivatives = tuple(
            _derivative(derivative_key(report.report_id, item.media_id, file.name), file)
            for file in made.files
        )
        metadata_model = PhotoMetadata if item.kind == "photo" else VoiceMetadata
        metadata = metadata_model.model_validate(made.metadata)
        media.append(item.model_copy(update={"derivatives": derivatives, "metadata": metadata}))
    return report.model_copy(update={"media": tuple(media)})


def _derivative(key: str, file: DerivedFile) -> Derivative:
    fields = {
        "key": key,
        **{name: value for name, value in asdict(file).items() if value is not None},
    }
    if file.name == VOICE:
        return VoiceDerivative.model_validate(fields)
    return PhotoDerivative.model_validate(fields)
