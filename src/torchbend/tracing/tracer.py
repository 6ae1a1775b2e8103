"""The concrete-value tracer: records a method's graph while running it on example inputs.

    >>> tracer = ConcreteTracer()
    >>> graph = tracer.trace_method(vae, "decode", {"z": torch.randn(16, 64)},
    ...                             lambda fn, root, proxies: fn(root, proxies["z"]))
    >>> len([n for n in graph.nodes if n.op == "call_module"]) > 4
    True

It is a `torch.fx.Tracer` whose proxies carry the real value of every node, computed
as the node is recorded. Shapes, loop counts and branches are therefore concrete
(the graph is specialised to the example inputs), and every Python-level decision
taken on a traced value (`bool`, `int`, `len`, iteration) is recorded with its source
line and checked again at each later call by a guard node.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import linecache
import math
import operator
import os
import re
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any, cast

import torch
import torch.fx as fx
from torch.utils._pytree import tree_leaves

from ..errors import ColdStateError, SpecializationError, TraceError
from ..runtime.view import ModuleView, isolated_view

_TORCH_DIR = os.path.dirname(torch.__file__)
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _user_frame() -> Any:
    """The innermost frame that belongs to neither torch nor torchbend (None if there is none)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not (filename.startswith(_TORCH_DIR) or filename.startswith(_PACKAGE_DIR)):
            return frame
        frame = frame.f_back
    return None


def user_frame_location() -> str:
    """``file:line (`code`)`` of the innermost user frame."""
    frame = _user_frame()
    if frame is None:
        return "<unknown>"
    code = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    return f"{frame.f_code.co_filename}:{frame.f_lineno}" + (f" (`{code}`)" if code else "")


def warn_at_user_code(message: str) -> None:
    """A UserWarning attributed to the user's line rather than to torch or torchbend."""
    frame = _user_frame()
    if frame is None:
        warnings.warn(message, stacklevel=2)
    else:
        warnings.warn_explicit(message, UserWarning, frame.f_code.co_filename, frame.f_lineno)


def describe_failure(error: BaseException) -> str:
    """``Type: message`` plus the innermost user source line of the traceback, if not already named."""
    text = f"{type(error).__name__}: {error}"
    if isinstance(error, TraceError):
        return text
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if not (frame.filename.startswith(_TORCH_DIR) or frame.filename.startswith(_PACKAGE_DIR)):
            return f"{text} ({frame.filename}:{frame.lineno} (`{(frame.line or '').strip()}`))"
    return text


@dataclass(frozen=True)
class Decision:
    """A Python-level decision taken on a traced value while tracing (a specialisation)."""

    kind: str  # "bool", "int", "float", "len"
    node: str  # the graph node whose value was converted
    value: Any  # what it was while tracing
    where: str  # file:line of the user code that took it

    def describe(self) -> str:
        return f"{self.kind}({self.node}) == {self.value!r} at {self.where}"


def check_decision(actual: Any, expected: Any, kind: str, description: str) -> None:
    """Guard node body: raise if a traced decision would go another way at this call."""
    converters: dict[str, Callable[[Any], Any]] = {"bool": bool, "int": int, "float": float, "len": len}
    convert = converters[kind]
    got = convert(actual)
    if got != expected:
        raise SpecializationError(
            f"this call takes another path than the trace: {description}, but this call gives {got!r}. "
            "Trace the method again with inputs like these (bended.trace(...)), or trace it with retrace=True "
            "to have such calls traced again automatically"
        )


def _walk(a: Any, fn: Callable[[Any], Any]) -> Any:
    """Apply `fn` to the proxies inside tuples, lists, dicts and slices.

    Containers are recognised by their real type: a proxy claims its value's class.
    """
    kind = type(a)
    if issubclass(kind, ConcreteProxy):
        return fn(a)
    if issubclass(kind, (tuple, list)):
        items = [_walk(x, fn) for x in a]
        return kind(*items) if hasattr(a, "_fields") else kind(items)
    if issubclass(kind, dict):
        return {k: _walk(v, fn) for k, v in a.items()}
    if kind is slice:
        return slice(_walk(a.start, fn), _walk(a.stop, fn), _walk(a.step, fn))
    return a


def _unwrap(value: Any) -> Any:
    return _walk(value, lambda p: p.value)


