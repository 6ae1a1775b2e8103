"""Names and patterns resolved to what a bend targets: weights, opted-in buffers, traced activations.

    >>> engine = bended.engine
    >>> resolver = TargetResolver(engine.module, engine.backend, buffer_names=[], records=engine.records)
    >>> [t.qualified for t in resolver.targets(["decoder.net.convt0.weight", "decode:decoder_net_convt1"])]
    ['decoder.net.convt0.weight', 'decode:decoder_net_convt1']

The resolver reads the records it is given (the engine's, updated by tracing) and the
module's names; it changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..bending.target import Target
from ..errors import BendingError, UnknownNameError
from ..naming import pattern_matches, scoped_matches, split_method, unknown_name
from ..runtime.effective import normalised_by
from ..tracing.record import MethodRecord
from ..tracing.tracer import warn_at_user_code
from .backend import MethodBackend


class TargetResolver:
    """Resolves bend targets of one model against its names and its traced methods' records."""

    def __init__(
        self, module: Any, backend: MethodBackend, buffer_names: Sequence[str], records: Mapping[str, MethodRecord]
    ) -> None:
        self.module = module
        self.backend = backend
        self.buffer_names = list(buffer_names)
        self.records = records

    @property
    def weight_names(self) -> list[str]:
        return [name for name, _ in self.module.named_parameters()]

    def record(self, fn: str) -> MethodRecord:
        record = self.records.get(fn)
        if record is None:
            traced = ", ".join(self.records) or "none yet"
            raise BendingError(f"method {fn!r} is not traced (traced: {traced}); call bended.trace({fn!r}, ...) first")
        return record

    def split_method(self, pattern: str) -> tuple[str | None, str]:
        """``"decode:conv"`` -> ``("decode", "conv")`` when `decode` is a method of the model; else the pattern is
        a name as a whole (a TorchScript value ``"encoder:input.1"``)."""
        method, body = split_method(pattern)
        if method is not None and method not in self.records and not self.backend.has_method(method):
            return None, pattern
        return method, body

    def activations(self, patterns: Sequence[str], fn: str) -> list[str]:
        """The activation names of traced method `fn` matching `patterns`."""
        bodies = []
        for pattern in patterns:
            method, body = self.split_method(pattern)
            if method is not None and method != fn:
                raise BendingError(f"pattern {pattern!r} names method {method!r}, but fn={fn!r}")
            bodies.append(body)
        return self.record(fn).resolve(bodies)

    def targets(self, patterns: Sequence[str], fn: str | None = None) -> list[Target]:
        """The weights and activations matching `patterns`, in parameter then graph order.

        Weights include the opted-in buffers and the effective weights of normalised layers
        (`torchbend.runtime.effective`), matched by exact name only.
        """
        weights_of = self.backend.weights
        weight_names = self.weight_names
        effective = [n for n in weights_of.effective if n not in weight_names]
        weights = weight_names + self.buffer_names
        methods = [fn] if fn is not None else list(self.records)
        found_weights: set[str] = set()
        found_acts: dict[str, set[str]] = {m: set() for m in self.records}
        for pattern in patterns:
            if not isinstance(pattern, str):
                raise TypeError(f"bend targets are names or patterns, got {type(pattern).__name__}")
            method, body = self.split_method(pattern)
            if method is not None:
                if fn is not None and method != fn:
                    raise BendingError(f"target {pattern!r} names method {method!r}, but fn={fn!r}")
                found_acts[method].update(self.record(method).resolve([body]))
                continue
            w_hits = [pattern] if pattern in effective else pattern_matches(pattern, weights)
            exact_weight = w_hits == [pattern]
            a_hits: list[str] = []
            for m in methods:
                if exact_weight:
                    break
                acts = self.records[m].activations
                matched = scoped_matches(pattern, acts) if "@" in pattern else pattern_matches(pattern, list(acts))
                hits = [a for a in matched if not (acts[a].op == "get_attr" and acts[a].target in w_hits)]
                found_acts[m].update(hits)
                a_hits += [f"{m}:{a}" for a in hits]
            if not w_hits and not a_hits:
                self._no_target(pattern, weights, methods)
            if w_hits and a_hits:
                warn_at_user_code(
                    f"torchbend: {pattern!r} matches weights ({', '.join(w_hits[:3])}"
                    f"{', ...' if len(w_hits) > 3 else ''}) and activations ({', '.join(a_hits[:3])}"
                    f"{', ...' if len(a_hits) > 3 else ''}); both are bent. Use a pattern ending in "
                    "'weight'/'bias' for weights only, or 'method:pattern' for activations only"
                )
            found_weights.update(w_hits)
        self._warn_normalised(found_weights)
        targets = []
        for name in weights + effective:
            if name in found_weights:
                p = weights_of.tensor(name)
                targets.append(Target(name, "weight", tuple(p.shape), p.dtype, p.device))
        for m, names in found_acts.items():
            for info in self.records[m].activations.values():
                if info.name in names:
                    if not info.is_tensor:
                        raise BendingError(
                            f"activation {m}:{info.name} is a {info.type}, not a tensor; "
                            "bend one of the tensors taken from it instead"
                        )
                    assert info.shape is not None and info.dtype is not None and info.device is not None  # a tensor
                    targets.append(Target(info.name, "activation", info.shape, info.dtype, info.device, method=m))
        return targets

    def _warn_normalised(self, found_weights: set[str]) -> None:
        normalised = {n: e for n, e in normalised_by(self.module).items() if n in found_weights}
        if normalised:
            undone = "; ".join(
                f"{n} is normalised into {e}, which undoes most bends of it" for n, e in normalised.items()
            )
            example = next(iter(normalised.values()))
            warn_at_user_code(f"torchbend: {undone}; bend the effective weight by its name instead (e.g. {example!r})")

    def _no_target(self, pattern: str, weights: list[str], methods: list[str]) -> None:
        for m in methods:
            if pattern in getattr(self.records[m], "nested", ()):  # a TorchScript value inside control flow
                self.records[m].resolve([pattern])
        buffers = [n for n, _ in self.module.named_buffers() if n not in self.buffer_names]
        if pattern_matches(pattern, buffers):
            raise UnknownNameError(
                f"{pattern!r} names a buffer, and buffers are bent only when opted in: "
                f"tb.BendedModule(model, buffers=[{pattern!r}])"
            )
        names = weights + [a for m in methods for a in self.records[m].activation_names()]
        raise unknown_name(pattern, names, "weight or activation")
