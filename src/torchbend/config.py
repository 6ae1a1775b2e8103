"""Bending configs: the bends of a model as a readable JSON file, reloaded without running any code.

    >>> config = bended.bending_config()
    >>> config.save("glitch.json")
    >>> other = tb.BendedModule(load_mnist_vae())
    >>> other.trace("decode", z=z)
    >>> other.bend(tb.BendingConfig.load("glitch.json"))     # the same outputs: same seeds, same masks

A file names each callback by its registered name with its arguments, the parameters
with their values and ranges, the targets, and a fingerprint of the model's weight names
and shapes. Functions (for `Lambda`) and your own callback classes are saved by the name
given to `tb.register_callback`; anything else is refused when saving.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import operator
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from .bending.callback import BendingCallback, CallbackChain
from .bending.parameter import BendingParameter, Expression
from .errors import BendingError

FORMAT = "torchbend.bending-config"
VERSION = 1

_REGISTRY: dict[str, Any] = {}  # name -> callback class or function
_OPERATORS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
              "pow": operator.pow, "neg": operator.neg, "abs": operator.abs}


class ConfigError(BendingError):
    """A config that cannot be saved or applied; the message names the field."""


def register_callback(obj: Any, name: str | None = None) -> Any:
    """Register a callback class or a function (for `Lambda`) under `name` so configs can name it.

        >>> @tb.register_callback
        ... class Clip(tb.BendingCallback): ...
        >>> tb.register_callback(my_waveshaper, "waveshaper")
    """
    name = name or getattr(obj, "__name__", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_callback needs a name for {obj!r}")
    if not (inspect.isclass(obj) and issubclass(obj, BendingCallback)) and not callable(obj):
        raise TypeError(f"register_callback takes a BendingCallback class or a function, got {type(obj).__name__}")
    if _REGISTRY.get(name, obj) is not obj:
        raise ValueError(f"the name {name!r} is already registered for {_REGISTRY[name]!r}")
    _REGISTRY[name] = obj
    return obj


def _name_of(obj: Any, field: str) -> str:
    for name, registered in _REGISTRY.items():
        if registered is obj:
            return name
    what = "callback class" if inspect.isclass(obj) else "function"
    raise ConfigError(f"{field}: the {what} {getattr(obj, '__qualname__', obj)!r} is not registered; "
                      f"call tb.register_callback(...) on it before saving")


def fingerprint(module: torch.nn.Module) -> str:
    """A short hash of the module's weight names and shapes."""
    text = ";".join(f"{n}:{tuple(p.shape)}" for n, p in module.named_parameters())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- encoding -------------------------------------------------------------------------------
def _encode_value(value: Any, field: str, parameters: dict[str, BendingParameter]) -> Any:
    if isinstance(value, BendingParameter):
        if parameters.setdefault(value.name, value) is not value:
            raise ConfigError(f"{field}: two different parameters are named {value.name!r}")
        return {"parameter": value.name}
    if isinstance(value, Expression):
        op = next((k for k, v in _OPERATORS.items() if v is value.op), None)
        if op is None:
            raise ConfigError(f"{field}: cannot save an expression using {value.op!r}")
        return {"expression": op, "operands": [_encode_value(o, field, parameters) for o in value.operands]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, BendingCallback):  # a callback wrapping another, such as tb.Select
        return {"callback": _encode_callback(value, field, parameters)}
    if isinstance(value, (list, tuple)):
        return [_encode_value(v, f"{field}[{i}]", parameters) for i, v in enumerate(value)]
    if callable(value) and not isinstance(value, torch.nn.Module):
        return {"function": _name_of(value, field)}
    raise ConfigError(f"{field}: cannot save a value of type {type(value).__name__} in a config")


