"""The normalized report's JSON Schema is generated from its model: the checked-in file is
what the model says, it is a valid 2020-12 schema, real reports pass it, and what the
model would refuse it refuses too."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest
from jsonschema import Draft202012Validator

from gateway.media.jobs import DerivedFile, MediaDerived
from gateway.normalize import schema
from gateway.normalize.model import NormalizedReport
from gateway.normalize.report import with_derivatives
from tests.factories import normalized

REPORT_ID = "6f1c2d2e-4b8e-4a53-9a8e-2f7d0b5c1a90"
PHOTO_ID, VOICE_ID = "0b7e1c2d-4b8e-4a53-9a8e-2f7d0b5c1a91", "9a41c2d2-4b8e-4a53-9a8e-2f7d0b5c1a92"
SHA = "ab" * 32


def test_the_checked_in_schema_is_the_models() -> None:
    committed = schema.SCHEMA_FILE.read_text(encoding="utf-8")
    assert committed == schema.render(), (
        "run: .venv/bin/python -m gateway.normalize.schema"
        " > gateway/schemas/normalized-report.schema.json"
    )


def test_it_is_a_valid_2020_12_schema() -> None:
    Draft202012Validator.check_schema(schema.schema())


def full_report() -> NormalizedReport:
    """A registered report with a photo and a voice note, as the objects sink stores it."""
    bare = normalized(REPORT_ID).model_dump(by_alias=True)
    media: list[dict[str, Any]] = [
        {
            "media_id": media_id,
            "kind": kind,
            "mime": mime,
            "original": {"key": f"originals/sha256/ab/{SHA}{ext}", "sha256": SHA, "bytes": 1000},
            "derivatives": [],
            "metadata": None,
        }
        for media_id, kind, mime, ext in (
            (PHOTO_ID, "photo", "image/jpeg", ".jpg"),
            (VOICE_ID, "voice", "audio/amr", ".amr"),
        )
    ]
    report = NormalizedReport.model_validate({**bare, "media": media})

    photo = MediaDerived(
        PHOTO_ID,
        (
            DerivedFile("display.jpg", "image/jpeg", 500, SHA, width=1600, height=1200),
            DerivedFile("thumb.jpg", "image/jpeg", 100, SHA, width=320, height=240),
        ),
        {
            "format": "JPEG", "width": 4000, "height": 3000, "orientation": 6, "color": "sRGB",
            "captured_at": "2026-11-28T09:14:50+08:00",
            "exif_gps": {"lat": 32.03, "lon": 120.86, "alt_m": None},
        },
    )  # fmt: skip
    voice = MediaDerived(
        VOICE_ID,
        (DerivedFile("voice.opus", "audio/ogg", 300, SHA, duration_s=4.5),),
        {
            "duration_s": 4.5, "container": "amr", "codec": "amr_nb", "sample_rate": 8000,
            "channels": 1, "silent": False, "peak_dbfs": -6.0, "container_mismatch": False,
            "decode_errors": 0,
        },
    )  # fmt: skip
    derived = with_derivatives(report, {PHOTO_ID: photo, VOICE_ID: voice})
    return derived.with_case_no("E010220261128000042")


def as_sent(report: NormalizedReport) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(report.to_json())
    return document


def test_a_full_report_passes_it_with_formats_checked() -> None:
    validator = Draft202012Validator(
        schema.schema(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    validator.validate(as_sent(full_report()))


def test_its_json_reads_back_to_the_same_report_and_the_same_bytes() -> None:
    report = full_report()
    again = NormalizedReport.from_json(report.to_json())
    assert again == report
    assert again.to_json() == report.to_json()


def _broken(change: str) -> dict[str, Any]:
    document = as_sent(full_report())
    if change == "unknown field":
        document["priority"] = "high"
    elif change == "no case_no key":
        del document["case_no"]
    elif change == "a thumbnail as voice":
        document["media"][0]["derivatives"][1]["name"] = "voice.opus"
    elif change == "a class of its own":
        document["class"]["type"] = "complaint"
    elif change == "a grid code of 14 digits":
        document["location"]["grid_code"] = "32060200100200"
    elif change == "a wrong schema id":
        document["$schema"] = "https://example.com/other"
    return copy.deepcopy(document)


@pytest.mark.parametrize(
    "change",
    [
        "unknown field",
        "no case_no key",
        "a thumbnail as voice",
        "a class of its own",
        "a grid code of 14 digits",
        "a wrong schema id",
    ],
)
def test_what_the_model_refuses_the_schema_refuses(change: str) -> None:
    document = _broken(change)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema.schema())
    with pytest.raises(ValueError):  # pydantic's ValidationError is one
        NormalizedReport.model_validate_json(json.dumps(document))
