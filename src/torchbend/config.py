"""Bending configs: the bends of a model as a readable JSON file, reloaded without running any code.

    >>> b = bended.bend(tb.Mask(0.5), "decoder.net.convt1.weight")
    >>> config = bended.bending_config()
    >>> config.save("glitch.json")
    >>> other = tb.BendedModule(tb.zoo.load_mnist_vae())
    >>> other.trace("decode", z=z)
    >>> other.bend(tb.BendingConfig.load("glitch.json"))     # the same outputs: same seeds, same masks

A file names each callback by its registered name with its arguments, the parameters
with their values and ranges, the targets (exact names), and a fingerprint of the model's
weight names and shapes. Functions (for `Lambda`) and your own callback classes are saved
by the name given to `tb.register_callback`; anything else is refused when saving.

Learned values (`tb.Trainable`) are saved by name in the JSON (shape, dtype, strength) and as tensors in a
``.safetensors`` file beside it (``glitch.json`` -> ``glitch.safetensors``, its SHA-256 in the JSON); `load`
reads that file with safetensors (no pickle) and checks its names, shapes, dtypes, finiteness and hash.

Files are untrusted input (they are shared): `load` reads JSON only, imports and runs
nothing the file names, checks every field and argument as the constructors do, bounds
sizes, nesting, numbers and target patterns, and raises `ConfigError` naming the file and
the field, before anything is applied. Its target patterns are matched by `naming.safe_pattern`
(RE2 when google-re2 is installed, else `re` with a guard): a shared file cannot freeze `bend`.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import operator
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from .bending.callback import BendingCallback, CallbackChain
from .bending.parameter import BendingParameter, Expression
from .bending.trainable import MAX_ELEMENTS, Trainable
from .errors import BendingError, ConfigError
from .extras import require
from .naming import safe_pattern, untrusted_patterns

FORMAT = "torchbend.bending-config"
VERSION = 1
MAX_BYTES = 1 << 20  # a config is a few kilobytes; refuse anything past a megabyte
MAX_DEPTH = 32  # nesting of chains and expressions
MAX_NUMBER = 1e15  # larger numbers are not meaningful bending arguments
MAX_TENSOR_BYTES = 1 << 28  # the learned values' file
TRAINABLES = "\0trainables"  # where the encoders keep the trainables met, in the parameters' dict (no name can be)
_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64}
_KEYS = {
    "config": {"format", "version", "model", "parameters", "bends", "trainables"},
    "trainables": {"sha256", "values"},
    "trainable": {"name", "shape", "dtype", "strength"},
    "bend": {"callback", "targets"},
    "parameter": {"name", "type", "value", "range"},
    "callback": {"type", "args"},
    "chain": {"type", "callbacks"},
}

_REGISTRY: dict[str, Any] = {}  # name -> callback class or function
_OPERATORS: dict[str, Callable[..., Any]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "truediv": operator.truediv,
    "pow": operator.pow,
    "neg": operator.neg,
    "abs": operator.abs,
}


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


def registered_callbacks() -> dict[str, Any]:
    """The registered callback classes and functions, by name (built-ins and ``register_callback``)."""
    return dict(_REGISTRY)


def _name_of(obj: Any, field: str) -> str:
    for name, registered in _REGISTRY.items():
        if registered is obj:
            return name
    what = "callback class" if inspect.isclass(obj) else "function"
    raise ConfigError(
        f"{field}: the {what} {getattr(obj, '__qualname__', obj)!r} is not registered; "
        f"call tb.register_callback(...) on it before saving"
    )


def fingerprint(module: torch.nn.Module) -> str:
    """A short hash of the module's weight names and shapes."""
    text = ";".join(f"{n}:{tuple(p.shape)}" for n, p in module.named_parameters())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- encoding -------------------------------------------------------------------------------
def _encode_value(value: Any, field: str, parameters: dict[str, Any]) -> Any:
    if isinstance(value, Trainable):
        trainables = parameters.setdefault(TRAINABLES, {})
        name = value.name
        if name is None:
            name = next((n for n, t in trainables.items() if t is value), None) or f"trainable{len(trainables)}"
            while name in trainables and trainables[name] is not value:
                name += "_"
        if trainables.setdefault(name, value) is not value:
            raise ConfigError(f"{field}: two different trainables are named {name!r}")
        return {"trainable": name}
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


