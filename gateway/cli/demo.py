"""`gateway demo`: the whole pipeline on embedded defaults (gateway/harness/demo.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gateway.cli.options import data_dir_option
from gateway.harness.demo import run_demo


@click.command()
@data_dir_option
@click.option("--terminals", default=20, show_default=True)
@click.option("--reports-per-terminal", default=5, show_default=True)
def demo(data_dir: Path | None, terminals: int, reports_per_terminal: int) -> None:
    """Start a broker, the gateway and simulated terminals; print what happened."""
    sys.exit(run_demo(data_dir or Path("var/demo"), terminals, reports_per_terminal))
