"""The console as a Flask application: login, roles, CSRF, the pages and their JSON.

Nothing is served without a login but the login page and the static files (the map
library and the page's own script). Roles are checked here, on the server, for every
page, every JSON answer and every action:

    viewer      the reports, a report's photos, voice note, place and lifecycle, the map,
                the statistics and the bulletins
    operator    the same, the originals (evidence) for download, and the case transitions
    technician  the same as viewer, and the fleet and the pipeline, with dead-letter retries

Every action that reads evidence or changes something (a login, a failed one, a logout,
a password change, a download of an original, a retry, a case transition) goes to the
audit log with who, when and from where, refused ones too. Every form and every POST
carries Flask-WTF's CSRF token; pages and answers are never cached (reports are
confidential).
"""

from __future__ import annotations

import csv
import functools
import json
import re
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote
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

from gateway.cases.deadlines import TimeLimit
from gateway.cases.evaluation import BY_HEADERS, BY_KEYS, HEADERS, TABLE_COUNTS, Figures, rate_keys
from gateway.cases.settings import CasesSettings
from gateway.cases.workflow import (
    ACTION_ZH,
    STATE_ZH,
    TRANSITIONS,
    Action,
    CaseEvent,
    CaseLife,
    Command,
    Refusal,
    RefusalCode,
    State,
    Timekeeper,
    parse_action,
)
from gateway.console.accounts import AccountError, Accounts, Role, User, check_password
from gateway.console.i18n import LANGUAGES, Language, words
from gateway.console.settings import ConsoleSettings
from gateway.console.sources import InstanceStatus, Sources
from gateway.errors import SinkError
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
    # Moving a case along its lifecycle is the acceptors' (受理员) work; a technician's
    # role is not a superset of theirs (no evidence either), so not theirs.
    "act": frozenset({"operator"}),
    "stats": frozenset({"viewer", "operator", "technician"}),
}
MAP_MAX = 10_000  # reports on the map at once (clustered)
# The actions whose form fields the workflow reads: units (dispatch names them; a return,
# extension or feedback is by one of the units dispatched to) and the filing condition.
UNIT_ACTIONS = frozenset({Action.DISPATCH, Action.RETURN, Action.EXTEND, Action.FEEDBACK})
CONDITION_ACTIONS = frozenset({Action.FILE, Action.DISPATCH})


STATE_VALUES = frozenset(state.value for state in State)


def legal_actions(state: State) -> list[Action]:
    """The actions the lifecycle table allows from a state, in its order."""
    return [action for action, (sources, _) in TRANSITIONS.items() if state in sources]


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


@dataclass(frozen=True, slots=True)
class BulletinNames:
    """Who the monthly bulletin is of and from, as its head prints them."""

    city: str = ""
    issuer: str = "数字化城市管理监督指挥中心"


GRID_CELLS_MAX = 2_500  # cells drawn at once; further out, the map shows none


