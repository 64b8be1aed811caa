"""Secrets never leave the process in words: a unique string is planted in every place a
secret can come from (the MQTT password by `password_env` and `password_file`, the S3
secret key by `secret_access_key_env` and `_file`, the PostgreSQL password by
`password_env`, `password_file`, inside the `registry` URL and as its `password=`
parameter), and must appear nowhere: not in `gateway check-config`, not in a ConfigError
about a bad value beside it, not in a repr, not in the log of `gateway run` starting.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.cli import main
from gateway.config import GatewayConfig, load_config
from gateway.errors import ConfigError
from gateway.settings import redact_url


@dataclass(frozen=True)
class Planted:
    """Secrets planted for one test: each unique, so any leak names its source."""

    mqtt_env: str = "mqtt-env-Qv7HkP2x"
    mqtt_file: str = "mqtt-file-Wn4TzL8c"
    s3_env: str = "s3-env-Jr9XbM3d"
    s3_file: str = "s3-file-Fy2VqS6k"
    pg_env: str = "pg-env-Ld5NwC1t"
    pg_file: str = "pg-file-Hs8GmR4p"
    pg_url: str = "pg-url-Tb3KxZ7q"
    pg_query: str = "pg-query-Ce6PjY9w"

    def all(self) -> list[str]:
        return [value for value in vars(self).values() if isinstance(value, str)]

    def assert_absent(self, *texts: str) -> None:
        for text in texts:
            for secret in self.all():
                assert secret not in text, f"{secret} leaked:\n{text}"


SECRETS = Planted()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with the secret files, the environment with the secret variables."""
    for name, value in (("mqtt.pw", SECRETS.mqtt_file), ("s3.key", SECRETS.s3_file)):
        (tmp_path / name).write_text(value + "\n")
    (tmp_path / "pg.pw").write_text(SECRETS.pg_file + "\n")
    monkeypatch.setenv("CGT_TEST_MQTT_PW", SECRETS.mqtt_env)
    monkeypatch.setenv("CGT_TEST_S3_KEY", SECRETS.s3_env)
    monkeypatch.setenv("CGT_TEST_PG_PW", SECRETS.pg_env)
    return tmp_path


def config_text(*, by: str, port: int, extra: str = "") -> str:
    """A production-shaped config naming every secret, from the environment or from files;
    every server is on a port nothing listens on."""
    mqtt = 'password_env = "CGT_TEST_MQTT_PW"' if by == "env" else 'password_file = "mqtt.pw"'
    s3 = (
        'secret_access_key_env = "CGT_TEST_S3_KEY"'
        if by == "env"
        else 'secret_access_key_file = "s3.key"'
    )
    pg = 'password_env = "CGT_TEST_PG_PW"' if by == "env" else 'password_file = "pg.pw"'
    registry = (
        f"postgresql://cgt:{SECRETS.pg_url}@127.0.0.1:{port}/cgt"
        f"?sslmode=disable&password={SECRETS.pg_query}"
    )
    return f"""data_dir = "data"
objects = "s3://cgt-objects/nantong"
registry = "{registry}"
{extra}
[mqtt]
broker = "mqtt://127.0.0.1:{port}"
username = "cgt-gateway"
{mqtt}

[s3]
endpoint_url = "http://127.0.0.1:{port}"
access_key_id = "AKIDEXAMPLE"
{s3}

[postgres]
{pg}
connect_timeout_s = 1

[pipeline]
mode = "thread"

[log]
level = "debug"
format = "json"
"""


def write_config(directory: Path, text: str) -> Path:
    path = directory / "gateway.toml"
    path.write_text(text)
    return path


# ---- check-config -----------------------------------------------------------------------


@pytest.mark.parametrize("by", ["env", "file"])
def test_check_config_shows_where_things_are_but_no_secret(planted: Path, by: str) -> None:
    path = write_config(planted, config_text(by=by, port=5432))
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 0, result.output
    assert "registry     postgresql://cgt@127.0.0.1:5432/cgt" in result.output
    assert "objects      s3://cgt-objects/nantong" in result.output
    SECRETS.assert_absent(result.output, result.stdout, result.stderr)


def in_table(table: str, lines: str) -> Callable[[str], str]:
    return lambda text: text.replace(f"\n[{table}]\n", f"\n[{table}]\n{lines}\n", 1)


def setting(key: str, value: str) -> Callable[[str], str]:
    return lambda text: re.sub(rf"^{key} = .*$", f'{key} = "{value}"', text, count=1, flags=re.M)


BAD_VALUES_BESIDE_SECRETS: dict[str, Callable[[str], str]] = {
    # a bad value in a table that names a secret
    "mqtt": in_table("mqtt", "keepalive_s = 0"),
    "postgres": in_table("postgres", "pool_min = 9\npool_max = 1"),
    "s3": in_table("s3", 'server_side_encryption = "rot13"'),
    # a URL around a password that is wrong, or a password where none belongs
    "registry-bad-port": setting("registry", f"postgresql://cgt:{SECRETS.pg_url}@db:port/cgt"),
    "registry-no-db": setting("registry", f"postgresql://cgt:{SECRETS.pg_url}@db/"),
    "registry-unencoded": setting("registry", f"postgresql://cgt:{SECRETS.pg_url}/x?y@db/cgt"),
    "registry-scheme": setting("registry", f"mysql://cgt:{SECRETS.pg_url}@db/cgt"),
    "broker-password": setting("broker", f"mqtt://gw:{SECRETS.mqtt_env}@h:1883"),
    "broker-password-bad-port": setting("broker", f"mqtt://gw:{SECRETS.mqtt_env}?@h:x"),
    "objects-key": setting("objects", f"s3://AKID:{SECRETS.s3_env}@cgt-objects"),
    "s3-endpoint-key": setting("endpoint_url", f"http://AKID:{SECRETS.s3_env}@127.0.0.1:9000"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES_BESIDE_SECRETS))
