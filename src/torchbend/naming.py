"""Name resolution: exact names first, else regular expressions matching the whole name.

    >>> match_names(["decoder.net.convt.*weight"], bended.weight_names, "weight")
    ['decoder.net.convt0.weight', 'decoder.net.convt1.weight', ...]
    >>> split_method("decode:decoder_net_convt0")
    ('decode', 'decoder_net_convt0')

A pattern that matches nothing raises `UnknownNameError`, listing the closest names.

Activations can also be chosen by where they were recorded, with ``"<node pattern>@<scope pattern>"``:
both are regular expressions matched whole, the scope against the path of the module whose code recorded
the activation. A scope pattern containing ``#`` is matched against ``scope#call`` instead, ``call``
counting the calls of that module (0, 1, ...: `generate` steps, sampling steps):

    >>> match_activations(["scaled_dot_product_attention.*@transformer\\.h\\.1\\.attn"], infos, "activation")
    >>> match_activations([".*@transformer\\.h\\.1\\..*"], infos, "activation")   # everything inside layer 1
    >>> match_activations(["conv.*@unet#2"], infos, "activation")                # the third call of `unet` only

Patterns from untrusted places (config files, the studio page) are matched inside `untrusted_patterns()`,
with `safe_pattern`: in linear time by RE2 (``pip install google-re2``), or else by `re` after refusing
the patterns that can take exponential or high polynomial time. Patterns given from Python keep `re`.
"""

from __future__ import annotations

import contextvars
import difflib
import functools
import keyword
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from .errors import BendingError, UnknownNameError

try:
    from re import _parser as _sre  # type: ignore[attr-defined]  # private, not in typeshed
except ImportError:  # Python 3.10
    import sre_parse as _sre

