"""The gateway's one error tree, and the reason codes terminals receive.

    GatewayError
    ├── ConfigError            a config file or option is wrong (start-up refuses)
    ├── Rejection              the input is wrong; carries a Reason for the terminal
    │   └── MediaError         a photo or voice note cannot be decoded or transcoded
    └── SinkError              a sink (objects, registry, bus) failed
        ├── RetryableSinkError     try again later (timeout, 5xx, broker down)
        └── PermanentSinkError     will never work as is (dead letter)

Reason codes are part of the wire contract (`docs/asyncapi.yaml`): a terminal's
firmware branches on them, so a code once published never changes meaning.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Stable machine codes sent to terminals in `ack.reason.code` and `error.reason.code`."""

    # topic grammar
    TOPIC_MALFORMED = "topic.malformed"
    TOPIC_DEVICE_ID = "topic.device_id"
    TOPIC_MEDIA_ID = "topic.media_id"
    TOPIC_SEQ = "topic.seq"
    # payload framing, for every JSON message
    PAYLOAD_TOO_LARGE = "payload.too_large"
    PAYLOAD_NOT_JSON = "payload.not_json"
    PAYLOAD_NOT_OBJECT = "payload.not_object"
    FIELD_MISSING = "field.missing"
    FIELD_INVALID = "field.invalid"
    FIELD_UNKNOWN = "field.unknown"
    # report envelope
    ENVELOPE_VERSION = "envelope.version"
    ENVELOPE_DEVICE_MISMATCH = "envelope.device_mismatch"
    ENVELOPE_NO_LOCATION = "envelope.no_location"
    REPORT_ID_CONFLICT = "report.id_conflict"
    CLASS_UNKNOWN = "class.unknown"
    TASK_UNKNOWN = "task.unknown"
    # the device registry (checked once a device is registered: docs/operations.md)
    DEVICE_UNKNOWN = "device.unknown"
    DEVICE_SUSPENDED = "device.suspended"
    DEVICE_REVOKED = "device.revoked"
    # media manifest and chunks
    MEDIA_MIME = "media.mime_unsupported"
    MEDIA_TOO_LARGE = "media.too_large"
    MEDIA_TOO_MANY = "media.too_many"
    MEDIA_TOO_MANY_CHUNKS = "media.too_many_chunks"
    MEDIA_DUPLICATE_ID = "media.duplicate_id"
    MEDIA_ID_IN_USE = "media.id_in_use"
    MEDIA_CHECKSUM = "media.checksum_mismatch"
    CHUNK_EMPTY = "chunk.empty"
    CHUNK_TOO_LARGE = "chunk.too_large"
    CHUNK_SEQ_RANGE = "chunk.seq_out_of_range"
    CHUNK_SIZE = "chunk.size_mismatch"
    # photos and voice notes, as decoded
    PHOTO_UNREADABLE = "photo.unreadable"
    PHOTO_CORRUPT = "photo.corrupt"
    PHOTO_TRUNCATED = "photo.truncated"
    PHOTO_EMPTY = "photo.empty"
    PHOTO_TOO_MANY_PIXELS = "photo.too_many_pixels"
    VOICE_UNREADABLE = "voice.unreadable"
    VOICE_NO_AUDIO = "voice.no_audio"
    VOICE_EMPTY = "voice.empty"
    VOICE_TOO_LONG = "voice.too_long"
    MEDIA_TIMEOUT = "media.timeout"
    MEDIA_DECODER_FAILED = "media.decoder_failed"
    # the device's own budgets (gateway/devices/limits.py): keep it, send it again later
    LIMIT_REPORTS_PER_MINUTE = "limit.reports_per_minute"
    LIMIT_MEDIA_BYTES_PER_HOUR = "limit.media_bytes_per_hour"
    LIMIT_SPOOL_BYTES = "limit.spool_bytes"
    # the gateway itself
    RETRY_LATER = "server.retry_later"


