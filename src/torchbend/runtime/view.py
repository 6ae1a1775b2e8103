"""Copy-on-write views of a module: what a bended call runs, so the wrapped module is never written.

    >>> conv = vae.decoder.net.convt0
    >>> view = ModuleView(vae, {(conv, "_parameters", "weight"): 2 * conv.weight})
    >>> view.get(conv) is conv
    False
    >>> torch.equal(view.get(conv).weight, 2 * conv.weight) and torch.equal(conv.weight, vae.decoder.net.convt0.weight)
    True
    >>> out = view.root.decode(z)        # the whole method, with the bent weight

Only the submodules holding a replaced tensor, the submodules given a call wrapper, and
their ancestors are copied. A copy is an instance of a subclass of its original's class
that holds only its own parameter dict (and buffer dict, when one of its buffers is
replaced) and children dict; every other attribute is read from the original when it is
read, so `train()`/`eval()`, hooks, `.to()` and attributes set on the original later are
all seen by calls on the view. An attribute a module assigns to itself during a call on
the view stays on the copy (the original is not written).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

Slot = tuple[nn.Module, str, str]  # (owner module, "_parameters" or "_buffers", key)
Wrapper = Callable[..., Any]  # wrapper(copy, call, *args, **kwargs) -> output, where call(*args, **kwargs) runs it


class ModuleView:
    """`root` and its submodules, with some tensors replaced and some calls wrapped, without writing `root`."""

    def __init__(
        self,
        root: nn.Module,
        tensors: Mapping[Slot, torch.Tensor] | None = None,
        wrappers: Mapping[nn.Module, Wrapper] | None = None,
        parents: Mapping[int, list[nn.Module]] | None = None,
        attribute_hook: Callable[[str, Any], Any] | None = None,
        copy_all: bool = False,
    ) -> None:
        tensors = dict(tensors or {})
        wrappers = dict(wrappers or {})
        self.original = root
        self.tensors = tensors
        changed: dict[int, nn.Module] = {}
        for owner, _, _ in tensors:
            changed[id(owner)] = owner
        for module in wrappers:
            changed[id(module)] = module
        if copy_all:  # every copy with its own parameter and buffer dicts
            changed = {id(module): module for module in root.modules()}
        self.copies: dict[int, nn.Module] = {}
        if changed:
            needed = _with_ancestors(parents if parents is not None else parent_map(root), changed)
            for key, module in needed.items():
                self.copies[key] = _shallow_copy(module, attribute_hook)
            by_owner: dict[int, list[tuple[str, str, torch.Tensor]]] = {}
            for (owner, store, slot), tensor in tensors.items():
                by_owner.setdefault(id(owner), []).append((store, slot, tensor))
            for key, module in needed.items():
                copy = self.copies[key]
                copy.__dict__["_modules"] = {
                    name: self.copies.get(id(child), child) if child is not None else None
                    for name, child in module._modules.items()
                }
                if copy_all:
                    for store in ("_parameters", "_buffers", *_HOOKS):
                        if store in module.__dict__:
                            copy.__dict__[store] = type(module.__dict__[store])(module.__dict__[store])
                for store, name, tensor in by_owner.get(key, ()):
                    if store == "effective":
                        _hold_effective(copy, module, name, tensor)
                        continue
                    if copy.__dict__[store] is module.__dict__[store]:
                        copy.__dict__[store] = dict(module.__dict__[store])
                    copy.__dict__[store][name] = tensor
                if "_hf_hook" in module.__dict__ and key in by_owner:  # accelerate reloads weights at each call
                    copy.__dict__["forward"] = _accelerated_forward(copy, type(module), by_owner[key])
                if "_flat_weights_names" in module.__dict__:  # recurrent modules keep a list of their weights
                    names: list[str] = module.__dict__["_flat_weights_names"]
                    copy.__dict__["_flat_weights"] = [copy._parameters.get(n) for n in names]
                if module in wrappers:
                    copy.__dict__["_call_impl"] = _wrapped_call(copy, wrappers[module])
        self.root = self.copies.get(id(root), root)

    def get(self, module: nn.Module) -> nn.Module:
        """The module's copy in this view, or the module itself when it needed none."""
        return self.copies.get(id(module), module)


def isolated_view(
    root: nn.Module,
    wrappers: Mapping[nn.Module, Wrapper] | None = None,
    attribute_hook: Callable[[str, Any], Any] | None = None,
) -> ModuleView:
    """A view copying every submodule, for one recording run that must leave `root` exactly as it was.

        >>> view = isolated_view(model)
        >>> view.root(x)                     # BatchNorm statistics and caches are written on the view only

    Each copy holds its own parameter, buffer and children dicts, and a clone of each buffer, so
    whatever the run writes (a running statistic updated in place, a cache assigned or registered)
    stays on the view. `wrappers` wrap module calls as in `ModuleView`; `attribute_hook(name, value)`
    sees (and may replace) every attribute a copy reads from its original (its parameters, buffers,
    children and other attributes), e.g. to record parameter reads.
    """
    tensors = {
        (module, "_buffers", name): buffer.detach().clone()
        for module in root.modules()
        for name, buffer in module._buffers.items()
        if buffer is not None
    }
    return ModuleView(root, tensors, wrappers, attribute_hook=attribute_hook, copy_all=True)


