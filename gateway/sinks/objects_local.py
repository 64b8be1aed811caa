"""Objects in a local directory: the embedded default, with the S3 key layout."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from gateway.errors import PermanentSinkError, RetryableSinkError


class LocalObjectStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path_of(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise PermanentSinkError(f"key {key!r} leaves the object root")
        return path

    def put_file(self, key: str, path: Path, *, sha256: str, content_type: str) -> None:
        target = self.path_of(key)
        # Content-addressed: an object of this key and size is this content already.
        if target.exists() and target.stat().st_size == path.stat().st_size:
            return

        def copy(out: BinaryIO) -> None:
            with path.open("rb") as source:
                shutil.copyfileobj(source, out)

        self._write(target, copy)

    def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None:
        self._write(self.path_of(key), lambda out: out.write(data))

    def _write(self, target: Path, fill: Callable[[BinaryIO], object]) -> None:
        """Write via a temporary file, fsync, rename: a reader never sees half an object."""
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".part-")
            with os.fdopen(fd, "wb") as out:
                fill(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
            fsync_directory(target.parent)
        except OSError as error:
            raise RetryableSinkError(f"writing {target}: {error}") from error

    def close(self) -> None:
        return None


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
