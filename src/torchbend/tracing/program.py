"""A traced graph compiled to plain Python that runs against the live module.

    >>> program = Program(record, module, bends={"decoder_net_convt0": ActivationBend([...])})
    >>> out = program(z)

The generated function reads submodules, weights and buffers from the wrapped module at
run time (``self.m.decoder.net.convt0(x)``), so weights swapped in for a bend are seen,
and nothing is copied. Activation bends are extra nodes that every consumer of the bent
value reads instead of the value itself.
"""

from __future__ import annotations

import copy
import itertools
import linecache
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import torch
import torch.fx as fx

from ..bending.callback import BendingCallback

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


def _bent_graph(graph: fx.Graph, constants: dict[str, Any], bends: dict[str, ActivationBend],
                runtime_inputs: Sequence[str]) -> tuple[fx.Graph, dict[str, str]]:
    """A copy of `graph` targeting the frame's namespaces, with a node after each bent activation."""
    g = copy.deepcopy(graph)
    for node in g.nodes:
        if node.op == "get_attr":
            node.target = f"c.{node.target}" if node.target in constants else f"m.{node.target}"
        elif node.op == "call_module":
            node.target = f"m.{node.target}"
    placeholders = [n for n in g.nodes if n.op == "placeholder"]
    input_nodes: dict[str, fx.Node] = {}
    anchor = placeholders[-1] if placeholders else next(iter(g.nodes))
    for name in runtime_inputs:
        insert = g.inserting_after(anchor) if placeholders else g.inserting_before(anchor)
        with insert:
            input_nodes[name] = anchor = g.placeholder(name, default_value=None)
        placeholders.append(anchor)
    by_name = {n.name: n for n in g.nodes}
    for name, bend in bends.items():
        node = by_name[name]
        with g.inserting_after(node):
            bent = g.create_node("call_module", f"b.{name}", (node,), {k: input_nodes[k] for k in bend.inputs},
                                 name=f"{name}_bended")
        node.replace_all_uses_with(bent, delete_user_cb=lambda user, bent=bent: user is not bent)
    return g, {name: node.name for name, node in input_nodes.items()}


def compile_graph(graph: fx.Graph, label: str) -> Callable[..., Any]:
    """Python source for `graph` (fx codegen), executed into a function of ``(frame, *inputs)``."""
    code = graph.python_code(root_module="self")
    filename = f"<torchbend {label} #{next(_counter)}>"
    linecache.cache[filename] = (len(code.src), None, code.src.splitlines(True), filename)
    namespace = dict(code.globals)
    exec(compile(code.src, filename, "exec"), namespace)
    return namespace["forward"]


class Program:
    """A runnable traced method: ``program(*placeholder_values, **runtime_inputs)``."""

    def __init__(self, graph: fx.Graph, module: torch.nn.Module, constants: dict[str, Any],
                 bends: dict[str, ActivationBend] | None = None, label: str = "method") -> None:
        bends = bends or {}
        self.runtime_inputs = tuple(dict.fromkeys(k for bend in bends.values() for k in bend.inputs))
        self.graph, self._input_names = _bent_graph(graph, constants, bends, self.runtime_inputs)
        self.frame = SimpleNamespace(m=module, c=SimpleNamespace(**constants), b=SimpleNamespace(**bends))
        self.fn = compile_graph(self.graph, label)

    @property
    def code(self) -> str:
        return self.graph.python_code(root_module="self").src

    def __call__(self, *inputs: Any, **runtime: Any) -> Any:
        if runtime:
            runtime = {self._input_names[k]: v for k, v in runtime.items()}
            return self.fn(self.frame, *inputs, **runtime)
        return self.fn(self.frame, *inputs)