def _holds_proxy(obj: Any, depth: int = 4) -> bool:
    """Whether a plain Python object holds traced values in its attributes (a few levels deep)."""
    if isinstance(obj, ConcreteProxy):
        return True
    if depth == 0 or isinstance(obj, (str, bytes, int, float, bool, type, torch.Tensor, torch.nn.Module)):
        return False
    if isinstance(obj, (list, tuple)):
        return any(_holds_proxy(x, depth - 1) for x in obj)
    if isinstance(obj, dict):
        return any(_holds_proxy(x, depth - 1) for x in obj.values())
    state = getattr(obj, "__dict__", None)
    return isinstance(state, dict) and any(_holds_proxy(x, depth - 1) for x in state.values())


def _python_states(obj: Any, found: dict[int, tuple[Any, Any]], depth: int = 4) -> dict[int, tuple[Any, Any]]:
    """Shallow copies of the plain Python objects reachable from `obj` (lists, dicts, instances such as a
    key/value cache), by id: what a module call may change in place, to be put back if it is rolled back."""
    if (
        depth == 0
        or id(obj) in found
        or isinstance(obj, (str, bytes, int, float, bool, type, torch.Tensor, torch.nn.Module, ConcreteProxy))
    ):
        return found
    if isinstance(obj, list):
        found[id(obj)] = (obj, list(obj))
    elif isinstance(obj, dict):
        found[id(obj)] = (obj, dict(obj))
    elif isinstance(getattr(obj, "__dict__", None), dict) and not callable(obj):
        found[id(obj)] = (obj, dict(vars(obj)))
    elif not isinstance(obj, tuple):
        return found
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else vars(obj).values()
    for item in list(items):
        _python_states(item, found, depth - 1)
    return found


def _restore(states: dict[int, tuple[Any, Any]]) -> None:
    for obj, saved in states.values():
        if isinstance(obj, list):
            obj[:] = saved
        else:
            target = obj if isinstance(obj, dict) else vars(obj)
            target.clear()
            target.update(saved)


def rebuild_object(cls: type, state: dict[str, Any]) -> Any:
    """A new `cls` instance with these attributes (how the graph recreates an object built while tracing)."""
    obj = cls.__new__(cls)  # type: ignore[call-overload]  # the class's own __new__, not type.__new__
    obj.__dict__.update(state)
    return obj


_REBUILDERS: dict[type, Callable[[dict[str, Any]], Any]] = {}


def _rebuilder(cls: type) -> Callable[[dict[str, Any]], Any]:
    """``rebuild_<Class>(state)``: a graph target that recreates a `cls` instance (one per class)."""
    if cls not in _REBUILDERS:

        def rebuild(state: dict[str, Any]) -> Any:
            return rebuild_object(cls, state)

        rebuild.__name__ = rebuild.__qualname__ = f"rebuild_{cls.__name__}"
        _REBUILDERS[cls] = rebuild
    return _REBUILDERS[cls]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class ConcreteProxy(fx.Proxy):
    """An fx proxy that also holds the value its node had while tracing."""

    def __init__(self, node: fx.Node, tracer: ConcreteTracer, value: Any) -> None:
        super().__init__(node, tracer)
        self.value = value

    def __repr__(self) -> str:
        return f"ConcreteProxy({self.node.name})"

    def __getattr__(self, name: str) -> Any:
        if name in ("value", "node", "tracer", "root", "attr", "_node") or name.startswith("__"):
            raise AttributeError(name)
        attr = getattr(self.value, name)  # AttributeError here keeps hasattr() honest
        if isinstance(attr, torch.dtype):
            return attr  # a traced value's dtype is part of the specialisation: torch.finfo(x.dtype) just works
        return ConcreteAttribute(self, name, attr)

    # Python-level conversions take the concrete value and leave a guard in the graph
    def _decide(self, kind: str, value: Any, subject: ConcreteProxy | None = None) -> Any:
        tracer: ConcreteTracer = self.tracer  # type: ignore[assignment]
        subject = self if subject is None else subject
        decision = Decision(kind, subject.node.name, value, user_frame_location())
        tracer.decisions.append(decision)
        guard = tracer.create_proxy("call_function", check_decision, (subject, value, kind, decision.describe()), {})
        guard.node.meta["tb_guard"] = True
        return value

    def __bool__(self) -> bool:
        return self._decide("bool", bool(self.value))

    def __int__(self) -> int:
        return self._decide("int", int(self.value))

    def __index__(self) -> int:
        return self._decide("int", operator.index(self.value))

    def __float__(self) -> float:
        return self._decide("float", float(self.value))

    def __len__(self) -> int:
        return self._decide("len", len(self.value))

    def __contains__(self, item: Any) -> bool:
        return bool(self.tracer.create_proxy("call_function", operator.contains, (self, item), {}))

    def __iter__(self) -> Iterator[Any]:
        value = self.value
        if isinstance(value, dict):
            yield from self.keys()
            return
        sequence: Any = self  # a proxy: indexing it records the op
        if not hasattr(value, "__getitem__") or not hasattr(value, "__len__"):
            sequence = self.tracer.create_proxy("call_function", list, (self,), {})
        for i in range(len(sequence)):
            yield sequence[i]

    def keys(self) -> Any:
        if isinstance(self.value, dict):
            return self.value.keys()
        return self.tracer.create_proxy("call_method", "keys", (self,), {})

    def __setitem__(self, key: Any, item: Any) -> None:
        self.tracer.create_proxy("call_function", operator.setitem, (self, key, item), {})


