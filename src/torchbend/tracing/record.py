"""The record of one traced method: its graph, its activations, and how to feed it a call.

>>> record = trace_method(vae, "decode", (), {"z": torch.randn(16, 64)})
>>> record.activation_names()[:3]
['z', 'decoder_mlp_0', 'decoder_mlp_1']
>>> record.activations["decoder_net_convt0"].shape
(16, 64, 4, 4)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx
from torch.utils._pytree import tree_leaves

from ..errors import SpecializationError, TraceError
from ..naming import match_activations
from .call_check import binding_error
from .tracer import ConcreteTracer, Decision, Fallback


@dataclass(frozen=True)
class ActivationInfo:
    """One node of a traced graph: its name, op, target, and the value it had while tracing.

    `scope` is the path of the module whose code recorded it (``"transformer.h.0.attn"``, ``""`` for the
    traced method's own code) and `call` which call of that module it was (0, 1, ... when the module runs
    several times, e.g. once per `generate` or sampling step).
    """

    name: str
    op: str
    target: str
    shape: tuple[int, ...] | None
    dtype: torch.dtype | None
    type: str
    device: torch.device | None = None
    scope: str = ""
    call: int = 0

    @property
    def is_tensor(self) -> bool:
        return self.shape is not None

    @property
    def scoped_name(self) -> str:
        """``name@scope#call``, the form `@` patterns are matched against."""
        return f"{self.name}@{self.scope}#{self.call}"


def _describe_target(node: fx.Node) -> str:
    if isinstance(node.target, str):
        return node.target
    qualname: str | None = getattr(node.target, "__qualname__", None)
    return qualname or str(getattr(node.target, "__name__", repr(node.target)))


def _info_of(name: str, op: str, target: str, value: Any, scope: str = "", call: int = 0) -> ActivationInfo:
    if isinstance(value, torch.Tensor):
        return ActivationInfo(
            name, op, target, tuple(value.shape), value.dtype, type(value).__name__, value.device, scope, call
        )
    return ActivationInfo(name, op, target, None, None, type(value).__name__, None, scope, call)


def _info(node: fx.Node, value: Any) -> ActivationInfo:
    scope, call = node.meta.get("tb_scope", ("", 0))
    return _info_of(node.name, node.op, _describe_target(node), value, scope, call)


def _has_tensor(value: Any) -> bool:
    return any(isinstance(leaf, torch.Tensor) for leaf in tree_leaves(value))


def same_value(a: Any, b: Any) -> bool:
    """True when a non-tensor argument equals the one a method was traced with."""
    if a is b:
        return True
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor) or type(a) is not type(b):
        return False
    try:
        return bool(a == b)
    except Exception:
        return False


