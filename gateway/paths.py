"""Paths made from ids a peer sent: the last guard before the file system.

Every id that names a file (a device id, a media id; report ids and SHA-256s in object
keys) has passed the wire grammar already (`gateway/protocols/terminal.py` and
`payloads.py`: a device id is 1-64 of A-Z a-z 0-9 _ -, a media or report id a UUID, a
SHA-256 64 hex digits). `child` checks each part again, so a bug upstream can never make
a path leave its root. It is a string check (no resolving of links), about a microsecond.
"""

from __future__ import annotations

import re
from pathlib import Path

from gateway.errors import GatewayError

# A plain name: no separator, NUL, space or non-ASCII; not `.`, `..` or hidden; NAME_MAX.
_PART = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,254}")


class PathEscape(GatewayError):
    """A path part that is not a plain file name, so it might leave its root. A bug, not
    input: the wire grammar refuses such ids before they come near a path."""


def child(root: Path, *parts: str) -> Path:
    """`root / part / ...`, each part a plain file name, or `PathEscape`."""
    for part in parts:
        if not _PART.fullmatch(part):
            raise PathEscape(f"{part[:80]!r} is not a plain file name (under {root})")
    return root.joinpath(*parts)
