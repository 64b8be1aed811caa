#!/usr/bin/env bash
# Re-pin constraints.txt from a fresh venv built from pyproject.toml's direct pins.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
python3 -m venv "$scratch/venv"
"$scratch/venv/bin/pip" install --quiet --upgrade pip
"$scratch/venv/bin/pip" install --quiet '.[dev]'
{
  echo "# Every package of the development venv, pinned; used as pip constraints by the Makefile"
  echo "# and the Dockerfile so both install exactly these. Refresh: tools/refresh-constraints.sh"
  "$scratch/venv/bin/pip" freeze --exclude-editable | grep -v '^cgt-gateway'
} > constraints.txt
