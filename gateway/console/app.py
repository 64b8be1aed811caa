"""The console as a Flask application: login, roles, CSRF, the pages and their JSON.

Nothing is served without a login but the login page and the static files (the map
library and the page's own script). Roles are checked here, on the server, for every
page, every JSON answer and every action:

    viewer      the reports, a report's photos, voice note and place, the map
    operator    the same, and the originals (evidence) for download
    technician  the same as viewer, and the fleet and the pipeline, with dead-letter retries

Every action that reads evidence or changes something (a login, a failed one, a logout,
a password change, a download of an original, a retry) goes to the audit log with who,
when and from where, refused ones too. Every form and every POST carries Flask-WTF's
CSRF token; pages and answers are never cached (reports are confidential).
"""

from __future__ import annotations

import csv
import functools
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from flask import (
    Flask,
    Response,
    abort,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError, CSRFProtect
from structlog.typing import FilteringBoundLogger
from werkzeug.middleware.proxy_fix import ProxyFix

from gateway.console.accounts import AccountError, Accounts, Role, User, check_password
from gateway.console.i18n import LANGUAGES, Language, words
from gateway.console.settings import ConsoleSettings
from gateway.console.sources import InstanceStatus, Sources
from gateway.geo.gcj02 import to_gcj02, to_wgs84
from gateway.geo.grid import RegularGrid
from gateway.normalize.model import NormalizedReport, PhotoDerivative, VoiceDerivative
from gateway.sinks.case_search import PAGE_MAX, CaseQuery, CaseRow

F = TypeVar("F", bound=Callable[..., Any])

ALLOWED: dict[str, frozenset[Role]] = {
    "reports": frozenset({"viewer", "operator", "technician"}),
    "evidence": frozenset({"operator"}),
    "fleet": frozenset({"technician"}),
    "pipeline": frozenset({"technician"}),
}
MAP_MAX = 10_000  # reports on the map at once (clustered)


@dataclass(frozen=True, slots=True)
class MapLayers:
    """The city's layers for the map (WGS-84 GeoJSON) and the segments' units."""

    districts: Path
    segments: Path
    segment_table: Path
    gcj02: bool  # the base tiles are in GCJ-02: everything drawn is shifted to it
    tiles: str | None  # a tile URL template; None: no base map (works offline)
    grid: RegularGrid | None = None  # the generated unit grid (where the city has none)
    grid_file: Path | None = None  # the city's own unit grid (GeoJSON), if it has one

    def shown(self, lat: float, lon: float) -> tuple[float, float]:
        """A WGS-84 position as the map draws it: moved to GCJ-02 if the tiles are in it."""
        return to_gcj02(lat, lon) if self.gcj02 else (lat, lon)

    def asked(self, lat: float, lon: float) -> tuple[float, float]:
        """A position the map gives back (its bounds), in WGS-84 again."""
        return to_wgs84(lat, lon) if self.gcj02 else (lat, lon)


GRID_CELLS_MAX = 2_500  # cells drawn at once; further out, the map shows none


def create_app(
    sources: Sources,
    accounts: Accounts,
    settings: ConsoleSettings,
    layers: MapLayers,
    log: FilteringBoundLogger,
    status: Callable[[], InstanceStatus] | None = None,
) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=accounts.secret_key(),
        SESSION_COOKIE_NAME="cgt_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookie,
        PERMANENT_SESSION_LIFETIME=settings.session_max_s,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the login it belongs to
        MAX_CONTENT_LENGTH=64 * 1024,  # forms only: a login, a password, a retry
    )
    if settings.proxies:
        n = settings.proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    app.jinja_env.globals.update(
        photos=photo_derivatives,
        voices=voice_derivatives,
        when=functools.partial(local_time, tz=sources.tz),
    )
    app.jinja_env.filters["reject_before"] = lambda args: {
        name: value for name, value in args.items() if name != "before"
    }
    # Before CSRFProtect: its check runs after ours has found who is asking, so that a
    # refused request is audited under its user.
    Console(sources, accounts, settings, layers, log, status).register(app)
    CSRFProtect(app)
    return app


