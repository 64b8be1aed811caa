"""Config loading: defaults, clear messages for mistakes, no secrets in output."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.config import load_config
from gateway.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "config/gateway.example.toml"


def test_no_file_gives_embedded_defaults() -> None:
    config = load_config(None, {"data_dir": "/tmp/x"})
    assert config.inbox_path == Path("/tmp/x/inbox.db")
    assert config.objects_dir == Path("/tmp/x/objects")
    assert config.registry_path == Path("/tmp/x/registry.db")
    assert (config.mqtt.host, config.mqtt.port) == ("127.0.0.1", 1883)
    assert config.codes_dir.joinpath("gbt30428_events.csv").exists()


def test_example_file_is_valid_and_paths_are_relative_to_it() -> None:
    config = load_config(EXAMPLE)
    assert config.data_dir == EXAMPLE.parent / "../var/gateway"
    assert config.acceptance.opens.hour == 8


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def test_unknown_keys_are_named_with_their_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[mqtt]\nbroker = "mqtt://h:1"\nbrokr = "x"\n\n[stor]\nx = 1\n')
    assert problems(path) == [f"{path}:3: mqtt.brokr: unknown key", f"{path}:5: stor: unknown key"]


def test_bad_values_are_each_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[mqtt]\nbroker = "http://h"\nreceive_maximum = 0\n'
        '[acceptance]\ntimezone = "Mars/Olympus"\n'
        '[pipeline]\nmode = "fork"\n',
    )
    found = problems(path)
    assert len(found) == 4
    assert f"{path}:2: mqtt.broker: must look like mqtt://HOST:PORT or mqtts://HOST:PORT" in found
    assert any(p.startswith(f"{path}:3: mqtt.receive_maximum:") for p in found)
    assert f"{path}:5: acceptance.timezone: unknown time zone 'Mars/Olympus'" in found
    assert any(p.startswith(f"{path}:7: pipeline.mode:") for p in found)


def test_not_toml_is_reported(tmp_path: Path) -> None:
    [problem] = problems(write(tmp_path, "[mqtt\n"))
    assert "not valid TOML" in problem


def test_password_comes_from_the_environment_and_is_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CGT_TEST_PW", "hunter2-secret")
    config = load_config(write(tmp_path, '[mqtt]\nusername = "gw"\npassword_env = "CGT_TEST_PW"\n'))
    secret = config.mqtt.password()
    assert secret is not None
    assert secret.get_secret_value() == "hunter2-secret"
    assert "hunter2" not in repr(config)
    assert "hunter2" not in str(secret)


def test_missing_password_variable_is_a_config_error(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[mqtt]\npassword_env = "CGT_NOT_SET_ANYWHERE"\n'))
    with pytest.raises(ConfigError, match="CGT_NOT_SET_ANYWHERE is not set"):
        config.mqtt.password()


def test_check_config_command(tmp_path: Path) -> None:
    runner = CliRunner()
    good = runner.invoke(main, ["check-config", str(EXAMPLE)])
    assert good.exit_code == 0, good.output
    assert "code profile gbt30428: 139 classes" in good.output
    bad = runner.invoke(main, ["check-config", str(write(tmp_path, "[mqtt]\nport = 1\n"))])
    assert bad.exit_code == 2
    assert "mqtt.port: unknown key" in bad.output


def test_check_config_reports_a_broken_code_profile(tmp_path: Path) -> None:
    codes = tmp_path / "codes"
    codes.mkdir()
    (codes / "city_components.csv").write_text(
        "code,major_code,major_name_zh,minor_code,minor_name_zh,name_en\n0101,01,a,01,b,c\n0101,01,a,01,b,c\n"
    )
    (codes / "city_events.csv").write_text(
        "code,major_code,major_name_zh,minor_code,minor_name_zh,name_en\n12,1,a,2,b,c\n"
    )
    path = write(tmp_path, '[codes]\nprofile = "city"\ndir = "codes"\n')
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 2
    assert f"{codes}/city_components.csv:3: code 0101 appears twice" in result.output
    assert f"{codes}/city_events.csv:2: code '12' is not 4 or 5 digits" in result.output


def test_a_secret_that_cannot_be_read_stops_the_start_naming_its_key(tmp_path: Path) -> None:
    from gateway.runtime.wiring import check_secrets  # noqa: PLC0415

    config = load_config(
        None,
        {
            "objects": "s3://cgt-objects",
            "s3.secret_access_key_env": "CGT_TEST_NOT_SET",
            "registry": "postgresql://cgt@db/cgt",
            "postgres.password_file": str(tmp_path / "missing"),
        },
    )
    with pytest.raises(ConfigError) as raised:
        check_secrets(config)
    assert raised.value.problems == ["s3.secret_access_key_env: $CGT_TEST_NOT_SET is not set"]
    with pytest.raises(ConfigError) as raised:
        check_secrets(config.model_copy(update={"objects": None}))
    assert raised.value.problems[0].startswith("postgres.password_file: cannot read")


def test_a_cluster_needs_s3_and_keeps_its_cases_beside_the_rest(tmp_path: Path) -> None:
    url = "postgresql://cgt:secret@db.city.example/cgt"
    config = load_config(None, {"cluster.url": url, "objects": "s3://cgt-city/objects"})
    assert config.registry == url  # the cases in the cluster's database unless told
    assert ":secret@" not in repr(config)
    elsewhere = "postgresql://cases@registry.city.example/cases"
    config = load_config(
        None, {"cluster.url": url, "objects": "s3://cgt-city", "registry": elsewhere}
    )
    assert config.registry == elsewhere
    assert [
        p.split(": ", 1)[1] for p in problems(write(tmp_path, f'[cluster]\nurl = "{url}"\n'))
    ] == [
        "cluster: url is set: objects must be s3://BUCKET[/PREFIX] (a directory is this"
        " machine's alone)"
    ]
    [bad] = problems(write(tmp_path, 'objects = "s3://b-1"\n[cluster]\nurl = "mysql://x@h/d"\n'))
    assert "cluster.url" in bad
    assert "postgresql://USER@HOST[:PORT]/DB" in bad
