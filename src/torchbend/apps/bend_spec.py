"""The ``--bend`` language of the command line: a bend written as ``CALLBACK(ARGS)@TARGET``.

    >>> config = parse_bends(["Mask(prob=param('keep', 0.3, 0, 1))@decoder.net.convt1.weight",
    ...                       "Scale(-1)@decode:decoder_net_convt1",
    ...                       "Select(Bias(1.0), channels=[0])@decode:z"])
    >>> [targets for _, targets in config]
    [['decoder.net.convt1.weight'], ['decode:decoder_net_convt1'], ['decode:z']]

CALLBACK is a registered callback name (`tb.Mask`, `tb.Scale`, ... and those given to
`tb.register_callback`); ARGS are its arguments, positional or by name, each a literal (a number,
a string, true/false or True/False, None, a list or tuple of them), another callback
(``Select(Bias(1.0), channels=[0])``) or a live parameter ``param(NAME, VALUE[, LOW, HIGH])``, which
``--set NAME=VALUE`` and ``render --param NAME`` then reach. TARGET is one weight or activation name or
pattern, as `bend` takes it (``method:name`` for an activation of one method; a regular expression
with ``|`` for several). The text is parsed by `ast.parse` and read as literals only: nothing is
evaluated, and the result goes through `BendingConfig.from_dict`, the checks a config file gets.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

from ..config import FORMAT, VERSION, BendingConfig, _init_arguments, registered_callbacks
from ..errors import ConfigError

MAX_LENGTH = 2000  # characters of one --bend


class CommandLineConfig(BendingConfig):
    """A config written as ``--bend`` texts; `specs` holds them, so that an error names the text, not an index."""

    specs: list[str]


def parse_bends(specs: Sequence[str]) -> CommandLineConfig:
    """A `BendingConfig` from ``--bend`` texts, checked as a config file is (`ConfigError` names the bad text)."""
    parameters: dict[str, dict] = {}
    bends = []
    for spec in specs:
        try:
            callback, target = _split(spec)
            bends.append({"callback": _callback(callback, parameters), "targets": [target]})
        except ConfigError as error:
            raise ConfigError(f"--bend {_short(spec)}: {error}") from None
    data = {"format": FORMAT, "version": VERSION, "parameters": list(parameters.values()), "bends": bends}
    try:
        config = CommandLineConfig.from_dict(data)
    except ConfigError as error:  # name the --bend the field belongs to
        index = str(error).partition("]")[0].rpartition("[")[2]
        where = f"--bend {_short(specs[int(index)])}: " if str(error).startswith("bends[") and index.isdigit() else ""
        raise ConfigError(f"{where}{error}") from None
    assert isinstance(config, CommandLineConfig)
    config.specs = list(specs)
    return config


def _split(spec: str) -> tuple[ast.Call, str]:
    """``CALLBACK(ARGS)@TARGET`` -> (the parsed call, the target); the first ``@`` after a whole call."""
    if not isinstance(spec, str) or len(spec) > MAX_LENGTH:
        raise ConfigError(f"expected CALLBACK(ARGS)@TARGET of at most {MAX_LENGTH} characters")
    start = 0
    while (at := spec.find("@", start)) >= 0:
        start = at + 1
        try:
            tree = ast.parse(spec[:at].strip(), mode="eval")
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
        if isinstance(tree.body, ast.Call) and spec[at + 1 :].strip():
            return tree.body, spec[at + 1 :].strip()
    raise ConfigError(
        "expected CALLBACK(ARGS)@TARGET, e.g. 'Mask(prob=0.3)@decoder.net.convt1.weight' or "
        "'Scale(-1)@decode:decoder_net_convt1'"
    )


def _callback(node: ast.expr, parameters: dict[str, dict]) -> dict:
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise ConfigError("expected a callback call such as Scale(2)")
    name = node.func.id
    cls = registered_callbacks().get(name)
    if not isinstance(cls, type):
        known = ", ".join(sorted(k for k, v in registered_callbacks().items() if isinstance(v, type)))
        raise ConfigError(f"unknown callback {name!r}; known: {known}")
    names = _init_arguments(cls)
    if len(node.args) > len(names):
        raise ConfigError(f"{name} takes at most {len(names)} arguments ({', '.join(names)}), got {len(node.args)}")
    args = {names[i]: _value(a, parameters) for i, a in enumerate(node.args)}
    for keyword in node.keywords:
        if keyword.arg is None:
            raise ConfigError("** arguments are not accepted")
        if keyword.arg in args:
            raise ConfigError(f"{name} got {keyword.arg!r} twice")
        args[keyword.arg] = _value(keyword.value, parameters)
    return {"type": name, "args": args}


def _value(node: ast.expr, parameters: dict[str, dict]) -> Any:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "param":
        return _parameter(node, parameters)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return {"callback": _callback(node, parameters)}
    if isinstance(node, ast.Name) and node.id in ("true", "false"):
        return node.id == "true"
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_value(item, parameters) for item in node.elts]
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise ConfigError(f"{_short(ast.unparse(node))} is not a literal, a callback or param(...)") from None


def _parameter(node: ast.Call, parameters: dict[str, dict]) -> dict:
    """``param(NAME, VALUE[, LOW, HIGH])`` -> a reference to the parameter, recorded in `parameters`."""
    if node.keywords or not 2 <= len(node.args) <= 4:
        raise ConfigError("a live parameter is param(NAME, VALUE) or param(NAME, VALUE, LOW, HIGH)")
    try:
        name, value, *bounds = (ast.literal_eval(a) for a in node.args)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise ConfigError(f"{_short(ast.unparse(node))}: param takes literals only") from None
    if not isinstance(name, str) or not isinstance(value, (bool, int, float)):
        raise ConfigError(f"{_short(ast.unparse(node))}: expected param('name', number, ...)")
    entry = {
        "name": name,
        "type": type(value).__name__,
        "value": value,
        "range": list(bounds) if bounds else [None, None],
    }
    if len(bounds) == 1:
        raise ConfigError(f"param({name!r}, ...): give both LOW and HIGH, or neither")
    if parameters.setdefault(name, entry) != entry:
        raise ConfigError(f"two different parameters are named {name!r}: {parameters[name]} and {entry}")
    return {"parameter": name}


def _short(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")