class InputPlan:
    """How a call's arguments map onto a traced graph's placeholders.

    Arguments holding tensors become placeholders; the others (numbers, flags, None)
    are baked into the graph, and a later call must pass the same values.
    """

    def __init__(self, fn: Callable, args: tuple, kwargs: dict) -> None:
        self.fn = fn
        self.signature = inspect.signature(fn)
        self.method_params = list(self.signature.parameters.values())[1:]  # without self
        self._self_name = next(iter(self.signature.parameters))
        traced = self._bind(None, args, kwargs)
        self._traced: inspect.BoundArguments | None = traced  # None once released
        self.placeholders, self.baked = self._split(traced)
        explicit = self.signature.bind(None, *args, **kwargs).arguments
        self._given = set(explicit)
        # positional-or-keyword arguments go positionally only where a *args follows them
        self._positional = any(p.kind == p.VAR_POSITIONAL and p.name in explicit for p in self.method_params)
        simple = [p.name for p in self.method_params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        n = len(self.placeholders)
        # a call with exactly the placeholder arguments, positionally, needs no binding
        self.fast_arity = (
            n if (list(self.placeholders) == simple[:n] and not any(key[0] in explicit for key in self.baked)) else -1
        )

    def _bind(self, module: Any, args: tuple, kwargs: dict) -> inspect.BoundArguments:
        try:
            bound = self.signature.bind(module, *args, **kwargs)
        except TypeError as error:
            raise binding_error(
                getattr(self.fn, "__name__", "method"), self.signature, (module, *args), kwargs, error
            ) from None
        bound.apply_defaults()
        return bound

    def _split(self, bound: inspect.BoundArguments) -> tuple[dict[str, Any], dict[tuple, Any]]:
        placeholders: dict[str, Any] = {}
        baked: dict[tuple, Any] = {}
        items: list[tuple[str, tuple, Any]]
        for param in self.method_params:
            value = bound.arguments.get(param.name)
            if param.kind == param.VAR_POSITIONAL:
                items = [(f"{param.name}_{i}", (param.name, i), v) for i, v in enumerate(value or ())]
            elif param.kind == param.VAR_KEYWORD:
                items = [(key, (param.name, key), v) for key, v in (value or {}).items()]
            else:
                items = [(param.name, (param.name,), value)]
            for target, key, v in items:
                if _has_tensor(v):
                    placeholders[target] = v
                else:
                    baked[key] = v
        return placeholders, baked

    def release(self) -> None:
        """Drop the example values once traced (only the argument names are kept)."""
        self._traced = None
        self.placeholders = dict.fromkeys(self.placeholders)

    def call_with(self, fn: Callable, module: Any, values: dict[str, Any]) -> Any:
        """Call `fn(module, ...)` as traced, each placeholder's argument replaced by `values[target]`."""
        assert self._traced is not None, "call_with runs while tracing, before release()"
        arguments = dict(self._traced.arguments)
        arguments[self._self_name] = module
        for param in self.method_params:
            value = arguments.get(param.name)
            if param.kind == param.VAR_POSITIONAL:
                arguments[param.name] = tuple(values.get(f"{param.name}_{i}", v) for i, v in enumerate(value or ()))
            elif param.kind == param.VAR_KEYWORD:
                arguments[param.name] = {k: values.get(k, v) for k, v in (value or {}).items()}
            elif param.name in values:
                arguments[param.name] = values[param.name]
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for param in self.signature.parameters.values():
            # each argument is passed once, as given: defaults are left to the method (and its decorators)
            if param.name not in self._given and param.name != self._self_name:
                continue
            value = arguments[param.name]
            if param.kind == param.VAR_POSITIONAL:
                args.extend(value)
            elif param.kind == param.VAR_KEYWORD:
                kwargs.update(value)
            elif (
                param.name == self._self_name
                or param.kind == param.POSITIONAL_ONLY
                or (param.kind == param.POSITIONAL_OR_KEYWORD and self._positional)
            ):
                args.append(value)
            else:
                kwargs[param.name] = value
        return fn(*args, **kwargs)

    def flatten(self, args: tuple, kwargs: dict, method: str) -> list[Any]:
        """The placeholder values for a call, in graph order; checks the baked arguments."""
        if not kwargs and len(args) == self.fast_arity:
            return list(args)
        placeholders, baked = self._split(self._bind(None, args, kwargs))
        if placeholders.keys() != self.placeholders.keys() or baked.keys() != self.baked.keys():
            raise SpecializationError(
                f"{method} was traced with tensor arguments {list(self.placeholders)}, "
                f"this call gives {list(placeholders)}; trace it again with arguments like these"
            )
        for key, expected in self.baked.items():
            if not same_value(baked[key], expected):
                raise SpecializationError(
                    f"{method} was traced with {'.'.join(map(str, key))}={expected!r}, "
                    f"this call gives {baked[key]!r}; trace it again with this value"
                )
        return list(placeholders.values())


class MethodRecord:
    """What `BendedModule.trace` keeps of one method: its activations and how it was recorded."""

    kind = "traced"
    grouped_bends = False  # whether its programs run per-example (grouped) activation bends: `bind(view, bends)`

    def __init__(
        self, name: str, activations: dict[str, ActivationInfo], leaves: Sequence[str] = (), retrace: bool = False
    ) -> None:
        self.name = name
        self.activations = activations
        self.leaves = list(leaves)  # module paths kept whole at the user's request
        self.retrace = retrace
        self.decisions: list[Decision] = []
        self.fallbacks: list[Fallback] = []
        self._resolved: dict[tuple[str, ...], list[str]] = {}

    def activation_names(self) -> list[str]:
        return list(self.activations)

    @property
    def input_names(self) -> list[str]:
        """The method's inputs by name, as a program's `call_named` takes them."""
        raise NotImplementedError

    def named_arguments(self, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
        """A call's arguments by input name, as a program's `call_named` takes them."""
        return dict(kwargs)

    @property
    def baked(self) -> dict[str, Any]:
        """The non-tensor arguments the method was recorded with, by name (a call must give the same)."""
        return {}

    def program(self, module: torch.nn.Module, bends: dict | None = None, **options: Any) -> Any:
        """A runnable of this method with activation `bends` (`outputs`, `after_bends`, `cut` as in `Program`)."""
        raise NotImplementedError

    def describe(self) -> list[list[str]]:
        """Rows of the trace report: how the method was recorded, its decisions, leaves and fallbacks."""
        rows = [["mode", self.kind, "graph of every op"]]
        rows += [["decision", f"{d.kind}({d.node}) == {d.value!r}", d.where] for d in self.decisions]
        rows += [["leaf", path, "kept whole on request"] for path in self.leaves]
        rows += [["fallback", f.module, f"kept whole: {f.reason}"] for f in self.fallbacks]
        unique: list[list[str]] = []
        for row in rows:
            if row not in unique:
                unique.append(row)
        return unique

    def to(self, device: torch.device | None, dtype: torch.dtype | None) -> None:
        """Move the tensors the record holds itself (constants) with the module."""

    def resolve(self, patterns: Sequence[str]) -> list[str]:
        """Activation names matching any pattern (a name, a regex, or ``"node@scope"``; see
        `naming.match_activations`), in graph order (cached per pattern tuple)."""
        key = tuple(patterns)
        if key not in self._resolved:
            self._resolved[key] = match_activations(key, self.activations, f"activation of {self.name}")
        return list(self._resolved[key])


class TracedMethod(MethodRecord):
    """A method recorded as a graph: every op is an activation."""

    grouped_bends = True

    def __init__(
        self,
        name: str,
        graph: fx.Graph,
        plan: InputPlan,
        activations: dict[str, ActivationInfo],
        constants: dict[str, Any],
        decisions: list[Decision],
        fallbacks: list[Fallback],
        leaves: Sequence[str] = (),
        retrace: bool = False,
    ) -> None:
        super().__init__(name, activations, leaves, retrace)
        self.graph = graph
        self.plan = plan
        self.constants = constants
        self.decisions = decisions
        self.fallbacks = fallbacks

    @property
    def input_names(self) -> list[str]:
        """The tensor arguments of the method, in placeholder order."""
        return list(self.plan.placeholders)

    def named_inputs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The tensor arguments of a call given by keyword, checked against the trace."""
        return dict(zip(self.input_names, self.plan.flatten((), kwargs, self.name)))

    def named_arguments(self, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
        return dict(zip(self.input_names, self.plan.flatten(args, kwargs, self.name)))

    @property
    def baked(self) -> dict[str, Any]:
        return {key[0]: v for key, v in self.plan.baked.items() if len(key) == 1}

    def program(self, module: torch.nn.Module, bends: dict | None = None, **options: Any) -> Any:
        from ..runtime.program import Program

        return Program(self, module, bends, **options)

    def to(self, device: torch.device | None, dtype: torch.dtype | None) -> None:
        for key, value in self.constants.items():
            if isinstance(value, torch.Tensor):
                cast = dtype if dtype is not None and value.is_floating_point() else None
                self.constants[key] = value.to(device=device, dtype=cast)


def trace_method(
    module: torch.nn.Module,
    method: str,
    args: tuple,
    kwargs: dict,
    leaves: Sequence[str] = (),
    retrace: bool = False,
    bends: dict[str, Callable[[Any], Any]] | None = None,
) -> TracedMethod:
    """Trace ``module.<method>(*args, **kwargs)`` into a `TracedMethod` (`bends`: see `ConcreteTracer`)."""
    fn = getattr(type(module), method, None)
    if not inspect.isfunction(fn):
        raise TraceError(f"{type(module).__name__}.{method} is not a method defined in Python; cannot trace it")
    unknown = [path for path in leaves if path not in dict(module.named_modules())]
    if unknown:
        raise TraceError(f"leaves {unknown} are not submodules of {type(module).__name__}")
    plan = InputPlan(fn, args, kwargs)
    tracer = ConcreteTracer(leaves, bends)
    graph = tracer.trace_method(module, method, plan.placeholders, plan.call_with)
    plan.release()
    activations: dict[str, ActivationInfo] = {}
    for node in graph.nodes:
        if node.op != "output" and not node.meta.get("tb_guard"):
            activations[node.name] = _info(node, node.meta.get("tb_value"))
        node.meta.pop("tb_value", None)
    return TracedMethod(
        method, graph, plan, activations, tracer.constants, tracer.decisions, tracer.fallbacks, leaves, retrace
    )
