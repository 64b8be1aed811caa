"""One fuzz target under atheris: `python -m fuzz.engine MODULE:FUNCTION [libFuzzer args]`.

Run by `fuzz.run`, one process per target: libFuzzer ends its process at the first
finding, and a process of its own gives each target its own memory bound. Only our code
and the pure-Python parsers under it are instrumented for coverage; pydantic-core,
orjson, Pillow and FFmpeg are native, and libFuzzer sees them only through our branches.
"""

from __future__ import annotations

import sys

import atheris
from atheris.import_hook import instrument_imports

from fuzz.targets import Target

# Coverage comes from these packages; tomllib is the config loader's parser.
# (fuzz.targets itself names modules only; its target modules load under instrumentation.)
INSTRUMENTED = ["gateway", "firmware_sim", "pynmea2", "tomllib", "fuzz.targets"]


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit("usage: python -m fuzz.engine MODULE:FUNCTION [libFuzzer options] [CORPUS ...]")
    entry, libfuzzer_args = argv[1], argv[2:]
    with instrument_imports(include=INSTRUMENTED):
        one_input = Target(entry, entry).load()
    atheris.Setup([argv[0], *libfuzzer_args], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
