"""Graph surgery on traced graphs: bend nodes, early outputs, cuts, and dead-code removal.

    >>> from torchbend.runtime.program import ActivationBend
    >>> record = bended.engine.record("decode")
    >>> bend = ActivationBend([(tb.Scale(2), None)])
    >>> g, _, bent = bent_copy(record.graph, record.constants, {"decoder_net_convt0": bend}, ())
    >>> bent                                                          # a node after the bent one
    {'decoder_net_convt0': 'decoder_net_convt0_bended'}
    >>> fed = cut_at(g, ["decoder_net_convt1"])                       # fed from outside from there on
    >>> stop_after(g, {"out": "decoder_net_convt2"})                  # return {"out": ...} early

Every function works on a copy made by `bent_copy`, never on a record's own graph.
"""

from __future__ import annotations

import copy
import inspect
import operator
from collections.abc import Mapping, Sequence
from typing import Any

import torch.fx as fx

from .tracer import INPLACE_OPERATORS, check_decision

_INPLACE_OPERATORS = {operator.setitem, *INPLACE_OPERATORS}


def bent_copy(
    graph: fx.Graph, constants: Mapping[str, Any], bends: Mapping[str, Any], runtime_inputs: Sequence[str]
) -> tuple[fx.Graph, dict[str, fx.Node], dict[str, str]]:
    """A copy of `graph` whose targets point into the program frame, with a node after each bent activation.

    Module paths become ``m.<path>``, constants ``c.<name>``, bends ``b.<node>``. Each
    name in `runtime_inputs` becomes a placeholder (default None) passed by keyword to
    the bends that take it. Returns the graph, the runtime-input placeholders, and the
    name of each bent activation's bend node.
    """
    g = copy.deepcopy(graph)
    for node in g.nodes:
        if node.op == "get_attr":
            node.target = f"c.{node.target}" if node.target in constants else f"m.{node.target}"
        elif node.op == "call_module":
            node.target = f"m.{node.target}"
    inputs: dict[str, fx.Node] = {}
    for name in runtime_inputs:
        inputs[name] = add_placeholder(g, name, default=None)
    by_name = {n.name: n for n in g.nodes}
    bent_names = {}
    for name, bend in bends.items():
        node = by_name[name]
        # a bent input goes after every placeholder, the run-time inputs its bend may read included
        after = [n for n in g.nodes if n.op == "placeholder"][-1] if node.op == "placeholder" else node
        with g.inserting_after(after):
            bent = g.create_node(
                "call_module", f"b.{name}", (node,), {k: inputs[k] for k in bend.inputs}, name=f"{name}_bended"
            )
        node.replace_all_uses_with(bent, delete_user_cb=lambda user, bent=bent: user is not bent)
        bent_names[name] = bent.name
    return g, inputs, bent_names


def add_placeholder(g: fx.Graph, name: str, default: Any = inspect.Parameter.empty) -> fx.Node:
    """A new placeholder after the existing ones (a required one before those with defaults)."""
    placeholders = [n for n in g.nodes if n.op == "placeholder"]
    if default is inspect.Parameter.empty:
        placeholders = [n for n in placeholders if not n.args]  # a placeholder's args hold its default
    where = g.inserting_after(placeholders[-1]) if placeholders else g.inserting_before(next(iter(g.nodes)))
    with where:
        return g.placeholder(name, default_value=default)


def stop_after(g: fx.Graph, outputs: Mapping[str, str]) -> None:
    """Return ``{key: value of node}`` for each ``key: node name`` and drop every node after the last one."""
    by_name = {n.name: n for n in g.nodes}
    wanted = [by_name[name] for name in outputs.values()]
    order = {n: i for i, n in enumerate(g.nodes)}
    last = max(order[n] for n in wanted)
    for node in reversed(list(g.nodes)):
        if order[node] > last:
            g.erase_node(node)
    g.output({key: by_name[name] for key, name in outputs.items()})
    prune(g)


def cut_at(g: fx.Graph, names: Sequence[str]) -> dict[str, fx.Node]:
    """Replace each named node by a placeholder (its bends still apply) and drop what only fed them."""
    by_name = {n.name: n for n in g.nodes}
    fed: dict[str, fx.Node] = {}
    for name in names:
        node = by_name[name]
        placeholder = add_placeholder(g, name)
        node.replace_all_uses_with(placeholder)
        fed[name] = placeholder
    prune(g)
    return fed


def _is_effect(node: fx.Node) -> bool:
    """A node run for what it does rather than what it returns: an in-place op or a guard."""
    if node.op == "call_method":
        return isinstance(node.target, str) and node.target.endswith("_") and not node.target.endswith("__")
    if node.op == "call_function":
        return node.target in _INPLACE_OPERATORS or node.target is check_decision
    return False


def prune(g: fx.Graph) -> None:
    """Remove nodes nothing needs; keep an in-place op or a guard while what it acts on is kept.

    Original placeholders that are no longer needed are removed too, so a cut program
    asks only for the inputs it still uses.
    """
    nodes = list(g.nodes)
    needed: set[fx.Node] = set()

    def need(node: fx.Node) -> None:
        stack = [node]
        while stack:
            n = stack.pop()
            if n not in needed:
                needed.add(n)
                stack.extend(n.all_input_nodes)

    for node in nodes:
        if node.op == "output":
            need(node)
    changed = True
    while changed:
        changed = False
        for node in nodes:
            if node not in needed and _is_effect(node) and node.args and node.args[0] in needed:
                need(node)
                changed = True
    for node in reversed(nodes):
        if node not in needed and node.op != "output":
            g.erase_node(node)
