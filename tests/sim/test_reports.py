"""What the planner reports: classes from the profile, a place on a patrol road, China time."""

from __future__ import annotations

import csv
import hashlib
import io
import math
import random
from datetime import datetime

import orjson
import pytest
from PIL import ExifTags, Image

from firmware_sim.nmea import checksum
from firmware_sim.reports import (
    CHINA_TIME,
    MediaKit,
    ReportPlanner,
    compose,
    default_codes_dir,
    load_codes,
)
from firmware_sim.routes import Road, load_roads

NOW = datetime(2026, 11, 28, 9, 15, 2, tzinfo=CHINA_TIME)


def profile_codes(kind_file: str) -> set[str]:
    with (default_codes_dir() / f"gbt30428_{kind_file}.csv").open(encoding="utf-8") as handle:
        return {row["code"] for row in csv.DictReader(handle)}


def metres_from_road(lat: float, lon: float, road: Road) -> float:
    """Distance to the nearest of the road's points sampled every 2 m (plenty here)."""
    samples = [road.at(d) for d in range(0, int(road.length_m) + 2, 2)]
    return min(
        math.hypot((lat - a) * 111_320, (lon - b) * 111_320 * math.cos(math.radians(a)))
        for a, b in samples
    )


def test_plans_look_like_inspectors_reports() -> None:
    planner = ReportPlanner(load_codes(), random.Random(1))
    plans = [planner.next(NOW) for _ in range(300)]
    codes = {"event": profile_codes("events"), "component": profile_codes("components")}
    roads = load_roads()
    for plan in plans:
        assert plan.class_code in codes[plan.kind]
        assert 1 <= len(plan.description) <= 500
        named = [r for r in roads if plan.description.startswith(r.road_zh)]
        assert plan.fix is not None
        # on its patrol road (a name may have several segments), give or take a phone
        # receiver's error (sigma 4 m)
        assert min(metres_from_road(plan.at[0], plan.at[1], road) for road in named) < 3
        assert min(metres_from_road(plan.fix.lat, plan.fix.lon, road) for road in named) < 25
        assert plan.fix.accuracy_m is not None
        assert 0 < plan.fix.accuracy_m < 20
        assert plan.created_at.isoformat().endswith("+08:00")
        assert plan.fix.time is not None
        assert plan.fix.time.endswith("Z")
        assert datetime.fromisoformat(plan.fix.time) <= plan.created_at
    assert {plan.kind for plan in plans} == {"event", "component"}
    assert len({plan.report_id for plan in plans}) == len(plans)
    assert 0.7 < sum(plan.voice for plan in plans) / len(plans) < 0.97
    photos = [plan.photos for plan in plans]  # one to three, mostly one
    assert set(photos) == {1, 2, 3}
    assert photos.count(1) > photos.count(2) > photos.count(3)
    with_nmea = [plan for plan in plans if plan.nmea]
    assert 0.2 < len(with_nmea) / len(plans) < 0.4
    for plan in with_nmea:
        assert plan.nmea is not None
        for sentence in plan.nmea:
            body, given = sentence[1:].split("*")
            assert checksum(body) == given
        assert [s[3:6] for s in plan.nmea] == ["RMC", "GGA"]


def test_a_seed_reproduces_content_but_never_ids() -> None:
    codes = load_codes()
    first, again = (ReportPlanner(codes, random.Random("s")) for _ in range(2))
    for _ in range(5):
        one, other = first.next(NOW), again.next(NOW)
        assert (one.class_code, one.description, one.fix) == (
            other.class_code,
            other.description,
            other.fix,
        )
        assert one.report_id != other.report_id


def test_composed_report_matches_its_media(small_kit: MediaKit) -> None:
    rng = random.Random(3)
    planner = ReportPlanner(load_codes(), rng, voice_share=1.0)
    plans = [planner.next(NOW) for _ in range(12)]
    plan = next(p for p in plans if p.photos == 3)
    report = compose(plan, small_kit, "INS-0001", 4096, rng)
    envelope = report.envelope
    assert [entry.kind for entry in envelope.media] == ["photo", "photo", "photo", "voice"]
    for entry in envelope.media:
        data = report.files[entry.media_id].read()
        assert (entry.size, entry.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        assert entry.chunk_bytes == 4096
        assert entry.chunk_count == math.ceil(len(data) / 4096)
    for photo in envelope.media[:3]:
        exif = Image.open(io.BytesIO(report.files[photo.media_id].read())).getexif()
        # The photo names its media id, so an original can be traced to its report.
        unique_id = exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.ImageUniqueID]
        assert unique_id == photo.media_id.replace("-", "")
    body = orjson.loads(orjson.dumps(envelope.to_json()))
    assert body["v"] == 1
    assert body["inspector_id"] == "INS-0001"
    assert len(orjson.dumps(body)) < 64 * 1024


def test_missing_codes_dir_is_reported() -> None:
    with pytest.raises(FileNotFoundError):
        load_codes(default_codes_dir() / "nowhere")
