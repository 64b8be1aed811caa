"""Objects in a local directory: the embedded default, with the S3 key layout.

Each object is written to a temporary name and renamed into place, so a reader never
sees half of one. Durability comes per batch, not per file: `flush()` makes every write
so far durable with one `syncfs(2)` of the object directory's filesystem, which costs
about what one fsync does, instead of two fsyncs (file and directory) per object.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from gateway.errors import PermanentSinkError, RetryableSinkError
from gateway.paths import PathEscape, child

_libc = ctypes.CDLL(None, use_errno=True)


class LocalObjectStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path_of(self, key: str) -> Path:
        # Keys are built by gateway.object_keys from checked ids; this is the last guard,
        # without the cost of resolving links on every write.
        try:
            return child(self.root, *key.split("/"))
        except PathEscape:
            raise PermanentSinkError(f"key {key[:200]!r} leaves the object root") from None

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
        try:
            os.makedirs(target.parent, exist_ok=True)
            # Unique per writer thread; a leftover from a crash is simply overwritten.
            temporary = f"{target.parent}/.{target.name}.{os.getpid()}.{threading.get_ident()}"
            with open(temporary, "wb") as out:
                fill(out)
            os.replace(temporary, target)
        except OSError as error:
            raise RetryableSinkError(f"writing {target}: {error}") from error

    def read(self, key: str) -> bytes | None:
        """An object's bytes; None if there is no such key."""
        try:
            return self.path_of(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise RetryableSinkError(f"reading {key}: {error}") from error

    def flush(self) -> None:
        """Make every object written so far durable (files, renames and new directories)."""
        fd = os.open(self.root, os.O_RDONLY)
        try:
            if _libc.syncfs(fd) != 0:
                errno = ctypes.get_errno()
                raise RetryableSinkError(f"syncfs {self.root}: {os.strerror(errno)}")
        finally:
            os.close(fd)

    def close(self) -> None:
        return None
