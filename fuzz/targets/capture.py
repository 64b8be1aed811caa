"""Any bytes as a traffic capture (`firmware-sim replay FILE`): the reader yields checked
records, then `fresh_ids` renames them, or the reader raises `CaptureError` naming the
line; never another exception."""

from __future__ import annotations

import io
import itertools
import uuid

from firmware_sim.capture import CaptureError, CaptureReader, CaptureRecord, fresh_ids
from fuzz.invariant import require


def one_input(data: bytes) -> None:
    serial = itertools.count()
    try:
        reader = CaptureReader(io.BytesIO(data))
        # Deterministic new ids: a finding must reproduce from its input alone.
        records = list(fresh_ids(reader, lambda: str(uuid.UUID(int=next(serial)))))
    except CaptureError as error:
        require(error.line is None or error.line >= 1, f"line {error.line}")
        return
    require(all(isinstance(record, CaptureRecord) for record in records), "not a record")
