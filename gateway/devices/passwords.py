"""Broker passwords: made here, shown once, stored only as Mosquitto's own hash.

Mosquitto 2.0's password file holds `username:$7$ITERATIONS$SALT$HASH`: PBKDF2-HMAC-SHA512
over the password with a 12-byte salt, both in standard base64 (what `mosquitto_passwd`
writes). The passwords are 192 random bits, so Mosquitto's default of 101 iterations is
kept: stretching protects guessable passwords, and these are not guessable, while every
terminal's connect pays for the iterations on the broker.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

ITERATIONS = 101
SALT_BYTES = 12
PASSWORD_BYTES = 24  # 192 bits, 32 URL-safe characters


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def hash_password(password: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """The `$7$` hash Mosquitto checks a CONNECT's password against."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, hashed: str) -> bool:
    """Whether `password` matches a `$7$` hash (as Mosquitto would decide)."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[:2] != ["", "7"] or not parts[2].isdigit():
        return False
    try:
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, int(parts[2]))
    return hmac.compare_digest(digest, expected)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
