"""Property tests of the config loader (`gateway.config.load_config`): whatever a file
holds, the answer is a config or a `ConfigError` listing each problem as a non-empty
message, never another exception and never a hang; a wrong value of a known key names
the key (dotted) and its line, an unknown key is named. `gateway check-config` answers
the same way, also for broken layers and code tables a config points at.

fuzz/targets/config.py is the coverage-guided twin of the first test (docs/security.md).
"""

from __future__ import annotations

import json
import math
import re
import statistics
import tempfile
import time
import tomllib
import types
import typing
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from datetime import time as clock_time
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from gateway.cli import main
from gateway.config import GatewayConfig, load_config
from gateway.errors import ConfigError
from tests.timing import assert_within, seconds

# ---- the contract -----------------------------------------------------------------------


def outcome(
    path: Path | None, overrides: dict[str, Any] | None = None
) -> GatewayConfig | list[str]:
    """load_config's answer, checked against the contract: a config whose derived settings
    (what `gateway run` and `check-config` read next) can be read, or its problems."""
    try:
        config = load_config(path, overrides)
    except ConfigError as error:
        return checked_problems(error)
    assert isinstance(config, GatewayConfig)
    repr(config)
    config.objects_description()
    config.registry_description()
    assert config.mqtt.host
    assert 0 < config.mqtt.port < 65536
    config.metrics.address()
    assert config.timezone.key == config.acceptance.timezone
    config.store.limits()
    config.media.photo()
    config.media.voice()
    config.geo.checks.rules()
    return config


def checked_problems(error: ConfigError) -> list[str]:
    assert error.problems, "a ConfigError naming no problem"
    for problem in error.problems:
        assert isinstance(problem, str)
        assert problem.strip(), "a blank problem"
    return error.problems


class Loaded(NamedTuple):
    path: Path
    result: GatewayConfig | list[str]

    @property
    def problems(self) -> list[str]:
        return [] if isinstance(self.result, GatewayConfig) else self.result


def load_text(text: str | bytes, overrides: dict[str, Any] | None = None) -> Loaded:
    """Write the file in a fresh directory (relative paths in it resolve there) and load it."""
    with tempfile.TemporaryDirectory(prefix="cgt-config-") as directory:
        path = Path(directory) / "gateway.toml"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return Loaded(path, outcome(path, overrides))


# ---- the known keys, read off the models ------------------------------------------------