def create_app(console: Console) -> Flask:
    """The Flask application serving `console`'s pages."""
    accounts, settings, sources = console.accounts, console.settings, console.sources
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
    console.register(app)
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
        *,
        clock: Timekeeper | None = None,
        cases: CasesSettings | None = None,
        class_names: Mapping[str, str] | None = None,
        names: BulletinNames | None = None,
    ) -> None:
        """`clock`: the city's Timekeeper (`gateway.cases.timekeeping`), which transitions
        need (deadlines) and the lights are measured on; without one the case pages show
        the lifecycle but offer no transition. `class_names`: "event:0102" → its label,
        for the statistics by class (`gateway.cases.evaluation.class_labels`)."""
        self.sources = sources
        self.accounts = accounts
        self.settings = settings
        self.layers = layers
        self.log = log
        self.status = status
        self.clock = clock
        self.cases = cases or CasesSettings()
        self.class_names = class_names
        self.names = names or BulletinNames()

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
            ("/reports/<case_no>/act", self.act, ["POST"]),
            ("/stats", self.stats, ["GET"]),
            ("/stats/bulletin/<month>.<fmt>", self.bulletin, ["GET"]),
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
        query = _case_query(request.args, now=datetime.now(UTC))
        rows = self.sources.find_cases(query)
        return render_template(
            "reports.html",
            rows=self.summaries(rows),
            facets=self.sources.facets(),
            states=[(state.value, self.state_label(state)) for state in State],
            query=query,
            args=request.args,
        )

    def reports_json(self) -> Any:
        if refusal := self.refused("reports"):
            return refusal
        rows = self.sources.find_cases(_case_query(request.args, now=datetime.now(UTC)))
        return jsonify(rows=self.summaries(rows))

    def summaries(self, rows: list[CaseRow]) -> list[dict[str, Any]]:
        """The list's cases, each with its state and deadline light (one read for all)."""
        lives = self.sources.lives(rows)
        now = datetime.now(UTC)
        found = []
        for row in rows:
            summary = _summary(row, self.language())
            life = lives.get(row.case_no)
            state = life.state if life else State.REPORTED
            summary |= {"state": state.value, "state_label": self.state_label(state),
                        "light": self.light(life, now) if life else None}  # fmt: skip
            found.append(summary)
        return found

    def report(self, case_no: str) -> Any:
        if refusal := self.refused("reports"):
            return refusal
        return self.report_page(case_no)

    def report_page(self, case_no: str, refusal: Refusal | None = None, status: int = 200) -> Any:
        row = self.sources.get_case(case_no)
        if row is None:
            return render_template("forbidden.html", message="not_found"), 404
        life = self.sources.life(case_no) or CaseLife(
            case_no, row.report.class_.type, row.report.class_.code
        )
        offered = self.user_may("act") and self.clock is not None
        return render_template(
            "report.html",
            row=_summary(row, self.language()),
            report=row.report,
            position=_position(row.report, self.layers),
            life=self.life_view(life),
            history=[self.event_view(event) for event in self.sources.history(case_no)],
            tasks=self.sources.tasks(case_no),
            actions=[(action.value, ACTION_ZH[action]) for action in legal_actions(life.state)]
            if offered
            else [],
            unit_choices=_unit_choices(row, life),
            conditions=self.conditions(life.kind, life.class_code),
            unit_actions=" ".join(action.value for action in UNIT_ACTIONS),
            condition_actions=" ".join(action.value for action in CONDITION_ACTIONS),
            command_id=uuid.uuid4().hex,
            refusal=refusal,
            done=_action_label(request.args.get("done")),
        ), status

    # ---- the lifecycle ---------------------------------------------------------------------

    def user_may(self, what: str) -> bool:
        user: User | None = getattr(g, "user", None)
        return user is not None and user.role in ALLOWED[what]

    def state_label(self, state: State) -> str:
        """中文 with the English beside it: the state names are the city's own terms."""
        return f"{STATE_ZH[state]} {state.value}"

    def light(self, life: CaseLife, now: datetime) -> str | None:
        """The deadline light, measured on the limit's own clock (working hours) by the
        city's Timekeeper; none without one (a console that cannot make transitions)."""
        return None if self.clock is None else self.clock.light(life, now)

    def conditions(self, kind: str, class_code: str) -> list[str]:
        """The filing conditions the time-limit table has for the class (none offered
        without a Timekeeper)."""
        if self.clock is None:
            return []
        try:
            return self.clock.conditions(kind, class_code)
        except ValueError:  # a class code the table cannot read
            return []

    def life_view(self, life: CaseLife) -> dict[str, Any]:
        tz = self.sources.tz
        limit = None
        if life.time_limit:
            try:
                parsed = TimeLimit.parse(life.time_limit)
                limit = parsed.label_zh if self.language() == "zh-CN" else str(parsed)
            except ValueError:
                limit = life.time_limit
        return {
            "state": life.state.value,
            "state_label": self.state_label(life.state),
            "units": life.units,
            "condition": life.condition,
            "time_limit": limit,
            "deadline": local_time(life.deadline_at, tz) if life.deadline_at else None,
            "paused": local_time(life.paused_at, tz) if life.paused_at else None,
            "light": self.light(life, datetime.now(UTC)),
            "counters": {
                "reworks": life.reworks,
                "extensions": life.extensions,
                "returns": life.returns,
                "suspensions": life.suspensions,
            },
        }

    def event_view(self, event: CaseEvent) -> dict[str, Any]:
        tz = self.sources.tz
        return {
            "seq": event.seq,
            "at": local_time(event.at, tz),
            "action": event.action.value,
            "action_zh": ACTION_ZH[event.action],
            "from_label": self.state_label(event.from_state),
            "to_label": self.state_label(event.to_state),
            "by": event.by or "",
            "via": event.via,
            "units": event.units,
            "note": event.note or "",
            "deadline": local_time(event.deadline_at, tz) if event.deadline_at else "",
        }

    def act(self, case_no: str) -> Any:
        """One transition asked through the page's form: the registry applies it under
        its rules and lock; applied or refused, it is audited."""
        if refusal := self.refused("act"):
            return refusal
        form = request.form
        wanted = parse_action(form.get("action", "")[:32])
        target = case_no[:64]
        if self.clock is None or self.sources.get_case(case_no) is None:
            self.audit(f"case:{form.get('action', '')[:32]}", target=target, allowed=False)
            return abort(503 if self.clock is None else 404)
        if isinstance(wanted, Refusal):
            return self.act_refused(case_no, "?", wanted)
        # Only the fields the chosen action reads: a unit ticked before another action
        # was chosen must not land in that action's event.
        units: tuple[str, ...] = ()
        if wanted in UNIT_ACTIONS:
            typed = re.split(r"[,，、;；\n]", form.get("units_other", "")[:1000])
            units = tuple(dict.fromkeys(
                unit.strip() for unit in [*form.getlist("unit"), *typed] if unit.strip()
            ))  # fmt: skip
        condition = (form.get("condition") or "").strip()[:64] or None
        note = (form.get("note") or "").strip() or None
        command = Command(
            case_no=case_no,
            action=wanted,
            at=datetime.now(UTC),
            via=f"console:{g.user.name}",
            by=g.user.name,
            units=units,
            note=note,
            condition=condition if wanted in CONDITION_ACTIONS else None,
            command_id=(form.get("command_id") or "")[:64] or None,  # a second click: once
        )
        try:
            outcome = self.sources.act(command, self.clock)
        except SinkError as error:  # the shared registry unreachable: nothing was changed
            self.log.warning("console.act_failed", case_no=case_no, error=str(error))
            outcome = Refusal(RefusalCode.FIELD_INVALID, f"registry unavailable: {error}")
        if isinstance(outcome, Refusal):
            return self.act_refused(case_no, wanted.value, outcome)
        self.audit(f"case:{wanted.value}", target=target)
        return redirect(url_for("report", case_no=case_no, done=wanted.value) + "#lifecycle")

    def act_refused(self, case_no: str, action: str, refusal: Refusal) -> Any:
        self.audit(f"case:{action}", target=f"{case_no[:64]} {refusal.code.value}", allowed=False)
        return self.report_page(case_no, refusal=refusal, status=409)

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

    # ---- statistics and bulletins ----------------------------------------------------------

    def stats(self) -> Any:
        """The figures of `gateway stats` for a period and a grouping, and the month's
        bulletin to download."""
        if refusal := self.refused("stats"):
            return refusal
        today = datetime.now(self.sources.tz).date()
        start = _day(request.args.get("from")) or today.replace(day=1)
        end = _day(request.args.get("to")) or today
        by = request.args.get("by", "unit")
        by = by if by in BY_KEYS else "unit"
        problem, found = None, None
        if end < start:
            problem = "period_reversed"
        else:
            try:
                found = self.sources.evaluate(
                    start, end, by, datetime.now(UTC), self.cases.score, self.class_names
                )
            except SinkError as error:
                self.log.warning("console.stats_failed", error=str(error))
                problem = "registry_unavailable"
        groups = found.groups if found else ()
        month = request.args.get("month") or start.strftime("%Y-%m")
        keys = [*TABLE_COUNTS, *rate_keys(by)]
        return render_template(
            "stats.html",
            start=start,
            end=end,
            by=by,
            by_choices=[(key, BY_HEADERS[key]) for key in BY_KEYS],
            heads=[_two_lines(HEADERS[key]) for key in keys],
            by_head=_two_lines(BY_HEADERS[by]),
            rows=[(group.label, _cells(group.figures, keys, by == "unit")) for group in groups],
            total=_cells(found.total, keys, by == "unit") if found else None,
            scored=by == "unit",
            month=month if _MONTH.fullmatch(month) else start.strftime("%Y-%m"),
            problem=problem,
            as_of=local_time(found.as_of, self.sources.tz) if found else None,
        )

    def bulletin(self, month: str, fmt: str) -> Any:
        """The month's bulletin (数字城管通报) as the bulletin module renders it."""
        if refusal := self.refused("stats"):
            return refusal
        if not _MONTH.fullmatch(month) or fmt not in ("pdf", "html"):
            return abort(404)
        try:
            data = self.render_bulletin(date.fromisoformat(f"{month}-01"), fmt)
        except (SinkError, RuntimeError, OSError, ImportError) as error:
            # A registry away, or no CJK font / Pango for the PDF on this machine.
            self.log.warning("console.bulletin_failed", month=month, fmt=fmt, error=str(error))
            return render_template("forbidden.html", message="bulletin_unavailable"), 503
        self.audit("download_bulletin", target=f"{month}.{fmt}")
        mime = "application/pdf" if fmt == "pdf" else "text/html; charset=utf-8"
        response = Response(data, mimetype=mime)
        filename = f"数字城管通报-{month}.{fmt}"
        # RFC 6266: an ASCII fallback and the UTF-8 name for browsers that read it.
        response.headers["Content-Disposition"] = (
            f"attachment; filename=\"bulletin-{month}.{fmt}\"; filename*=UTF-8''{quote(filename)}"
        )
        return response

    def render_bulletin(self, month: date, fmt: str) -> bytes:
        """The month's bulletin, gathered from the registry and rendered as the
        `gateway.bulletin` module renders it (figures as they stood at the month's end,
        or now while it runs)."""
        # Deferred: matplotlib and WeasyPrint load only when a bulletin is asked for.
        from gateway.bulletin import content, render  # noqa: PLC0415

        tz = self.sources.tz
        as_of = content.default_as_of(month, datetime.now(UTC), tz)
        labels = {"class": self.class_names} if self.class_names else None
        bulletin = self.sources.cases(
            lambda registry: content.gather(
                registry, month, as_of, self.cases.score,
                city=self.names.city, issuer=self.names.issuer, labels=labels,
            )
        )  # fmt: skip
        document = render.html(bulletin, tz)
        if fmt == "html":
            return document.encode("utf-8")
        with tempfile.TemporaryDirectory(prefix="cgt-bulletin-") as directory:
            out = Path(directory) / "bulletin.pdf"
            render.pdf(document, out)
            return out.read_bytes()

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


