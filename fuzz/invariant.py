"""What a target raises when a parser breaks its contract without raising on its own."""

from __future__ import annotations


class Finding(Exception):
    """A parser returned something outside its contract (a wrong type, a reason code that
    is not one of its own, a value out of the range it promises)."""


def require(condition: bool, what: str) -> None:
    """`assert`, but kept under `python -O`, and not caught by anything expecting
    AssertionError."""
    if not condition:
        raise Finding(what)
