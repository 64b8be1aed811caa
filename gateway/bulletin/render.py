"""The bulletin as one self-contained HTML file (CSS and charts inline), and as a PDF
made from the same HTML by WeasyPrint (HTML + CSS → PDF through Pango, so the Chinese
fonts fontconfig finds are embedded, subset)."""

from __future__ import annotations

import calendar
from datetime import date, datetime
from importlib.resources import files
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from gateway.bulletin import charts
from gateway.bulletin.content import Bulletin, Change, change_text, date_zh, percent

OVERDUE_ROWS: Final = 30  # overdue cases listed one by one; the rest are counted


def _count(value: float | None) -> str:
    return "—" if value is None else str(int(value))


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _days(value: float) -> str:
    return f"{value:.1f}"


def _environment(tz: ZoneInfo) -> Environment:
    environment = Environment(
        loader=PackageLoader("gateway.bulletin", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,  # a misspelt field fails the render, not prints nothing
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters |= {
        "pct": percent,
        "count": _count,
        "score": _score,
        "days": _days,
        "moved": lambda change: change_text(change) if isinstance(change, Change) else "—",
        "local": lambda moment: _local(moment, tz),
        "month_start": date_zh,
        "month_end": lambda month: date_zh(
            month.replace(day=calendar.monthrange(month.year, month.month)[1])
        ),
    }
    return environment


def _local(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def chart_svgs(bulletin: Bulletin) -> dict[str, str]:
    """The three charts as inline SVG; a chart with nothing to show is left out."""
    weekends = [d.day.day for d in bulletin.days if d.day.weekday() >= 5]
    units = [
        (item.label, item.figures.rates.get("closing_rate"),
         item.figures.rates.get("on_time_handling_rate"))
        for item in bulletin.units if item.rank > 0
    ]  # fmt: skip
    classes = [(item.label, item.reported, item.share) for item in bulletin.classes]
    return {
        "daily": charts.daily_intake(
            [(d.day.day, d.reported, d.closed) for d in bulletin.days], weekends=weekends
        ),
        "units": charts.unit_rates(units) if units else "",
        "classes": charts.classes(classes) if classes else "",
    }


def html(bulletin: Bulletin, tz: ZoneInfo) -> str:
    """The bulletin as one HTML file: nothing to fetch, so it can be mailed or archived."""
    environment = _environment(tz)
    css = files("gateway.bulletin").joinpath("templates", "bulletin.css").read_text("utf-8")
    issued: date = bulletin.as_of.astimezone(tz).date()
    return environment.get_template("bulletin.html").render(
        b=bulletin,
        css=css,
        charts=chart_svgs(bulletin),
        issued=date_zh(issued),
        overdue_rows=OVERDUE_ROWS,
    )


def pdf(document: str, out: Path) -> None:
    """The same HTML printed to A4 by WeasyPrint."""
    HTML = _weasyprint_html()
    HTML(string=document, base_url=str(out.parent)).write_pdf(out)


def _weasyprint_html() -> type:
    """WeasyPrint's `HTML`, imported only for a PDF (it loads Pango through cffi).

    Importing WeasyPrint sets Pillow's process-wide `ImageFile.LOAD_TRUNCATED_IMAGES`,
    which would make every later decode in the process accept a truncated photo (the
    photo stage refuses those: `photo.truncated`). The bulletin has no raster images of
    its own (its charts are SVG), so the flag is put back as it was."""
    from PIL import ImageFile  # noqa: PLC0415

    before = ImageFile.LOAD_TRUNCATED_IMAGES
    try:
        from weasyprint import HTML  # noqa: PLC0415
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = before
    return HTML  # type: ignore[no-any-return]


def write(bulletin: Bulletin, out: Path, tz: ZoneInfo) -> None:
    """HTML or PDF, by the file's extension (.html, .htm or .pdf)."""
    document = html(bulletin, tz)
    suffix = out.suffix.lower()
    if suffix == ".pdf":
        pdf(document, out)
    elif suffix in (".html", ".htm"):
        out.write_text(document, encoding="utf-8")
    else:
        raise ValueError(f"{out}: the bulletin is written as .pdf or .html, not {suffix!r}")
