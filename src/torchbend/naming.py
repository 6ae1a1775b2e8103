"""Name resolution: exact names first, else regular expressions matching the whole name.

    >>> match_names(["decoder.net.convt.*weight"], bended.weight_names, "weight")
    ['decoder.net.convt0.weight', 'decoder.net.convt1.weight', ...]
    >>> split_method("decode:decoder_net_convt0")
    ('decode', 'decoder_net_convt0')

A pattern that matches nothing raises `UnknownNameError`, listing the closest names.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence

from .errors import UnknownNameError


def closest_names(query: str, names: Sequence[str], n: int = 5) -> list[str]:
    """The names most similar to `query` (the first few names when none is similar)."""
    close = difflib.get_close_matches(query, list(names), n=n, cutoff=0.4)
    return close or list(names)[:n]


def unknown_name(query: str, names: Sequence[str], what: str) -> UnknownNameError:
    """The error for a name or pattern that matches none of `names`."""
    if not names:
        return UnknownNameError(f"no {what} named or matching {query!r}: there are no {what}s")
    suggestions = ", ".join(closest_names(query, names))
    return UnknownNameError(f"no {what} named or matching {query!r}; closest: {suggestions}")


def pattern_matches(pattern: str, names: Iterable[str]) -> list[str]:
    """`names` equal to `pattern`, or else fully matched by it as a regular expression."""
    names = list(names)
    if pattern in names:
        return [pattern]
    try:
        regex = re.compile(pattern)
    except re.error as error:
        raise UnknownNameError(f"{pattern!r} is not a valid regular expression ({error}), nor an exact name") from None
    return [name for name in names if regex.fullmatch(name)]


def match_names(patterns: Iterable[str], names: Sequence[str], what: str) -> list[str]:
    """Every name matched by some pattern, in the order of `names`, without duplicates.

    Raises `UnknownNameError` for a pattern that matches nothing.
    """
    found: set[str] = set()
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"{what} names are strings, got {type(pattern).__name__}")
        hits = pattern_matches(pattern, names)
        if not hits:
            raise unknown_name(pattern, names, what)
        found.update(hits)
    return [name for name in names if name in found]


def split_method(pattern: str) -> tuple[str | None, str]:
    """``"decode:conv"`` -> ``("decode", "conv")``; a pattern without a qualifier -> ``(None, pattern)``."""
    head, sep, tail = pattern.partition(":")
    if sep and head.isidentifier():
        return head, tail
    return None, pattern
