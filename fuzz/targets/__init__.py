"""The fuzz targets, one per parser. Each module has `one_input(data: bytes) -> None`, which
returns quietly when the parser kept its contract and raises otherwise.

Modules are named here, not imported: the engine imports a target under atheris'
instrumentation, which only covers modules imported after it starts.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "corpus"

KiB = 1024


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    entry: str  # "module:function", the one-input function
    # The largest input tried. Text protocols get room for their limits' interesting
    # edges; media stay small because each decode costs milliseconds, not microseconds.
    max_len: int = 4 * KiB
    # libFuzzer's -rss_limit_mb: the memory bound of the contract. A photo at the
    # pipeline's pixel limit (a 120-MP RGBA PNG) peaks at 1.57 GB through every conversion
    # (measured); 2 GiB holds it with room, and nothing else comes near.
    rss_limit_mb: int = 2048
    # libFuzzer's -timeout, seconds for one input: any parser taking this long on a few
    # KiB is hung (the slowest real input, a 16 KiB media file, takes milliseconds).
    timeout_s: int = 10
    corpus: Path | None = None  # the seeds' directory, if not corpus/<name>

    @property
    def seeds(self) -> Path:
        return self.corpus or CORPUS / self.name

    def load(self) -> Callable[[bytes], None]:
        module_name, _, function = self.entry.partition(":")
        one_input: Callable[[bytes], None] = getattr(
            importlib.import_module(module_name), function or "one_input"
        )
        return one_input


TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        Target("topic", "fuzz.targets.topic:one_input", max_len=512),
        Target("envelope", "fuzz.targets.envelope:one_input", max_len=16 * KiB),
        Target("chunk", "fuzz.targets.chunk:one_input", max_len=1 * KiB),
        Target("status", "fuzz.targets.status:one_input"),
        Target("track", "fuzz.targets.track:one_input", max_len=16 * KiB),
        Target("nmea_sentence", "fuzz.targets.nmea_sentence:one_input", max_len=512),
        Target("nmea_epochs", "fuzz.targets.nmea_epochs:one_input", max_len=8 * KiB),
        Target("gpsd", "fuzz.targets.gpsd:one_input", max_len=8 * KiB),
        Target("photo", "fuzz.targets.photo:one_input", max_len=16 * KiB),
        Target("voice", "fuzz.targets.voice:one_input", max_len=8 * KiB),
        Target("config", "fuzz.targets.config:one_input", max_len=8 * KiB),
        Target("downlink", "fuzz.targets.downlink:one_input"),
        Target("capture", "fuzz.targets.capture:one_input", max_len=8 * KiB),
    )
}
