"""Copy-on-write views of a module: what a bended call runs, so the wrapped module is never written.

    >>> conv = vae.decoder.net.convt0
    >>> view = ModuleView(vae, {(conv, "_parameters", "weight"): 2 * conv.weight})
    >>> view.get(conv) is conv
    False
    >>> torch.equal(view.get(conv).weight, 2 * conv.weight) and torch.equal(conv.weight, vae.decoder.net.convt0.weight)
    True
    >>> out = view.root.decode(z)        # the whole method, with the bent weight

Only the submodules holding a replaced tensor, the submodules given a call wrapper, and
their ancestors are copied, shallowly: a copy has its own parameter dict (and buffer dict
when one of its buffers is replaced) and its own children dict, and shares everything
else with its original: the unbent parameters, the buffers, the hook dicts (hooks added to
the original later still run), the other attributes' values. `matches()` says whether
every copy still has its original's `training` flag (set by `train()`/`eval()`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

Slot = tuple[nn.Module, str, str]  # (owner module, "_parameters" or "_buffers", key)
Wrapper = Callable[..., Any]  # wrapper(copy, call, *args, **kwargs) -> output, where call(*args, **kwargs) runs it


class ModuleView:
    """`root` and its submodules, with some tensors replaced and some calls wrapped, without writing `root`."""

    def __init__(self, root: nn.Module, tensors: Mapping[Slot, torch.Tensor] | None = None,
                 wrappers: Mapping[nn.Module, Wrapper] | None = None) -> None:
        tensors = dict(tensors or {})
        wrappers = dict(wrappers or {})
        self.original = root
        self.tensors = tensors
        changed: dict[int, nn.Module] = {}
        for owner, _, _ in tensors:
            changed[id(owner)] = owner
        for module in wrappers:
            changed[id(module)] = module
        self.copies: dict[int, nn.Module] = {}
        self.pairs: list[tuple[nn.Module, nn.Module]] = []
        if changed:
            needed = _with_ancestors(root, changed)
            for key, module in needed.items():
                self.copies[key] = _shallow_copy(module)
            by_owner: dict[int, list[tuple[str, str, torch.Tensor]]] = {}
            for (owner, store, key), tensor in tensors.items():
                by_owner.setdefault(id(owner), []).append((store, key, tensor))
            for key, module in needed.items():
                copy = self.copies[key]
                copy.__dict__["_modules"] = {name: self.copies.get(id(child), child) if child is not None else None
                                             for name, child in module._modules.items()}
                for store, name, tensor in by_owner.get(key, ()):
                    if copy.__dict__[store] is module.__dict__[store]:
                        copy.__dict__[store] = dict(module.__dict__[store])
                    copy.__dict__[store][name] = tensor
                if "_flat_weights_names" in module.__dict__:  # recurrent modules keep a list of their weights
                    copy.__dict__["_flat_weights"] = [copy._parameters.get(n) for n in module._flat_weights_names]
                if module in wrappers:
                    copy.__dict__["_call_impl"] = _wrapped_call(copy, wrappers[module])
                self.pairs.append((module, copy))
        self.root = self.copies.get(id(root), root)

    def get(self, module: nn.Module) -> nn.Module:
        """The module's copy in this view, or the module itself when it needed none."""
        return self.copies.get(id(module), module)

    def matches(self) -> bool:
        """True while every copy has its original's training flag."""
        for original, copy in self.pairs:
            if original.training is not copy.training:
                return False
        return True


def _with_ancestors(root: nn.Module, modules: dict[int, nn.Module]) -> dict[int, nn.Module]:
    """`modules` and every module on a path from `root` to one of them."""
    parents: dict[int, list[nn.Module]] = {}
    for parent in root.modules():
        for child in parent._modules.values():
            if child is not None:
                parents.setdefault(id(child), []).append(parent)
    needed = dict(modules)
    stack = list(modules.values())
    while stack:
        for parent in parents.get(id(stack.pop()), ()):
            if id(parent) not in needed:
                needed[id(parent)] = parent
                stack.append(parent)
    return needed


def _shallow_copy(module: nn.Module) -> nn.Module:
    copy = object.__new__(type(module))
    copy.__dict__.update(module.__dict__)
    copy.__dict__.pop("_compiled_call_impl", None)
    return copy


def _wrapped_call(copy: nn.Module, wrapper: Wrapper) -> Callable[..., Any]:
    call = type(copy)._call_impl.__get__(copy)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        return wrapper(copy, call, *args, **kwargs)

    return wrapped
