"""TorchScript graphs specialised as Python code is by tracing: non-tensor arguments and fixed attributes folded.

    >>> scripted = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(3, 4)))
    >>> graph = scripted.forward.graph.copy()
    >>> specialise(graph, scripted, {})                     # forward(self, x): nothing to fold
    {}

`specialise` turns the non-tensor arguments of a traced call and the attributes no method
assigns into constants, then lets torch's constant propagation and loop unrolling fold the
branches and loop counts they decide (`ScriptMethod` guards the arguments at each call). Also
the graph walks the TorchScript modules share: `all_nodes`, `is_tensor`, `attribute_paths`.
"""

from collections.abc import Mapping
from typing import Any

import torch


def is_tensor(value: torch._C.Value) -> bool:
    return isinstance(value.type(), torch._C.TensorType)


def all_nodes(block: Any) -> Any:
    for node in block.nodes():
        yield node
        for inner in node.blocks():
            yield from all_nodes(inner)


def attribute_paths(graph: torch._C.Graph) -> dict[str, list[torch._C.Value]]:
    """Every ``prim::GetAttr`` read, by its dotted path from ``self`` (``decoder.net.0.weight``)."""
    paths: dict[torch._C.Value, str] = {next(graph.inputs()): ""}
    found: dict[str, list[torch._C.Value]] = {}
    for node in all_nodes(graph):
        if node.kind() == "prim::GetAttr" and node.input() in paths:
            base = paths[node.input()]
            path = f"{base}.{node.s('name')}" if base else node.s("name")
            paths[node.output()] = path
            found.setdefault(path, []).append(node.output())
    return found


CONSTANT_TYPES = (int, float, bool, str, type(None))


class _Given:
    """An optional argument traced with a value (a tensor where ``None`` was allowed): its ``is None`` tests fold."""

    def __repr__(self) -> str:
        return "not None"


GIVEN = _Given()


def written_attributes(module: torch.jit.ScriptModule) -> set[str]:
    """The names of the attributes some method of the module or of its submodules assigns (its state)."""
    names: set[str] = set()
    for _, sub in module.named_modules():
        for method in sub._c._method_names():
            names.update(
                n.s("name") for n in all_nodes(sub._c._get_method(method).graph) if n.kind() == "prim::SetAttr"
            )
    return names


def _attribute(module: Any, path: str) -> Any:
    for atom in path.split("."):
        module = getattr(module, atom)
    return module


def _constant(graph: torch._C.Graph, value: Any, before: torch._C.Node) -> torch._C.Value:
    constant = graph.insertConstant(value)  # type: ignore[attr-defined]  # not in torch._C's stubs
    constant.node().moveBefore(before)
    return constant


def specialise(graph: torch._C.Graph, module: torch.jit.ScriptModule, arguments: Mapping[int, Any]) -> dict[str, Any]:
    """Specialise an inlined graph in place, as the Python tracer specialises code: the non-tensor `arguments`
    (graph input index -> value; `GIVEN` for an optional one given a value: its ``is None`` tests fold) and
    the attributes no method assigns become constants, and the branches and loop counts that depend only on
    them are folded (the taken branch inlined, constant loops unrolled). Returns the attributes folded, by path.

        >>> specialise(graph, module, {2: 16000})       # forward(self, x, sr): sr == 16000 from now on
    """
    first = next(iter(graph.nodes()))
    inputs = list(graph.inputs())
    for index, value in arguments.items():
        if value is not GIVEN:
            inputs[index].replaceAllUsesWith(_constant(graph, value, first))
            continue
        for use in list(inputs[index].uses()):
            test = use.user
            if test.kind() in ("aten::__is__", "aten::__isnot__") and any(
                isinstance(v.type(), torch._C.NoneType) for v in test.inputs()
            ):
                test.output().replaceAllUsesWith(_constant(graph, test.kind() == "aten::__isnot__", test))
    written = written_attributes(module)
    folded = {}
    for path, reads in attribute_paths(graph).items():
        if path.rsplit(".", 1)[-1] in written or is_tensor(reads[0]):
            continue
        try:
            value = _attribute(module, path)
        except AttributeError:
            continue
        if type(value) not in CONSTANT_TYPES:
            continue
        folded[path] = value
        for read in reads:
            read.replaceAllUsesWith(_constant(graph, value, read.node()))
    while True:  # until the passes have nothing left to fold
        before = sum(1 for _ in all_nodes(graph))
        torch._C._jit_pass_constant_propagation_immutable_types(graph)  # type: ignore[attr-defined]  # no stub
        _forward_tuples(graph)
        torch._C._jit_pass_constant_loop_unrolling(graph)  # type: ignore[attr-defined]  # not in torch._C's stubs
        torch._C._jit_pass_dce(graph)
        if sum(1 for _ in all_nodes(graph)) == before:
            return folded


def _forward_tuples(graph: torch._C.Graph) -> None:
    """Read a tuple's items where it was built (``x, sr = self._check(x, sr)`` once inlined), so that
    constants reach their readers."""
    for node in list(all_nodes(graph)):
        built = node.inputsAt(0).node() if node.kind() in ("prim::TupleUnpack", "prim::TupleIndex") else None
        if built is None or built.kind() != "prim::TupleConstruct":
            continue
        items = list(built.inputs())
        if node.kind() == "prim::TupleUnpack":
            for out, item in zip(node.outputs(), items):
                out.replaceAllUsesWith(item)
        else:
            index = node.inputsAt(1).toIValue() if node.inputsAt(1).node().kind() == "prim::Constant" else None
            if isinstance(index, int):
                node.output().replaceAllUsesWith(items[index])
