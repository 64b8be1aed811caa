"""The `gateway` command: its table of lazily loaded commands agrees with the commands,
and neither `import gateway.cli` nor `gateway --help` loads the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from gateway.cli import COMMANDS, main

HEAVY = ("PIL", "av", "numpy", "shapely", "boto3", "psycopg", "pebble", "prometheus_client")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_entry_names_its_command_and_its_help(name: str) -> None:
    command = main.get_command(click.Context(main), name)
    assert command is not None
    assert command.name == name
    assert command.get_short_help_str(limit=200) == COMMANDS[name].summary


def test_help_lists_every_command_with_its_summary() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert " ".join(result.output.split()).count("Run the gateway until SIGTERM or Ctrl-C.") == 1
    listed = {
        line.split()[0]
        for line in result.output.split("Commands:")[1].splitlines()
        if line.startswith("  ") and not line.startswith("   ")
    }
    assert listed == set(COMMANDS)


def test_an_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["frobnicate"])
    assert result.exit_code == 2
    assert "No such command 'frobnicate'" in result.output


def _loaded_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(' '.join(sorted(m for m in sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False
    )
    return done.stdout.split()


def test_importing_the_cli_loads_no_codec_image_library_or_driver() -> None:
    loaded = {name.split(".")[0] for name in _loaded_after("import gateway.cli")}
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_help_loads_no_codec_image_library_or_driver() -> None:
    code = "from gateway.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    loaded = {name.split(".")[0] for name in _loaded_after(code)}
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_loading_the_config_loads_none_of_what_it_configures() -> None:
    loaded = {
        name.split(".")[0]
        for name in _loaded_after("from gateway.config import load_config\nload_config(None)")
    }
    assert not loaded & {*HEAVY, "paho", "cryptography", "pynmea2"}, sorted(loaded)
