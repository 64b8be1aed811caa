"""The bulletin's charts: matplotlib figures drawn as SVG text to inline in the HTML.

Glyphs are drawn as paths (`svg.fonttype = "path"`), so a chart looks the same in any
browser and in the PDF without the reader's machine having a Chinese font; the font
they are drawn from is the CJK font fontconfig picks for Simplified Chinese (Debian's
`fonts-noto-cjk`). No pyplot: each chart is a `Figure` of its own, so nothing global
is left between charts. Output is deterministic (fixed hash salt, no date), so the same
month gives the same file.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import matplotlib

matplotlib.use("Agg")  # never a GUI backend, whatever the environment says

from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

# The bulletin's palette: a government report's red, with a dark blue and greys.
RED: Final = "#b3191e"
BLUE: Final = "#1f4e79"
LIGHT_BLUE: Final = "#8fb3d9"
GREY: Final = "#6b6b6b"
GRID: Final = "#d9d9d9"

WIDTH_IN: Final = 6.8  # the A4 text block (170 mm) in inches


class FontMissing(RuntimeError):
    """No Chinese font: the charts would show boxes (tofu) instead of text."""


@dataclass(frozen=True, slots=True)
class CjkFont:
    path: str
    family: str


@lru_cache(maxsize=1)
def cjk_font() -> CjkFont:
    """The font fontconfig chooses for Simplified Chinese, registered with matplotlib.

    `fc-match` always answers (with a Latin font when no CJK one is there), so the
    answer is checked to cover Chinese with `fc-list :lang=zh-cn`.
    """
    fc_match, fc_list = shutil.which("fc-match"), shutil.which("fc-list")
    if fc_match is None or fc_list is None:
        raise FontMissing("fontconfig (fc-match) is not installed")
    chinese = subprocess.run(  # noqa: S603 - fixed arguments
        [fc_list, ":lang=zh-cn", "file"], capture_output=True, text=True, check=True
    ).stdout
    files = {line.strip().rstrip(":") for line in chinese.splitlines() if line.strip()}
    found = subprocess.run(  # noqa: S603 - fixed arguments
        [fc_match, "--format=%{file}\t%{family[0]}", "sans-serif:lang=zh-cn"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path, _, family = found.partition("\t")
    if path not in files:
        raise FontMissing(
            "no font for Chinese found by fontconfig: install Debian's fonts-noto-cjk"
            " (tools/system-deps.sh)"
        )
    font_manager.fontManager.addfont(path)  # every face of a .ttc collection
    return CjkFont(path, family)


def _figure(height_in: float) -> Figure:
    font = cjk_font()
    matplotlib.rcParams.update({
        "font.family": [font.family],
        "font.size": 9,
        "axes.unicode_minus": False,  # the CJK font has no U+2212
        "svg.fonttype": "path",
        "svg.hashsalt": "cgt-bulletin",
    })  # fmt: skip
    return Figure(figsize=(WIDTH_IN, height_in), layout="constrained")


def _style(axes: matplotlib.axes.Axes, grid_axis: str) -> None:
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.spines["left"].set_color(GREY)
    axes.spines["bottom"].set_color(GREY)
    axes.tick_params(colors="#333333", length=3)
    axes.grid(axis=grid_axis, color=GRID, linewidth=0.6)  # type: ignore[arg-type]
    axes.set_axisbelow(True)


_XML_HEAD = re.compile(r"^.*?(?=<svg)", re.DOTALL)
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)
_SIZE = re.compile(r'<svg([^>]*?) width="[^"]*" height="[^"]*"')


def _svg(figure: Figure) -> str:
    """The figure as an `<svg>` element to inline: no XML prolog, sized by CSS."""
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    text = _METADATA.sub("", _XML_HEAD.sub("", out.getvalue(), count=1), count=1)
    # Width and height go: the page's CSS sizes it (100% of the column), the viewBox
    # keeps its proportions.
    return _SIZE.sub(r"<svg\1", text, count=1)


def daily_intake(days: Sequence[tuple[int, int, int]], *, weekends: Sequence[int] = ()) -> str:
    """Bars of the cases reported each day of the month, and a line of those closed.

    `days` holds (day of month, reported, closed); `weekends` the days to shade.
    """
    figure = _figure(2.5)
    axes = figure.add_subplot()
    _style(axes, "y")
    numbers = [day for day, _, _ in days]
    for day in weekends:
        axes.axvspan(day - 0.5, day + 0.5, color="#f2f2f2", zorder=0, linewidth=0)
    axes.bar(numbers, [r for _, r, _ in days], width=0.7, color=BLUE, label="上报")
    axes.plot(
        numbers, [c for _, _, c in days], color=RED, marker="o", markersize=2.5,
        linewidth=1.2, label="结案",
    )  # fmt: skip
    axes.set_xlim(0.4, max(numbers, default=1) + 0.6)
    axes.set_xticks(numbers)
    axes.set_xticklabels([str(day) for day in numbers], fontsize=7)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("日期（日）", color=GREY)
    axes.set_ylabel("案件数（件）", color=GREY)
    # Above the plot, where no bar can be under it.
    axes.legend(frameon=False, loc="lower right", ncols=2, bbox_to_anchor=(1.0, 1.0))
    return _svg(figure)


def unit_rates(units: Sequence[tuple[str, float | None, float | None]]) -> str:
    """Horizontal bars per unit: its closing rate and its on-time handling rate.

    `units` holds (name, 结案率, 按期处置率) in ranking order, the best first (drawn at
    the top); a missing rate draws no bar.
    """
    rows = list(reversed(units))
    figure = _figure(max(1.6, 0.32 * len(rows) + 0.9))
    axes = figure.add_subplot()
    _style(axes, "x")
    places = list(range(len(rows)))
    height = 0.38
    closing = [(rate or 0.0) * 100 for _, rate, _ in rows]
    on_time = [(rate or 0.0) * 100 for _, _, rate in rows]
    axes.barh([y + height / 2 for y in places], closing, height, color=BLUE, label="结案率")
    axes.barh(
        [y - height / 2 for y in places], on_time, height, color=LIGHT_BLUE, label="按期处置率"
    )
    axes.set_yticks(places)
    axes.set_yticklabels([name for name, _, _ in rows])
    axes.set_xlim(0, 105)
    axes.xaxis.set_major_formatter(PercentFormatter(decimals=0))
    axes.legend(frameon=False, loc="lower right", ncols=2, bbox_to_anchor=(1.0, 1.0))
    return _svg(figure)


def classes(top: Sequence[tuple[str, int, float]]) -> str:
    """Horizontal bars of the most reported problem classes with their share.

    `top` holds (class name, reported, share 0–1), the most reported first (at the top).
    """
    rows = list(reversed(top))
    figure = _figure(max(1.6, 0.3 * len(rows) + 0.7))
    axes = figure.add_subplot()
    _style(axes, "x")
    places = list(range(len(rows)))
    counts = [count for _, count, _ in rows]
    bars = axes.barh(
        places, counts, 0.6, color=[RED if y == len(rows) - 1 else BLUE for y in places]
    )
    axes.bar_label(
        bars, labels=[f"{count}件 · {share * 100:.1f}%" for _, count, share in rows],
        padding=3, fontsize=8, color="#333333",
    )  # fmt: skip
    axes.set_yticks(places)
    axes.set_yticklabels([name for name, _, _ in rows])
    axes.set_xlim(0, max(counts, default=1) * 1.25 or 1)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    return _svg(figure)
