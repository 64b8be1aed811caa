"""The unit grid (万米单元网格): 15-digit codes, 12-digit community code + 3-digit serial.

A city's grid layer (GeoJSON polygons, each with its `grid_code`) is used where there is
one. Where a city has none yet, a regular grid of square cells (100 m: the "ten-thousand
square metre" cell) over a configured extent stands in, with generated codes: the area
code (6 digits, GB/T 2260), then the cell's block row and column (3 digits each, blocks
of 10 × 10 cells), then the cell within its block (001-100). Generated codes are stable
for a given extent and cell size, and say so (`grid_source: generated`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from shapely.geometry import shape

from gateway.errors import ConfigError
from gateway.geo.distance import LocalPlane
from gateway.geo.layers import Indexed, plane_for, read_geojson

GRID_CODE = re.compile(r"[0-9]{15}")
BLOCK = 10  # cells per block side: 100 cells per block, serials 001-100


@dataclass(frozen=True, slots=True)
class GridCell:
    code: str
    source: Literal["layer", "generated"]


class GridLayer:
    def __init__(self, path: Path) -> None:
        codes, geometries, problems = [], [], []
        for number, feature in enumerate(read_geojson(path)):
            code = str((feature.get("properties") or {}).get("grid_code", ""))
            if not GRID_CODE.fullmatch(code):
                problems.append(f"{path}: feature {number}: grid_code {code!r} is not 15 digits")
                continue
            codes.append(code)
            geometries.append(shape(feature["geometry"]))
        if problems or not codes:
            raise ConfigError(problems or [f"{path}: no grid cells"])
        self.codes = codes
        self._index = Indexed(plane_for(geometries), geometries)

    def cell(self, lat: float, lon: float) -> GridCell | None:
        hits = self._index.tree.query(self._index.point(lat, lon), predicate="intersects")
        return GridCell(self.codes[int(min(hits))], "layer") if len(hits) else None


@dataclass(frozen=True, slots=True)
class RegularGrid:
    south: float
    west: float
    north: float
    east: float
    cell_m: float = 100.0
    area_code: str = "320600"

    def cell(self, lat: float, lon: float) -> GridCell | None:
        if not (self.south <= lat < self.north and self.west <= lon < self.east):
            return None
        plane = LocalPlane(self.south, self.west)
        x, y = plane.to_xy(lat, lon)
        column, row = int(x // self.cell_m), int(y // self.cell_m)
        block_row, block_column = divmod(row, BLOCK)[0], divmod(column, BLOCK)[0]
        if block_row > 999 or block_column > 999:
            return None  # beyond what the code can number: the extent is too large
        serial = (row % BLOCK) * BLOCK + (column % BLOCK) + 1
        code = f"{self.area_code}{block_row:03d}{block_column:03d}{serial:03d}"
        return GridCell(code, "generated")

    def cells_within(
        self, south: float, west: float, north: float, east: float, limit: int
    ) -> list[tuple[str, list[tuple[float, float]]]] | None:
        """Each cell meeting the box, as (code, its corners as (lat, lon)); None if there
        would be more than `limit` (a map too far out to draw them)."""
        plane = LocalPlane(self.south, self.west)
        x0, y0 = plane.to_xy(max(south, self.south), max(west, self.west))
        x1, y1 = plane.to_xy(min(north, self.north), min(east, self.east))
        if x1 <= x0 or y1 <= y0:
            return []
        columns = range(int(x0 // self.cell_m), math.ceil(x1 / self.cell_m))
        rows = range(int(y0 // self.cell_m), math.ceil(y1 / self.cell_m))
        if len(columns) * len(rows) > limit:
            return None
        cells = []
        for row in rows:
            for column in columns:
                corners = [
                    plane.to_latlon(column * self.cell_m + dx, row * self.cell_m + dy)
                    for dx, dy in ((0, 0), (self.cell_m, 0), (self.cell_m, self.cell_m),
                                   (0, self.cell_m))
                ]  # fmt: skip
                middle = plane.to_latlon((column + 0.5) * self.cell_m, (row + 0.5) * self.cell_m)
                cell = self.cell(*middle)
                if cell is not None:
                    cells.append((cell.code, corners))
        return cells

    def cells_across(self) -> tuple[int, int]:
        plane = LocalPlane(self.south, self.west)
        x, y = plane.to_xy(self.north, self.east)
        return math.ceil(y / self.cell_m), math.ceil(x / self.cell_m)
