"""Hypothesis strategies more than one test module draws from."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def orjson_values(*, max_size: int, key_size: int, max_leaves: int) -> st.SearchStrategy[Any]:
    """JSON values orjson can write (integers within 64 bits, finite floats), nested in
    lists and objects of at most `max_size` items, keys of at most `key_size` characters."""
    return st.recursive(
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**63), max_value=2**63 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=12),
        lambda children: (
            st.lists(children, max_size=max_size)
            | st.dictionaries(st.text(max_size=key_size), children, max_size=max_size)
        ),
        max_leaves=max_leaves,
    )
