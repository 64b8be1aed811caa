"""gpsd's JSON stream through `GpsdDecoder` (split in two at a point the first byte picks)
and each line through `decode_report` as text: an event of the decoder's, or GpsdRejected
with a `GpsdReason`; a fix in range."""

from __future__ import annotations

from fuzz.invariant import require
from fuzz.targets._gnss import check_fix
from gateway.protocols import gpsd

_EVENTS = (
    gpsd.Version,
    gpsd.Devices,
    gpsd.Watching,
    gpsd.Fixed,
    gpsd.Unfixed,
    gpsd.Sky,
    gpsd.GpsdError,
    gpsd.Ignored,
    gpsd.GpsdRejected,
)


def _check(event: gpsd.GpsdEvent) -> None:
    require(isinstance(event, _EVENTS), f"the decoder returned {type(event).__name__}")
    if isinstance(event, gpsd.GpsdRejected):
        require(isinstance(event.reason, gpsd.GpsdReason), f"reason {event.reason!r}")
    elif isinstance(event, gpsd.Fixed):
        check_fix(event.fix)
        require(event.fix.source == "gpsd", f"source {event.fix.source!r}")


def one_input(data: bytes) -> None:
    decoder = gpsd.GpsdDecoder()
    cut = data[0] * len(data) // 256 if data else 0
    for event in [*decoder.receive_data(data[:cut]), *decoder.receive_data(data[cut:])]:
        _check(event)
    for line in data.decode("utf-8", "replace").splitlines()[:8]:
        _check(gpsd.decode_report(line))
