"""Locating a fix: grid cell, segment and units, coverage, GCJ-02, per fix.

Against the shipped trial layer (33 segments) and a synthetic city layer of 10,000
segments over a 30 km square, with the STR-tree index; and, as a baseline in the same
run, the naive way (distance to every segment) on both layers, to show what the index
buys as a city's layer grows.
"""

from __future__ import annotations

import csv
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coordTransform import gcj02_to_wgs84, wgs84_to_gcj02
from shapely.geometry import Point

from bench.common import summary, write
from gateway.config import load_config
from gateway.geo.distance import haversine_m
from gateway.geo.gcj02 import to_gcj02, to_wgs84
from gateway.geo.places import Locator, load_locator

FIXES = 5_000
ROUNDS = 5
CITY_SEGMENTS = 10_000
SOUTH, WEST, SPAN = 31.90, 120.75, 0.27  # about 30 km each way around Nantong


def synthetic_layer(directory: Path, count: int, seed: int = 7) -> tuple[Path, Path]:
    """`count` short road segments (50-400 m, a few vertices) spread over the square."""
    rng = random.Random(seed)
    features, rows = [], []
    for n in range(count):
        lat, lon = SOUTH + rng.random() * SPAN, WEST + rng.random() * SPAN
        points = [[lon, lat]]
        for _ in range(rng.randint(1, 4)):
            lat += rng.uniform(-0.001, 0.001)
            lon += rng.uniform(-0.001, 0.001)
            points.append([lon, lat])
        segment_id = f"X{n:05d}"
        features.append({"type": "Feature", "properties": {"segment_id": segment_id},
                         "geometry": {"type": "LineString", "coordinates": points}})  # fmt: skip
        rows.append({"segment_id": segment_id, "road_zh": f"路{n}", "road_en": f"Road {n}",
                     "extent_zh": "", "extent_en": "", "unit_zh": f"单位{n % 50}",
                     "unit_en": f"Unit {n % 50}", "parent_unit_zh": "城管局",
                     "source": "bench"})  # fmt: skip
    geojson, table = directory / "segments.geojson", directory / "segments.csv"
    geojson.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    with table.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return geojson, table


def random_fixes(count: int, seed: int = 11) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(SOUTH + rng.random() * SPAN, WEST + rng.random() * SPAN) for _ in range(count)]


def per_call_us(function: Callable[[float, float], Any], fixes: list[tuple[float, float]]) -> float:
    start = time.perf_counter()
    for lat, lon in fixes:
        function(lat, lon)
    return (time.perf_counter() - start) / len(fixes) * 1e6


def naive_match(locator: Locator) -> Callable[[float, float], Any]:
    """Distance to every segment, nearest within tolerance: no index."""
    index = locator.segments.index  # the same projected geometries

    def match(lat: float, lon: float) -> Any:
        point: Point = index.point(lat, lon)
        distances = [geometry.distance(point) for geometry in index.geometries]
        best = min(distances)
        return best if best <= locator.tolerance_m else None

    return match


def gcj02_round_trips(count: int = 20_000, seed: int = 3) -> dict[str, Any]:
    """Our iterated inverse against coordTransform's one-step one, anywhere in China."""
    rng = random.Random(seed)
    points = [(rng.uniform(18, 53), rng.uniform(73.7, 135)) for _ in range(count)]
    ours, one_step = [], []
    for lat, lon in points:
        ours.append(haversine_m(lat, lon, *to_wgs84(*to_gcj02(lat, lon))))
        gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
        back_lon, back_lat = gcj02_to_wgs84(gcj_lon, gcj_lat)
        one_step.append(haversine_m(lat, lon, back_lat, back_lon))
    return {
        "points": count,
        "ours_max_error_m": max(ours),
        "coordtransform_inverse_max_error_m": max(one_step),
        "coordtransform_inverse_median_error_m": statistics.median(one_step),
        "to_gcj02_us": per_call_us(to_gcj02, points),
        "to_wgs84_us": per_call_us(to_wgs84, points),
    }


def run() -> dict[str, Any]:
    fixes = random_fixes(FIXES)
    naive_fixes = fixes[: FIXES // 10]  # the naive way is slow on the big layer
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="cgt-bench-geo-") as scratch:
        city_segments, city_table = synthetic_layer(Path(scratch), CITY_SEGMENTS)
        layers = {
            "trial_33_segments": load_locator(load_config(None).geo),
            "city_10000_segments": load_locator(
                load_config(
                    None, {"geo.segments": str(city_segments), "geo.segment_table": str(city_table)}
                ).geo
            ),
        }
        for _ in range(ROUNDS):
            for name, locator in layers.items():
                results.setdefault(f"{name}.place", []).append(per_call_us(locator.place, fixes))
                match = locator.segments.match

                def segment(
                    lat: float,
                    lon: float,
                    m: Callable[[float, float, float], Any] = match,
                    t: float = locator.tolerance_m,
                ) -> Any:
                    return m(lat, lon, t)

                results.setdefault(f"{name}.segment_indexed", []).append(
                    per_call_us(segment, fixes)
                )
                results.setdefault(f"{name}.segment_naive", []).append(
                    per_call_us(naive_match(locator), naive_fixes)
                )
    medians = {key: statistics.median(values) for key, values in results.items()}
    result = {
        "benchmark": "geo",
        "unit": "microseconds per fix (median of rounds)",
        "fixes_per_round": FIXES,
        "rounds": ROUNDS,
        **{key: summary(values) for key, values in results.items()},
        "place_city_over_trial": medians["city_10000_segments.place"]
        / medians["trial_33_segments.place"],
        "naive_over_indexed_city": medians["city_10000_segments.segment_naive"]
        / medians["city_10000_segments.segment_indexed"],
        "gcj02": gcj02_round_trips(),
    }
    write("geo", result)
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
