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
methods are the object's own methods (its ``__call__`` becomes ``forward`` when it has
none), run with the stand-in as ``self``: module attributes resolve to the stand-in's
submodules, and every other attribute is read from the object. Its class derives from
`nn.Module` and from the object's class, so ``super()`` and ``isinstance`` work in those
methods. The object's own methods win over `nn.Module`'s (its ``forward`` above all),
except the module-tree calls torchbend walks the modules with (`MODULE_TREE`:
``named_parameters``, ``state_dict``, ``to``, ...), which stay `nn.Module`'s unless the
class lists them in ``__bended_methods__``; identity, truth and copying stay a module's.
The object itself is never changed: an attribute a method sets lands on the stand-in.

    >>> class Codec:                                    # a plain class with its own forward
    ...     __bended_methods__ = ["forward"]            # optional: the methods to list and trace
    ...     def __init__(self):
    ...         self.net = torch.nn.Linear(4, 4)
    ...     def forward(self, x):
    ...         return self.net(x) * 2
    >>> bended = tb.BendedModule(Codec())
    >>> bended.trace("forward", x=torch.ones(1, 4)); bended(x=torch.ones(1, 4)).shape
    torch.Size([1, 4])
"""

from __future__ import annotations

from typing import Any

from torch import nn

_STAND_INS: dict[type, type] = {}

# nn.Module's calls that walk, move or hook the module tree: torchbend relies on them, so they stay nn.Module's
# (every ``register_*`` too)
MODULE_TREE = frozenset(
    {
        "add_module",
        "apply",
        "bfloat16",
        "buffers",
        "children",
        "cpu",
        "cuda",
        "double",
        "eval",
        "extra_repr",
        "float",
        "get_buffer",
        "get_extra_state",
        "get_parameter",
        "get_submodule",
        "half",
        "ipu",
        "load_state_dict",
        "modules",
        "mtia",
        "named_buffers",
        "named_children",
        "named_modules",
        "named_parameters",
        "parameters",
        "requires_grad_",
        "set_extra_state",
        "set_submodule",
        "share_memory",
        "state_dict",
        "to",
        "to_empty",
        "train",
        "type",
        "xpu",
        "zero_grad",
    }
)


def listed_methods(cls: type) -> list[str] | None:
    """The class's ``__bended_methods__`` (the methods it asks to be listed and traced), or None.

    Raises TypeError when it is not a list of names of the class's methods.
    """
    listed = getattr(cls, "__bended_methods__", None)
    if listed is None:
        return None
    if not isinstance(listed, (list, tuple)) or not all(isinstance(n, str) for n in listed):
        raise TypeError(f"{cls.__name__}.__bended_methods__ lists method names, e.g. ['forward'], got {listed!r}")
    missing = [n for n in listed if not callable(getattr(cls, n, None))]
    if missing:
        raise TypeError(
            f"{cls.__name__}.__bended_methods__ lists {missing[0]!r}, which is not a method of "
            f"{cls.__name__}; list only its methods, or remove the name"
        )
    return list(dict.fromkeys(listed))


def _own_methods(cls: type) -> dict[str, Any]:
    """The attributes `cls` (or a base other than object) defines under a name nn.Module also defines, that the
    stand-in takes from the class: the public ones but the module-tree calls, and those listed in
    ``__bended_methods__``."""
    listed = set(listed_methods(cls) or ())
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass is object:
            continue
        for name, value in vars(klass).items():
            tree = name.startswith(("_", "register_")) or name in MODULE_TREE
            if hasattr(nn.Module, name) and (name in listed or not tree):
                found[name] = value
    return found


def holds_modules(obj: Any) -> bool:
    """True when `obj` is not a module but has module attributes (directly, or in dicts and lists)."""
    return not isinstance(obj, nn.Module) and bool(_module_attributes(obj))


def _module_attributes(obj: Any) -> dict[str, nn.Module]:
    found: dict[str, nn.Module] = {}
    for name, value in vars(obj).items() if hasattr(obj, "__dict__") else ():
        if isinstance(value, nn.Module):
            found[name] = value
        elif (
            isinstance(value, dict)
            and value
            and all(isinstance(v, nn.Module) for v in value.values())
            and all(isinstance(k, str) and "." not in k for k in value)
        ):
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


# identity, truth, attribute access and copying stay a module's, whatever the object's class defines
# (None: `copy` falls back to __reduce_ex__)
_KEPT_DUNDERS = {
    "__eq__": object.__eq__,
    "__hash__": object.__hash__,
    "__bool__": lambda self: True,
    "__getattribute__": object.__getattribute__,
    "__copy__": None,
    "__deepcopy__": None,
    "__reduce__": object.__reduce__,
    "__reduce_ex__": object.__reduce_ex__,
    "__getstate__": getattr(nn.Module, "__getstate__", object.__getstate__),
    "__setstate__": nn.Module.__setstate__,
}


def _stand_in_class(cls: type) -> type:
    """A subclass of nn.Module and of `cls`, so the object's methods run on it as on the object
    (``super()``, ``isinstance``); where the classes cannot be combined, one holding copies of them."""
    stand_in = _STAND_INS.get(cls)
    if stand_in is None:
        stand_in = _derived_class(cls)
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
        namespace.update(_own_methods(cls))
        if listed_methods(cls) is not None:
            namespace["__bended_methods__"] = listed_methods(cls)
        namespace.update(__getattr__=_read_object, __module__=cls.__module__, __qualname__=cls.__qualname__)
        stand_in = _STAND_INS[cls] = type(cls.__name__, (nn.Module,), namespace)
    return stand_in


def _derived_class(cls: type) -> type | None:
    namespace: dict[str, Any] = {
        "__getattr__": _read_object,
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__init__": cls.__init__,  # type: ignore[misc]  # the class's own __init__
    }
    namespace.update(_KEPT_DUNDERS)
    namespace.update(_own_methods(cls))  # the object's methods before nn.Module's (which comes first in the MRO)
    if getattr(cls, "forward", None) is None:
        call = next((vars(k)["__call__"] for k in cls.__mro__ if "__call__" in vars(k)), None)
        if call is not None:
            namespace["forward"] = call
    try:
        derived = type(cls.__name__, (nn.Module, cls), namespace)
    except Exception:  # layout or metaclass conflict (__slots__, C bases), a refusing __init_subclass__
        return None
    _STAND_INS[cls] = derived
    return derived


def as_module(obj: Any) -> nn.Module:
    """An `nn.Module` standing in for `obj` (see the module docstring); raises TypeError if it holds no module."""
    modules = _module_attributes(obj)
    if not modules:
        raise TypeError(
            f"BendedModule wraps a torch.nn.Module or an object holding modules; {type(obj).__name__} "
            "has no module attribute"
        )
    cls = _stand_in_class(type(obj))
    stand_in: nn.Module = object.__new__(cls)  # never the object's own __new__
    nn.Module.__init__(stand_in)
    stand_in.__dict__["_object"] = obj
    for name, module in modules.items():
        stand_in._modules[name] = module
    return stand_in
