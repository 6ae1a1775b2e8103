"""Load a model from the command line's spelling of it: an entry point or a file.

    >>> vae = load_model("torchbend.zoo.mnist_vae:load_mnist_vae")   # module:factory, called with no argument
    >>> program = load_model("bent.pt2")                             # torch.export program, as a module

`LOADERS` maps a file suffix to its loader; add one there to read another format.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .errors import BendingError
from .naming import unsafe_fx_name

DEFAULT_MODEL = "torchbend.zoo.mnist_vae:load_mnist_vae"


class ModelSpecError(BendingError):
    """A model spec that names no loadable model; the message says what was expected."""


def _load_pt2(path: Path) -> torch.nn.Module:
    program = torch.export.load(str(path))  # reads the graph; nothing in it has run yet
    check_program_names(program, path)
    return program.module()


def check_program_names(program: torch.export.ExportedProgram, path: Path | str) -> None:
    """Refuse a torch.export program whose module, attribute or value names torch.fx would write into Python
    code as code (its module runs that code at its first call, or when its code is printed): a crafted
    submodule name such as ``'x") or print("hi") or ("'``. Checked before anything is called or printed."""
    from .runtime.program import check_graph_names

    signature = program.graph_signature
    paths = [
        *(s.target for s in [*signature.input_specs, *signature.output_specs] if isinstance(s.target, str)),
        *program.state_dict,
        *program.constants,
        *(e.fqn for e in program.module_call_graph if e.fqn),
    ]
    for name, _ in [
        *program.graph_module.named_modules(),
        *program.graph_module.named_parameters(),
        *program.graph_module.named_buffers(),
    ]:
        paths.append(name)
    bad = next((p for p in paths if p and unsafe_fx_name(p) is not None), None)
    if bad is not None:
        raise ModelSpecError(
            f"{path} holds the module or attribute name {bad!r}, which torch.fx would run as code "
            "when the program is called; refused. A .pt2 file is code: load only files from people "
            "you trust"
        )
    for module in program.graph_module.modules():
        if isinstance(module, torch.fx.GraphModule):
            check_graph_names(
                module.graph,
                f"{path} (refused: a .pt2 file is code, load only files from people you trust)",
                ModelSpecError,
            )


def _load_torchscript(path: Path) -> torch.nn.Module:
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise ModelSpecError(
            f"{path} is not a TorchScript file ({first}); a state dict or a pickled module is "
            "loaded by your own code, then wrapped: tb.BendedModule(model)"
        ) from None


LOADERS: dict[str, Callable[[Path], torch.nn.Module]] = {
    ".pt2": _load_pt2,
    ".ts": _load_torchscript,
    ".pt": _load_torchscript,
    ".jit": _load_torchscript,
    ".torchscript": _load_torchscript,
}


def load(path: str | Path) -> Any:
    """A model file, loaded on CPU and wrapped for bending as a `BendedModule`: TorchScript (``.ts``, ``.pt``,
    ``.jit``), or a ``.pt2`` program's module.

        >>> bent = tb.load("rave.ts")
        >>> bent.trace("decode", torch.randn(1, 8, 16))

    A model file is code, unlike a bending config: a TorchScript file runs its own code when it is called or
    traced (it can read and write files), and so does a ``.pt2`` program. Load only files from people you
    trust. A ``.pt2`` whose module or attribute names torch.fx would write into Python code as code is
    refused before anything in it runs (`check_program_names`).
    """
    from .bended import BendedModule

    path = Path(path)
    if path.suffix not in LOADERS:
        raise ModelSpecError(f"cannot load {path.name!r}: tb.load reads files ending in {', '.join(sorted(LOADERS))}")
    if not path.exists():
        raise ModelSpecError(f"no such file: {path}")
    return BendedModule(LOADERS[path.suffix](path))


def _load_entry_point(spec: str) -> torch.nn.Module:
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ModelSpecError(f"cannot import {module_name!r} from model spec {spec!r}: {error}") from error
    factory = module
    for atom in attribute.split("."):
        if not hasattr(factory, atom):
            public = [n for n in dir(factory) if not n.startswith("_")]
            close = difflib.get_close_matches(atom, public, n=5, cutoff=0.5) or sorted(public)[:12]
            raise ModelSpecError(f"{module_name!r} has no {attribute!r}; closest: {', '.join(close)}")
        factory = getattr(factory, atom)
    model = factory
    if callable(factory) and not isinstance(factory, torch.nn.Module):
        try:
            model = factory()
        except TypeError as error:
            raise ModelSpecError(f"{spec} must be callable with no argument: {error}") from error
    if not isinstance(model, torch.nn.Module):
        raise ModelSpecError(f"{spec} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def load_model(spec: str = DEFAULT_MODEL) -> torch.nn.Module:
    """The model named by `spec`: ``package.module:factory`` (called with no argument) or a file in `LOADERS`.

    Either is code that runs here (importing the package, calling the factory, running the file's graphs):
    give only specs and files from people you trust."""
    path = Path(spec)
    if path.suffix in LOADERS:
        if not path.exists():
            raise ModelSpecError(f"no such file: {spec}")
        return LOADERS[path.suffix](path)
    if ":" in spec:
        return _load_entry_point(spec)
    raise ModelSpecError(
        f"cannot load {spec!r}: give module:factory (e.g. {DEFAULT_MODEL}) "
        f"or a file ending in {', '.join(sorted(LOADERS))}"
    )