def _encode_callback(cb: BendingCallback, field: str, parameters: dict[str, BendingParameter]) -> dict:
    if isinstance(cb, CallbackChain):
        return {"type": "chain", "callbacks": [_encode_callback(c, f"{field}.callbacks[{i}]", parameters)
                                                for i, c in enumerate(cb.callbacks)]}
    name = _name_of(type(cb), f"{field}.type")
    args = {}
    for arg in _init_arguments(type(cb)):
        if not hasattr(cb, arg):
            raise ConfigError(f"{field}: {name} keeps no attribute {arg!r} for its argument of that name")
        args[arg] = _encode_value(getattr(cb, arg), f"{field}.args.{arg}", parameters)
    return {"type": name, "args": args}


def _init_arguments(cls: type) -> list[str]:
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


# --- decoding -------------------------------------------------------------------------------
def _decode_value(value: Any, field: str, parameters: dict[str, BendingParameter]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"parameter"}:
            if value["parameter"] not in parameters:
                raise ConfigError(f"{field}: unknown parameter {value['parameter']!r}")
            return parameters[value["parameter"]]
        if set(value) == {"expression", "operands"}:
            if value["expression"] not in _OPERATORS:
                raise ConfigError(f"{field}.expression: unknown operator {value['expression']!r}")
            operands = [_decode_value(o, field, parameters) for o in value["operands"]]
            return Expression(_OPERATORS[value["expression"]], *operands)
        if set(value) == {"callback"}:
            return _decode_callback(value["callback"], field, parameters)
        if set(value) == {"function"}:
            fn = _REGISTRY.get(value["function"])
            if fn is None or inspect.isclass(fn):
                raise ConfigError(f"{field}: no function is registered as {value['function']!r}")
            return fn
        raise ConfigError(f"{field}: unexpected object with keys {sorted(value)}")
    if isinstance(value, list):
        return [_decode_value(v, f"{field}[{i}]", parameters) for i, v in enumerate(value)]
    return value


def _decode_callback(data: Any, field: str, parameters: dict[str, BendingParameter]) -> BendingCallback:
    if not isinstance(data, dict) or "type" not in data:
        raise ConfigError(f"{field}: expected an object with a 'type'")
    if data["type"] == "chain":
        return CallbackChain(*(_decode_callback(c, f"{field}.callbacks[{i}]", parameters)
                               for i, c in enumerate(data.get("callbacks", []))))
    cls = _REGISTRY.get(data["type"])
    if cls is None or not inspect.isclass(cls):
        known = ", ".join(sorted(k for k, v in _REGISTRY.items() if inspect.isclass(v)))
        raise ConfigError(f"{field}.type: unknown callback {data['type']!r}; known: {known}")
    args = data.get("args", {})
    if not isinstance(args, dict):
        raise ConfigError(f"{field}.args: expected an object")
    unknown = set(args) - set(_init_arguments(cls))
    if unknown:
        raise ConfigError(f"{field}.args: {cls.__name__} takes no argument {sorted(unknown)}")
    decoded = {k: _decode_value(v, f"{field}.args.{k}", parameters) for k, v in args.items()}
    try:
        return cls(**decoded)
    except Exception as error:
        raise ConfigError(f"{field}: {cls.__name__}({decoded}) failed: {error}") from error


