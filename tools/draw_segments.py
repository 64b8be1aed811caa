"""Write config/segments.geojson and config/districts.geojson: APPROXIMATE geometry.

The seed names the responsibility roads of central Nantong but gives no coordinates. The
lines below are a schematic of the old town inside and around the Hao River (濠河), drawn
from the road names and extents of the seed's table, placed roughly where the roads run
(WGS-84), for simulation and tests. They are not surveyed data: a city replaces both
files with its own (`[geo]` in the gateway config). The district polygons are coarse
outlines of the three covered districts, likewise approximate.

    .venv/bin/python tools/draw_segments.py
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NOTE = (
    "APPROXIMATE schematic geometry drawn for simulation from the seed's road names and "
    "extents (tools/draw_segments.py); not surveyed; replace with the city's own data."
)

# Key places (lat, lon), WGS-84, approximate.
RENMIN = 32.0150  # 人民路 runs east-west here
YOUYI_BRIDGE = (RENMIN, 120.8452)  # 友谊桥, Renmin Road over the western Hao River
HEPING_BRIDGE = (RENMIN, 120.8728)  # 和平桥, over the eastern Hao River
XIAOSHI_BRIDGE = (RENMIN, 120.8815)  # 小石桥, further east
YUELONG_X = 120.8650  # 跃龙路 runs north-south here
NAN_DAJIE_X = 120.8600  # 南大街
ZHONGYUAN_BRIDGE = (32.0088, NAN_DAJIE_X)  # 中远桥
WEST_RING_X, EAST_RING_X = 120.8440, 120.8765  # 环城西路, 环城东路
NORTH_RING_Y, SOUTH_RING_Y = 32.0262, 31.9985  # 环城北路, 环城南路
HAO_WEST_X, HAO_EAST_X = 120.8486, 120.8722  # 濠西路, 濠东路 along the river
HAO_NORTH_Y, HAO_SOUTH_Y = 32.0226, 32.0024  # 濠北路, 濠南路
BEIHAO_X = 120.8578  # 北濠桥路
BEIHAO_BRIDGE = (32.0214, BEIHAO_X)  # 北濠桥
BEIHAO_LIGHT_X = 120.8590  # the traffic light north of Beihao Bridge
YI_BRIDGE_X = 120.8612  # 怡桥 on 濠南路
QINGNIAN = 32.0062  # 青年路
DUANJIABA_X = 120.8655  # 段家坝
GONGNONG_X = 120.8805  # 工农路
TAOWU = 32.0108  # 桃坞路
JIANSHE = 32.0190  # 建设路
CHENGSHAN = 31.9952  # 城山路
PEOPLES_PARK_BRIDGE = (32.0040, EAST_RING_X)  # 人民公园桥
CULTURAL_PALACE_BRIDGE = (32.0035, WEST_RING_X)  # 文化宫桥

Line = list[tuple[float, float]]


def ew(lat: float, west: float, east: float) -> Line:
    return [(lat, west), (lat, (west + east) / 2), (lat, east)]


def ns(lon: float, north: float, south: float) -> Line:
    return [(north, lon), ((north + south) / 2, lon), (south, lon)]


GEOMETRY: dict[str, list[Line]] = {
    "S01": [ew(RENMIN, YOUYI_BRIDGE[1], HEPING_BRIDGE[1])],
    "S02": [ns(EAST_RING_X, NORTH_RING_Y, SOUTH_RING_Y)],
    "S03": [ns(NAN_DAJIE_X, ZHONGYUAN_BRIDGE[0], 32.0010)],
    "S04": [ns(YUELONG_X, RENMIN, QINGNIAN)],
    "S05": [ew(SOUTH_RING_Y, WEST_RING_X, EAST_RING_X)],
    "S06": [ns(NAN_DAJIE_X, RENMIN, ZHONGYUAN_BRIDGE[0])],
    "S07": [ew(TAOWU, HAO_WEST_X, HAO_EAST_X)],
    "S08": [ns(GONGNONG_X, RENMIN, QINGNIAN)],
    "S09": [ew(RENMIN, YOUYI_BRIDGE[1], YUELONG_X)],
    "S10": [ns(BEIHAO_X, BEIHAO_BRIDGE[0], RENMIN)],
    "S11": [ew(JIANSHE, HAO_WEST_X, HAO_EAST_X)],
    "S12": [ns(EAST_RING_X, NORTH_RING_Y, RENMIN)],
    "S13": [ns(WEST_RING_X, NORTH_RING_Y, RENMIN)],
    "S14": [ew(NORTH_RING_Y, WEST_RING_X, EAST_RING_X)],
    "S15": [ns(NAN_DAJIE_X, ZHONGYUAN_BRIDGE[0], 32.0010)],
    "S16": [ns(YUELONG_X, RENMIN, SOUTH_RING_Y)],
    "S17": [ns(HAO_WEST_X, HAO_NORTH_Y, HAO_SOUTH_Y)],
    "S18": [ew(QINGNIAN, WEST_RING_X, DUANJIABA_X)],
    "S19": [ew(HAO_NORTH_Y, HAO_WEST_X, BEIHAO_LIGHT_X)],
    "S20": [ew(TAOWU, HAO_WEST_X, HAO_EAST_X)],
    "S21": [ew(HAO_SOUTH_Y, HAO_WEST_X, YI_BRIDGE_X)],
    "S22": [ns(NAN_DAJIE_X, RENMIN, ZHONGYUAN_BRIDGE[0])],
    "S23": [ew(SOUTH_RING_Y, WEST_RING_X, EAST_RING_X)],
    "S24": [ns(EAST_RING_X, RENMIN, PEOPLES_PARK_BRIDGE[0])],
    "S25": [ns(WEST_RING_X, RENMIN, CULTURAL_PALACE_BRIDGE[0])],
    "S26": [ns(GONGNONG_X, NORTH_RING_Y, SOUTH_RING_Y)],
    "S27": [ew(QINGNIAN, DUANJIABA_X, GONGNONG_X)],
    # 城山路 "branches included": the road and a short spur to the north.
    "S28": [ew(CHENGSHAN, HAO_WEST_X, GONGNONG_X), ns(120.8700, SOUTH_RING_Y, CHENGSHAN)],
    "S29": [ew(HAO_SOUTH_Y, YI_BRIDGE_X, HAO_EAST_X)],
    "S30": [ns(HAO_EAST_X, HAO_NORTH_Y, HAO_SOUTH_Y)],
    "S31": [ew(RENMIN, YOUYI_BRIDGE[1], XIAOSHI_BRIDGE[1])],
    "S32": [ew(HAO_NORTH_Y, BEIHAO_X, HAO_EAST_X)],
    "S33": [ns(BEIHAO_X, HAO_NORTH_Y, BEIHAO_BRIDGE[0])],
}

# Coarse outlines (lat, lon) of the covered districts; admin codes from coverage.csv.
DISTRICTS: dict[str, tuple[str, str, list[tuple[float, float]]]] = {
    "崇川区": ("Chongchuan District", "320602", [
        (31.9650, 120.8200), (31.9650, 120.9300), (32.0500, 120.9300),
        (32.0500, 120.8700), (32.0300, 120.8200),
    ]),
    "港闸区": ("Gangzha District", "320611", [
        (32.0300, 120.7600), (32.0300, 120.8200), (32.0500, 120.8700),
        (32.0500, 120.9000), (32.1200, 120.9000), (32.1200, 120.7600),
    ]),
    "开发区": ("Nantong Economic and Technological Development Zone", "", [
        (31.8800, 120.9000), (31.8800, 121.0200), (31.9650, 121.0200),
        (31.9650, 120.9300), (31.9650, 120.9000),
    ]),
}  # fmt: skip


def lonlat(line: Line) -> list[list[float]]:
    return [[lon, lat] for lat, lon in line]


def segments() -> dict[str, Any]:
    with (ROOT / "config/responsibility_segments.csv").open(encoding="utf-8") as handle:
        rows = {row["segment_id"]: row for row in csv.DictReader(handle)}
    if set(rows) != set(GEOMETRY):
        raise SystemExit(f"segments without geometry or rows: {set(rows) ^ set(GEOMETRY)}")
    features = []
    for segment_id, lines in GEOMETRY.items():
        row = rows[segment_id]
        geometry = (
            {"type": "LineString", "coordinates": lonlat(lines[0])}
            if len(lines) == 1
            else {"type": "MultiLineString", "coordinates": [lonlat(line) for line in lines]}
        )
        properties = {
            "segment_id": segment_id,
            "road_zh": row["road_zh"],
            "road_en": row["road_en"],
            "extent_zh": row["extent_zh"],
            "geometry_source": "approximate",
        }
        features.append({"type": "Feature", "properties": properties, "geometry": geometry})
    return {"type": "FeatureCollection", "name": "responsibility_segments", "note": NOTE,
            "features": features}  # fmt: skip


def districts() -> dict[str, Any]:
    features = []
    for name_zh, (name_en, admin_code, ring) in DISTRICTS.items():
        closed = [*ring, ring[0]]
        features.append({
            "type": "Feature",
            "properties": {"district_zh": name_zh, "district_en": name_en,
                           "admin_code": admin_code or None, "geometry_source": "approximate"},
            "geometry": {"type": "Polygon", "coordinates": [lonlat(closed)]},
        })  # fmt: skip
    return {"type": "FeatureCollection", "name": "covered_districts", "note": NOTE,
            "features": features}  # fmt: skip


def write(name: str, collection: dict[str, Any]) -> None:
    text = json.dumps(collection, ensure_ascii=False, indent=1)
    (ROOT / "config" / name).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    write("segments.geojson", segments())
    write("districts.geojson", districts())
