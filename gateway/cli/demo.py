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
@click.option("--exit", "exit_at_once", is_flag=True, help="End when the fleet is done, "
              "instead of serving the console until Ctrl-C (for scripts).")  # fmt: skip
def demo(
    data_dir: Path | None, terminals: int, reports_per_terminal: int, exit_at_once: bool
) -> None:
    """Start a broker, the gateway with its console and simulated terminals; serve it.

    Prints what happened, then keeps the console serving until Ctrl-C (`--exit`: not)."""
    sys.exit(
        run_demo(data_dir or Path("var/demo"), terminals, reports_per_terminal,
                 keep_serving=not exit_at_once)
    )  # fmt: skip