class Console:
    """The console's pages and answers, registered on a Flask application."""

    def __init__(
        self,
        sources: Sources,
        accounts: Accounts,
        settings: ConsoleSettings,
        layers: MapLayers,
        log: FilteringBoundLogger,
        status: Callable[[], InstanceStatus] | None = None,
    ) -> None:
        self.sources = sources
        self.accounts = accounts
        self.settings = settings
        self.layers = layers
        self.log = log
        self.status = status

    def register(self, app: Flask) -> None:
        app.before_request(self.who)
        app.after_request(self.headers)
        app.context_processor(self.page_context)
        app.register_error_handler(CSRFError, self.csrf_refused)
        routes: list[tuple[str, Callable[..., Any], list[str]]] = [
            ("/login", self.login, ["GET", "POST"]),
            ("/logout", self.logout, ["POST"]),
            ("/password", self.password, ["GET", "POST"]),
            ("/", self.home, ["GET"]),
            ("/reports", self.reports, ["GET"]),
            ("/api/reports", self.reports_json, ["GET"]),
            ("/reports/<case_no>", self.report, ["GET"]),
            ("/media/<case_no>/<media_id>/<name>", self.derivative, ["GET"]),
            ("/original/<case_no>/<media_id>", self.original, ["GET"]),
            ("/map", self.map_page, ["GET"]),
            ("/api/map", self.map_json, ["GET"]),
            ("/api/layers/<name>", self.layer, ["GET"]),
            ("/fleet", self.fleet, ["GET"]),
            ("/api/fleet", self.fleet_json, ["GET"]),
            ("/api/fleet/<device_id>/track", self.track_json, ["GET"]),
            ("/pipeline", self.pipeline, ["GET"]),
            ("/pipeline/retry", self.retry, ["POST"]),
        ]
        for rule, view, methods in routes:
            app.add_url_rule(rule, view.__name__, view, methods=methods)

    # ---- every request -------------------------------------------------------------------

    def language(self) -> Language:
        chosen = session.get("lang")
        return chosen if chosen in LANGUAGES else self.settings.language

    def audit(self, action: str, *, target: str | None = None, allowed: bool = True) -> None:
        name = g.user.name if getattr(g, "user", None) else None
        remote = request.remote_addr
        self.accounts.audit(name, action, target=target, allowed=allowed, remote=remote)
        self.log.info("console.audit", user=name, action=action, target=target,
                      allowed=allowed, remote=remote)  # fmt: skip

    def who(self) -> Any:
        """Whose request this is; none gets further than the login page without one."""
        g.user = None
        token = session.get("sid")
        if isinstance(token, str):
            g.user = self.accounts.session_user(token, self.settings.session_idle_s)
        if request.args.get("lang") in LANGUAGES:
            session["lang"] = request.args["lang"]
        if request.endpoint in ("login", "static"):
            return None
        if g.user is None:
            if request.path.startswith("/api/"):
                return _json_error(401, "login needed")
            return redirect(url_for("login", next=request.full_path))
        if g.user.must_change and request.endpoint not in ("password", "logout"):
            return redirect(url_for("password"))
        return None

    def headers(self, response: Response) -> Response:
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        tiles = _origin(self.layers.tiles) if self.layers.tiles else ""
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
            f" img-src 'self' data: blob: {tiles}; media-src 'self'; connect-src 'self';"
            " frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
        )
        return response

    def page_context(self) -> dict[str, Any]:
        user: User | None = getattr(g, "user", None)
        return {
            "t": words(self.language()),
            "lang": self.language(),
            "user": user,
            "can": lambda what: user is not None and user.role in ALLOWED[what],
            "refresh_ms": int(self.settings.refresh_s * 1000),
        }

    def csrf_refused(self, error: CSRFError) -> tuple[Response, int]:
        self.audit("csrf_refused", target=request.path, allowed=False)
        return _json_error(400, f"CSRF: {error.description}"), 400

    def refused(self, what: str) -> Any:
        """None if the user's role may do `what`; else the refusal (logged and audited)."""
        if g.user.role in ALLOWED[what]:
            return None
        self.audit(f"refused:{request.endpoint}", target=request.path, allowed=False)
        if request.path.startswith("/api/"):
            return _json_error(403, "not allowed for this role")
        return render_template("forbidden.html"), 403

    # ---- logging in ----------------------------------------------------------------------

    def login(self) -> Any:
        failed = False
        if request.method == "POST":
            name = request.form.get("name", "")[:64]
            user = self.accounts.authenticate(name, request.form.get("password", "")[:256])
            if user is None:
                self.accounts.audit(name or None, "login", allowed=False,
                                    remote=request.remote_addr)  # fmt: skip
                self.log.warning("console.login_failed", user=name, remote=request.remote_addr)
                failed = True
            else:
                self.start_session(user)
                self.audit("login")
                target = request.args.get("next", "")
                # Only a path of this site: never an open redirect (browsers read "/\\"
                # as "//", another site).
                if not target.startswith("/") or target[1:2] in ("/", "\\"):
                    target = url_for("reports")
                return redirect(target)
        return render_template("login.html", failed=failed), (401 if failed else 200)

    def start_session(self, user: User) -> None:
        session.clear()  # a new session for a new login (no fixation)
        session.permanent = True
        session["sid"] = self.accounts.open_session(user.name, self.settings.session_max_s)
        g.user = user

    def logout(self) -> Any:
        token = session.get("sid")
        self.audit("logout")
        if isinstance(token, str):
            self.accounts.close_session(token)
        session.clear()
        return redirect(url_for("login"))

    def password(self) -> Any:
        problem = None
        if request.method == "POST":
            new = request.form.get("new", "")
            if new != request.form.get("again", ""):
                problem = words(self.language())["passwords_differ"]
            elif self.accounts.authenticate(g.user.name, request.form.get("current", "")) is None:
                problem = words(self.language())["login_failed"]
            else:
                try:
                    check_password(new)
                    self.accounts.set_password(g.user.name, new)
                except AccountError as error:
                    problem = str(error)
                else:
                    self.audit("password_changed")
                    user = self.accounts.get(g.user.name)
                    assert user is not None  # noqa: S101 - changed just now
                    self.start_session(user)
                    return redirect(url_for("reports"))
        return render_template("password.html", problem=problem)

    # ---- reports -------------------------------------------------------------------------

    def home(self) -> Any:
        return redirect(url_for("reports"))

    def reports(self) -> Any:
        if refusal := self.refused("reports"):
            return refusal
        query = _case_query(request.args)
        rows = self.sources.find_cases(query)
        return render_template(
            "reports.html",
            rows=[_summary(row, self.language()) for row in rows],
            facets=self.sources.facets(),
            query=query,
            args=request.args,
        )

    def reports_json(self) -> Any:
        if refusal := self.refused("reports"):
            return refusal
        rows = self.sources.find_cases(_case_query(request.args))
        return jsonify(rows=[_summary(row, self.language()) for row in rows])

    def report(self, case_no: str) -> Any:
        if refusal := self.refused("reports"):
            return refusal
        row = self.sources.get_case(case_no)
        if row is None:
            return render_template("forbidden.html", message="not_found"), 404
        return render_template(
            "report.html",
            row=_summary(row, self.language()),
            report=row.report,
            position=_position(row.report, self.layers),
        )

    def derivative(self, case_no: str, media_id: str, name: str) -> Any:
        if refusal := self.refused("reports"):
            return refusal
        for media in _case_or_404(self.sources, case_no).report.media:
            for made in media.derivatives:
                if media.media_id == media_id and made.name == name:
                    return _object(self.sources, made.key, made.mime)
        return abort(404)

    def original(self, case_no: str, media_id: str) -> Any:
        if refusal := self.refused("evidence"):
            return refusal
        for media in _case_or_404(self.sources, case_no).report.media:
            if media.media_id == media_id:
                self.audit("download_original", target=f"{case_no}/{media_id}")
                response = _object(self.sources, media.original.key, media.mime)
                extension = media.original.key.rsplit(".", 1)[-1]
                response.headers["Content-Disposition"] = (
                    f'attachment; filename="{case_no}-{media_id}.{extension}"'
                )
                response.headers["X-Content-SHA256"] = media.original.sha256
                return response
        return abort(404)

    # ---- the map -------------------------------------------------------------------------

    def map_page(self) -> Any:
        if refusal := self.refused("reports"):
            return refusal
        return render_template("map.html", tiles=self.layers.tiles)

    def map_json(self) -> Any:
        if refusal := self.refused("reports"):
            return refusal
        points = []
        for row in self.sources.find_cases(_case_query(request.args, limit=MAP_MAX)):
            position = _position(row.report, self.layers)
            if position is not None:
                points.append([*position, row.case_no, row.report.class_.type,
                               row.report.class_.code])  # fmt: skip
        return jsonify(points=points)

    def layer(self, name: str) -> Any:
        if refusal := self.refused("reports"):
            return refusal
        if name == "districts":
            return jsonify(_shifted(_geojson(self.layers.districts), self.layers))
        if name == "segments":
            units = _segment_units(self.layers.segment_table)
            collection = _geojson(self.layers.segments)
            features = [
                {
                    **feature,
                    "properties": {**feature["properties"],
                                   "unit_zh": units.get(feature["properties"]["segment_id"])},
                }
                for feature in collection["features"]
            ]  # fmt: skip
            return jsonify(_shifted({**collection, "features": features}, self.layers))
        if name == "grid":
            return jsonify(_shifted(self.grid_cells(request.args.get("bbox", "")), self.layers))
        return abort(404)

    def grid_cells(self, bbox: str) -> dict[str, Any]:
        """The unit grid's cells within `bbox` (south,west,north,east, WGS-84), as GeoJSON;
        none when the box holds more than GRID_CELLS_MAX of them."""
        try:
            south, west, north, east = (float(value) for value in bbox.split(","))
        except ValueError:
            return abort(400)
        south, west = self.layers.asked(south, west)  # the grid is WGS-84
        north, east = self.layers.asked(north, east)
        features: list[dict[str, Any]] = []
        if self.layers.grid_file is not None:
            for (low_lon, low_lat, high_lon, high_lat), feature in _bounded(self.layers.grid_file):
                if low_lon <= east and high_lon >= west and low_lat <= north and high_lat >= south:
                    features.append(feature)
                    if len(features) > GRID_CELLS_MAX:
                        return {"type": "FeatureCollection", "features": [], "too_many": True}
        elif self.layers.grid is not None:
            cells = self.layers.grid.cells_within(south, west, north, east, GRID_CELLS_MAX)
            if cells is None:
                return {"type": "FeatureCollection", "features": [], "too_many": True}
            features = [
                {"type": "Feature", "properties": {"grid_code": code},
                 "geometry": {"type": "Polygon",
                              "coordinates": [[[lon, lat] for lat, lon in [*corners, corners[0]]]]}}
                for code, corners in cells
            ]  # fmt: skip
        return {"type": "FeatureCollection", "features": features}

    # ---- fleet and pipeline (technicians) ------------------------------------------------

    def fleet(self) -> Any:
        if refusal := self.refused("fleet"):
            return refusal
        return render_template("fleet.html", devices=self.sources.fleet(self.door()))

    def fleet_json(self) -> Any:
        if refusal := self.refused("fleet"):
            return refusal
        devices = []
        for view in self.sources.fleet(self.door()):
            device = asdict(view)
            device["status_local"] = local_time(view.status_at or view.last_seen_at,
                                                self.sources.tz)  # fmt: skip
            if view.last_fix is not None:
                lat, lon, at = view.last_fix
                device["last_fix"] = [*self.layers.shown(lat, lon), at]
            devices.append(device)
        return jsonify(devices=devices)

    def door(self) -> dict[str, tuple[int, str, float]]:
        """Refusals at this instance's door, per device (none without a running gateway)."""
        return self.status().door if self.status else {}

    def track_json(self, device_id: str) -> Any:
        if refusal := self.refused("fleet"):
            return refusal
        points = [self.layers.shown(lat, lon) for lat, lon in self.sources.track(device_id)]
        return jsonify(points=points)

    def pipeline(self) -> Any:
        if refusal := self.refused("pipeline"):
            return refusal
        return render_template(
            "pipeline.html",
            depths=self.sources.depths(),
            letters=self.sources.dead_letters(),
            retried=request.args.get("retried"),
            instance=self.status() if self.status else None,
        )

    def retry(self) -> Any:
        if refusal := self.refused("pipeline"):
            return refusal
        report_id = request.form.get("report_id", "")
        sink = request.form.get("sink", "")
        if request.form.get("confirm") != "yes":
            return abort(400)
        count = self.sources.retry(report_id, sink)
        self.audit("retry_dead_letter", target=f"{sink}/{report_id}", allowed=count > 0)
        return redirect(url_for("pipeline", retried=report_id if count else ""))


