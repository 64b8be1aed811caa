"""The normalized report: the standard component/event message (GB/T 30428), as one frozen,
typed model.

Everything that builds a report or reads one uses these classes: the geo stage makes its
`Location`, the media stages their `Derivative`s and metadata, the normalizer the
`NormalizedReport`, the registry, the objects sink and the bus read it. Its JSON Schema,
`gateway/schemas/normalized-report.schema.json`, is generated from here
(`python -m gateway.normalize.schema`), and a test fails when the two drift apart.

Serialized with `to_json()`: aliases (`$schema`, `class`), every field present (null
where unknown), in the order declared here; the same report always gives the same bytes.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SCHEMA_ID: Final = "https://cgt-gateway.example/schemas/normalized-report/1"

Uuid = Annotated[
    str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
DeviceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]


class Part(BaseModel):
    """Every part of the report: immutable, and nothing outside the schema."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        populate_by_name=True,
        # The schema says what the gateway sends: every field, defaults or not.
        json_schema_serialization_defaults_required=True,
    )


# ---- class --------------------------------------------------------------------------------


class CodeName(Part):
    code: Annotated[str, Field(pattern=r"^[0-9]{2,3}$")]
    name: str


class ReportClass(Part):
    type: Literal["component", "event"]
    code: Annotated[str, Field(pattern=r"^[0-9]{4,5}$")]
    major: CodeName
    minor: CodeName
    name_en: str
    profile: str = Field(
        description="The code profile the class was checked against, e.g. gbt30428."
    )


# ---- location -----------------------------------------------------------------------------


class Wgs84(Part):
    """The fix the report is placed by (the terminal's own, else the one its NMEA sentences
    gave), WGS-84."""

    lat: Latitude
    lon: Longitude
    accuracy_m: Annotated[float, Field(ge=0)] | None
    time: AwareDatetime | None
    alt_m: float | None
    hdop: Annotated[float, Field(ge=0)] | None
    satellites: Annotated[int, Field(ge=0)] | None


class Gcj02(Part):
    """The GCJ-02 (offset datum of Chinese web maps) position, for display only."""

    lat: float
    lon: float


class SegmentMatch(Part):
    segment_id: str
    segment_ids: tuple[str, ...] = Field(
        description="Every segment on this stretch (one stretch can be two rows of the table:"
        " a division and a squadron)."
    )
    road_zh: str
    road_en: str
    extent_zh: str
    distance_m: Annotated[float, Field(ge=0)]


class ResponsibleUnit(Part):
    unit_zh: str
    unit_en: str
    parent_unit_zh: str
    segment_id: str | None


class Coverage(Part):
    """Whether the place lies in a covered district (outside coverage is flagged by
    inside=false, never dropped)."""

    inside: bool
    district_zh: str | None
    district_en: str | None
    admin_code: str | None


class Place(Part):
    """Where a position is, for the city: what the geo stage's locator answers."""

    gcj02: Gcj02 | None
    grid_code: Annotated[str, Field(pattern=r"^[0-9]{15}$")] | None = Field(
        description="Unit grid (万米单元网格) code: 12-digit community code + 3-digit serial."
    )
    grid_source: Literal["layer", "generated"] | None = Field(
        description="layer: the city's grid; generated: a regular 100 m grid standing in"
        " until the city provides one."
    )
    segment: SegmentMatch | None
    responsible_units: tuple[ResponsibleUnit, ...]
    responsible_units_basis: Literal["segment", "district_default", "none"]
    coverage: Coverage | None


UNPLACED = Place(
    gcj02=None,
    grid_code=None,
    grid_source=None,
    segment=None,
    responsible_units=(),
    responsible_units_basis="none",
    coverage=None,
)


class Location(Place):
    source: Literal["fix", "nmea", "fix+nmea", "none"] = Field(
        description="Where the position came from."
    )
    wgs84: Wgs84 | None
    flags: tuple[str, ...] = Field(
        description="Why the position is not to be trusted as is; the report is kept so an"
        " acceptor can place it by hand. fix.zero, fix.outside_china, fix.stale,"
        " fix.ahead_of_report, fix.inaccurate, fix.jump, fix.nmea_disagrees, nmea.* (why the"
        " sentences gave no fix), location.unknown."
    )


# ---- who and when -------------------------------------------------------------------------


class Reporter(Part):
    device_id: DeviceId
    inspector_id: str
    unit: str | None


class Acceptance(Part):
    inside_window: bool = Field(
        description="Whether received_at falls inside the command center's acceptance window."
    )
    window: Annotated[str, Field(pattern=r"^[0-9]{2}:[0-9]{2}-[0-9]{2}:[0-9]{2}$")]
    timezone: str


class Clock(Part):
    """Whether the terminal's clock can be believed. Only the gateway's clock is trusted:
    received_at decides the acceptance window, the case number's day and the registry;
    reported_at is kept as the terminal said, and flagged here when it is implausible."""

    skew_s: float = Field(
        description="reported_at minus received_at, in seconds: how far the terminal's clock"
        " was ahead of the gateway's (negative: behind, or the report waited on the terminal,"
        " store and forward)."
    )
    flags: tuple[Literal["clock.ahead", "clock.behind"], ...] = Field(
        description="clock.ahead: created_at lies more than"
        " acceptance.created_at_max_ahead_s (300 s) after received_at (a fast clock);"
        " clock.behind: more than acceptance.created_at_max_behind_s (7 days) before it (a"
        " clock reset, or a report held longer than store and forward explains). Empty when"
        " reported_at is plausible."
    )


# ---- media --------------------------------------------------------------------------------


