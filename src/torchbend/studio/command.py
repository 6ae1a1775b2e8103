"""`torchbend studio`: open the studio on the shipped MNIST VAE, or on any model from an entry point.

    torchbend studio                                   # MNIST VAE, method decode, 16 random latents
    torchbend studio --model mypkg.models:make_model --fn forward --shape 1,1,16384 --config bends.json
    torchbend studio --model rave.ts --fn decode --shape 1,16,64      # a TorchScript file
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import time
from pathlib import Path
from typing import Any

import torch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="module:factory returning an nn.Module, or a model file such as a "
                                        "TorchScript .ts (default: the shipped MNIST VAE)")
    parser.add_argument("--fn", help="method to bend (default: decode for the VAE, forward otherwise)")
    parser.add_argument("--shape", help="shape of a random-normal first input, e.g. 16,64 (default: 16,64 for "
                                        "the VAE)")
    parser.add_argument("--inputs", help="module:function returning the method's keyword inputs as a dict")
    parser.add_argument("--config", help="a BendingConfig JSON file to apply first")
    parser.add_argument("--out", default=".", help="folder for saved configs and exports (default: %(default)s)")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default: %(default)s; other "
                                                            "than loopback needs --allow-remote)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow a --host other machines can reach (the page still needs the printed URL's token)")
    parser.add_argument("--port", type=int, default=5006, help="port (0: a free one; default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default: %(default)s)")


def entry_point(spec: str) -> Any:
    """The object named by ``package.module:attribute``."""
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise SystemExit(f"expected module:name, e.g. mypkg.models:make_model; got {spec!r}")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as error:
        raise SystemExit(f"cannot load {spec!r}: {error}") from None


def model_and_inputs(args: argparse.Namespace) -> tuple[torch.nn.Module, str, dict[str, Any]]:
    """The model, the method and its keyword inputs the command line asks for."""
    if args.model:
        from ..loading import LOADERS, load_model

        file = Path(args.model).suffix in LOADERS
        model, fn, shape = load_model(args.model) if file else entry_point(args.model)(), args.fn or "forward", \
            args.shape
    else:
        from ..zoo import load_mnist_vae

        model, fn, shape = load_mnist_vae(), args.fn or "decode", args.shape or "16,64"
    if args.inputs:
        return model, fn, dict(entry_point(args.inputs)())
    if not shape:
        raise SystemExit("give --shape (a random input) or --inputs (module:function) for this model")
    method = model.forward if fn == "forward" else getattr(model, fn)
    schema = getattr(method, "schema", None)  # a TorchScript method
    first = schema.arguments[1].name if schema is not None else next(iter(inspect.signature(method).parameters))
    from ..input_spec import parse_shape  # checked before allocating; main() prints its error in one line

    dims = parse_shape(shape)
    return model, fn, {first: torch.randn(dims, generator=torch.Generator().manual_seed(args.seed))}


def run(args: argparse.Namespace) -> int:
    """Serve the studio until interrupted."""
    from ..bended import BendedModule
    from ..config import BendingConfig
    from .server import check_host, serve
    from .state import StudioState

    try:
        check_host(args.host, args.allow_remote)
    except ValueError as error:
        raise SystemExit(f"torchbend studio: {error}") from None
    model, fn, inputs = model_and_inputs(args)
    bended = BendedModule(model)
    bended.trace(fn, **inputs)
    if args.config:
        bended.bend(BendingConfig.load(args.config))
    server = serve(StudioState(bended, fn, inputs, out_dir=args.out), host=args.host, port=args.port,
                   allow_remote=args.allow_remote)
    print(f"torchbend studio: {server.url}  (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
