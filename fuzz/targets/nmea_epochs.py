"""A receiver's byte stream through `EpochAssembler` (split in two, so a line may arrive
in parts) and, as a report's `nmea` list, through `fix_from_sentences`."""

from __future__ import annotations

from fuzz.invariant import require
from fuzz.targets._gnss import check_fix
from gateway.protocols import nmea
from gateway.protocols.gnss import GnssFix


def _check_event(event: nmea.Event) -> None:
    if isinstance(event, GnssFix):
        check_fix(event)
    elif isinstance(event, nmea.NoFix | nmea.NmeaRejected):
        require(isinstance(event.reason, nmea.NmeaReason), f"reason {event.reason!r}")
    else:
        require(False, f"the assembler returned {type(event).__name__}")


def one_input(data: bytes) -> None:
    assembler = nmea.EpochAssembler()
    # The first byte says where the stream is cut: the seeds' cuts land in a sentence.
    cut = data[0] * len(data) // 256 if data else 0
    for event in [*assembler.receive_data(data[:cut]), *assembler.receive_data(data[cut:])]:
        _check_event(event)
    for event in assembler.flush():
        _check_event(event)
    lines = data.decode("utf-8", "replace").splitlines()
    verdict = nmea.fix_from_sentences(lines[:64])  # wire-v1: at most 64 sentences a report
    _check_event(verdict)