class Original(Part):
    """The original as the terminal sent it: evidence, stored byte for byte,
    content-addressed."""

    key: Annotated[str, Field(pattern=r"^originals/sha256/[0-9a-f]{2}/[0-9a-f]{64}(\.[a-z0-9]+)?$")]
    sha256: Sha256
    bytes: Annotated[int, Field(ge=1)]


_DERIVATIVE_KEY = (
    r"^reports/[0-9a-f-]{36}/media/[0-9a-f-]{36}/(display\.jpg|thumb\.jpg|voice\.opus)$"
)


class PhotoDerivative(Part):
    """A display JPEG (long edge 1600 px by default) or a thumbnail (320 px) of a photo:
    upright, sRGB, without EXIF."""

    name: Literal["display.jpg", "thumb.jpg"]
    key: Annotated[str, Field(pattern=_DERIVATIVE_KEY)]
    mime: Literal["image/jpeg"]
    bytes: Annotated[int, Field(ge=1)]
    sha256: Sha256
    width: Annotated[int, Field(ge=1)]
    height: Annotated[int, Field(ge=1)]


class VoiceDerivative(Part):
    """An Ogg Opus file of a voice note (mono, about 16 kbit/s)."""

    name: Literal["voice.opus"]
    key: Annotated[str, Field(pattern=_DERIVATIVE_KEY)]
    mime: Literal["audio/ogg"]
    bytes: Annotated[int, Field(ge=1)]
    sha256: Sha256
    duration_s: Annotated[float, Field(ge=0)]


# Told apart by `name` (each kind's names are its own); no `discriminator` keyword, which
# JSON Schema and AsyncAPI's schemas read differently.
Derivative = PhotoDerivative | VoiceDerivative


class ExifGps(Part):
    lat: float
    lon: float
    alt_m: float | None


class PhotoMetadata(Part):
    """What the gateway read from a photo (the derivatives carry no EXIF)."""

    format: str
    width: Annotated[int, Field(ge=1)] = Field(description="Of the original, upright.")
    height: Annotated[int, Field(ge=1)]
    orientation: Annotated[int, Field(ge=1, le=8)] = Field(description="Its EXIF orientation.")
    color: str = Field(description="What was done to make it sRGB.")
    captured_at: str | None = Field(
        description="The EXIF capture time, RFC 3339; without an offset when the camera gave none."
    )
    exif_gps: ExifGps | None


class VoiceMetadata(Part):
    """What the gateway read from a voice note."""

    duration_s: Annotated[float, Field(ge=0)] = Field(
        description="Measured from the decoded audio, not taken from the container."
    )
    container: str
    codec: str
    sample_rate: Annotated[int, Field(ge=1)]
    channels: Annotated[int, Field(ge=1)]
    silent: bool
    peak_dbfs: float
    container_mismatch: bool = Field(description="The container disagreed with the declared type.")
    decode_errors: Annotated[int, Field(ge=0)]


class Media(Part):
    media_id: Uuid
    kind: Literal["photo", "voice"]
    mime: str
    original: Original
    derivatives: tuple[Derivative, ...] = Field(
        description="Compact copies for display; empty until the media are processed."
    )
    metadata: PhotoMetadata | VoiceMetadata | None = Field(
        description="What the gateway read from the original; null until the media are"
        " processed (every published or stored report has it)."
    )


# ---- the report ---------------------------------------------------------------------------


class NormalizedReport(Part):
    """One inspector's report as cgt-gateway publishes it on
    cgt/v1/normalized/{kind}/{class_code}, stores it as reports/{report_id}/report.json and
    registers it as a case. Classification follows GB/T 30428.2 (component 部件 / event
    事件, major and minor class) through the gateway's code profile."""

    model_config = ConfigDict(
        title="Normalized report (the standard component/event message)",
        json_schema_extra={"$id": SCHEMA_ID},
    )

    schema_id: Literal["https://cgt-gateway.example/schemas/normalized-report/1"] = Field(
        SCHEMA_ID, alias="$schema"
    )
    report_id: Uuid = Field(
        description="The terminal-made id; idempotency key of the whole pipeline."
    )
    case_no: Annotated[str, Field(pattern=r"^[CE][0-9]{4,5}[0-9]{8}[0-9]{6,}$")] | None = Field(
        description="Assigned by the case registry: C (component) or E (event), class code,"
        " local date, serial. Null only before registration; every published or stored"
        " report has one."
    )
    class_: ReportClass = Field(alias="class")
    object_code: Annotated[str, Field(pattern=r"^[0-9]{16,17}$")] | None = Field(
        description="The surveyed component's identifier, when the terminal named one."
    )
    description: Annotated[str, Field(min_length=1, max_length=500)]
    location: Location
    reporter: Reporter
    reported_at: AwareDatetime = Field(
        description="created_at as the terminal said, by its clock (not trusted, see clock)."
    )
    received_at: AwareDatetime = Field(
        description="When the gateway took the report off the broker (its own clock, UTC)."
    )
    acceptance: Acceptance
    clock: Clock
    task_id: Uuid | None = Field(
        description="Set on a verification report answering a task; its case_no is then the"
        " task's case (a verification is filed under that case, never as a new one)."
    )
    media: tuple[Media, ...]

    def to_json(self) -> bytes:
        # The serializer's own bytes: model_dump_json would make a str to encode again.
        data: bytes = self.__pydantic_serializer__.to_json(self, by_alias=True)
        return data

    @classmethod
    def from_json(cls, data: bytes | str) -> NormalizedReport:
        return cls.model_validate_json(data)

    def with_case_no(self, case_no: str) -> NormalizedReport:
        return self.model_copy(update={"case_no": case_no})

    def as_dict(self) -> dict[str, Any]:
        """The JSON object, for a database column of type JSON."""
        return self.model_dump(mode="json", by_alias=True)