def _encode_callback(cb: BendingCallback, field: str, parameters: dict[str, Any]) -> dict:
    if isinstance(cb, CallbackChain):
        return {
            "type": "chain",
            "callbacks": [
                _encode_callback(c, f"{field}.callbacks[{i}]", parameters) for i, c in enumerate(cb.callbacks)
            ],
        }
    name = _name_of(type(cb), f"{field}.type")
    args = {}
    for arg in _init_arguments(type(cb)):
        if not hasattr(cb, arg):
            raise ConfigError(f"{field}: {name} keeps no attribute {arg!r} for its argument of that name")
        args[arg] = _encode_value(getattr(cb, arg), f"{field}.args.{arg}", parameters)
    return {"type": name, "args": args}


def _init_arguments(cls: type) -> list[str]:
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # type: ignore[misc]  # the class's own
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


# --- decoding -------------------------------------------------------------------------------
def _trainables_of(parameters: dict) -> dict[str, Trainable]:
    """The trainables met while encoding, kept in the parameters' dict under a key no parameter can have."""
    return parameters.pop(TRAINABLES, {})


def _decode_value(value: Any, field: str, parameters: dict[str, Any], depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise ConfigError(f"{field}: nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        if not abs(value) <= MAX_NUMBER:  # also NaN and inf; exact for ints of any size (no OverflowError)
            raise ConfigError(f"{field}: the number {_short(value)} is out of bounds (at most {MAX_NUMBER:g})")
        return value
    if isinstance(value, dict):
        if set(value) == {"trainable"}:
            trainable = parameters.get(TRAINABLES, {}).get(value["trainable"])
            if trainable is None:
                raise ConfigError(f"{field}: unknown trainable {_short(value['trainable'])}")
            return trainable
        if set(value) == {"parameter"}:
            if not isinstance(parameters.get(value["parameter"]), BendingParameter):
                raise ConfigError(f"{field}: unknown parameter {value['parameter']!r}")
            return parameters[value["parameter"]]
        if set(value) == {"expression", "operands"}:
            if value["expression"] not in _OPERATORS:
                raise ConfigError(f"{field}.expression: unknown operator {value['expression']!r}")
            if not isinstance(value["operands"], list) or not 1 <= len(value["operands"]) <= 2:
                raise ConfigError(f"{field}.operands: expected a list of one or two operands")
            operands = [_decode_value(o, field, parameters, depth + 1) for o in value["operands"]]
            try:
                expression = Expression(_OPERATORS[value["expression"]], *operands)
                expression.value  # evaluated now, so a bad expression fails at load  # noqa: B018
            except (TypeError, ValueError) as error:
                raise ConfigError(f"{field}: {error}") from None
            return expression
        if set(value) == {"callback"}:
            return _decode_callback(value["callback"], field, parameters, depth + 1)
        if set(value) == {"function"}:
            fn = _REGISTRY.get(value["function"])
            if fn is None or inspect.isclass(fn):
                raise ConfigError(f"{field}: no function is registered as {value['function']!r}")
            return fn
        raise ConfigError(f"{field}: unexpected object with keys {sorted(value)}")
    if isinstance(value, list):
        return [_decode_value(v, f"{field}[{i}]", parameters, depth + 1) for i, v in enumerate(value)]
    raise ConfigError(f"{field}: unexpected value of type {type(value).__name__}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_keys(data: dict, kind: str, field: str) -> None:
    unknown = set(data) - _KEYS[kind]
    if unknown:
        raise ConfigError(
            f"{field}: unknown keys {sorted(str(k)[:40] for k in unknown)}; expected {sorted(_KEYS[kind])}"
        )


def _decode_callback(data: Any, field: str, parameters: dict[str, Any], depth: int = 0) -> BendingCallback:
    if depth > MAX_DEPTH:
        raise ConfigError(f"{field}: nested more than {MAX_DEPTH} levels deep")
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ConfigError(f"{field}: expected an object with a 'type' name")
    if data["type"] == "chain":
        _check_keys(data, "chain", field)
        callbacks = data.get("callbacks", [])
        if not isinstance(callbacks, list) or not callbacks:
            raise ConfigError(f"{field}.callbacks: expected a non-empty list")
        return CallbackChain(
            *(_decode_callback(c, f"{field}.callbacks[{i}]", parameters, depth + 1) for i, c in enumerate(callbacks))
        )
    _check_keys(data, "callback", field)
    cls = _REGISTRY.get(data["type"])
    if cls is None or not inspect.isclass(cls):
        known = ", ".join(sorted(k for k, v in _REGISTRY.items() if inspect.isclass(v)))
        raise ConfigError(f"{field}.type: unknown callback {_short(data['type'])}; known: {known}")
    args = data.get("args", {})
    if not isinstance(args, dict):
        raise ConfigError(f"{field}.args: expected an object")
    unknown = set(args) - set(_init_arguments(cls))
    if unknown:
        raise ConfigError(f"{field}.args: {cls.__name__} takes no argument {sorted(unknown)}")
    decoded = {k: _decode_value(v, f"{field}.args.{k}", parameters) for k, v in args.items()}
    try:
        return cls(**decoded)
    except Exception as error:  # the constructor checks its arguments
        raise ConfigError(f"{field}.args: {error}") from error


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
        self.untrusted = False  # True when read from data: `bend` then matches its targets with `safe_pattern`

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
        parameters: dict[str, Any] = {}
        bends = [
            {"callback": _encode_callback(cb, f"bends[{i}].callback", parameters), "targets": list(targets)}
            for i, (cb, targets) in enumerate(self.bends)
        ]
        trainables = _trainables_of(parameters)
        values = [
            {
                "name": name,
                "shape": list(t.shape),
                "dtype": str(t.parameter.dtype).replace("torch.", ""),
                "strength": _encode_value(t.strength, f"trainables.{name}.strength", parameters),
            }
            for name, t in trainables.items()
        ]
        params = [
            {"name": p.name, "type": p.type.__name__, "value": p.value, "range": list(p.range)}
            for p in parameters.values()
        ]
        data = {"format": FORMAT, "version": VERSION, "model": self.model, "parameters": params, "bends": bends}
        if trainables:
            data["trainables"] = {"sha256": hashlib.sha256(_tensor_bytes(trainables)).hexdigest(), "values": values}
        return data

    def trainables(self) -> dict[str, Trainable]:
        """The learned values the bends read, by the names a saved file gives them."""
        found: dict = {}
        for i, (cb, _) in enumerate(self.bends):
            _encode_callback(cb, f"bends[{i}].callback", found)
        return _trainables_of(found)

    def save(self, path: str | Path, overwrite: bool = True) -> None:
        """Write the config as readable JSON (and its learned values as ``<path stem>.safetensors`` beside it);
        ``overwrite=False`` refuses an existing file (`FileExistsError`)."""
        data = self.to_dict()
        text = json.dumps(data, indent=2) + "\n"
        tensors = _tensor_bytes(self.trainables()) if "trainables" in data else None
        sidecar = Path(path).with_suffix(".safetensors")
        if tensors is not None and not overwrite and sidecar.exists():
            raise FileExistsError(f"{sidecar} exists (the learned values of {path} are written there)")
        with Path(path).open("w" if overwrite else "x", encoding="utf-8") as file:
            file.write(text)
        if tensors is not None:
            sidecar.write_bytes(tensors)

    @classmethod
    def from_dict(cls, data: Any, tensors: bytes | None = None) -> BendingConfig:
        """Rebuild a config from plain data (and the bytes of its learned values' ``.safetensors`` file, when it
        has some); executes no code and raises `ConfigError` naming a bad field."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ConfigError(f"format: not a torchbend bending config (expected format {FORMAT!r})")
        _check_keys(data, "config", "config")
        if data.get("version") != VERSION:
            raise ConfigError(
                f"version: unsupported version {_short(data.get('version'))} (this torchbend reads {VERSION})"
            )
        parameters: dict[str, Any] = {}
        for i, p in enumerate(_list(data, "parameters")):
            field = f"parameters[{i}]"
            if not isinstance(p, dict) or not {"name", "type", "value"} <= set(p):
                raise ConfigError(f"{field}: expected an object with name, type and value")
            _check_keys(p, "parameter", field)
            kind = {"float": float, "int": int, "bool": bool}.get(p["type"]) if isinstance(p["type"], str) else None
            if kind is None:
                raise ConfigError(f"{field}.type: expected float, int or bool, got {_short(p['type'])}")
            rng = p.get("range") or [None, None]
            if not isinstance(rng, list) or len(rng) != 2:
                raise ConfigError(f"{field}.range: expected [low, high]")
            for item in (p["value"], *rng):
                _decode_value(item, field, parameters)
            if not isinstance(p["value"], (bool, int, float)):
                raise ConfigError(f"{field}.value: expected a number, got {_short(p['value'])}")
            try:
                parameters[p["name"]] = BendingParameter(p["name"], kind(p["value"]), range=(rng[0], rng[1]))
            except (TypeError, ValueError) as error:
                raise ConfigError(f"{field}: {error}") from None
        if "trainables" in data:
            parameters[TRAINABLES] = _decode_trainables(data["trainables"], tensors, parameters)
        bends = []
        for i, bend in enumerate(_list(data, "bends")):
            if not isinstance(bend, dict):
                raise ConfigError(f"bends[{i}]: expected an object")
            _check_keys(bend, "bend", f"bends[{i}]")
            callback = _decode_callback(bend.get("callback"), f"bends[{i}].callback", parameters)
            targets = bend.get("targets")
            if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
                raise ConfigError(f"bends[{i}].targets: expected a non-empty list of names")
            for j, target in enumerate(targets):
                _check_target(target, f"bends[{i}].targets[{j}]")
            bends.append((callback, *targets))
        model = data.get("model", {})
        if not isinstance(model, dict):
            raise ConfigError("model: expected an object")
        config = cls(*bends, model=model)
        config.untrusted = True
        return config

    @classmethod
    def load(cls, path: str | Path) -> BendingConfig:
        """Read a config written by `save` (JSON only: no pickle, no code is run)."""
        path = Path(path)
        try:
            with path.open("rb") as file:
                raw = file.read(MAX_BYTES + 1)
        except OSError as error:
            raise ConfigError(f"{path}: cannot be read ({error.strerror or error})") from None
        if len(raw) > MAX_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_BYTES} bytes; not a bending config")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not a text file (bending configs are UTF-8 JSON)") from None
        try:
            data = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            raise ConfigError(f"{path}: nested too deeply to be a bending config") from None
        except (json.JSONDecodeError, ValueError) as error:
            raise ConfigError(f"{path}: not valid JSON ({str(error)[:200]})") from None
        tensors = None
        if isinstance(data, dict) and "trainables" in data:
            sidecar = path.with_suffix(".safetensors")
            try:
                with sidecar.open("rb") as file:
                    tensors = file.read(MAX_TENSOR_BYTES + 1)
            except OSError as error:
                raise ConfigError(
                    f"{path}: its learned values should be in {sidecar.name} beside it, which cannot "
                    f"be read ({error.strerror or error})"
                ) from None
        try:
            return cls.from_dict(data, tensors)
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None


def _tensor_bytes(trainables: dict[str, Trainable]) -> bytes:
    st = require("safetensors.torch", "learn", "to save learned bends (tb.Trainable)")
    tensors = {}
    for name, t in trainables.items():
        tensors[name] = t.value.cpu().contiguous()
        tensors[f"{name}.origin"] = t.origin.detach().cpu().contiguous()
    return bytes(st.save(tensors))


def _decode_trainables(data: Any, tensors: bytes | None, parameters: dict) -> dict[str, Trainable]:
    """The learned values of a config: declared in its JSON, read from its safetensors bytes, all checked."""
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("values"), list)
        or not isinstance(data.get("sha256"), str)
    ):
        raise ConfigError("trainables: expected an object with sha256 and a list of values")
    _check_keys(data, "trainables", "trainables")
    if tensors is None:
        raise ConfigError(
            "trainables: this config has learned values, kept in a .safetensors file beside the JSON; "
            "load it with tb.BendingConfig.load(path) (or give from_dict the file's bytes)"
        )
    if len(tensors) > MAX_TENSOR_BYTES:
        raise ConfigError(f"trainables: the learned values' file is larger than {MAX_TENSOR_BYTES} bytes")
    if hashlib.sha256(tensors).hexdigest() != data["sha256"]:
        raise ConfigError("trainables.sha256: the .safetensors file beside the config is not the one saved with it")
    st = require("safetensors.torch", "learn", "to load learned bends (tb.Trainable)")
    try:
        stored = st.load(tensors)
    except Exception as error:
        raise ConfigError(f"trainables: the .safetensors file cannot be read ({str(error)[:200]})") from None
    declared: dict[str, Trainable] = {}
    for i, item in enumerate(data["values"]):
        field = f"trainables.values[{i}]"
        if not isinstance(item, dict) or not {"name", "shape", "dtype"} <= set(item):
            raise ConfigError(f"{field}: expected an object with name, shape and dtype")
        _check_keys(item, "trainable", field)
        name, shape, dtype = (
            item["name"],
            item["shape"],
            _DTYPES.get(item["dtype"]) if isinstance(item["dtype"], str) else None,
        )
        if not isinstance(name, str) or name in declared or len(name) > 200:
            raise ConfigError(f"{field}.name: expected a new name, got {_short(name)}")
        if dtype is None:
            raise ConfigError(f"{field}.dtype: expected one of {', '.join(_DTYPES)}, got {_short(item['dtype'])}")
        if (
            not isinstance(shape, list)
            or len(shape) > 8
            or not all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= MAX_ELEMENTS for d in shape)
        ):
            raise ConfigError(f"{field}.shape: expected at most 8 positive sizes, got {_short(shape)}")
        values = []
        for key in (name, f"{name}.origin"):
            t = stored.get(key)
            if t is None or t.dtype != dtype or list(t.shape) != shape or not bool(torch.isfinite(t).all()):
                got = "nothing" if t is None else f"{t.dtype} of shape {list(t.shape)}"
                raise ConfigError(
                    f"{field}: the .safetensors file must hold {key!r}, finite {item['dtype']} of shape "
                    f"{shape}; it holds {got}"
                )
            values.append(t)
        strength = _decode_value(item.get("strength", 1.0), f"{field}.strength", parameters)
        try:
            trainable = Trainable(values[1], name=name if name.isidentifier() else None, strength=strength)
            trainable.value = values[0]
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{field}: {error}") from None
        declared[name] = trainable
    extra = set(stored) - {k for n in declared for k in (n, f"{n}.origin")}
    if extra:
        raise ConfigError(f"trainables: the .safetensors file holds values no trainable declares: {sorted(extra)[:5]}")
    return declared


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number a bending config may hold")


def _check_target(target: str, field: str) -> None:
    """Targets saved by `bending_config` are exact names; a hand-written pattern must compile with
    `safe_pattern`, so matching it cannot freeze `bend`."""
    try:
        safe_pattern(target)
    except BendingError as error:
        raise ConfigError(f"{field}: {error}") from None


def _list(data: dict, key: str) -> list:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(f"{key}: expected a list")
    return value


def check_fingerprint(config: BendingConfig, module: torch.nn.Module) -> None:
    """Raise `ConfigError` if the config was saved from a model with other weight names or shapes."""
    saved = config.model.get("fingerprint")
    if saved is not None and saved != fingerprint(module):
        raise ConfigError(
            f"model.fingerprint: the config was saved from another model "
            f"({config.model.get('class', '?')}: {saved}); this one is "
            f"{type(module).__name__}: {fingerprint(module)}"
        )


def bend_from_config(bend: Callable[..., Any], config: BendingConfig) -> list:
    """Apply every bend of `config` with `bend(callback, *targets)`; all or none."""
    done = []
    try:
        with untrusted_patterns() if config.untrusted else nullcontext():
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