REASON_TEXT: dict[Reason, str] = {
    Reason.TOPIC_MALFORMED: "the topic does not follow cgt/v1/{device_id}/{message}",
    Reason.TOPIC_DEVICE_ID: "the device id in the topic is not 1-64 of A-Z a-z 0-9 _ -",
    Reason.TOPIC_MEDIA_ID: "the media id in the topic is not a UUID",
    Reason.TOPIC_SEQ: "the chunk number in the topic is not a decimal number in range",
    Reason.PAYLOAD_TOO_LARGE: "the payload is larger than allowed",
    Reason.PAYLOAD_NOT_JSON: "the payload is not UTF-8 JSON",
    Reason.PAYLOAD_NOT_OBJECT: "the payload is not a JSON object",
    Reason.FIELD_MISSING: "a required field is missing",
    Reason.FIELD_INVALID: "a field has a wrong type or value",
    Reason.FIELD_UNKNOWN: "a field is not part of the contract",
    Reason.ENVELOPE_VERSION: "the envelope version is not supported",
    Reason.ENVELOPE_DEVICE_MISMATCH: "the payload names another device than the topic",
    Reason.ENVELOPE_NO_LOCATION: "the report carries neither fix nor nmea",
    Reason.REPORT_ID_CONFLICT: "this report id belongs to another device",
    Reason.CLASS_UNKNOWN: "the class code is not in the gateway's code profile",
    Reason.TASK_UNKNOWN: "the task_id names no task issued to this device",
    Reason.DEVICE_UNKNOWN: "the device id is not in the gateway's device registry",
    Reason.DEVICE_SUSPENDED: "the device is suspended; an operator must resume it",
    Reason.DEVICE_REVOKED: "the device is revoked and may send nothing",
    Reason.MEDIA_MIME: "the media type is not accepted for this kind",
    Reason.MEDIA_TOO_LARGE: "the media file is larger than allowed",
    Reason.MEDIA_TOO_MANY: "the report carries more media files than allowed",
    Reason.MEDIA_TOO_MANY_CHUNKS: "the media file would need more chunks than allowed",
    Reason.MEDIA_DUPLICATE_ID: "two media entries share one media id",
    Reason.MEDIA_ID_IN_USE: "the media id already belongs to another report",
    Reason.MEDIA_CHECKSUM: "the assembled media file does not match its size or SHA-256",
    Reason.CHUNK_EMPTY: "the chunk is empty",
    Reason.CHUNK_TOO_LARGE: "the chunk is larger than allowed",
    Reason.CHUNK_SEQ_RANGE: "the chunk number is beyond the end of the media file",
    Reason.CHUNK_SIZE: "the chunk's length does not match the manifest's chunk_bytes",
    Reason.PHOTO_UNREADABLE: "the photo is not a JPEG, PNG or HEIC image",
    Reason.PHOTO_CORRUPT: "the photo cannot be decoded",
    Reason.PHOTO_TRUNCATED: "the photo file ends before the image does",
    Reason.PHOTO_EMPTY: "the photo has no pixels",
    Reason.PHOTO_TOO_MANY_PIXELS: "the photo declares more pixels than allowed",
    Reason.VOICE_UNREADABLE: "the voice note is not in a readable audio format",
    Reason.VOICE_NO_AUDIO: "the file holds no audio stream",
    Reason.VOICE_EMPTY: "the voice note holds no sound samples",
    Reason.VOICE_TOO_LONG: "the voice note is longer than allowed",
    Reason.MEDIA_TIMEOUT: "decoding the media file took longer than allowed",
    Reason.MEDIA_DECODER_FAILED: "the decoder failed on this media file",
    Reason.LIMIT_REPORTS_PER_MINUTE: (
        "this device sent more new reports a minute than allowed; keep the report and retry later"
    ),
    Reason.LIMIT_MEDIA_BYTES_PER_HOUR: (
        "this device sent more media bytes an hour than allowed; keep the chunk and retry later"
    ),
    Reason.LIMIT_SPOOL_BYTES: (
        "the gateway holds as many unfinished uploads of this device as allowed;"
        " keep the chunk and retry later"
    ),
    Reason.RETRY_LATER: "the gateway cannot take this now; keep the report and retry later",
}


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """The configuration is wrong. `problems` lists each mistake with where it is."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class Rejection(GatewayError):
    """Input we refuse, with the reason code that goes back to the terminal."""

    def __init__(self, reason: Reason, detail: str | None = None) -> None:
        self.reason = reason
        self.detail = detail or REASON_TEXT[reason]
        super().__init__(f"{reason}: {self.detail}")


class MediaError(Rejection):
    """A media file that cannot be decoded or transcoded."""


class SinkError(GatewayError):
    """A sink failed to take a delivery."""


class RetryableSinkError(SinkError):
    """The sink may take it later: a timeout, a 5xx, a lost connection."""


class PermanentSinkError(SinkError):
    """The sink will never take it as it stands; the delivery becomes a dead letter."""