def parent_map(root: nn.Module) -> dict[int, list[nn.Module]]:
    """Each submodule's parents (by the child's id); give it to `ModuleView` to build views faster."""
    parents: dict[int, list[nn.Module]] = {}
    for parent in root.modules():
        for child in parent._modules.values():
            if child is not None:
                parents.setdefault(id(child), []).append(parent)
    return parents


def _with_ancestors(parents: Mapping[int, list[nn.Module]], modules: dict[int, nn.Module]) -> dict[int, nn.Module]:
    """`modules` and every module on a path from the root to one of them."""
    needed = dict(modules)
    stack = list(modules.values())
    while stack:
        for parent in parents.get(id(stack.pop()), ()):
            if id(parent) not in needed:
                needed[id(parent)] = parent
                stack.append(parent)
    return needed


_VIEW_CLASSES: dict[tuple[type, bool], type] = {}
_CLASS_NAMES: dict[type, frozenset[str]] = {}
_OWN = ("_parameters", "_buffers", "_modules")
# the hook tables every module call reads: a copy holds the original's own tables (the same objects, so a hook
# added to the original later applies), read directly rather than through `_read_through` at every call
_HOOKS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks_with_kwargs",
)


def _read_through(self: nn.Module, name: str) -> Any:
    """Attribute lookup of a copy: its own parameters, buffers and children, else the original's attribute."""
    own = self.__dict__
    for store in _OWN:
        table = own[store]
        if name in table:
            return table[name]
    original = own.get("_original")
    if original is None:  # a new instance of a copy's class (e.g. a ModuleList slice): an ordinary module
        return nn.Module.__getattr__(self, name)
    return getattr(original, name)


def _accelerated_forward(copy: nn.Module, cls: type[nn.Module], replaced: list) -> Callable[..., Any]:
    """The forward of a copy of a module that accelerate offloads: its hook loads the stored weights into the
    copy's own dicts, then the replaced tensors take their place for the call."""

    def forward(*args: Any, **kwargs: Any) -> Any:
        hook: Any = copy._hf_hook  # accelerate's hook (nn.Module types attributes Tensor | Module)
        args, kwargs = hook.pre_forward(copy, *args, **kwargs)
        for store, name, tensor in replaced:
            if store in ("_parameters", "_buffers"):
                copy.__dict__[store][name] = tensor
        with torch.no_grad() if hook.no_grad else contextlib.nullcontext():
            output = cls.forward(copy, *args, **kwargs)
        return hook.post_forward(copy, output)

    return forward


def _hold_effective(copy: nn.Module, module: nn.Module, attr: str, tensor: torch.Tensor) -> None:
    """Make the copy use `tensor` as its effective weight `attr`, instead of computing it from its parameters."""
    from .effective import Fixed, WeightNorm, parametrize

    if parametrize.is_parametrized(module, attr):
        parametrizations = module._modules["parametrizations"]
        assert parametrizations is not None  # the module is parametrized
        holder = _shallow_copy(parametrizations)
        holder.__dict__["_modules"] = {**parametrizations._modules, attr: Fixed(tensor)}
        copy.__dict__["_modules"]["parametrizations"] = holder
    else:  # hook-based weight norm: drop its pre-hook on the copy and hold the weight itself
        copy.__dict__["_forward_pre_hooks"] = type(module._forward_pre_hooks)(
            (k, h) for k, h in module._forward_pre_hooks.items() if not (isinstance(h, WeightNorm) and h.name == attr)
        )
        copy.__dict__[attr] = tensor


def _read_through_hooked(self: nn.Module, name: str) -> Any:
    """Attribute lookup of a copy in a recording view: read through, then shown to the view's hook."""
    hook = self.__dict__.get("_attribute_hook")
    value = _read_through(self, name)
    return value if hook is None else hook(name, value)


def _original_extra_repr(self: nn.Module) -> str:
    return self.__dict__["_original"].extra_repr()


def _view_class(cls: type, hooked: bool = False) -> type:
    view_cls = _VIEW_CLASSES.get((cls, hooked))
    if view_cls is None:
        view_cls = type(
            cls.__name__,
            (cls,),
            {
                "__getattr__": _read_through_hooked if hooked else _read_through,
                "__module__": cls.__module__,
                "__qualname__": cls.__qualname__,
                "extra_repr": _original_extra_repr,
            },
        )
        _VIEW_CLASSES[(cls, hooked)] = view_cls
    return view_cls


def _shallow_copy(module: nn.Module, attribute_hook: Callable[[str, Any], Any] | None = None) -> nn.Module:
    copy: nn.Module = object.__new__(_view_class(type(module), attribute_hook is not None))
    own = copy.__dict__
    own["_original"] = module
    if attribute_hook is not None:
        own["_attribute_hook"] = attribute_hook
    for store in _OWN:
        own[store] = module.__dict__[store]
    cls = type(module)
    names = _CLASS_NAMES.get(cls)
    if names is None:
        names = _CLASS_NAMES[cls] = frozenset(name for c in cls.__mro__ for name in vars(c))
    for name, value in module.__dict__.items():  # instance values that a class attribute would otherwise hide
        if name in names and name not in own:
            own[name] = value
    for name in _HOOKS:
        if name in module.__dict__:
            own[name] = module.__dict__[name]
    return copy


def _wrapped_call(copy: nn.Module, wrapper: Wrapper) -> Callable[..., Any]:
    call = type(copy)._call_impl.__get__(copy)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        return wrapper(copy, call, *args, **kwargs)

    return wrapped