def _json_error(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    return response


def _origin(template: str) -> str:
    scheme, _, rest = template.partition("://")
    host = rest.split("/", 1)[0].replace("{s}", "*")
    return f"{scheme}://{host}"


def _flag(value: str | None) -> bool | None:
    return {"1": True, "0": False}.get(value or "")


def _case_query(args: Any, limit: int | None = None) -> CaseQuery:
    def number(name: str) -> int | None:
        value = args.get(name, "")
        return int(value) if value.isdigit() else None

    try:
        day = date.fromisoformat(args["day"]) if args.get("day") else None
    except ValueError:
        day = None
    return CaseQuery(
        day=day,
        district=args.get("district") or None,
        unit=args.get("unit") or None,
        class_code=args.get("class") or None,
        inspector_id=args.get("inspector") or None,
        inside_window=_flag(args.get("window")),
        inside_coverage=_flag(args.get("coverage")),
        before_id=number("before"),
        after_id=number("after"),
        limit=limit or min(number("limit") or 50, PAGE_MAX),
    )


def _summary(row: CaseRow, language: Language) -> dict[str, Any]:
    """One case as the list shows it (and the page's script receives it)."""
    report = row.report
    where = report.location
    coverage = where.coverage
    segment = where.segment
    english = language == "en"
    return {
        "id": row.id,
        "case_no": row.case_no,
        "kind": report.class_.type,
        "class_code": report.class_.code,
        "major": report.class_.major.name,
        "minor": report.class_.minor.name,
        "class_en": report.class_.name_en,
        "description": report.description,
        "inspector": report.reporter.inspector_id,
        "device": report.reporter.device_id,
        "segment": (segment.road_en if english else segment.road_zh) if segment else None,
        "units": [unit.unit_en if english else unit.unit_zh for unit in where.responsible_units],
        "district": (coverage.district_en if english else coverage.district_zh)
        if coverage
        else None,
        "grid": where.grid_code,
        "received_at": report.received_at.isoformat(),
        "received_local": report.received_at.astimezone(_zone(report.acceptance.timezone)).strftime(
            "%Y-%m-%d %H:%M:%S"
        ),
        "inside_window": report.acceptance.inside_window,
        "inside_coverage": coverage.inside if coverage else None,
        "photos": sum(1 for media in report.media if media.kind == "photo"),
        "voice": any(media.kind == "voice" for media in report.media),
    }


def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)  # cached by zoneinfo


