"""Where each object lives in the object store; one layout for a local directory and S3.

    originals/sha256/ab/abcdef….jpg            an original, content-addressed: stored once
                                               however often it is sent; the key proves it
    reports/{report_id}/report.json            the case's normalized report
    reports/{report_id}/media/{media_id}/{name}   derivatives (display photo, thumbnail, voice)

A case's objects are filed under its report id, not its case number: the report id is
known the moment the report arrives, so every key is fixed before the case registry
answers, and reprocessing a report always yields the same keys.
"""

from __future__ import annotations

_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/heic": ".heic",
    "audio/amr": ".amr",
    "audio/amr-wb": ".awb",
    "audio/aac": ".aac",
    "audio/mp4": ".m4a",
    "audio/wav": ".wav",
}


def original_key(sha256: str, mime: str) -> str:
    return f"originals/sha256/{sha256[:2]}/{sha256}{_EXTENSIONS.get(mime, '')}"


def report_key(report_id: str) -> str:
    return f"reports/{report_id}/report.json"


def derivative_key(report_id: str, media_id: str, name: str) -> str:
    return f"reports/{report_id}/media/{media_id}/{name}"