class BendingConfig:
    """An ordered list of (callback, targets) bends, with the parameters they use.

        >>> config = tb.BendingConfig((tb.Scale(2), "decoder.net.convt0.weight"),
        ...                           (tb.Mask(0.5, seed=1), "decode:decoder_net_convt1"))
        >>> bended.bend(config)
    """

    def __init__(self, *bends: tuple, model: dict | None = None) -> None:
        self.bends: list[tuple[BendingCallback, list[str]]] = []
        for i, bend in enumerate(bends):
            if not isinstance(bend, (tuple, list)) or not bend or not isinstance(bend[0], BendingCallback):
                raise TypeError(f"bend {i} of a BendingConfig must be (callback, *targets), got {bend!r}")
            targets = [t for item in bend[1:] for t in ([item] if isinstance(item, str) else item)]
            if not targets:
                raise ConfigError(f"bends[{i}].targets: a bend needs at least one target")
            self.bends.append((bend[0], targets))
        self.model = model or {}

    def __iter__(self) -> Iterator[tuple[BendingCallback, list[str]]]:
        return iter(self.bends)

    def __len__(self) -> int:
        return len(self.bends)

    def __repr__(self) -> str:
        lines = [f"  {cb!r} -> {', '.join(targets)}" for cb, targets in self.bends]
        return "BendingConfig(\n" + "\n".join(lines) + "\n)"

    @property
    def parameters(self) -> dict[str, BendingParameter]:
        """The bending parameters the bends use, by name."""
        return {p.name: p for cb, _ in self.bends for p in cb.live_parameters()}

    def to_dict(self) -> dict:
        """The config as plain data (what `save` writes)."""
        parameters: dict[str, BendingParameter] = {}
        bends = [{"callback": _encode_callback(cb, f"bends[{i}].callback", parameters), "targets": list(targets)}
                 for i, (cb, targets) in enumerate(self.bends)]
        params = [{"name": p.name, "type": p.type.__name__, "value": p.value, "range": list(p.range)}
                  for p in parameters.values()]
        return {"format": FORMAT, "version": VERSION, "model": self.model, "parameters": params, "bends": bends}

    def save(self, path: str | Path) -> None:
        """Write the config as readable JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: Any) -> BendingConfig:
        """Rebuild a config from plain data; executes no code and raises `ConfigError` naming a bad field."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ConfigError(f"format: not a torchbend bending config (expected format {FORMAT!r})")
        if data.get("version") != VERSION:
            raise ConfigError(f"version: unsupported version {data.get('version')!r} (this torchbend reads {VERSION})")
        parameters: dict[str, BendingParameter] = {}
        for i, p in enumerate(_list(data, "parameters")):
            field = f"parameters[{i}]"
            if not isinstance(p, dict) or not {"name", "type", "value"} <= set(p):
                raise ConfigError(f"{field}: expected an object with name, type and value")
            kind = {"float": float, "int": int, "bool": bool}.get(p["type"])
            if kind is None:
                raise ConfigError(f"{field}.type: expected float, int or bool, got {p['type']!r}")
            try:
                value = kind(p["value"])
                rng = p.get("range") or [None, None]
                parameters[p["name"]] = BendingParameter(p["name"], value, range=(rng[0], rng[1]))
            except (TypeError, ValueError, IndexError) as error:
                raise ConfigError(f"{field}: {error}") from None
        bends = []
        for i, bend in enumerate(_list(data, "bends")):
            if not isinstance(bend, dict):
                raise ConfigError(f"bends[{i}]: expected an object")
            callback = _decode_callback(bend.get("callback"), f"bends[{i}].callback", parameters)
            targets = bend.get("targets")
            if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
                raise ConfigError(f"bends[{i}].targets: expected a non-empty list of names")
            bends.append((callback, *targets))
        model = data.get("model", {})
        if not isinstance(model, dict):
            raise ConfigError("model: expected an object")
        return cls(*bends, model=model)

    @classmethod
    def load(cls, path: str | Path) -> BendingConfig:
        """Read a config written by `save` (JSON only: no pickle, no code is run)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ConfigError(f"{path}: not valid JSON ({error})") from None
        return cls.from_dict(data)


def _list(data: dict, key: str) -> list:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(f"{key}: expected a list")
    return value


def check_fingerprint(config: BendingConfig, module: torch.nn.Module) -> None:
    """Raise `ConfigError` if the config was saved from a model with other weight names or shapes."""
    saved = config.model.get("fingerprint")
    if saved is not None and saved != fingerprint(module):
        raise ConfigError(f"model.fingerprint: the config was saved from another model "
                          f"({config.model.get('class', '?')}: {saved}); this one is "
                          f"{type(module).__name__}: {fingerprint(module)}")


def bend_from_config(bend: Callable[..., Any], config: BendingConfig) -> list:
    """Apply every bend of `config` with `bend(callback, *targets)`; all or none."""
    done = []
    try:
        for i, (callback, targets) in enumerate(config):
            try:
                done.append(bend(callback, *targets))
            except BendingError as error:
                raise ConfigError(f"bends[{i}].targets: {error}") from error
    except Exception:
        for handle in reversed(done):
            handle.remove()
        raise
    return done
