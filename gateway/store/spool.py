"""The media spool: assembled originals and their derivatives, between the chunks and the
objects sink.

The photo and voice stages need files on a local disk, so every instance writes and
reads its spool in a local directory. On one machine that is all there is (`LocalSpool`:
each file is fsynced by whoever wrote it before the step that made it is recorded). In a
cluster the next step of a report may run on another instance, or the first one may die,
so each file is also kept in the shared object store under `spool/` before the step that
made it is recorded, and an instance that lacks a file fetches it from there
(`SharedSpool`). Files are let go (`discard`) once the objects sink has stored them
durably, or once their report was rejected.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from gateway.paths import child

SPOOL_PREFIX = "spool/"


class Spool(Protocol):
    root: Path

    def path(self, device_id: str, media_id: str) -> Path:
        """Where an upload's assembled original lives on this machine."""
        ...

    def keep(self, paths: Sequence[Path]) -> None:
        """Make freshly written files durable where every instance can reach them."""
        ...

    def fetch(self, paths: Sequence[Path]) -> None:
        """Bring files another instance kept to this machine (missing ones stay missing)."""
        ...

    def discard(self, paths: Sequence[Path]) -> None:
        """Let files go, here and wherever they were kept."""
        ...


class LocalSpool:
    """One machine's spool: a directory (its writers fsync what they write)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, device_id: str, media_id: str) -> Path:
        return child(self.root, device_id, media_id)  # PathEscape past the wire grammar

    def keep(self, paths: Sequence[Path]) -> None:
        """Nothing more to do: the assembler and the media workers fsync their files."""

    def fetch(self, paths: Sequence[Path]) -> None:
        """Nothing to do: every file of this spool is on this machine."""

    def discard(self, paths: Sequence[Path]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)


class SharedObjects(Protocol):
    """What a shared spool needs of the object store (gateway.sinks.objects_s3)."""

    def put_file(self, key: str, path: Path, *, sha256: str, content_type: str) -> None: ...

    def get_file(self, key: str, path: Path) -> bool: ...

    def delete(self, keys: Sequence[str]) -> None: ...


class SharedSpool(LocalSpool):
    """A cluster's spool: the local directory as a cache of `spool/` in the object store."""

    def __init__(self, root: Path, objects: SharedObjects) -> None:
        super().__init__(root)
        self.objects = objects

    def key(self, path: Path) -> str:
        return SPOOL_PREFIX + path.relative_to(self.root).as_posix()

    def keep(self, paths: Sequence[Path]) -> None:
        for path in paths:
            with path.open("rb") as file:
                digest = hashlib.file_digest(file, "sha256").hexdigest()
            self.objects.put_file(
                self.key(path), path, sha256=digest, content_type="application/octet-stream"
            )

    def fetch(self, paths: Sequence[Path]) -> None:
        for path in paths:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                self.objects.get_file(self.key(path), path)

    def discard(self, paths: Sequence[Path]) -> None:
        super().discard(paths)
        if paths:
            self.objects.delete([self.key(path) for path in paths])