def test_a_bad_value_beside_a_secret_is_named_without_the_secret(planted: Path, case: str) -> None:
    text = BAD_VALUES_BESIDE_SECRETS[case](config_text(by="env", port=5432))
    assert text != config_text(by="env", port=5432)
    path = write_config(planted, text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    SECRETS.assert_absent(str(raised.value), *raised.value.problems)
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("config error: ")
    SECRETS.assert_absent(result.output)


@pytest.mark.integration  # `gateway run` in a process (tests/server_guard.py)
def test_a_bad_registry_url_on_the_command_line_is_refused_without_its_password(
    planted: Path,
) -> None:
    url = f"postgresql://cgt:{SECRETS.pg_url}@db:x/cgt"
    command = [sys.executable, "-m", "gateway", "run", "--data-dir", str(planted / "data")]
    # A subprocess with a timeout: were the URL taken, the gateway would run on.
    result = subprocess.run(
        [*command, "--registry", url], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == "config error: registry: bad port: postgresql://USER@HOST[:PORT]/DB\n"
    SECRETS.assert_absent(result.stdout, result.stderr)


# ---- reprs ------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["env", "file"])
def test_no_repr_holds_a_secret(planted: Path, by: str) -> None:
    config = load_config(write_config(planted, config_text(by=by, port=5432)))
    secrets = [config.mqtt.password(), config.s3.secret_access_key(), config.postgres.password()]
    assert [s.get_secret_value() for s in secrets if s] == [
        getattr(SECRETS, f"{name}_{by}") for name in ("mqtt", "s3", "pg")
    ]
    shown = [repr(config), str(config), config.registry_description()]
    shown += [repr(section) for section in (config.mqtt, config.s3, config.postgres)]
    shown += [text for secret in secrets for text in (repr(secret), str(secret))]
    SECRETS.assert_absent(*shown)
    assert "registry='postgresql://cgt:***@127.0.0.1:5432/cgt?sslmode=disable&password=***'" in (
        repr(config)
    )


@settings(max_examples=200, deadline=None)
@given(
    password=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=24
    ),
    port=st.sampled_from(["", ":5432", ":x", ":99999", ":"]),
    database=st.sampled_from(["/cgt", "/", "", "/cgt?sslmode=require", "/cgt#f"]),
)
def test_a_registry_url_password_is_never_shown_whatever_the_url(
    password: str, port: str, database: str
) -> None:
    """Any password (unencoded / ? # @ : included) in any registry URL, valid or not:
    neither the config's repr and description nor a ConfigError holds it."""
    secret = f"SeKr1t{password}"
    url = f"postgresql://cgt:{secret}@db{port}{database}"
    try:
        config = load_config(None, {"registry": url})
    except ConfigError as error:
        problems = str(error)
    else:
        problems = ""
        assert secret not in config.registry_description()
        assert secret not in repr(config)
        assert secret not in str(config)
    assert secret not in problems


def test_redact_url_hides_user_info_and_password_parameters() -> None:
    assert redact_url("postgresql://u:p@h:1/db?a=1&password=x&PASSWORD=y") == (
        "postgresql://u:***@h:1/db?a=1&password=***&PASSWORD=***"
    )
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact_url("postgresql://h/db") == "postgresql://h/db"


# ---- gateway run: the start-up log ---------------------------------------------------------


@pytest.mark.integration  # `gateway run` in a process (tests/server_guard.py)
@pytest.mark.parametrize("by", ["env", "file"])
def test_gateway_run_logs_its_start_without_a_secret(planted: Path, by: str) -> None:
    """`gateway run` with every secret planted and every server away (so it also logs its
    connection failures) until it has started and tried the registry, then SIGTERM."""
    path = write_config(planted, config_text(by=by, port=closed_port()))
    log = planted / "gateway.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            text = log.read_text(errors="replace")
            if "gateway.started" in text and "registry.unreachable_at_start" in text:
                break
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    text = log.read_text(errors="replace")
    assert '"event":"gateway.started"' in text, text
    assert "registry.unreachable_at_start" in text, text
    assert '"username":"cgt-gateway"' in text
    SECRETS.assert_absent(text)


def test_the_pipeline_process_gets_the_whole_config_but_not_on_its_command_line() -> None:
    """The pipeline process is spawned with the config as JSON (the registry URL, password
    and all): through multiprocessing's pipe, so never in `ps` or /proc/PID/cmdline."""
    config = load_config(None, {"registry": f"postgresql://cgt:{SECRETS.pg_url}@db/cgt"})
    assert SECRETS.pg_url in config.model_dump_json()  # what the child needs to log in
    assert GatewayConfig.model_validate_json(config.model_dump_json()) == config
