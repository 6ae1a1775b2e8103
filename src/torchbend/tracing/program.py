"""A traced graph compiled to plain Python that runs against the live module.

    >>> program = Program(record, module, bends={"decoder_net_convt0": ActivationBend([...])})
    >>> out = program.run((z,), {}, {})                             # the whole method, bent
    >>> early = Program(record, module, outputs=["decoder_net_convt0"])
    >>> early.call_named({"z": z})                                  # {"decoder_net_convt0": ...}
    >>> rest = Program(record, module, cut=["decoder_net_convt0"])
    >>> rest.call_named({"decoder_net_convt0": h})                  # runs from there on

The generated function reads submodules, weights and buffers from the wrapped module at
run time (``self.m.decoder.net.convt0(x)``), so weights swapped in for a bend are seen and
nothing is copied. Activation bends are extra nodes that every consumer of the bent value
reads instead of the value itself.
"""

from __future__ import annotations

import itertools
import linecache
from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import torch
import torch.fx as fx

from ..bending.callback import BendingCallback
from .record import TracedMethod
from .surgery import bent_copy, cut_at, stop_after

_counter = itertools.count()


class ActivationBend:
    """The callbacks bending one activation, applied in order at every call."""

    def __init__(self, steps: Sequence[tuple[BendingCallback, Any]]) -> None:
        self.steps = [(cb, state, cb.runtime_inputs()) for cb, state in steps]
        self.inputs = tuple(dict.fromkeys(name for _, _, names in self.steps for name in names))

    def __call__(self, x: torch.Tensor, **inputs: Any) -> torch.Tensor:
        for cb, state, names in self.steps:
            if names:
                x = cb.forward(x, state, **{name: inputs[name] for name in names if name in inputs})
            else:
                x = cb.forward(x, state)
        return x


def compile_graph(graph: fx.Graph, label: str) -> Callable[..., Any]:
    """Python source for `graph` (fx codegen), executed into a function of ``(frame, *inputs)``."""
    code = graph.python_code(root_module="self")
    filename = f"<torchbend {label} #{next(_counter)}>"
    linecache.cache[filename] = (len(code.src), None, code.src.splitlines(True), filename)
    namespace = dict(code.globals)
    exec(compile(code.src, filename, "exec"), namespace)
    return namespace["forward"]


def _bind_submodules(graph: fx.Graph, module: torch.nn.Module, frame: SimpleNamespace) -> None:
    """Point module calls and attribute reads at the submodules themselves, held by the frame.

    ``self.m.decoder.net.convt0(x)`` becomes ``self.mod3(x)``: one lookup instead of a
    `Module.__getattr__` per path atom. Weights and buffers are still read from their
    module at each call (``self.mod3.weight``), so weights swapped in for a bend are seen.
    """
    names: dict[int, str] = {}

    def bind(path: str) -> str:
        sub = module.get_submodule(path)
        if id(sub) not in names:
            names[id(sub)] = f"mod{len(names)}"
            setattr(frame, names[id(sub)], sub)
        return names[id(sub)]

    for node in graph.nodes:
        if node.op not in ("call_module", "get_attr") or not node.target.startswith("m."):
            continue
        path = node.target[2:]
        if node.op == "call_module":
            node.target = bind(path)
        else:
            owner, _, attr = path.rpartition(".")
            node.target = f"{bind(owner)}.{attr}"


class Program:
    """A runnable (part of a) traced method.

    `bends` maps activation names to their bends; `outputs` (activation names) makes the
    program stop once those values are known and return them as a dict, taken before
    their own bends unless `after_bends`; `cut` names activations whose values are given
    by the caller, skipping the work that only fed them (their own bends still apply).
    """

    def __init__(self, record: TracedMethod, module: torch.nn.Module,
                 bends: Mapping[str, ActivationBend] | None = None,
                 outputs: Sequence[str] | None = None, after_bends: bool = False, cut: Sequence[str] = ()) -> None:
        bends = dict(bends or {})
        runtime = tuple(dict.fromkeys(k for bend in bends.values() for k in bend.inputs))
        self.graph, _, bent = bent_copy(record.graph, record.constants, bends, runtime)
        if cut:
            cut_at(self.graph, cut)
        if outputs is not None:
            stop_after(self.graph, {name: bent.get(name, name) if after_bends else name for name in outputs})
        placeholders = [n for n in self.graph.nodes if n.op == "placeholder"]
        self.input_names = [n.target for n in placeholders]
        self.runtime_inputs = tuple(name for name in runtime if name in self.input_names)
        self._accepted = set(self.input_names)  # codegen names each argument after its placeholder's target
        self.frame = SimpleNamespace(c=SimpleNamespace(**record.constants), b=SimpleNamespace(**bends))
        _bind_submodules(self.graph, module, self.frame)
        self.fn = compile_graph(self.graph, record.name)
        self.record = record

    @property
    def code(self) -> str:
        return self.graph.python_code(root_module="self").src

    def run(self, args: tuple, kwargs: dict, runtime: Mapping[str, Any]) -> Any:
        """Run as the method is called: its arguments, and run-time inputs of callbacks by name."""
        inputs = self.record.plan.flatten(args, kwargs, self.record.name)
        if runtime:
            return self.fn(self.frame, *inputs, **{k: v for k, v in runtime.items() if k in self._accepted})
        return self.fn(self.frame, *inputs)

    def call_named(self, values: Mapping[str, Any]) -> Any:
        """Run with every input given by name (missing run-time inputs default to None)."""
        return self.fn(self.frame, **{k: v for k, v in values.items() if k in self._accepted})
