"""`BendedModule`: wrap a model, trace its methods, bend weights and activations by name.

    >>> import torchbend as tb
    >>> bended = tb.BendedModule(vae)                   # wraps; `vae` is never modified
    >>> bended.trace("decode", z=torch.randn(16, 64))   # record the graph of a method
    >>> names = bended.resolve_parameters(r"decoder.net.convt.*weight")
    >>> with bended.bend(tb.Scale(2), names[0]):        # undone on exit
    ...     out = bended.decode(z=z)                     # any method runs bent
    >>> b = bended.bend(tb.Mask(tb.BendingParameter("keep", 0.2)), "decoder_net_convt1", fn="decode")
    >>> bended.update("keep", 0.5)                       # live: no re-trace

A bended call costs about what the plain call costs: bent weights are computed once
per change into copies of the few submodules that hold them; a traced method runs as
generated Python with one extra node per bent activation, rebuilt only when the bends
change. The state lives in an `Engine`; this class is its face. A TorchScript module
(``tb.BendedModule(torch.jit.load("rave.ts"))``, ``tb.load("rave.ts")``) is served the same
way by another method backend (`torchbend.torchscript.backend`).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .bending.callback import BendingCallback
from .bending.capture import Capture
from .bending.parameter import BendingParameter, normal_name
from .config import BendingConfig, bend_from_config, check_fingerprint, fingerprint
from .core import activation_io, calls, inspection
from .core.bends import Bend
from .core.engine import Engine
from .errors import BendingError
from .naming import closest_names, match_names, unknown_name
from .runtime.versions import DEFAULT, ORIGINAL, Interpolation
from .tables import Table
from .tracing.tracer import warn_at_user_code
from .wrapper import as_module, holds_modules

__all__ = ["Bend", "BendGroup", "BendedMethod", "BendedModule", "BendedWrapper", "VersionContext"]


class BendGroup:
    """The bends made from one `BendingConfig`; a context manager that undoes them all."""

    def __init__(self, bends: list[Bend]) -> None:
        self.bends = bends

    def remove(self) -> None:
        if self.bends:
            self.bends[0]._remove(self.bends)

    def __enter__(self) -> BendGroup:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


class BendedMethod:
    """A method of the wrapped module, run with the current bends."""

    def __init__(self, engine: Engine, name: str) -> None:
        self._engine = engine
        self.__name__ = name
        self.__doc__ = getattr(getattr(engine.module, name), "__doc__", None)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return calls.call(self._engine, self.__name__, args, kwargs)

    def __repr__(self) -> str:
        return f"<bended method {self._engine.backend.model_name}.{self.__name__}>"


class BendedModule:
    """A bendable view of an `nn.Module` or a TorchScript module; see the module docstring for a tour.

    Thread-safe: any number of threads may call bent methods while others call the plain
    model, change parameters (`update`), bend, reset or re-trace; each call runs on one
    consistent snapshot, and changes take effect from the next call.
    """

    def __new__(cls, module: Any = None, *args: Any, **kwargs: Any) -> BendedModule:
        if cls is BendedModule and module is not None and holds_modules(module):
            cls = BendedWrapper  # an object holding modules: a pipeline, a model bundle
        return super().__new__(cls)

    def __init__(self, module: nn.Module, buffers: Sequence[str] = ()) -> None:
        if not isinstance(module, nn.Module):
            raise TypeError(f"BendedModule wraps a torch.nn.Module, got {type(module).__name__}")
        all_buffers = [name for name, _ in module.named_buffers()]
        names = match_names(buffers, all_buffers, "buffer") if buffers else []
        self._engine = Engine(module, names)
        self._methods: dict[str, BendedMethod] = {}
        backend = self._engine.backend
        hidden = [n for n in backend.methods() if n in vars(BendedModule) and not hasattr(nn.Module, n)]
        if hidden:  # `to` & co. do the same as the module's own
            warn_at_user_code(
                f"torchbend: {backend.model_name} defines {', '.join(hidden)}, which BendedModule "
                f"defines too; bended.{hidden[0]} is torchbend's: call the model's own, bent, with "
                f"bended.method({hidden[0]!r})(...)"
            )

    # --- the wrapped module ------------------------------------------------------------
    @property
    def module(self) -> nn.Module:
        """The wrapped module itself (never modified)."""
        return self._engine.module

    @property
    def engine(self) -> Engine:
        """The state behind this module (records, bends, snapshots); see `torchbend.engine`."""
        return self._engine

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_engine", "_methods", "_object"):
            raise AttributeError(name)
        method = self._methods.get(name)
        if method is not None:
            self.__dict__[name] = method  # found without __getattr__ from now on
            return method
        module = self._engine.module
        attr = getattr(module, name)
        backend = self._engine.backend
        bound = backend.kind != "python" or (inspect.ismethod(attr) and attr.__self__ is module)
        if bound and backend.has_method(name):
            method = self._methods[name] = self.__dict__[name] = BendedMethod(self._engine, name)
            return method
        return attr

    def method(self, name: str) -> BendedMethod:
        """The model's own method `name`, run bent; reaches methods that torchbend's own names hide.

        >>> decode = bended.method("decode")        # the same as bended.decode
        """
        backend = self._engine.backend
        if not backend.has_method(name):
            raise AttributeError(
                f"{backend.model_name} has no method {name!r} of its own; closest: "
                f"{', '.join(closest_names(name, backend.methods()))}"
            )
        method = self._methods.get(name)
        if method is None:
            method = self._methods[name] = BendedMethod(self._engine, name)
        return method

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return calls.call(self._engine, "forward", args, kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return calls.call(self._engine, "forward", args, kwargs)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(dir(self._engine.module)))

    def __repr__(self) -> str:
        traced = ", ".join(self._engine.records) or "none"
        return f"BendedModule({self._engine.backend.model_name}, traced: {traced}, bends: {len(self._engine.bends)})"

    # --- weights -------------------------------------------------------------------------
    @property
    def weight_names(self) -> list[str]:
        """Names of the module's parameters (a tied parameter under its first name)."""
        return self._engine.weight_names

    def resolve_parameters(self, *patterns: str) -> list[str]:
        """Weight names matching any pattern (exact name, else full-match regex), in parameter order."""
        return match_names(patterns, self.weight_names, "weight")

    @property
    def buffer_names(self) -> list[str]:
        """The buffers opted in for bending (``BendedModule(model, buffers=[patterns])``)."""
        return list(self._engine.buffer_names)

    def resolve_buffers(self, *patterns: str) -> list[str]:
        """Opted-in buffer names matching any pattern, in buffer order."""
        return match_names(patterns, self._engine.buffer_names, "bendable buffer")

    def weight_shape(self, name: str) -> tuple[int, ...]:
        """The shape of a weight or opted-in buffer."""
        (name,) = match_names([name], self.weight_names + self._engine.buffer_names, "weight")[:1]
        return tuple(self._engine.weights.tensor(name).shape)

    # --- tracing and activations ---------------------------------------------------------
    def trace(
        self, fn: str = "forward", *args: Any, leaves: Sequence[str] = (), retrace: bool = False, **kwargs: Any
    ) -> None:
        """Trace method `fn` on example inputs, given as the method takes them.

        The graph is specialised to these inputs, as the module runs with the bends in
        effect: a later call that would take another path raises `SpecializationError`,
        or, with ``retrace=True``, traces the method again on that call's inputs. `leaves`
        are submodule paths kept whole (one activation each); a submodule that cannot be
        traced through is kept whole automatically, and a method that cannot be traced at
        all falls back to hooks on its submodules' outputs (see `trace_report`).
        Activation bends made before a re-trace are kept where their activations still exist.
        """
        if not isinstance(fn, str):
            raise TypeError("trace takes the method name first, e.g. bended.trace('forward', x)")
        backend = self._engine.backend
        if not backend.has_method(fn) and (
            backend.kind != "python" or not callable(getattr(type(self.module), fn, None))
        ):
            raise AttributeError(
                f"{backend.model_name} has no method {fn!r}; closest: {', '.join(closest_names(fn, backend.methods()))}"
            )
        self._engine.trace(fn, args, kwargs, leaves, retrace)

    @property
    def traced_methods(self) -> list[str]:
        return list(self._engine.records)

    def is_traced(self, fn: str = "forward") -> bool:
        """Whether method `fn` has been traced."""
        return fn in self._engine.records

    def activation_names(self, fn: str = "forward") -> list[str]:
        """Names of the traced activations of method `fn`, in graph order."""
        return self._engine.record(fn).activation_names()

    def resolve_activations(self, *patterns: str, fn: str = "forward") -> list[str]:
        """Activation names of `fn` matching any pattern; ``"fn:pattern"`` names the method in the pattern."""
        return self._engine.resolve_activations(patterns, fn)

    def activation_shape(self, name: str, fn: str = "forward") -> tuple[int, ...] | None:
        """The shape an activation had while tracing (None for a non-tensor value)."""
        record = self._engine.record(fn)
        if name not in record.activations:
            raise unknown_name(name, record.activation_names(), f"activation of {fn}")
        return record.activations[name].shape

    def get_activations(
        self, *names: Any, fn: str = "forward", after_bends: bool = False, _filter_bended: bool = True, **inputs: Any
    ) -> dict[str, torch.Tensor]:
        """Run `fn` until the named activations are known; return them by name.

        Names (or patterns) come first, then the method's own arguments, positional or by
        keyword. Values are taken before the bends at their own node (bends elsewhere
        apply); ``after_bends=True`` takes them after. ``_filter_bended=True`` is accepted
        and means the default.

            >>> acts = bended.get_activations("decoder_net_convt1", z=z, fn="decode")
        """
        return activation_io.get_activations(self._engine, names, fn, after_bends, inputs)

    def from_activations(self, *names: Any, fn: str = "forward", **values: Any) -> Any:
        """Run the rest of `fn` from given activation values, skipping what only fed them.

        Give each activation's value by keyword (its name), plus any original input still
        needed after the cut and run-time inputs of callbacks. The activation's own bends
        apply to the given value; its batch size may differ from the trace.

            >>> acts = bended.get_activations("decoder_net_convt1", z=z, fn="decode")
            >>> out = bended.from_activations("decoder_net_convt1", fn="decode", **acts)
        """
        return activation_io.from_activations(self._engine, names, fn, values)

    def capture(self, *callbacks: Capture) -> Any:
        """Record activations with the `Capture` callbacks in use (or those given) while inside.

        >>> with bended.capture():
        ...     bended.decode(z1); bended.decode(z2)
        """
        return activation_io.capture(self._engine, callbacks)

    # --- bending ---------------------------------------------------------------------------
    def bend(
        self,
        callback: BendingCallback | BendingConfig,
        *targets: str,
        fn: str | None = None,
        channels: Any = None,
        channel_dim: int | None = None,
    ) -> Bend | BendGroup:
        """Apply `callback` to every weight and activation matching `targets`.

        `fn` restricts activations to one traced method. `channels` (indices, a boolean mask,
        a slice, or a feature group from `tb.cluster_features`) restricts the callback to
        those features along `channel_dim` (default: 1 for activations, 0 for weights); the
        others pass through untouched (`tb.Select`). Returns the `Bend`, a context manager
        that removes it on exit. Bends on one tensor compose in the order made.
        The bend is applied once here, so one that cannot work raises `BendingError` now
        and leaves nothing behind. Given a `BendingConfig` instead, applies all its bends
        (or none, on error); with `fn`, its activation targets must be activations of `fn` (a target of
        another method is an error, not a bend that never applies to `fn`).
        """
        if isinstance(callback, BendingConfig):
            if targets or channels is not None or channel_dim is not None:
                raise TypeError("bend(config) takes no targets: they are in the config")
            check_fingerprint(callback, self._engine.module)
            if fn is None:
                return BendGroup(bend_from_config(self.bend, callback))
            return BendGroup(bend_from_config(lambda cb, *names: self.bend(cb, *names, fn=fn), callback))
        if not isinstance(callback, BendingCallback):
            raise TypeError(f"bend takes a bending callback first (e.g. tb.Scale(2)), got {type(callback).__name__}")
        if channels is not None:
            from .bending.selection import Select

            callback = Select(callback, channels, channel_dim)
        elif channel_dim is not None:
            raise TypeError("channel_dim goes with channels=: bend(callback, target, channels=[...], channel_dim=1)")
        if not targets:
            raise BendingError("bend needs at least one weight or activation name")
        if fn is not None:
            self._engine.record(fn)
        return self._engine.add_bend(callback, self._engine.resolve_targets(targets, fn))

    def reset(self) -> None:
        """Remove every bend: calls give the plain module's outputs again."""
        self._engine.remove_bends(list(self._engine.bends))

    def bending_config(self) -> BendingConfig:
        """The bends in effect as a `BendingConfig` (save it with ``.save(path)``)."""
        model = {"class": self._engine.backend.model_name, "fingerprint": fingerprint(self._engine.module)}
        return BendingConfig(*[(b.callback, [t.qualified for t in b.targets]) for b in self._engine.bends], model=model)

    @property
    def bends(self) -> list[Bend]:
        """The bends in effect, in the order they were made."""
        return list(self._engine.bends)

    @property
    def bending_callbacks(self) -> list[BendingCallback]:
        """The callbacks of the bends in effect, each once, in the order they were first bent."""
        return list(dict.fromkeys(bend.callback for bend in self._engine.bends))

    def bendable_keys(self, *patterns: str, fn: str = "forward") -> list[str]:
        """The weights, then the activations of `fn` (when traced), that `patterns` name: what `bend` reaches.

        >>> bended.bendable_keys(r"decoder.net.convt1.*", fn="decode")
        ['decoder.net.convt1.weight', 'decoder.net.convt1.bias', 'decoder_net_convt1']
        """
        record = self._engine.records.get(fn)
        names = self.weight_names + self._engine.buffer_names + (record.activation_names() if record else [])
        return match_names(patterns, names, "weight or activation")

    def bended_keys(self, fn: str = "forward") -> list[str]:
        """The bent weights, then the bent activations of `fn`, by name."""
        return list(self._engine.weight_plan()) + list(self._engine.activation_steps(fn))

    # --- live parameters --------------------------------------------------------------------
    @property
    def controllables(self) -> dict[str, BendingParameter]:
        """The bending parameters in use, by name."""
        return self._engine.parameters

    def update(self, name: str, value: float | int | bool) -> None:
        """Set the bending parameter `name`; the next call uses the new value (calls running keep theirs)."""
        params, name = self.controllables, normal_name(name)
        if name not in params:
            raise unknown_name(name, list(params), "bending parameter")
        params[name].value = value

    # --- weight versions ------------------------------------------------------------------------
    def create_version(
        self, name: str, weights: dict[str, torch.Tensor] | nn.Module | Any, strict: bool = True
    ) -> list[str]:
        """Store a set of weights (a state dict, a module of the same architecture, e.g. a fine-tuned
        checkpoint, or another instance of a wrapped object) as version `name`; only the tensors that differ
        are kept. Returns the names it lacks.

            >>> bended.create_version("tuned", tuned_state_dict)
            >>> with bended.set_version("tuned"):
            ...     out = bended.decode(z)
        """
        with self._engine.lock:
            return self._engine.versions.create(name, weights, strict)

    @property
    def versions(self) -> list[str]:
        """The stored versions, ``"original"`` (the module's own weights) first."""
        return [ORIGINAL, *self._engine.versions.stored]

    @property
    def version(self) -> str | dict[str, Any] | None:
        """The version in use: None for the module's own weights, a version's name, or the mix (version ->
        weight) of an `interpolate`. Set it to a name (None, ``"original"`` or ``"_default"``: the module's own
        weights) to use that version from now on; ``del bended.version`` goes back to the module's own.

            >>> bended.version = "tuned"; bended.version
            'tuned'
        """
        mix = self._engine.versions.mix
        if mix is None:
            return None
        (name, weight), *others = mix.items()
        if not others and isinstance(weight, (int, float)) and weight == 1:
            return None if name == ORIGINAL else name
        return dict(mix)

    @version.setter
    def version(self, name: str | None) -> None:
        self.set_version(name)

    @version.deleter
    def version(self) -> None:
        self.set_version(None)

    def set_version(self, name: str | None = None) -> VersionContext:
        """Use version `name` (None, ``"original"`` or ``"_default"``: the module's own weights) from now on; as
        a context manager, until exit. Bends apply on top of it."""
        if name is not None and not isinstance(name, str):
            raise TypeError(
                f"set_version takes a version's name or None, got {type(name).__name__}; for a mix "
                "use interpolate(original=..., name=...)"
            )
        name = None if name is None else self._engine.versions.check_name(name)
        return VersionContext(self._engine, None if name is None or name == ORIGINAL else {name: 1.0})

    def interpolate(
        self, interpolation: Interpolation | float | BendingParameter | None = None, **weights: float | BendingParameter
    ) -> VersionContext:
        """Use the weighted mix of versions, e.g. ``interpolate(original=0.3, tuned=0.7)``, normalised by the
        sum of the weights (or `interpolation(tensors, weights)`); weights may be live parameters.
        A number first is the module's own weight, as in the reference: ``interpolate(0.3, tuned=0.7)``.
        As a context manager, until exit."""
        if isinstance(interpolation, (int, float, BendingParameter)):  # a bool is refused with the weights
            if ORIGINAL in weights or DEFAULT in weights:
                raise TypeError("interpolate got the module's own weight twice: first and by name")
            return VersionContext(self._engine, {ORIGINAL: interpolation, **weights})
        return VersionContext(self._engine, dict(weights), interpolation)

    def state_dict(self, version: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """The wrapped module's own state dict (as `nn.Module.state_dict`); given a version's name, that
        version's: the module's state dict with the version's tensors in place (``"_default"`` or
        ``"original"``: the module's own).

            >>> bended.create_version("tuned", tuned_state_dict)
            >>> bended.state_dict("tuned")["decoder.net.convt1.weight"]    # the tuned tensor
        """
        if version is None:
            return self._engine.module.state_dict(**kwargs)
        if not isinstance(version, str):
            raise TypeError(
                f"state_dict takes a version's name, got {type(version).__name__}; versions: {', '.join(self.versions)}"
            )
        if kwargs:
            raise TypeError(f"state_dict({version!r}) takes no other argument, got {', '.join(kwargs)}")
        return self._engine.versions.state_dict(version)

    def write(self, version: str | None = None) -> str:
        """Bake the current weight bends into version `version` (default: the version in use), clear them, and
        use that version from now on. The module's own weights are never written. Returns the version's name."""
        return self._engine.write(version)

    # --- inspection ---------------------------------------------------------------------------
    def weights_table(self, pattern: str | None = None) -> Table:
        """Name, shape, dtype, min, max, mean and std of the weights and opted-in buffers (matching `pattern`)."""
        return inspection.weights_table(self._engine, pattern)

    def print_weights(self, pattern: str | None = None, out: Any = None) -> None:
        """Print (or display in a notebook) the weights table (matching `pattern`); given `out` (a file object or
        a path), write it there instead.

            >>> bended.print_weights(r"decoder.*weight")
        """
        inspection.output(self.weights_table(pattern), out)

    def activations_table(self, fn: str = "forward", pattern: str | None = None, tensors_only: bool = True) -> Any:
        """The activations of `fn` (matching `pattern`) grouped by submodule, with shapes; non-tensor values
        are hidden unless ``tensors_only=False``. Prints as a listing; a collapsible tree in a notebook."""
        return inspection.activations_table(self._engine, fn, pattern, tensors_only)

    def print_activations(self, fn: str = "forward", pattern: str | None = None, out: Any = None) -> None:
        """Print (or display in a notebook) the activations table of `fn` (matching `pattern`); given `out` (a
        file object or a path), write it there instead.

            >>> bended.print_activations("decode", out="logs/activations.txt")
        """
        inspection.output(self.activations_table(fn, pattern), out)

    def trace_report(self, fn: str = "forward") -> Table:
        """How `fn` was recorded: its mode, every specialisation with its source line, leaves and fallbacks.

        A call whose inputs would take another path than a listed decision raises
        `SpecializationError` (or re-traces, if traced with ``retrace=True``).
        """
        return inspection.trace_report(self._engine, fn)

    # --- export -------------------------------------------------------------------------------
    def script(self, methods: Sequence[str] | None = None) -> torch.jit.ScriptModule:
        """A TorchScript module with the traced `methods` (default: all), bent, sharing one set of bent weights.

        Each bending parameter gets ``get_<name>()`` / ``set_<name>(value)`` methods; a set
        (range-checked) changes the next call of every method. For a TorchScript module: a bent
        copy of the whole module (every method, attribute and nn~ metadata kept).
        """
        return self._engine.backend.script(self._engine, methods)

    def export_nntilde(self, path: str, methods: dict[str, dict[str, Any]] | None = None) -> Any:
        """Write a model nn~ loads (Max/MSP, Pure Data); see `torchbend.export.script.export_nntilde`. An nn~
        TorchScript file keeps its own methods and metadata (`methods` may then be left out)."""
        return self._engine.backend.export_nntilde(self._engine, path, methods)

    def export(self, path: str, fn: str = "forward", *args: torch.Tensor) -> Any:
        """Write `fn` as a torch.export program (.pt2): inputs `args` (any batch size), then one 0-d tensor
        per bending parameter, by keyword; see `torchbend.export.torch_export`. Python modules only."""
        return self._engine.backend.export(self._engine, path, fn, args)

    # --- devices and dtypes ------------------------------------------------------------------
    def to(self, *args: Any, **kwargs: Any) -> BendedModule:
        """Move or cast the wrapped module in place, as `nn.Module.to` does; the bends follow. Returns self."""
        device, dtype, _, _ = torch._C._nn._parse_to(*args, **kwargs)
        self._engine.module.to(*args, **kwargs)
        self._engine.moved(device, dtype)
        return self

    def cuda(self, device: int | str | torch.device | None = None) -> BendedModule:
        return self.to(torch.device("cuda", device) if isinstance(device, int) else device or "cuda")

    def cpu(self) -> BendedModule:
        return self.to("cpu")

    def bended_state_dict(self) -> dict[str, torch.Tensor]:
        """The module's state dict with every bent weight replaced by its bent value."""
        snapshot = self._engine.snapshot()
        state = self._engine.module.state_dict()
        current = {**snapshot.bases, **{name: entry.bent for name, entry in snapshot.entries.items()}}
        for name, tensor in current.items():
            for alias in self._engine.weights.aliases(name):
                state[alias] = tensor.detach()
        return state


class BendedWrapper(BendedModule):
    """A `BendedModule` over an object that is not a module but holds modules (see `torchbend.wrapper`).

        >>> bended = tb.BendedWrapper(pipeline)      # or tb.BendedModule(pipeline)
        >>> bended.bend(tb.Scale(0.5), "unet.conv_in.weight")
        >>> images = bended(batch_size=1, num_inference_steps=3)   # the object's __call__, bent

    Weights are named by attribute path; ``module`` is the object itself, ``wrapped_module``
    the stand-in module the bends run on.
    """

    def __init__(self, obj: Any, buffers: Sequence[str] = ()) -> None:
        self._object = obj
        super().__init__(obj if isinstance(obj, nn.Module) else as_module(obj), buffers)

    @property
    def module(self) -> Any:
        """The wrapped object itself (never modified)."""
        return self._object

    @property
    def wrapped_module(self) -> nn.Module:
        """The stand-in module holding the object's modules."""
        return self._engine.module


class VersionContext:
    """A version mix in effect from its creation; as a context manager, the previous one returns on exit."""

    def __init__(self, engine: Engine, mix: dict[str, Any] | None, interpolation: Interpolation | None = None) -> None:
        self._engine = engine
        self._previous = (engine.versions.mix, engine.versions.interpolation)
        engine.set_mix(mix, interpolation)

    def __enter__(self) -> VersionContext:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._engine.set_mix(*self._previous)