def _inplace(op: Callable[[Any, Any], Any]) -> Callable[[ConcreteProxy, Any], Any]:
    def method(self: ConcreteProxy, other: Any) -> Any:
        return self.tracer.create_proxy("call_function", op, (self, other), {})

    method.__name__ = f"__{op.__name__}__"
    return method


INPLACE_OPERATORS = (
    operator.iadd,
    operator.isub,
    operator.imul,
    operator.itruediv,
    operator.ifloordiv,
    operator.imod,
    operator.ipow,
    operator.imatmul,
    operator.iand,
    operator.ior,
    operator.ixor,
)
for _op in INPLACE_OPERATORS:
    setattr(ConcreteProxy, f"__{_op.__name__}__", _inplace(_op))


class ConcreteAttribute(ConcreteProxy):
    """``proxy.name``: becomes a method call when called, a `getattr` node when used as a value."""

    def __init__(self, root: ConcreteProxy, attr: str, value: Any) -> None:
        self.root = root
        self.attr = attr
        self.tracer = root.tracer
        self.value = value
        self._node: fx.Node | None = None

    @property
    def node(self) -> fx.Node:  # type: ignore[override]
        if self._node is None:
            self._node = self.tracer.create_proxy("call_function", getattr, (self.root, self.attr), {}).node
        return self._node

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.tracer.create_proxy("call_method", self.attr, (self.root, *args), kwargs)


# torch.nn modules that are compositions of other modules: traced through, not kept whole
_COMPOSITE = (
    torch.nn.Sequential,
    torch.nn.ModuleList,
    torch.nn.ModuleDict,
    torch.nn.Transformer,
    torch.nn.TransformerEncoder,
    torch.nn.TransformerDecoder,
    torch.nn.TransformerEncoderLayer,
    torch.nn.TransformerDecoderLayer,
)


def _default_leaf(module: torch.nn.Module) -> bool:
    if getattr(module, "_hf_hook", None) is not None:  # accelerate loads its weights around each call: run it whole
        return True
    mod = type(module).__module__
    return (mod.startswith("torch.nn") or mod.startswith("torch.ao.nn")) and not isinstance(module, _COMPOSITE)


@dataclass(frozen=True)
class Fallback:
    """A submodule that could not be traced through and was kept whole (one activation)."""

    module: str
    reason: str