MAX_PATTERN = 512  # characters of an untrusted pattern
MAX_REPEATS = 3  # repeats one after another in an untrusted pattern matched by `re` (time ~ length ** repeats)
_UNTRUSTED = contextvars.ContextVar("torchbend_untrusted_patterns", default=False)
_REPEATS = {_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", _sre.MAX_REPEAT)}
_CHOICES = {_sre.BRANCH, _sre.GROUPREF_EXISTS}


@contextmanager
def untrusted_patterns() -> Iterator[None]:
    """Match every pattern resolved inside this block with `safe_pattern` (in this thread or task only).

    >>> with untrusted_patterns():
    ...     bended.bend(tb.Scale(2), pattern_typed_in_a_web_page)
    """
    token = _UNTRUSTED.set(True)
    try:
        yield
    finally:
        _UNTRUSTED.reset(token)


@functools.cache
def _re2() -> Any:
    """The `re2` module (package google-re2) and its options, or None when it is not installed."""
    try:
        import re2
    except ImportError:
        return None
    options = re2.Options()
    options.log_errors = False
    return re2, options


def safe_pattern(pattern: str) -> Any:
    r"""`pattern` compiled for untrusted input: its ``fullmatch`` cannot freeze the process.

        >>> safe_pattern(r"decoder\.net\.convt\d\.weight").fullmatch("decoder.net.convt0.weight") is not None
        True
        >>> safe_pattern("(.|.)*!")   # RE2: matches in linear time; without google-re2: BendingError

    Compiled by RE2 (linear time; no lookarounds nor backreferences) when google-re2 is installed; else
    by `re`, refusing a repeat of a group that repeats or alternates and more than `MAX_REPEATS` repeats
    in a row. Longer than `MAX_PATTERN` characters, invalid or refused: `BendingError` naming the pattern.
    """
    shown = pattern if len(pattern) <= 60 else pattern[:57] + "..."
    if len(pattern) > MAX_PATTERN:
        raise BendingError(f"the pattern {shown!r} is longer than {MAX_PATTERN} characters")
    engine = _re2()
    if engine is not None:
        re2, options = engine
        try:
            return re2.compile(pattern, options=options)
        except re2.error as error:
            reason = (
                error.args[0].decode(errors="replace")
                if error.args and isinstance(error.args[0], bytes)
                else str(error)
            )
            raise BendingError(f"{shown!r} is not a valid name or pattern for RE2 ({reason})") from None
    try:
        _check_cost(_sre.parse(pattern), shown)
        return re.compile(pattern)
    except re.error as error:
        raise BendingError(f"{shown!r} is not a valid name or pattern ({error})") from None


def _parts(op: Any, arg: Any) -> list:
    """The sub-patterns of one parsed item."""
    if op in _REPEATS:
        return [arg[2]]
    if op is _sre.SUBPATTERN:
        return [arg[-1]]
    if op in (_sre.ASSERT, _sre.ASSERT_NOT):
        return [arg[1]]
    if op is getattr(_sre, "ATOMIC_GROUP", None):
        return [arg]
    if op is _sre.BRANCH:
        return list(arg[1])
    if op is _sre.GROUPREF_EXISTS:
        return [arg[1]] + ([arg[2]] if arg[2] else [])
    return []


def _chooses(items: Any) -> bool:
    return any(op in _CHOICES or any(_chooses(p) for p in _parts(op, arg)) for op, arg in items)


def _check_cost(items: Any, shown: str) -> int:
    """How many variable repeats follow one another in `items`; raises on a pattern that backtracks too much."""
    count = 0
    for op, arg in items:
        inner = [_check_cost(p, shown) for p in _parts(op, arg)]
        if op in _CHOICES:
            count += max(inner)
        elif op in _REPEATS:
            low, high, body = arg
            if high > 1 and (inner[0] or _chooses(body)):
                raise BendingError(
                    f"the pattern {shown!r} repeats a group that repeats or alternates, which can "
                    "take exponential time to match; write the names, use a character class "
                    "([ab]* for (a|b)*), or pip install google-re2 to match any pattern in linear time"
                )
            count += inner[0] + (low != high)
        else:
            count += sum(inner)
    if count > MAX_REPEATS:
        raise BendingError(
            f"the pattern {shown!r} has more than {MAX_REPEATS} repeats (*, +, ?, {{m,n}}) in a row, "
            "which can take long to match; write fewer, or pip install google-re2 to match any "
            "pattern in linear time"
        )
    return count


def _compile(pattern: str) -> Any:
    """`pattern` compiled by `re`, or by `safe_pattern` inside `untrusted_patterns()`."""
    return safe_pattern(pattern) if _UNTRUSTED.get() else re.compile(pattern)


def is_python_name(name: Any) -> bool:
    """Whether generated Python source can use `name` as a name and mean it: an identifier, not a keyword, and
    unchanged by NFKC normalisation (Python reads ``ﬁ`` as ``fi``).

        >>> is_python_name("convt0"), is_python_name("0"), is_python_name("ﬁ"), is_python_name('a") or ("')
        (True, False, False, False)
    """
    return (
        isinstance(name, str)
        and name.isidentifier()
        and not keyword.iskeyword(name)
        and unicodedata.normalize("NFKC", name) == name
    )


def is_quotable(name: Any) -> bool:
    """Whether ``"name"``, written into source as it is, is a string literal that reads back as `name`: no quote,
    no backslash, no line break or other unprintable character."""
    return isinstance(name, str) and bool(name) and name.isprintable() and '"' not in name and "\\" not in name


def unsafe_fx_name(path: str) -> str | None:
    """The first name of dotted `path` (a submodule, tensor or method path in a torch.fx graph) that torch.fx's
    code generation would not write back as itself, None when there is none. It writes an identifier as
    ``.name`` (so a keyword, or a name NFKC changes, is unsafe) and anything else as ``getattr(x, "name")``,
    unescaped (so a crafted name holding a quote would run as code).

        >>> unsafe_fx_name("decoder.net.0.weight") is None, unsafe_fx_name('net.x") or print("hi') is None
        (True, False)
    """
    for atom in path.split("."):
        if not (is_python_name(atom) if atom.isidentifier() else is_quotable(atom)):
            return atom
    return None


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
        regex = _compile(pattern)
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


class Scoped(Protocol):
    """What scoped matching reads of an activation (`tracing.record.ActivationInfo` has it)."""

    scope: str
    call: int


def _compile_part(pattern: str, full: str) -> Any:
    try:
        return _compile(pattern)
    except re.error as error:
        raise ValueError(f"invalid regular expression {pattern!r} in {full!r}: {error}") from None


def scoped_matches(pattern: str, infos: Mapping[str, Any]) -> list[str]:
    """Names in `infos` matched by ``"<node pattern>@<scope pattern>"`` (a scope with ``#`` also matches the call)."""
    node_pattern, _, scope_pattern = pattern.partition("@")
    node_regex, scope_regex = _compile_part(node_pattern, pattern), _compile_part(scope_pattern, pattern)
    with_call = "#" in scope_pattern
    hits = []
    for name, info in infos.items():
        scope = getattr(info, "scope", "")
        subject = f"{scope}#{getattr(info, 'call', 0)}" if with_call else scope
        if node_regex.fullmatch(name) and scope_regex.fullmatch(subject):
            hits.append(name)
    return hits


def match_activations(patterns: Iterable[str], infos: Mapping[str, Any], what: str) -> list[str]:
    """Activation names matched by some pattern, in the order of `infos`, without duplicates.

    A pattern is an exact name, a regular expression matched whole, or ``"<node>@<scope>"`` (see the module
    docstring). Raises `UnknownNameError` for a pattern that matches nothing, listing the closest names
    (``name@scope#call`` forms for a scoped pattern).
    """
    names = list(infos)
    found: set[str] = set()
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"{what} names are strings, got {type(pattern).__name__}")
        if "@" in pattern and pattern not in infos:
            hits = scoped_matches(pattern, infos)
            if not hits:
                scoped = [
                    f"{name}@{getattr(info, 'scope', '')}#{getattr(info, 'call', 0)}" for name, info in infos.items()
                ]
                raise unknown_name(pattern, scoped, what)
        else:
            hits = pattern_matches(pattern, names)
            if not hits:
                raise unknown_name(pattern, names, what)
        found.update(hits)
    return [name for name in names if name in found]