def _section(annotation: Any) -> type[BaseModel] | None:
    """The settings model of a field (`TlsSettings | None` too), or None for a value."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    for candidate in typing.get_args(annotation) if union else (annotation,):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _walk(
    model: type[BaseModel], prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], type[BaseModel] | None]]:
    """Every key of the model, dotted as a tuple, with its settings model when a table."""
    for name, field in model.model_fields.items():
        keys = (*prefix, name)
        section = _section(field.annotation)
        yield keys, section
        if section is not None:
            yield from _walk(section, keys)


KNOWN: dict[tuple[str, ...], type[BaseModel] | None] = dict(_walk(GatewayConfig))
TABLES: dict[tuple[str, ...], set[str]] = {(): set(GatewayConfig.model_fields)} | {
    keys: set(section.model_fields) for keys, section in KNOWN.items() if section is not None
}
KNOWN_NAMES = sorted({keys[-1] for keys in KNOWN})


# ---- TOML, written from hypothesis' values ----------------------------------------------

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def toml_string(text: str) -> str:
    # JSON's escapes are TOML's, but for DEL, which TOML wants escaped too.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_key(key: str) -> str:
    return key if _BARE.fullmatch(key) else toml_string(key)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, datetime | date | clock_time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    if isinstance(value, dict):
        pairs = (f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    raise TypeError(type(value))


def toml_document(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> str:
    """Values first, then each sub-table under its own `[a.b]` header."""
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for key, value in data.items():
        if isinstance(value, dict):
            keys = (*prefix, key)
            lines.append("[" + ".".join(map(toml_key, keys)) + "]")
            lines.append(toml_document(value, keys))
    return "\n".join(lines)


# TOML is UTF-8: no lone surrogates
unicode = st.characters(exclude_categories=["Cs"])
texts = st.text(alphabet=unicode, max_size=40)
names = st.text(alphabet=unicode, min_size=1, max_size=16)
scalars = st.one_of(
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([0, -1, 1, 65535, 65536, 2**31, 2**32, 2**63 - 1, -(2**63)]),
    st.floats(),
    texts,
    # strings a settings field could almost take
    st.sampled_from(
        [
            "",
            "mqtt://h:1",
            "mqtt://h:99999",
            "mqtt://[::1",
            "mqtts://",
            "s3://Bad_Bucket",
            "s3://ok-bucket/p?x=1",
            "postgresql://u@h/",
            "postgresql://u@h:port/db",
            "sqlite:///x.db",
            "file:///tmp/x",
            "Asia",
            "Asia/Shanghai",
            "../../etc/passwd",
            "/dev/null",
            "a\x00b",
            "127.0.0.1:99999",
            "h:²",
            "process",
            "json",
        ]
    ),
    st.datetimes(timezones=st.none() | st.just(UTC) | st.just(timezone(timedelta(hours=8)))),
    st.dates(),
    st.times(),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=3),
    max_leaves=8,
)
documents = st.recursive(
    st.dictionaries(st.sampled_from(KNOWN_NAMES) | names, values, max_size=5),
    lambda inner: st.dictionaries(st.sampled_from(KNOWN_NAMES) | names, inner | values, max_size=4),
    max_leaves=12,
)


def named(problem: str, path: Path) -> tuple[int | None, str]:
    """(line, rest) of a problem `PATH[:LINE]: dotted.key: message`."""
    match = re.match(rf"{re.escape(str(path))}:(?:(\d+):)? (.*)", problem, re.DOTALL)
    assert match, f"a problem that does not name the file: {problem!r}"
    return (int(match[1]) if match[1] else None), match[2]


# ---- properties -------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1024) | texts.map(str.encode))
@example(b"\xff\xfe[mqtt]")  # not UTF-8 (the fuzz target's first finding)
@example(b"a = " + b"[" * 5000 + b"]" * 5000)  # nested past tomllib's recursion
@example(b"[acceptance]\ntimezone = 'Asia'")  # a directory of the zone database
@example(b"[acceptance]\ntimezone = '" + b"a" * 300 + b"'")  # a name too long for a file
@example(b'registry = "postgresql://u:p@h:port/db"')  # a port registry_description() read
@example(b"[postgres]\nconnect_timeout_s = inf")
def test_any_bytes_give_a_config_or_problems(data: bytes) -> None:
    load_text(data)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_any_toml_document_gives_a_config_or_problems(data: dict[str, Any]) -> None:
    text = toml_document(data)
    tomllib.loads(text)  # the strategy writes valid TOML: what is tested is the loader
    load_text(text)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(KNOWN)), values)
@example(("acceptance", "timezone"), "Asia")
@example(("geo", "grid_extent"), [1.0, math.nan, 2.0, 3.0])
@example(("mqtt", "keepalive_s"), 2**40)
@example(("registry",), "postgresql://u@h:port/db")
@example(("mqtt",), 5)
@example(("limits", "chunk_bytes"), 2**40)  # fine alone, too big for the device budget
@example(("postgres", "pool_min"), 99)  # fine alone, more than pool_max
def test_a_wrong_value_of_a_known_key_names_the_key_and_its_line(
    keys: tuple[str, ...], value: Any
) -> None:
    *table, name = keys
    line = 1 if not table else 2
    header = ["[" + ".".join(table) + "]"] if table else []
    loaded = load_text("\n".join([*header, f"{name} = {toml_value(value)}"]))
    if isinstance(loaded.result, GatewayConfig):
        return
    dotted = ".".join(keys)
    about = [named(problem, loaded.path) for problem in loaded.problems]
    # every problem is about this key: itself, a part of its value, or the table holding it
    for where, rest in about:
        said = rest.split(": ", 1)[0]
        assert said == dotted or said.startswith(dotted + ".") or dotted.startswith(said + ".")
        if said == dotted or said.startswith(dotted + "."):
            assert where == line, (rest, line)
    # ... and one names it: by its dotted key, or (a rule across keys, reported on their
    # table: `limits: media_bytes_per_device_per_hour is smaller than chunk_bytes`) by name
    assert any(rest.startswith(dotted) or name in rest for _, rest in about), about


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(TABLES)), names)
@example((), "brokr")
@example(("mqtt",), "port")
@example(("mqtt", "tls"), "x y")
def test_an_unknown_key_is_named(table: tuple[str, ...], key: str) -> None:
    if key in TABLES[table]:
        return
    header = ["[" + ".".join(table) + "]"] if table else []
    loaded = load_text("\n".join([*header, f"{toml_key(key)} = 1"]))
    dotted = ".".join((*table, key))
    line = 2 if table else 1
    [problem] = loaded.problems
    if _BARE.fullmatch(key):
        assert problem == f"{loaded.path}:{line}: {dotted}: unknown key"
    else:  # a quoted key is named; its line is not looked for
        assert problem.endswith(f" {dotted}: unknown key")


@settings(max_examples=150, deadline=None)
@given(documents, st.dictionaries(st.sampled_from(sorted(".".join(k) for k in KNOWN)), values))
@example({"mqtt": 5}, {"mqtt.broker": "mqtt://h:1"})  # the override's table is not a table
@example({"data_dir": "x"}, {"data_dir.y": 1})
def test_command_line_overrides_on_any_file_give_a_config_or_problems(
    data: dict[str, Any], overrides: dict[str, Any]
) -> None:
    load_text(toml_document(data), overrides)


def test_an_override_into_a_value_that_is_no_table_is_named() -> None:
    loaded = load_text("mqtt = 5\n", {"mqtt.broker": "mqtt://h:1"})
    assert loaded.problems == [f"{loaded.path}: mqtt: not a table, so mqtt.broker cannot be set"]


@pytest.mark.parametrize(
    "text",
    [
        "a = " + "[" * 3000 + "]" * 3000,
        "a = " + "{b = " * 3000 + "1" + "}" * 3000,
        "[" + ".".join(["a"] * 3000) + "]\nb = 1",
        "[geo]\ndefault_units = " + "[" * 400 + "]" * 400,
        "data_dir = " + "{a = " * 400 + "1" + "}" * 400,
    ],
    ids=["arrays", "inline-tables", "table-header", "known-key-arrays", "known-key-tables"],
)
def test_deep_nesting_is_a_config_error(text: str) -> None:
    [problem] = load_text(text).problems
    assert problem


def test_many_mistakes_are_each_named_in_linear_time() -> None:
    def mistakes(count: int) -> str:
        return "\n".join(f"k{n} = {n}" for n in range(count))

    count = 20_000
    text, tenth = mistakes(count), mistakes(count // 10)
    # The baseline: a tenth of the mistakes (the median of three). Linear time takes about
    # ten times that for all of them, quadratic a hundred (a lookup per problem took minutes).
    baseline_s = statistics.median(seconds(lambda: load_text(tenth)) for _ in range(3))
    started = time.perf_counter()
    loaded = load_text(text)
    elapsed_s = time.perf_counter() - started
    assert len(loaded.problems) == count
    assert loaded.problems[-1] == f"{loaded.path}:{count}: k{count - 1}: unknown key"
    assert_within(elapsed_s, baseline_s, factor=30, floor_s=10, what=f"{count} mistakes")


def test_a_wrong_element_of_an_array_is_named_with_the_arrays_line() -> None:
    loaded = load_text('[geo]\nmatch_tolerance_m = 5.0\ngrid_extent = [1.0, "x", 2.0, inf]\n')
    assert loaded.problems == [
        f"{loaded.path}:3: geo.grid_extent.1: Input should be a valid number, unable to parse "
        "string as a number",
        f"{loaded.path}:3: geo.grid_extent.3: Input should be a finite number",
    ]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[acceptance]\ntimezone = "Asia"', "acceptance.timezone"),
        ("[media]\ntimeout_s = inf", "media.timeout_s"),
        ("[postgres]\nconnect_timeout_s = nan", "postgres.connect_timeout_s"),
        ("[mqtt]\nkeepalive_s = 65536", "mqtt.keepalive_s"),
        ("[mqtt]\nsession_expiry_s = 4294967296", "mqtt.session_expiry_s"),
        ("[postgres]\nstatement_timeout_ms = 2147483648", "postgres.statement_timeout_ms"),
        ("[postgres]\npool_min = 5\npool_max = 2", "postgres"),
        ('registry = "postgresql://u@h:port/db"', "registry"),
        ('registry = "postgresql://u@h/"', "registry"),
    ],
)
def test_values_the_gateway_would_trip_over_later_are_refused_now(text: str, key: str) -> None:
    """Each was taken before, then crashed `check-config` or the start (a traceback, an
    overflow, a struct that cannot pack it) or hung (an endless timeout)."""
    loaded = load_text(text)
    [problem] = loaded.problems
    assert named(problem, loaded.path)[1].startswith(f"{key}: ")


# ---- gateway check-config ---------------------------------------------------------------

GOOD_GEOJSON = '{"type": "FeatureCollection", "features": []}'
HOSTILE_FILES: dict[str, tuple[str, bytes]] = {
    "segment table not UTF-8": ("segment_table", b"\xff\xfe\x00"),
    "segment table without its columns": ("segment_table", b"a,b\n1,2\n"),
    "segment features that are numbers": ("segments", b'{"features": [1, 2]}'),
    "segments not JSON": ("segments", b"\x00garbage"),
    "a district without geometry": ("districts", b'{"features": [{"properties": {}}]}'),
    "no district at all": ("districts", GOOD_GEOJSON.encode()),
    "district table missing": ("district_table", b""),
    "a grid cell without geometry": (
        "grid",
        b'{"features": [{"properties": {"grid_code": "320600000000001"}, "geometry": null}]}',
    ),
    "a layer that is a directory": ("segments", b"/"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_FILES))
def test_check_config_names_a_broken_layer_without_a_traceback(tmp_path: Path, case: str) -> None:
    key, content = HOSTILE_FILES[case]
    layer = tmp_path / "layer"
    if content == b"/":
        layer.mkdir()
    elif case != "district table missing":
        layer.write_bytes(content)
    config = tmp_path / "gateway.toml"
    config.write_text(f'[geo]\n{key} = "layer"\n')
    result = CliRunner().invoke(main, ["check-config", str(config)])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    [problem] = [line for line in result.output.splitlines() if line.startswith("config error:")]
    assert str(layer) in problem


CODE_COLUMNS = b"code,major_code,major_name_zh,minor_code,minor_name_zh,name_en\n"


@pytest.mark.parametrize(
    ("components", "expected"),
    [
        (b"\xff\xfe", "cannot be read: UnicodeDecodeError"),
        (CODE_COLUMNS + b"0101\n", "x_components.csv:2: a short row"),
        (None, "cannot be read: IsADirectoryError"),
    ],
    ids=["not-utf8", "short-row", "a-directory"],
)
def test_check_config_names_a_broken_code_table(
    tmp_path: Path, components: bytes | None, expected: str
) -> None:
    codes = tmp_path / "codes"
    codes.mkdir()
    if components is None:
        (codes / "x_components.csv").mkdir()
    else:
        (codes / "x_components.csv").write_bytes(components)
    (codes / "x_events.csv").write_bytes(CODE_COLUMNS)
    config = tmp_path / "gateway.toml"
    config.write_text('[codes]\nprofile = "x"\ndir = "codes"\n')
    result = CliRunner().invoke(main, ["check-config", str(config)])
    assert result.exit_code == 2, result.output
    assert expected in result.output


@settings(max_examples=60, deadline=None)
@given(documents)
def test_check_config_answers_any_document_with_ok_or_each_problem(
    data: dict[str, Any],
) -> None:
    with tempfile.TemporaryDirectory(prefix="cgt-check-") as directory:
        config = Path(directory) / "gateway.toml"
        config.write_text(toml_document(data), encoding="utf-8")
        result = CliRunner().invoke(main, ["check-config", str(config)])
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    if result.exit_code == 2:
        assert result.output.startswith("config error: ")
    else:
        assert f"{config}: ok" in result.output