class ConcreteTracer(fx.Tracer):
    """Records a method into an fx graph while running it on real values.

    `inputs` maps placeholder targets to their example values; `leaves` are module
    paths that stay one node each, in addition to torch.nn's own modules. `bends` maps
    node names to functions applied to their values as they are recorded, so the rest of
    the method runs (and takes its decisions) on bent values.
    """

    proxy_buffer_attributes = True

    def __init__(self, leaves: Iterable[str] = (), bends: dict[str, Callable[[Any], Any]] | None = None) -> None:
        super().__init__(autowrap_modules=())  # type: ignore[arg-type]  # torch annotates it a 1-tuple; () is valid
        self.leaves = set(leaves)
        self.bends = bends or {}
        self.fallbacks: list[Fallback] = []
        self.decisions: list[Decision] = []
        self.constants: dict[str, Any] = {}
        self._concrete = 0  # > 0 while real code runs to compute a node's value
        self._placeholders: dict[str, Any] = {}

    # --- entry point -------------------------------------------------------------
    def trace_method(
        self,
        root: torch.nn.Module,
        method: str,
        placeholders: dict[str, Any],
        call: Callable[[Callable, Any, dict[str, Any]], Any],
    ) -> fx.Graph:
        """Trace ``root.<method>``; `call(fn, root, proxies)` invokes it given a proxy per placeholder.

        The method runs on an isolated view of `root` (`view.isolated_view`): its module calls and
        attribute reads come to this tracer through the view, so nothing outside this thread's call
        is intercepted, and whatever the method writes (buffers, caches) stays on the view.
        """
        self.traced_func_name = method
        self._placeholders = placeholders
        self._invoke = call
        self._attribute_cache: dict[str, Any] = {}
        view = isolated_view(root, {m: self._module_called for m in root.modules()}, self._attribute_read)
        with _tracing_thread():
            graph = self.trace(view.root)
        _refuse_state_made_while_traced(view, method)
        return graph

    def trace(self, root: torch.nn.Module, concrete_args: Any = None) -> fx.Graph:  # type: ignore[override]
        # torch.fx's Tracer.trace, without its process-wide patches of nn.Module (the view routes calls here)
        self.root = root
        self.root_module_name = root._get_name()
        self.submodule_paths = {mod: name for name, mod in root.named_modules()}
        self.graph = fx.Graph(tracer_cls=type(self))
        self.tensor_attrs = {}
        for path, module in root.named_modules():
            for key, value in _instance_attributes(module).items():
                if isinstance(value, torch.Tensor):
                    self.tensor_attrs[value] = f"{path}.{key}" if path else key
        fn = getattr(type(root), self.traced_func_name)
        fn, args = self.create_args_for_root(fn, True, concrete_args)
        self.create_node("output", "output", (self.create_arg(fn(*args)),), {})
        self.submodule_paths = None
        return self.graph

    def _module_called(self, module: torch.nn.Module, call: Callable, *args: Any, **kwargs: Any) -> Any:
        return self.call_module(module, call, args, kwargs)

    def _attribute_read(self, name: str, value: Any) -> Any:
        return self.getattr(name, value, self._attribute_cache)

    def create_args_for_root(self, root_fn: Callable, is_module: bool, concrete_args: Any = None):
        proxies = {target: self.create_proxy("placeholder", target, (), {}) for target in self._placeholders}
        invoke, root = self._invoke, self.root

        def traced(*_: Any) -> Any:
            return invoke(root_fn, root, proxies)

        return traced, []

    # --- leaves and attributes ----------------------------------------------------
    def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
        return module_qualified_name in self.leaves or _default_leaf(m)

    def call_module(self, m: torch.nn.Module, forward: Callable, args: tuple, kwargs: dict) -> Any:
        if self._concrete:
            return forward(*args, **kwargs)
        if m not in (self.submodule_paths or {}):
            return forward(*args, **kwargs)  # a module built on the fly: trace through it
        path = self.path_of_module(m)
        if self.is_leaf_module(m, path):
            return super().call_module(m, forward, args, kwargs)
        saved = (list(self.graph.nodes), len(self.decisions), dict(self.module_stack), dict(self.num_calls))
        objects = _python_states((args, kwargs), {})  # a cache the module fills in place is put back too
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception as error:
            # keep the module whole: forget what tracing through it recorded, run it as one node
            self._roll_back(*saved)
            _restore(objects)
            self.leaves.add(path)
            try:
                out = super().call_module(m, forward, args, kwargs)
            except Exception:
                raise error from None  # it fails whole too: a real error, reported as the tracer saw it
            reason = describe_failure(error)
            self.fallbacks.append(Fallback(path, reason))
            warn_at_user_code(
                f"torchbend: module '{path}' could not be traced through and is kept whole as one activation ({reason})"
            )
            return out

    def _roll_back(self, nodes: list[fx.Node], n_decisions: int, module_stack: dict, num_calls: dict) -> None:
        kept = set(nodes)
        for node in reversed(list(self.graph.nodes)):
            if node not in kept:
                self.graph.erase_node(node)
        del self.decisions[n_decisions:]
        self.module_stack.clear()
        self.module_stack.update(module_stack)
        self.num_calls = num_calls

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict) -> Any:
        if self._concrete:
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def create_arg(self, a: Any) -> Any:
        if isinstance(a, fx.Proxy):
            return a.node
        if isinstance(a, torch.Tensor):
            if not self._is_module_tensor(a):
                return self._constant(a)
        elif dataclasses.is_dataclass(a) and not isinstance(a, type) or (isinstance(a, dict) and type(a) is not dict):
            # keep output containers such as dataclasses and dict subclasses (e.g. model outputs) as they were
            items = {f.name: getattr(a, f.name) for f in dataclasses.fields(a)} if dataclasses.is_dataclass(a) else a
            return self.create_node("call_function", type(a), (), {k: self.create_arg(v) for k, v in items.items()})
        try:
            return super().create_arg(a)
        except NotImplementedError:
            return self._object(a)

    def _object(self, a: Any) -> fx.Node:
        """A Python object built by the traced code (a key/value cache, a config): rebuilt at each call from its
        attributes when it holds traced values, so they stay graph nodes; else passed through as a constant."""
        if _holds_proxy(a):
            state = {key: self.create_arg(value) for key, value in vars(a).items()}
            node = self.create_node("call_function", _rebuilder(type(a)), (state,), {}, name=_snake(type(a).__name__))
        else:
            name = next((key for key, value in self.constants.items() if value is a), None)
            if name is None:
                name = f"_object_constant{len(self.constants)}"
                self.constants[name] = a
            node = self.create_node("get_attr", name, (), {})
        node.meta["tb_value"] = a
        return node

    def _is_module_tensor(self, a: torch.Tensor) -> bool:
        if a in self.tensor_attrs:
            return True
        return any(a is t for t in self.root.parameters()) or any(a is t for t in self.root.buffers())

    def _constant(self, a: torch.Tensor) -> fx.Node:
        name = next((key for key, value in self.constants.items() if value is a), None)
        if name is None:
            name = f"_tensor_constant{len(self.constants)}"
            self.constants[name] = a
        node = self.create_node("get_attr", name, (), {})
        node.meta["tb_value"] = a
        return node

    # --- every node gets its value --------------------------------------------------
    def create_proxy(
        self,
        kind: str,
        target: Any,
        args: tuple,
        kwargs: dict,
        name: str | None = None,
        type_expr: Any = None,
        proxy_factory_fn: Any = None,
    ) -> ConcreteProxy:
        value = self._compute(kind, target, args, kwargs)
        proxy = cast(
            ConcreteProxy,
            super().create_proxy(
                kind, target, args, kwargs, name, type_expr, lambda node: ConcreteProxy(node, self, value)
            ),
        )
        proxy.node.meta["tb_value"] = value
        path = self.scope.module_path
        proxy.node.meta["tb_scope"] = (path, max(self.num_calls.get(path, 1) - 1, 0))
        bend = self.bends.get(proxy.node.name)
        if bend is not None and kind != "placeholder":
            proxy.value = bend(value)
        return proxy

    def _compute(self, kind: str, target: Any, args: tuple, kwargs: dict) -> Any:
        if kind == "placeholder":
            return self._placeholders[target]
        self._concrete += 1
        try:
            args, kwargs = _unwrap(args), _unwrap(kwargs)
            if kind == "call_function":
                return target(*args, **kwargs)
            if kind == "call_method":
                return getattr(args[0], target)(*args[1:], **kwargs)
            if kind == "call_module":
                return self.root.get_submodule(target)(*args, **kwargs)
            if kind == "get_attr":
                return self.constants[target] if target in self.constants else _fetch(self.root, target)
            raise AssertionError(kind)
        except TraceError:
            raise
        except Exception as error:
            raise self._op_error(kind, target, error, args, kwargs) from error
        finally:
            self._concrete -= 1

    def _op_error(self, kind: str, target: Any, error: Exception, args: Any = (), kwargs: Any = None) -> TraceError:
        op = target if isinstance(target, str) else getattr(target, "__name__", repr(target))
        scope = self.scope.module_path or "<root>"
        hint = ""
        if isinstance(error, (RuntimeError, ValueError, IndexError)):  # the op itself fails on these values
            shapes = [tuple(a.shape) for a in tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
            hint = (
                f" The op fails on these values (tensors of shapes {', '.join(map(str, shapes)) or 'none'}) as "
                "it would without tracing: check the shapes and dtypes of the method's inputs."
            )
        elif scope != "<root>":  # tracing itself may be what fails: the module run whole may not
            hint = f" If module '{scope}' cannot be traced, keep it whole with trace(..., leaves=['{scope}'])."
        return TraceError(
            f"tracing failed at {kind} '{op}' in module '{scope}' ({user_frame_location()}): "
            f"{type(error).__name__}: {error}.{hint}"
        )


# torch functions whose arguments may all be sizes or numbers: their argument parser does
# not look for proxies there, so while tracing they are wrapped to record themselves.
_FACTORIES = (
    "zeros",
    "ones",
    "empty",
    "full",
    "rand",
    "randn",
    "randint",
    "randperm",
    "arange",
    "linspace",
    "logspace",
    "eye",
    "tensor",
    "as_tensor",
    "normal",
    "tril_indices",
    "triu_indices",
    "scalar_tensor",
)


def _find_proxy(args: tuple, kwargs: dict) -> ConcreteProxy | None:
    found: list[ConcreteProxy] = []
    _walk((args, kwargs), found.append)
    return found[0] if found else None


def copy_tensor(
    data: torch.Tensor,
    dtype: torch.dtype | None = None,
    device: Any = None,
    requires_grad: bool = False,
    pin_memory: bool = False,
) -> torch.Tensor:
    """``torch.tensor(t)`` for a tensor `t`, without the warning torch gives for it."""
    out = data.detach().clone().to(dtype=dtype, device=device)
    if pin_memory:
        out = out.pin_memory()
    return out.requires_grad_(requires_grad)


def _recording(fn: Callable) -> Callable:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        proxy = _find_proxy(args, kwargs) if _TRACING.depth else None
        if proxy is None:
            return fn(*args, **kwargs)
        if fn.__name__ == "tensor" and args and args[0] is proxy and isinstance(proxy.value, torch.Tensor):
            return proxy.tracer.create_proxy("call_function", copy_tensor, args, kwargs, name="tensor")
        return proxy.tracer.create_proxy("call_function", fn, args, kwargs, name=getattr(fn, "__name__", None))

    wrapper.__wrapped__ = fn  # type: ignore[attr-defined]  # a function attribute, as functools.wraps sets
    wrapper.__name__ = getattr(fn, "__name__", "wrapper")
    return wrapper


_RECORDING = {name: _recording(getattr(torch, name)) for name in _FACTORIES}


class _SameInstances(type):
    """The metaclass of a recording distribution class: its instances are its base class's instances."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, cls.__bases__[0])

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, cls.__bases__[0])


def _recording_distribution(cls: type) -> type:
    """A stand-in for `cls`: made from traced values on a tracing thread, one node holding the real
    distribution; anywhere else, an instance of `cls` itself."""

    def new(sub: type, *args: Any, **kwargs: Any) -> Any:
        proxy = _find_proxy(args, kwargs) if _TRACING.depth else None
        if proxy is not None:
            return proxy.tracer.create_proxy("call_function", cls, args, kwargs, name=cls.__name__)
        return cls(*args, **kwargs)

    return _SameInstances(cls.__name__, (cls,), {"__new__": new, "__module__": cls.__module__})


def _distribution_classes() -> dict[str, type]:
    dists = torch.distributions
    return {
        name: obj
        for name in dists.__all__
        if isinstance(obj := getattr(dists, name), type)
        and issubclass(obj, dists.Distribution)
        and obj is not dists.Distribution
    }


def _static_address_hint(fn: Callable) -> Callable:
    """`torch._dynamo.mark_static_address`, which does nothing with a traced value (it only matters to a
    compiled graph, which a trace is not)."""

    def mark(t: Any, *args: Any, **kwargs: Any) -> None:
        if not isinstance(t, ConcreteProxy):
            fn(t, *args, **kwargs)

    mark.__wrapped__ = fn  # type: ignore[attr-defined]  # a function attribute, as functools.wraps sets
    return mark


def _is_tensor(obj: Any) -> bool:
    # torch.is_tensor answers for a traced value as for the value it stands for
    return isinstance(obj, torch.Tensor) or (isinstance(obj, ConcreteProxy) and isinstance(obj.value, torch.Tensor))


class _ThreadState(threading.local):
    depth = 0  # > 0 while this thread traces


_TRACING = _ThreadState()
_INSTALL_LOCK = threading.Lock()
_ABSENT = object()
_SAVED: list[tuple[dict[str, Any], str, Any]] = []  # (namespace, name, what it held) while some thread traces
_TRACERS = 0


def _stand_ins() -> list[tuple[dict[str, Any], str, Any]]:
    """(namespace, name, stand-in): what a tracing thread sees in place of torch's and the user's functions."""
    found = [(vars(torch), name, _RECORDING[name]) for name in _FACTORIES]
    found.append((vars(torch), "is_tensor", _is_tensor))
    if "torch._dynamo" in sys.modules:  # a compiler hint (Hugging Face caches mark their tensors with it)
        hint = sys.modules["torch._dynamo"].mark_static_address
        found.append((vars(sys.modules["torch._dynamo"]), "mark_static_address", _static_address_hint(hint)))
    found += [
        (vars(torch.distributions), name, _recording_distribution(cls)) for name, cls in _distribution_classes().items()
    ]
    found += [
        (vars(math), name, _recording(fn))
        for name, fn in vars(math).items()
        if callable(fn) and not name.startswith("_")
    ]
    for (_, name), namespace in list(fx._symbolic_trace._wrapped_fns_to_patch.items()):  # torch.fx.wrap("name")
        fn = namespace.get(name, getattr(builtins, name, None))
        if fn is not None:
            found.append((namespace, name, _recording(fn)))
    return found


@contextlib.contextmanager
def _tracing_thread() -> Iterator[None]:
    """Within, on this thread only, `torch.zeros(x.shape[0])` and its kin, `math` functions and functions
    registered with `torch.fx.wrap` record themselves as one node, a distribution made from traced values is one
    node, and `torch.is_tensor` sees through traced values.

    torch's argument parser rejects a traced size before any dispatch (`torch.zeros(n, 4)`), so these
    functions are replaced in their namespaces while any thread traces, by stand-ins that act only on a
    tracing thread and do what the originals do on every other thread. The first trace to start puts them in
    place and the last to end puts the originals back, so no trace leaves anything behind.
    """
    global _TRACERS
    with _INSTALL_LOCK:
        if _TRACERS == 0:
            for namespace, name, stand_in in _stand_ins():
                _SAVED.append((namespace, name, namespace.get(name, _ABSENT)))
                namespace[name] = stand_in
        _TRACERS += 1
    _TRACING.depth += 1
    try:
        yield
    finally:
        _TRACING.depth -= 1
        with _INSTALL_LOCK:
            _TRACERS -= 1
            if _TRACERS == 0:
                for namespace, name, original in reversed(_SAVED):
                    if original is _ABSENT:
                        namespace.pop(name, None)
                    else:
                        namespace[name] = original
                _SAVED.clear()


def _refuse_state_made_while_traced(view: ModuleView, method: str) -> None:
    """Raise if the traced call registered a buffer its module did not have (a streaming cache made on first use),
    or replaced one by assignment (``self.cache = x``) rather than writing it in place.

    A graph records operations, not assignments to a module: it would make the cache afresh at every call, or
    never update it, and every later call would lose the stream.
    """
    made, assigned = [], []
    for path, copy in view.root.named_modules():
        original = vars(copy)["_original"]
        for name, value in copy._buffers.items():
            qualified = f"{path}.{name}" if path else name
            if name not in original._buffers:
                made.append(qualified)
            elif value is not view.tensors.get((original, "_buffers", name), value):
                assigned.append(qualified)
    if made:
        raise ColdStateError(
            f"{method} registered buffers that did not exist before the traced call ({', '.join(made)}): streaming "
            f"state made on first use, which a trace would record as made afresh at every call. Call the method "
            f"once on the model before tracing it (e.g. model.{method}(x)), so that its state exists, then trace"
        )
    if assigned:
        raise ColdStateError(
            f"{method} assigns new tensors to buffers during the call ({', '.join(assigned)}, as in "
            "`self.cache = x`): a trace records operations, not assignments, so its later calls would not carry "
            "that state. Write the buffer in place (`self.cache.copy_(x)`), or keep its module whole with "
            "trace(..., leaves=['<module path>'])"
        )


def _instance_attributes(module: torch.nn.Module) -> dict[str, Any]:
    """The attributes set on a module (through the copies of a view, the originals' too)."""
    found: dict[str, Any] = {}
    current: torch.nn.Module | None = module
    while current is not None:
        for key, value in vars(current).items():
            found.setdefault(key, value)
        current = vars(current).get("_original")
    return found


def _fetch(root: torch.nn.Module, target: str) -> Any:
    value: Any = root
    for atom in target.split("."):
        value = getattr(value, atom)
    return value
