"""A media file as a terminal holds it: bytes in parts, their size and SHA-256, cut in chunks.

A file is a tuple of parts whose concatenation is its content. Reports share the
bulky part (a pre-encoded picture, a voice track) and own only a small unique head,
so a thousand terminals with a photo each in flight hold a few base pictures in
memory, not a thousand copies.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from firmware_sim.wire import MediaKind


@dataclass(frozen=True, slots=True)
class MediaFile:
    kind: MediaKind
    mime: str
    parts: tuple[bytes, ...]
    size: int
    sha256: str

    @classmethod
    def of(cls, kind: MediaKind, mime: str, *parts: bytes) -> MediaFile:
        digest = hashlib.sha256()
        for part in parts:
            digest.update(part)
        return cls(kind, mime, parts, sum(len(part) for part in parts), digest.hexdigest())

    def read(self) -> bytes:
        """The whole file (tests and tools; the upload path reads chunk by chunk)."""
        return b"".join(self.parts)

    def chunk_count(self, chunk_bytes: int) -> int:
        return -(-self.size // chunk_bytes)

    def chunk(self, seq: int, chunk_bytes: int) -> bytes:
        """Chunk `seq`: `chunk_bytes` long, except the last, which holds the rest."""
        if chunk_bytes < 1 or not 0 <= seq < self.chunk_count(chunk_bytes):
            raise IndexError(f"no chunk {seq} of {chunk_bytes} bytes in {self.size} bytes")
        return self._slice(seq * chunk_bytes, min((seq + 1) * chunk_bytes, self.size))

    def _slice(self, start: int, stop: int) -> bytes:
        pieces: list[bytes] = []
        offset = 0
        for part in self.parts:
            end = offset + len(part)
            if end > start and offset < stop:
                pieces.append(part[max(start - offset, 0) : min(stop, end) - offset])
            offset = end
            if offset >= stop:
                break
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)
