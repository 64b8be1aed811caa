"""One NMEA sentence of any text through `parse_sentence`: a sentence, Ignored, or
NmeaRejected with an `NmeaReason`; positions in range."""

from __future__ import annotations

from fuzz.invariant import require
from fuzz.targets._gnss import check_position
from gateway.protocols import nmea

_RESULTS = (
    nmea.Rmc, nmea.Gga, nmea.Gns, nmea.Gll, nmea.Gsa, nmea.Vtg, nmea.Zda, nmea.Ignored,
    nmea.NmeaRejected,
)  # fmt: skip


def one_input(data: bytes) -> None:
    # A report's `nmea` list is JSON text (any Unicode); a serial line is decoded with
    # "replace" too (EpochAssembler.receive_data), so both reach the parser as here.
    parsed = nmea.parse_sentence(data.decode("utf-8", "replace"))
    require(isinstance(parsed, _RESULTS), f"parse_sentence returned {type(parsed).__name__}")
    if isinstance(parsed, nmea.NmeaRejected):
        require(isinstance(parsed.reason, nmea.NmeaReason), f"reason {parsed.reason!r}")
        require(len(parsed.text) <= nmea.MAX_SENTENCE_CHARS, "rejected text not cut")
    elif isinstance(parsed, nmea.Rmc | nmea.Gga | nmea.Gns | nmea.Gll):
        check_position(parsed.lat, parsed.lon)
