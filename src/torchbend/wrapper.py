"""Bending objects that are not modules but hold modules: pipelines, model wrappers, bundles.

    >>> class Pair:                                     # any object holding modules
    ...     def __init__(self):
    ...         self.encoder, self.decoder = torch.nn.Linear(4, 2), torch.nn.Linear(2, 4)
    ...     def roundtrip(self, x):
    ...         return self.decoder(self.encoder(x))
    >>> bended = tb.BendedWrapper(Pair())
    >>> bended.weight_names
    ['encoder.weight', 'encoder.bias', 'decoder.weight', 'decoder.bias']
    >>> b = bended.bend(tb.Scale(0.0), "decoder.weight")
    >>> bended.roundtrip(torch.ones(1, 4)).shape
    torch.Size([1, 4])

`as_module(obj)` builds an `nn.Module` stand-in whose submodules are the object's module
attributes (the same module objects, also inside dicts and lists of modules) and whose
methods are the object's own methods (its ``__call__`` becomes ``forward``), run with the
stand-in as ``self``: module attributes resolve to the stand-in's submodules, and every
other attribute is read from the object. The object itself is never changed.
"""

from __future__ import annotations

from typing import Any

from torch import nn

_STAND_INS: dict[type, type] = {}


def holds_modules(obj: Any) -> bool:
    """True when `obj` is not a module but has module attributes (directly, or in dicts and lists)."""
    return not isinstance(obj, nn.Module) and bool(_module_attributes(obj))


def _module_attributes(obj: Any) -> dict[str, nn.Module]:
    found: dict[str, nn.Module] = {}
    for name, value in vars(obj).items() if hasattr(obj, "__dict__") else ():
        if isinstance(value, nn.Module):
            found[name] = value
        elif isinstance(value, dict) and value and all(isinstance(v, nn.Module) for v in value.values()) \
                and all(isinstance(k, str) and "." not in k for k in value):
            found[name] = nn.ModuleDict(value)
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, nn.Module) for v in value):
            found[name] = nn.ModuleList(value)
    return found


def _read_object(self: nn.Module, name: str) -> Any:
    own = self.__dict__
    for store in ("_parameters", "_buffers", "_modules"):
        table = own.get(store)
        if table is not None and name in table:
            return table[name]
    if "_object" in own:
        return getattr(own["_object"], name)
    raise AttributeError(name)


def _stand_in_class(cls: type) -> type:
    stand_in = _STAND_INS.get(cls)
    if stand_in is None:
        namespace: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            if klass is object:
                continue
            for name, value in vars(klass).items():
                if name not in ("__call__", "__init__") and (name.startswith("__") or hasattr(nn.Module, name)):
                    continue  # __init__ is kept for introspection only: the stand-in is never built by it
                namespace[name] = value
        call = namespace.pop("__call__", None)
        if call is not None and "forward" not in namespace:
            namespace["forward"] = call
        namespace.update(__getattr__=_read_object, __module__=cls.__module__, __qualname__=cls.__qualname__)
        stand_in = _STAND_INS[cls] = type(cls.__name__, (nn.Module,), namespace)
    return stand_in


def as_module(obj: Any) -> nn.Module:
    """An `nn.Module` standing in for `obj` (see the module docstring); raises TypeError if it holds no module."""
    modules = _module_attributes(obj)
    if not modules:
        raise TypeError(f"BendedModule wraps a torch.nn.Module or an object holding modules; {type(obj).__name__} "
                        "has no module attribute")
    cls = _stand_in_class(type(obj))
    stand_in = cls.__new__(cls)
    nn.Module.__init__(stand_in)
    stand_in.__dict__["_object"] = obj
    for name, module in modules.items():
        stand_in._modules[name] = module
    return stand_in
