"""Store and forward: a terminal's reports wait on its own disk until the gateway answers.

A report is written here before anything is sent, and leaves only on `accepted` or
`rejected` (both go to the terminal's journal); silence, a dead link or the gateway's
`server.retry_later` keep it, so a restarted simulator takes up where it stopped.

    QUEUE_DIR/blobs/{sha256}                      bulky media parts, shared (see media.py)
    QUEUE_DIR/{device_id}/{seq:010d}.json         one queued report: envelope, media, state
    QUEUE_DIR/{device_id}/journal.jsonl           every report's end, one JSON line each

Each entry is replaced atomically (write, then rename), so a kill leaves the old or the
new entry, never half of one. Nothing is fsynced: this survives the simulator's process
dying, which is what it is for, not the machine's power failing.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from firmware_sim.media import MediaFile
from firmware_sim.reports import ComposedReport
from firmware_sim.wire import ReportEnvelope

INLINE_MAX_BYTES = 8 * 1024  # a photo's own EXIF head is stored with its entry


@dataclass(frozen=True, slots=True)
class QueuedReport:
    seq: int
    report: ComposedReport
    uploaded: bool = False  # every chunk went out once: after a restart, only what is missing
    not_before: float = 0.0  # wall-clock time before which it is not sent (a task's travel)

    @property
    def report_id(self) -> str:
        return self.report.envelope.report_id


class BlobStore:
    """Content-addressed media parts, written once and read once per process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._cache: dict[str, bytes] = {}

    def put(self, part: bytes) -> str:
        digest = hashlib.sha256(part).hexdigest()
        path = self.root / digest
        if digest not in self._cache and not path.exists():
            _write_atomic(path, part)
        self._cache.setdefault(digest, part)
        return digest

    def get(self, digest: str) -> bytes:
        part = self._cache.get(digest)
        if part is None:
            part = (self.root / digest).read_bytes()
            if hashlib.sha256(part).hexdigest() != digest:
                raise QueueError(f"blob {digest} is damaged")
            self._cache[digest] = part
        return part

    def collect(self, keep: set[str]) -> int:
        """Delete blobs no entry refers to; returns how many went."""
        removed = 0
        for path in self.root.iterdir():
            if path.name not in keep and not path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)
                self._cache.pop(path.name, None)
                removed += 1
        return removed


class QueueError(Exception):
    """A queue entry cannot be read back (damaged by hand, or by another program)."""


class ReportQueue:
    """One terminal's queue, in order of arrival."""

    def __init__(self, root: Path, device_id: str, blobs: BlobStore) -> None:
        self.dir = root / device_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.blobs = blobs
        self.journal = self.dir / "journal.jsonl"
        self.damaged: list[str] = []
        self._next_seq = 1 + max((_seq_of(path) for path in self._entry_paths()), default=0)

    def put(self, report: ComposedReport, *, not_before: float = 0.0) -> QueuedReport:
        entry = QueuedReport(self._next_seq, report, not_before=not_before)
        self._next_seq += 1
        self._save(entry)
        return entry

    def mark_uploaded(self, entry: QueuedReport) -> QueuedReport:
        done = replace(entry, uploaded=True)
        self._save(done)
        return done

    def finish(self, entry: QueuedReport, outcome: dict[str, Any]) -> None:
        """The gateway answered for good: journal the answer, then drop the entry."""
        with self.journal.open("ab") as journal:
            journal.write(orjson.dumps(outcome) + b"\n")
        self._path(entry.seq).unlink(missing_ok=True)

    def load(self) -> list[QueuedReport]:
        """What a previous run left, oldest first. A damaged entry is renamed `.damaged`
        (kept for a technician to look at) and named in `self.damaged`."""
        entries = []
        for path in self._entry_paths():
            try:
                entries.append(self._read(path))
            except (QueueError, OSError, ValueError, KeyError, TypeError) as error:
                path.rename(path.with_suffix(".damaged"))
                self.damaged.append(f"{path.name}: {error}")
        return entries

    def blob_refs(self) -> set[str]:
        refs: set[str] = set()
        for path in self._entry_paths():
            with contextlib.suppress(OSError, ValueError, KeyError):
                for media in orjson.loads(path.read_bytes())["media"].values():
                    refs.update(part["blob"] for part in media["parts"] if "blob" in part)
        return refs

    def __len__(self) -> int:
        return sum(1 for _ in self._entry_paths())

    # ---- files --------------------------------------------------------------------------

    def _entry_paths(self) -> Iterator[Path]:
        return iter(sorted(self.dir.glob("*.json")))

    def _path(self, seq: int) -> Path:
        return self.dir / f"{seq:010d}.json"

    def _save(self, entry: QueuedReport) -> None:
        media = {
            media_id: {
                "kind": file.kind,
                "mime": file.mime,
                "size": file.size,
                "sha256": file.sha256,
                "parts": [self._part(part) for part in file.parts],
            }
            for media_id, file in entry.report.files.items()
        }
        record = {
            "seq": entry.seq,
            "envelope": entry.report.envelope.to_json(),
            "media": media,
            "uploaded": entry.uploaded,
            "not_before": entry.not_before,
        }
        _write_atomic(self._path(entry.seq), orjson.dumps(record))

    def _part(self, part: bytes) -> dict[str, str]:
        if len(part) <= INLINE_MAX_BYTES:
            return {"inline": base64.b64encode(part).decode()}
        return {"blob": self.blobs.put(part)}

    def _read(self, path: Path) -> QueuedReport:
        record = orjson.loads(path.read_bytes())
        files = {}
        for media_id, media in record["media"].items():
            parts = tuple(
                self.blobs.get(part["blob"])
                if "blob" in part
                else base64.b64decode(part["inline"], validate=True)
                for part in media["parts"]
            )
            file = MediaFile.of(media["kind"], media["mime"], *parts)
            if file.sha256 != media["sha256"]:
                raise QueueError(f"media {media_id} does not match its SHA-256")
            files[media_id] = file
        envelope = ReportEnvelope.from_json(record["envelope"])
        manifest = {entry.media_id: (entry.size, entry.sha256) for entry in envelope.media}
        if manifest != {media_id: (f.size, f.sha256) for media_id, f in files.items()}:
            raise QueueError("the media do not match the envelope's manifest")
        return QueuedReport(
            record["seq"],
            ComposedReport(envelope, files),
            uploaded=bool(record["uploaded"]),
            not_before=float(record["not_before"]),
        )


def _seq_of(path: Path) -> int:
    try:
        return int(path.stem)
    except ValueError:
        return 0


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
