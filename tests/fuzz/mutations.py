"""Hypothesis strategies that turn a valid input into a hostile one: flipped, cut,
inserted or random bytes, and JSON documents with a value swapped for any other JSON
value or a key removed."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

#: Every kind of JSON value, nested a little.
JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def mangled(data: bytes) -> st.SearchStrategy[bytes]:
    """``data`` with bytes flipped, cut short, with bytes inserted, or replaced outright."""
    size = max(len(data), 1)

    def flip(changes: list[tuple[int, int]]) -> bytes:
        out = bytearray(data)
        for where, mask in changes:
            out[where % size] ^= mask
        return bytes(out)

    positions = st.integers(min_value=0, max_value=size - 1)
    return st.one_of(
        st.lists(st.tuples(positions, st.integers(1, 255)), min_size=1, max_size=8).map(flip),
        st.integers(min_value=0, max_value=len(data)).map(lambda n: data[:n]),
        st.tuples(positions, st.binary(min_size=1, max_size=64)).map(
            lambda t: data[: t[0]] + t[1] + data[t[0] :]
        ),
        st.binary(max_size=512),
    )


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += _paths(value, (*prefix, index))
    return found


def _replace(doc: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        changed = dict(doc)
        if delete and not rest:
            changed.pop(head, None)
        else:
            changed[head] = _replace(doc[head], rest, value, delete)
        return changed
    changed_list = list(doc)
    changed_list[head] = _replace(doc[head], rest, value, delete)
    return changed_list


def json_swapped(doc: Any) -> st.SearchStrategy[Any]:
    """``doc`` with one value anywhere in it swapped for another JSON value, or its key
    removed."""
    return st.builds(
        _replace,
        st.just(doc),
        st.sampled_from(_paths(doc)),
        JSON_VALUES,
        st.booleans(),
    )


def hostile_json(data: bytes) -> st.SearchStrategy[bytes]:
    """The JSON document ``data``, structurally changed or mangled as bytes."""
    doc = json.loads(data)
    return st.one_of(json_swapped(doc).map(lambda d: json.dumps(d).encode()), mangled(data))
