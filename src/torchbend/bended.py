"""`BendedModule`: wrap a model, trace its methods, bend weights and activations by name.

    >>> import torchbend as tb
    >>> bended = tb.BendedModule(vae)                   # wraps; `vae` is never modified
    >>> bended.trace("decode", z=torch.randn(16, 64))   # record the graph of a method
    >>> names = bended.resolve_parameters(r"decoder.net.convt.*weight")
    >>> with bended.bend(tb.Scale(2), names[0]):        # undone on exit
    ...     out = bended.decode(z=z)                     # any method runs bent
    >>> bended.bend(tb.Mask(tb.BendingParameter("keep", 0.2)), "decoder_net_convt1", fn="decode")
    >>> bended.update("keep", 0.5)                       # live: no re-trace

A bended call costs about what the plain call costs: bent weights are computed once
per change and swapped in for the call; a traced method runs as generated Python with
one extra node per bent activation, rebuilt only when the bends change.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .activation_io import ActivationIO
from .bending.callback import BendingCallback
from .bending.parameter import BendingParameter
from .bending.target import Target
from .config import BendingConfig, bend_from_config, check_fingerprint, fingerprint
from .errors import BendingError, TraceError
from .inspection import Inspection
from .naming import closest_names, match_names, pattern_matches, split_method, unknown_name
from .tracing.hooks import HookedMethod, HookedProgram, record_with_hooks
from .tracing.program import ActivationBend, Program
from .tracing.record import MethodRecord, trace_method
from .tracing.tracer import SpecializationError, describe_failure
from .weights import BentWeights


class Bend:
    """One `bend` call: a callback on its resolved targets. A context manager that undoes it.

        >>> with bended.bend(tb.Scale(2), "conv.weight") as b:
        ...     b.targets                    # [Target('conv.weight', 'weight', ...)]
    """

    def __init__(self, owner: BendedModule, callback: BendingCallback, targets: list[Target]) -> None:
        self._owner = owner
        self.callback = callback
        self.targets = targets
        self.states = {t.name: callback.setup(t) for t in targets}
        self.parameters = list(callback.live_parameters())

    @property
    def weights(self) -> list[str]:
        return [t.name for t in self.targets if t.kind == "weight"]

    def activations(self, fn: str) -> list[str]:
        prefix = f"{fn}:"
        return [t.name[len(prefix):] for t in self.targets if t.kind == "activation" and t.name.startswith(prefix)]

    def remove(self) -> None:
        """Undo this bend (no-op if already removed)."""
        self._owner._remove(self)

    def __enter__(self) -> Bend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"Bend({self.callback!r} on {', '.join(t.name for t in self.targets)})"


class BendGroup:
    """The bends made from one `BendingConfig`; a context manager that undoes them all."""

    def __init__(self, bends: list[Bend]) -> None:
        self.bends = bends

    def remove(self) -> None:
        for bend in reversed(self.bends):
            bend.remove()

    def __enter__(self) -> BendGroup:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


class BendedMethod:
    """A method of the wrapped module, run with the current bends."""

    def __init__(self, owner: BendedModule, name: str) -> None:
        self._owner = owner
        self.__name__ = name
        self.__doc__ = getattr(getattr(owner.module, name), "__doc__", None)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        owner = self._owner
        owner._refresh()
        program = owner._programs.get(self.__name__)
        if program is None:  # untraced: the module's own method, with the bent weights
            module = owner._module
            call = module if self.__name__ == "forward" else getattr(module, self.__name__)
            return owner._weights.run(call, *args, **kwargs)
        runtime = {}
        if program.runtime_inputs:
            runtime = {k: kwargs.pop(k) for k in program.runtime_inputs if k in kwargs}
        try:
            return owner._weights.run(program.run, args, kwargs, runtime)
        except SpecializationError:
            record = owner._records[self.__name__]
            if not record.retrace:
                raise
        # traced with retrace=True: trace again on this call's inputs, then run
        owner._retraces[self.__name__] = owner._retraces.get(self.__name__, 0) + 1
        owner.trace(self.__name__, *args, leaves=record.leaves, retrace=True, **kwargs)
        owner._refresh()
        return owner._weights.run(owner._programs[self.__name__].run, args, kwargs, runtime)

    def __repr__(self) -> str:
        return f"<bended method {type(self._owner.module).__name__}.{self.__name__}>"


class BendedModule(ActivationIO, Inspection):
    """A bendable view of an `nn.Module`; see the module docstring for a tour."""

    def __init__(self, module: nn.Module, buffers: Sequence[str] = ()) -> None:
        if not isinstance(module, nn.Module):
            raise TypeError(f"BendedModule wraps a torch.nn.Module, got {type(module).__name__}")
        self._module = module
        all_buffers = [name for name, _ in module.named_buffers()]
        self._buffer_names = match_names(buffers, all_buffers, "buffer") if buffers else []
        self._records: dict[str, MethodRecord] = {}
        self._retraces: dict[str, int] = {}
        self._bends: list[Bend] = []
        self._weights = BentWeights(module)
        self._programs: dict[str, Program] = {}
        self._partial_programs: dict[tuple, Program] = {}  # get/from_activations, per method
        self._methods: dict[str, BendedMethod] = {}
        self._stale_plan = False  # the set of weight bends changed
        self._stale_weights: set[str] = set()  # weights whose callbacks' parameters changed
        self._stale_programs: set[str] = set()  # methods whose activation bends changed
        self._subscribed: dict[int, BendingParameter] = {}

    # --- the wrapped module ------------------------------------------------------------
    @property
    def module(self) -> nn.Module:
        """The wrapped module itself (never modified)."""
        return self._module

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_module", "_methods"):
            raise AttributeError(name)
        method = self._methods.get(name)
        if method is not None:
            return method
        attr = getattr(self._module, name)
        if inspect.ismethod(attr) and attr.__self__ is self._module and _is_model_method(type(self._module), name):
            method = self._methods[name] = BendedMethod(self, name)
            return method
        return attr

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(dir(self._module)))

    def __repr__(self) -> str:
        traced = ", ".join(self._records) or "none"
        return f"BendedModule({type(self._module).__name__}, traced: {traced}, bends: {len(self._bends)})"

    # --- weights -------------------------------------------------------------------------
    @property
    def weight_names(self) -> list[str]:
        """Names of the module's parameters (a tied parameter under its first name)."""
        return [name for name, _ in self._module.named_parameters()]

    def resolve_parameters(self, *patterns: str) -> list[str]:
        """Weight names matching any pattern (exact name, else full-match regex), in parameter order."""
        return match_names(patterns, self.weight_names, "weight")

    @property
    def buffer_names(self) -> list[str]:
        """The buffers opted in for bending (``BendedModule(model, buffers=[patterns])``)."""
        return list(self._buffer_names)

    def resolve_buffers(self, *patterns: str) -> list[str]:
        """Opted-in buffer names matching any pattern, in buffer order."""
        return match_names(patterns, self._buffer_names, "bendable buffer")

    def weight_shape(self, name: str) -> tuple[int, ...]:
        """The shape of a weight or opted-in buffer."""
        (name,) = match_names([name], self.weight_names + self._buffer_names, "weight")[:1]
        return tuple(self._weights.tensor(name).shape)

    # --- tracing and activations ---------------------------------------------------------
    def trace(self, fn: str = "forward", *args: Any, leaves: Sequence[str] = (), retrace: bool = False,
              **kwargs: Any) -> None:
        """Trace method `fn` on example inputs, given as the method takes them.

        The graph is specialised to these inputs: a later call that would take another
        path raises `SpecializationError`, or, with ``retrace=True``, traces the method
        again on that call's inputs. `leaves` are submodule paths kept whole (one
        activation each); a submodule that cannot be traced through is kept whole
        automatically, and a method that cannot be traced at all falls back to hooks on
        its submodules' outputs (see `trace_report`). Activation bends made before a
        re-trace are kept where their activations still exist.
        """
        if not isinstance(fn, str):
            raise TypeError("trace takes the method name first, e.g. bended.trace('forward', x)")
        if not callable(getattr(type(self._module), fn, None)):
            cls = type(self._module)
            methods = [n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n, None))]
            raise AttributeError(f"{type(self._module).__name__} has no method {fn!r}; closest: "
                                 f"{', '.join(closest_names(fn, methods))}")
        with _buffers_preserved(self._module):
            try:
                record: MethodRecord = trace_method(self._module, fn, args, kwargs, leaves, retrace)
            except Exception as error:
                reason = describe_failure(error)
                try:
                    record = record_with_hooks(self._module, fn, args, kwargs, reason, leaves)
                except Exception as run_error:  # the method fails when run: a real error
                    raise (error if isinstance(error, TraceError) else run_error) from None
                warnings.warn(f"torchbend: {fn} could not be traced ({reason}); falling back to hooks: its "
                              "activations are its submodules' outputs", stacklevel=2)
        self._records[fn] = record
        self._retarget(fn)
        self._stale_programs.add(fn)

    def _record(self, fn: str) -> MethodRecord:
        if fn not in self._records:
            traced = ", ".join(self._records) or "none yet"
            raise BendingError(f"method {fn!r} is not traced (traced: {traced}); call bended.trace({fn!r}, ...) first")
        return self._records[fn]

    @property
    def traced_methods(self) -> list[str]:
        return list(self._records)

    def activation_names(self, fn: str = "forward") -> list[str]:
        """Names of the traced activations of method `fn`, in graph order."""
        return self._record(fn).activation_names()

    def resolve_activations(self, *patterns: str, fn: str = "forward") -> list[str]:
        """Activation names of `fn` matching any pattern; ``"fn:pattern"`` names the method in the pattern."""
        bodies = []
        for pattern in patterns:
            method, body = split_method(pattern)
            if method is not None and method != fn:
                raise BendingError(f"pattern {pattern!r} names method {method!r}, but fn={fn!r}")
            bodies.append(body)
        return self._record(fn).resolve(bodies)

    def activation_shape(self, name: str, fn: str = "forward") -> tuple[int, ...] | None:
        """The shape an activation had while tracing (None for a non-tensor value)."""
        record = self._record(fn)
        if name not in record.activations:
            raise unknown_name(name, record.activation_names(), f"activation of {fn}")
        return record.activations[name].shape

    # --- bending ---------------------------------------------------------------------------
    def bend(self, callback: BendingCallback | BendingConfig, *targets: str, fn: str | None = None
             ) -> Bend | BendGroup:
        """Apply `callback` to every weight and activation matching `targets`.

        `fn` restricts activations to one traced method. Returns the `Bend`, a context
        manager that removes it on exit. Bends on one tensor compose in the order made.
        Given a `BendingConfig` instead, applies all its bends (or none, on error).
        """
        if isinstance(callback, BendingConfig):
            if targets or fn is not None:
                raise TypeError("bend(config) takes no targets: they are in the config")
            check_fingerprint(callback, self._module)
            return BendGroup(bend_from_config(self.bend, callback))
        if not isinstance(callback, BendingCallback):
            raise TypeError(f"bend takes a bending callback first (e.g. tb.Scale(2)), got {type(callback).__name__}")
        if not targets:
            raise BendingError("bend needs at least one weight or activation name")
        if fn is not None:
            self._record(fn)
        resolved = self._resolve_targets(targets, fn)
        for target in resolved:
            if not callback.can_bend(target.kind):
                raise BendingError(f"{type(callback).__name__} cannot bend {target.kind}s such as {target.name}")
        params = list(callback.live_parameters())
        for p in params:
            other = self.controllables.get(p.name)
            if other is not None and other is not p:
                raise BendingError(f"another bending parameter named {p.name!r} is in use; give this one another name")
        bend = Bend(self, callback, resolved)
        self._bends.append(bend)
        self._mark_stale(bend)
        for p in params:
            if id(p) not in self._subscribed:
                p.subscribe(self._on_parameter_change)
                self._subscribed[id(p)] = p
        return bend

    def _mark_stale(self, bend: Bend) -> None:
        for target in bend.targets:
            if target.kind == "weight":
                self._stale_plan = True
            else:
                self._stale_programs.add(target.name.split(":", 1)[0])

    def _resolve_targets(self, patterns: tuple[str, ...], fn: str | None) -> list[Target]:
        weights = self.weight_names + self._buffer_names
        methods = [fn] if fn is not None else list(self._records)
        found_weights: set[str] = set()
        found_acts: dict[str, set[str]] = {m: set() for m in self._records}
        for pattern in patterns:
            if not isinstance(pattern, str):
                raise TypeError(f"bend targets are names or patterns, got {type(pattern).__name__}")
            method, body = split_method(pattern)
            if method is not None:
                if fn is not None and method != fn:
                    raise BendingError(f"target {pattern!r} names method {method!r}, but fn={fn!r}")
                self._record(method)
                hits = pattern_matches(body, self._records[method].activation_names())
                if not hits:
                    raise unknown_name(body, self._records[method].activation_names(), f"activation of {method}")
                found_acts[method].update(hits)
                continue
            w_hits = pattern_matches(pattern, weights)
            exact_weight = w_hits == [pattern]
            hit = bool(w_hits)
            found_weights.update(w_hits)
            for m in methods:
                if exact_weight:
                    break
                acts = self._records[m].activations
                a_hits = [a for a in pattern_matches(pattern, list(acts))
                          if not (acts[a].op == "get_attr" and acts[a].target in w_hits)]
                found_acts[m].update(a_hits)
                hit = hit or bool(a_hits)
            if not hit:
                names = weights + [a for m in methods for a in self._records[m].activation_names()]
                raise unknown_name(pattern, names, "weight or activation")
        targets = []
        for name in weights:
            if name in found_weights:
                p = self._weights.tensor(name)
                targets.append(Target(name, "weight", tuple(p.shape), p.dtype, p.device))
        for m, names in found_acts.items():
            for info in self._records[m].activations.values():
                if info.name in names:
                    if not info.is_tensor:
                        raise BendingError(f"activation {m}:{info.name} is a {info.type}, not a tensor; "
                                           "bend one of the tensors taken from it instead")
                    targets.append(Target(f"{m}:{info.name}", "activation", info.shape, info.dtype, info.device))
        return targets

    def _retarget(self, fn: str) -> None:
        """After re-tracing `fn`, re-attach its activation bends to the new nodes."""
        acts = self._records[fn].activations
        for bend in list(self._bends):
            kept = []
            for t in bend.targets:
                if t.kind != "activation" or not t.name.startswith(f"{fn}:"):
                    kept.append(t)
                    continue
                info = acts.get(t.name.split(":", 1)[1])
                if info is None or not info.is_tensor:
                    warnings.warn(f"re-tracing {fn} dropped the bend of {t.name}: the activation no longer exists",
                                  stacklevel=3)
                    bend.states.pop(t.name, None)
                    continue
                new = Target(t.name, "activation", info.shape, info.dtype, info.device)
                if new != t:
                    bend.states[t.name] = bend.callback.setup(new)
                kept.append(new)
            bend.targets = kept
            if not kept:
                self._remove(bend)

    def _remove(self, bend: Bend) -> None:
        if bend in self._bends:
            self._bends.remove(bend)
            self._mark_stale(bend)
            self._prune_subscriptions()

    def reset(self) -> None:
        """Remove every bend: calls give the plain module's outputs again."""
        for bend in self._bends:
            self._mark_stale(bend)
        self._bends.clear()
        self._prune_subscriptions()

    def _prune_subscriptions(self) -> None:
        in_use = {id(p) for bend in self._bends for p in bend.parameters}
        for key in list(self._subscribed):
            if key not in in_use:
                self._subscribed.pop(key).unsubscribe(self._on_parameter_change)

    def bending_config(self) -> BendingConfig:
        """The bends in effect as a `BendingConfig` (save it with ``.save(path)``)."""
        model = {"class": type(self._module).__name__, "fingerprint": fingerprint(self._module)}
        return BendingConfig(*[(b.callback, [t.name for t in b.targets]) for b in self._bends], model=model)

    @property
    def bends(self) -> list[Bend]:
        """The bends in effect, in the order they were made."""
        return list(self._bends)

    # --- live parameters --------------------------------------------------------------------
    @property
    def controllables(self) -> dict[str, BendingParameter]:
        """The bending parameters in use, by name."""
        return {p.name: p for bend in self._bends for p in bend.parameters}

    def update(self, name: str, value: float | int | bool) -> None:
        """Set the bending parameter `name`; the next call uses the new value."""
        params = self.controllables
        if name not in params:
            raise unknown_name(name, list(params), "bending parameter")
        params[name].value = value

    def _on_parameter_change(self, param: BendingParameter) -> None:
        for bend in self._bends:
            if param in bend.parameters:
                self._stale_weights.update(bend.weights)

    # --- building what calls run -------------------------------------------------------------
    def _refresh(self) -> None:
        """Recompute what changed since the last call: bent weights and bent programs."""
        if self._weights.entries:
            self._stale_weights |= self._weights.changed()  # the original weights were modified or moved
        if not (self._stale_plan or self._stale_weights or self._stale_programs):
            return
        if self._stale_plan or self._stale_weights:
            plan: dict[str, list[tuple[BendingCallback, Any]]] = {}
            for bend in self._bends:
                for name in bend.weights:
                    plan.setdefault(name, []).append((bend.callback, bend.states[name]))
            self._weights.compute(plan, only=None if self._stale_plan else self._stale_weights)
            self._stale_plan, self._stale_weights = False, set()
        for fn in self._stale_programs:
            if fn in self._records:
                self._programs[fn] = self._make_program(fn)
            self._partial_programs = {k: v for k, v in self._partial_programs.items() if k[0] != fn}
        self._stale_programs = set()

    def _make_program(self, fn: str, **options: Any) -> Program | HookedProgram:
        """A runnable `fn` with its current activation bends (see `Program` for the options)."""
        record = self._records[fn]
        kind = HookedProgram if isinstance(record, HookedMethod) else Program
        return kind(record, self._module, self._activation_bends(fn), **options)

    def _activation_bends(self, fn: str) -> dict[str, ActivationBend]:
        """The bends of each activation of `fn`, in graph order."""
        steps: dict[str, list[tuple[BendingCallback, Any]]] = {}
        for bend in self._bends:
            for node in bend.activations(fn):
                steps.setdefault(node, []).append((bend.callback, bend.states[f"{fn}:{node}"]))
        return {name: ActivationBend(steps[name]) for name in self._records[fn].activations if name in steps}

    # --- export -------------------------------------------------------------------------------
    def script(self, methods: Sequence[str] | None = None) -> torch.jit.ScriptModule:
        """A TorchScript module with the traced `methods` (default: all), bent, sharing one set of bent weights.

        Each bending parameter gets ``get_<name>()`` / ``set_<name>(value)`` methods; a set
        (range-checked) changes the next call of every method.
        """
        from .export.script import script

        return script(self, methods)

    def export_nntilde(self, path: str, methods: dict[str, dict[str, Any]]) -> Any:
        """Write a model nn~ loads (Max/MSP, Pure Data); see `torchbend.export.script.export_nntilde`."""
        from .export.script import export_nntilde

        return export_nntilde(self, path, methods)

    def export(self, path: str, fn: str = "forward", *args: torch.Tensor) -> Any:
        """Write `fn` as a torch.export program (.pt2): inputs `args` (any batch size), then one 0-d tensor
        per bending parameter, by keyword; see `torchbend.export.torch_export`."""
        from .export.torch_export import export

        return export(self, path, fn, *args)

    # --- devices and dtypes ------------------------------------------------------------------
    def to(self, *args: Any, **kwargs: Any) -> BendedModule:
        """Move or cast the wrapped module in place, as `nn.Module.to` does; the bends follow. Returns self."""
        device, dtype, _, _ = torch._C._nn._parse_to(*args, **kwargs)
        self._module.to(*args, **kwargs)
        for record in self._records.values():
            constants = getattr(record, "constants", {})
            for key, value in constants.items():
                if isinstance(value, torch.Tensor):
                    cast = dtype if dtype is not None and value.is_floating_point() else None
                    constants[key] = value.to(device=device, dtype=cast)
        self._stale_programs.update(self._records)  # programs hold the constants
        return self

    def cuda(self, device: int | str | torch.device | None = None) -> BendedModule:
        return self.to(torch.device("cuda", device) if isinstance(device, int) else device or "cuda")

    def cpu(self) -> BendedModule:
        return self.to("cpu")

    def bended_state_dict(self) -> dict[str, torch.Tensor]:
        """The module's state dict with every bent weight replaced by its bent value."""
        self._refresh()
        state = self._module.state_dict()
        for name, entry in self._weights.entries.items():
            for alias in self._weights.aliases(name):
                state[alias] = entry.bent.detach()
        return state


def _is_model_method(cls: type, name: str) -> bool:
    """True for `forward` and the methods a model defines; torch.nn.Module's own (`eval`,
    `state_dict`, ...) act on the module itself and are not run bent."""
    return name == "forward" or getattr(cls, name, None) is not getattr(nn.Module, name, None)


class _buffers_preserved:
    """Restore the module's buffers after tracing (e.g. BatchNorm statistics, streaming caches).

    Values are copied back, and a buffer that tracing wrote with autograd recording is
    detached again, so the model is left as it was found.
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __enter__(self) -> None:
        self.saved = [(b, b.detach().clone(), b.grad_fn is None) for b in self.module.buffers()]

    def __exit__(self, *exc: Any) -> None:
        with torch.no_grad():
            for buffer, value, was_leaf in self.saved:
                if was_leaf and buffer.grad_fn is not None:
                    buffer.detach_()
                if buffer.shape == value.shape and not torch.equal(buffer, value):
                    buffer.copy_(value)
