"""Chunk assembly: an upload's chunks, in order, into one file checked against its manifest."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Assembled:
    path: Path
    bytes: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Mismatch:
    detail: str


def assemble(
    chunks: Iterable[tuple[int, bytes]],
    chunk_count: int,
    expected_bytes: int,
    expected_sha256: str,
    target: Path,
) -> Assembled | Mismatch:
    """Write `chunks` (seq, data), hashing as they stream, then check size and SHA-256.

    The file is fsynced and renamed into place only when it matches, so `target` never
    holds a wrong or partial upload; memory holds one chunk at a time."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    size = 0
    expected_seq = 0
    with partial.open("wb") as out:
        for seq, data in chunks:
            if seq != expected_seq:
                break
            digest.update(data)
            out.write(data)
            size += len(data)
            expected_seq += 1
        out.flush()
        os.fsync(out.fileno())
    problem = None
    if expected_seq != chunk_count:
        problem = f"chunk {expected_seq} of {chunk_count} is missing"
    elif size != expected_bytes:
        problem = f"{size} bytes, manifest says {expected_bytes}"
    elif digest.hexdigest() != expected_sha256:
        problem = f"SHA-256 {digest.hexdigest()}, manifest says {expected_sha256}"
    if problem is not None:
        partial.unlink(missing_ok=True)
        return Mismatch(problem)
    os.replace(partial, target)
    return Assembled(target, size, expected_sha256)
