"""`gateway bulletin`: a small month of cases in a SQLite registry, written as HTML and as
PDF through the command line. The HTML must say what `evaluate` counts; the PDF's pages
are turned into pictures (`var/screenshots/bulletin-*.png`, to be looked at), checked to
hold something, and its text must carry the title and a unit's name (the Chinese font is
embedded, not drawn as boxes)."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pytest
from PIL import Image, ImageFile, ImageStat

from gateway.bulletin import render
from gateway.bulletin.content import percent
from gateway.cases.settings import ScoreSettings
from gateway.cases.workflow import Action, Command
from gateway.sinks.case_ledger import Applied, verification_task_id
from gateway.sinks.case_registry_sqlite import SqliteRegistry
from gateway.sinks.case_stats import evaluate
from tests.clocks import NaturalHours
from tests.commands import gateway
from tests.factories import normalized, placed

TZ = ZoneInfo("Asia/Shanghai")
CLOCK = NaturalHours(hours=48)
SCREENSHOTS = Path(os.environ.get("CGT_SCREENSHOTS", "var/screenshots"))
AS_OF = datetime(2026, 12, 1, 0, 0, tzinfo=TZ)

UNITS = ("环卫处", "市容管理处", "城东中队", "城西中队", "开发区城管局")
DISTRICTS = {"崇川区": "320602", "港闸区": "320611", "开发区": "320671"}
CLASSES: tuple[tuple[Literal["component", "event"], str], ...] = (
    ("event", "0102"), ("event", "0104"), ("event", "0101"), ("component", "0101"),
    ("event", "0107"), ("component", "0103"), ("event", "0110"),
)  # fmt: skip
INSPECTORS = ("INS-0001", "INS-0002", "INS-0003", "INS-0004")


def _case(registry: SqliteRegistry, rng: random.Random, received: datetime) -> str:
    kind, code = rng.choice(CLASSES[: rng.randint(1, len(CLASSES))])  # the first most often
    district = rng.choice(list(DISTRICTS))
    report = placed(
        normalized(kind=kind, class_code=code, received_at=received.isoformat()),
        district=district,
        units=(rng.choice(UNITS),),
        inspector=rng.choice(INSPECTORS),
    )
    street = f"{DISTRICTS[district]}00{rng.randint(1, 3)}"
    grid = report.location.model_copy(update={"grid_code": f"{street}001{rng.randint(100, 999)}"})
    (case_no,) = registry.register([report.model_copy(update={"location": grid})])
    return str(case_no)


def _life(registry: SqliteRegistry, rng: random.Random, case_no: str, start: datetime) -> None:
    """A lifecycle drawn at random: refused, declined, self-handled, left open, closed on
    time or late, with a rework or an extension now and then."""
    at = start

    def act(action: str, hours: float, **more: Any) -> None:
        nonlocal at
        at += timedelta(hours=hours)
        done = registry.act(
            Command(case_no, Action(action), at, via="test", by="值班长", **more), CLOCK
        )
        assert isinstance(done, Applied), done
        if action == "feedback":  # the inspector answers the verification task it made
            answer = at + timedelta(hours=rng.choice((1, 2, 3, 30)))
            task_id = verification_task_id(case_no, done.event.seq)
            report = normalized(task_id=task_id, received_at=answer.astimezone(UTC).isoformat())
            assert registry.register([report]) == [case_no]

    fate = rng.random()
    if fate < 0.05:
        act("refuse", 1)
        return
    if fate < 0.1:
        act("self-handled", 0.5)
        return
    act("accept", 0.5)
    if fate < 0.15:
        act("decline", 0.5)
        return
    unit = (UNIT_OF[case_no],)
    act("file", 0.5, condition="一般")
    act("dispatch", 0.5, units=unit)
    if fate < 0.3:
        return  # still in handling: overdue once its 48 hours pass
    if rng.random() < 0.1:
        act("extend", 5)
    late = rng.random() < {"城西中队": 0.6, "开发区城管局": 0.4}.get(unit[0], 0.1)
    act("feedback", 60 if late else rng.uniform(4, 40), units=unit)
    if rng.random() < 0.12:
        act("fail", 2)
        act("feedback", 6, units=unit)
    act("pass", 2)
    if fate < 0.9:
        act("close", 1)


UNIT_OF: dict[str, str] = {}


def _month(registry: SqliteRegistry, seed: int, first: date, cases: int) -> None:
    rng = random.Random(seed)
    days = 30 if first.month == 11 else 31
    for _ in range(cases):
        day = first + timedelta(days=rng.randrange(days))
        received = datetime.combine(day, datetime.min.time(), TZ) + timedelta(
            hours=rng.uniform(8, 18)
        )
        case_no = _case(registry, rng, received.astimezone(UTC))
        report = registry.get_case(case_no)
        assert report is not None
        UNIT_OF[case_no] = rng.choice(UNITS)
        _life(registry, rng, case_no, received)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("bulletin")
    registry = SqliteRegistry(where / "registry.db", TZ)
    _month(registry, 10, date(2026, 10, 1), 60)
    _month(registry, 11, date(2026, 11, 1), 90)
    registry.close()
    return where


def _bulletin(data_dir: Path, out: Path) -> float:
    started = time.perf_counter()
    # In a process of its own, as operators run it: the command sets up logging for itself.
    result = gateway(
        "bulletin", "--month", "2026-11", "--out", str(out), "--data-dir", str(data_dir),
        "--as-of", AS_OF.isoformat(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return time.perf_counter() - started


def test_the_html_holds_the_figures_evaluate_gives(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bulletin.html"
    seconds = _bulletin(data_dir, out)
    text = out.read_text("utf-8")
    registry = SqliteRegistry(data_dir / "registry.db", TZ)
    try:
        month = evaluate(
            registry, date(2026, 11, 1), date(2026, 11, 30), "unit", AS_OF, ScoreSettings()
        )
    finally:
        registry.close()
    total = month.total
    assert "南通市数字化城市管理通报" in text
    assert "2026年11月" in text
    assert f"上报{total.counts['reported']}件" in text
    assert f"立案{total.counts['filed']}件" in text
    assert f"结案{total.counts['closed']}件" in text
    for key in ("closing_rate", "on_time_closing_rate", "rework_rate"):
        assert percent(total.rates[key]) in text
    assert "<svg" in text
    assert "<img" not in text  # one self-contained file: charts inline
    assert 'src="http' not in text
    assert 'href="http' not in text  # nothing to fetch
    best = max(
        (g for g in month.groups if g.key and g.figures.score is not None),
        key=lambda g: g.figures.score or 0,
    )
    assert best.label in text
    print(f"html rendered in {seconds:.2f} s")


def test_the_pdf_has_pages_with_the_chinese_text_embedded(data_dir: Path) -> None:
    if not (shutil.which("pdftoppm") and shutil.which("pdftotext")):
        pytest.fail("needs Debian's poppler-utils (tools/system-deps.sh)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    out = SCREENSHOTS / "bulletin.pdf"
    seconds = _bulletin(data_dir, out)
    for old in SCREENSHOTS.glob("bulletin-*.png"):
        old.unlink()
    subprocess.run(
        ["pdftoppm", "-r", "60", "-png", str(out), str(SCREENSHOTS / "bulletin")], check=True
    )
    pages = sorted(SCREENSHOTS.glob("bulletin-*.png"))
    assert len(pages) >= 3
    for page in pages:
        with Image.open(page) as image:
            spread = ImageStat.Stat(image.convert("L")).var[0]
        assert spread > 50, f"{page} looks blank"
    text = subprocess.run(
        ["pdftotext", "-layout", str(out), "-"], check=True, capture_output=True, text=True
    ).stdout
    assert "南通市数字化城市管理通报" in text
    assert "环卫处" in text
    assert "高发问题" in text
    print(f"pdf rendered in {seconds:.2f} s, {len(pages)} pages")


def test_printing_leaves_pillow_refusing_truncated_images(tmp_path: Path) -> None:
    """WeasyPrint's import sets Pillow's process-wide LOAD_TRUNCATED_IMAGES; a console that
    prints a bulletin must not make its process accept truncated photos after it."""
    render.pdf("<html><body><p>数字城管通报</p></body></html>", tmp_path / "one.pdf")
    assert (tmp_path / "one.pdf").read_bytes().startswith(b"%PDF")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