_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def _unit_choices(row: CaseRow, life: CaseLife) -> list[str]:
    """The units a transition may name: the case's responsible units (from its road
    segment) and those it is dispatched to."""
    responsible = (unit.unit_zh for unit in row.report.location.responsible_units)
    return list(dict.fromkeys([*responsible, *life.units]))


def _action_label(value: str | None) -> str | None:
    """ "dispatch" → "派遣 dispatch" (None for anything not an action)."""
    action = parse_action(value or "")
    return None if isinstance(action, Refusal) else f"{ACTION_ZH[action]} {action.value}"


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _two_lines(head: str) -> tuple[str, str]:
    """ "结案率 closing" → ("结案率", "closing"): Chinese over English, as the CLI's table."""
    chinese, _, english = head.partition(" ")
    return chinese, english


def _cells(figures: Figures, keys: list[str], scored: bool) -> list[str]:
    values: dict[str, Any] = {**figures.counts, **figures.rates}
    cells = [
        ("-" if values[key] is None else f"{100 * values[key]:.1f}%")
        if key.endswith("_rate")
        else str(values[key])
        for key in keys
    ]
    if scored:  # a unit's composite score and grade
        cells += ["-" if figures.score is None else f"{figures.score:.1f}", figures.grade or "-"]
    return cells


def _flag(value: str | None) -> bool | None:
    return {"1": True, "0": False}.get(value or "")


def _case_query(args: Any, limit: int | None = None, now: datetime | None = None) -> CaseQuery:
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
        state=args.get("state") if args.get("state") in STATE_VALUES else None,
        overdue_at=(now or datetime.now(UTC)) if args.get("overdue") == "1" else None,
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