def _position(report: NormalizedReport, layers: MapLayers) -> tuple[float, float] | None:
    fix = report.location.wgs84
    return None if fix is None else layers.shown(fix.lat, fix.lon)


def _case_or_404(sources: Sources, case_no: str) -> CaseRow:
    row = sources.get_case(case_no)
    if row is None:
        abort(404)
    return row


def _object(sources: Sources, key: str, mime: str) -> Response:
    data = sources.objects.read(key)
    if data is None:
        abort(404)
    return Response(data, mimetype=mime)


@functools.cache
def _geojson(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


@functools.cache
def _segment_units(path: Path) -> dict[str, str]:
    with path.open(encoding="utf-8") as table:
        return {row["segment_id"]: row["unit_zh"] for row in csv.DictReader(table)}


def _points(coordinates: Any) -> list[tuple[float, float]]:
    """Every [lon, lat] of a GeoJSON geometry's coordinates, however nested."""
    if isinstance(coordinates[0], int | float):
        return [(float(coordinates[0]), float(coordinates[1]))]
    return [point for part in coordinates for point in _points(part)]


@functools.cache
def _bounded(path: Path) -> list[tuple[tuple[float, float, float, float], dict[str, Any]]]:
    """Each feature of a layer with its bounds (west, south, east, north), worked out once
    rather than at every move of the map."""
    bounded = []
    for feature in _geojson(path)["features"]:
        lons, lats = zip(*_points(feature["geometry"]["coordinates"]), strict=True)
        bounded.append(((min(lons), min(lats), max(lons), max(lats)), feature))
    return bounded


def _shifted(collection: dict[str, Any], layers: MapLayers) -> dict[str, Any]:
    """The collection as the map draws it: GeoJSON's [lon, lat] moved to GCJ-02 if the
    base tiles are in it (a copy; the cached layer stays WGS-84)."""
    if not layers.gcj02:
        return collection

    def move(coordinates: Any) -> Any:
        if isinstance(coordinates[0], int | float):
            lat, lon = layers.shown(coordinates[1], coordinates[0])
            return [lon, lat]
        return [move(part) for part in coordinates]

    return {
        **collection,
        "features": [
            {**feature, "geometry": {**feature["geometry"],
                                     "coordinates": move(feature["geometry"]["coordinates"])}}
            for feature in collection["features"]
        ],
    }  # fmt: skip


def photo_derivatives(report: NormalizedReport) -> list[tuple[str, PhotoDerivative]]:
    """(media_id, derivative) of each photo's display copy, for the page."""
    return [
        (media.media_id, made)
        for media in report.media
        for made in media.derivatives
        if isinstance(made, PhotoDerivative) and made.name == "display.jpg"
    ]


def voice_derivatives(report: NormalizedReport) -> list[tuple[str, VoiceDerivative]]:
    return [
        (media.media_id, made)
        for media in report.media
        for made in media.derivatives
        if isinstance(made, VoiceDerivative)
    ]


def local_time(value: str | datetime | None, tz: ZoneInfo) -> str:
    """An instant (RFC 3339 text or a datetime) in the city's time, to the second."""
    if value is None:
        return ""
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
