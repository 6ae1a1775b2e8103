"""`torchbend studio`: open the studio on the shipped MNIST VAE, or on any model, as the other subcommands name it.

    torchbend studio                                   # MNIST VAE, method decode, 16 random latents
    torchbend studio mypkg.models:make_model --method forward --inputs 'x=randn(1,1,16384)' --config bends.json
    torchbend studio rave.ts --method decode --inputs 'z=randn(1,16,64)'     # a TorchScript file

MODEL, ``--method``, ``--inputs`` and ``--seed`` are read by `torchbend.apps.cli` (one parser for every
subcommand). The studio's older flags stay accepted: ``--model M`` (MODEL), ``--fn F`` (``--method``),
``--shape 1,16,64`` (a random-normal first input) and ``--inputs mypkg.data:inputs`` (a function
returning the inputs as a dict).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import time
from typing import Any

import torch

DESCRIPTION = (
    "Serve the bending studio, a local web page: browse a model's weights and activations, add bends, move their\n"
    "parameters on sliders and see or hear the output change, save configs, export, map OSC or MIDI controls.\n"
    "It prints a URL with a token to open; Ctrl-C stops it. MODEL, --method and --inputs are read as in the other\n"
    "subcommands."
)
EXAMPLES = (
    "  torchbend studio                                          # the shipped MNIST VAE: decode, 16 latents\n"
    "  torchbend studio default --config glitch.json --port 0    # bends applied first; a free port\n"
    "  torchbend studio mypkg.models:make_model --method forward --inputs 'x=randn(1,1,16384)'\n"
    "  torchbend studio rave.ts --method decode --inputs 'z=randn(1,16,64)'   # a TorchScript file\n"
    "older spellings, still accepted: --model M (MODEL), --fn F (--method), --shape 1,16,64 (a random-normal\n"
    "first input), --inputs mypkg.data:make_inputs (a function returning the inputs as a dict)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..cli import _model_arguments

    _model_arguments(parser, config=False)
    parser.add_argument("--config", help="a BendingConfig JSON file to apply first")
    parser.add_argument("--out", default=".", help="folder for saved configs and exports (default: %(default)s)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to serve on (default: %(default)s; other than loopback needs --allow-remote)",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host other machines can reach (the page still needs the printed URL's token)",
    )
    parser.add_argument("--port", type=int, default=5006, help="port (0: a free one; default: %(default)s)")
    parser.add_argument("--model", dest="model_option", metavar="MODEL", help="older spelling of MODEL")
    parser.add_argument("--fn", dest="method", help="older spelling of --method")
    parser.add_argument(
        "--shape", help="older spelling of --inputs 'NAME=randn(SHAPE)' for the method's first input, e.g. 16,64"
    )


def entry_point(spec: str) -> Any:
    """The object named by ``package.module:attribute``."""
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise SystemExit(f"expected module:name, e.g. mypkg.models:make_model; got {spec!r}")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as error:
        raise SystemExit(f"cannot load {spec!r}: {error}") from None


def _older_inputs(args: argparse.Namespace) -> Any:
    """`inputs_for(model, method)` for `torchbend.apps.cli._traced`: the inputs ``--shape`` or
    ``--inputs module:function`` give, else None (``--inputs NAME=VALUE`` items are read as in every subcommand)."""
    from ...errors import BendingError
    from ..input_spec import parse_shape

    functions = [item for item in args.inputs if "=" not in item and ":" in item]
    if functions and len(args.inputs) > 1:
        raise BendingError(f"--inputs {functions[0]} gives every input; give it alone")
    if args.shape and args.inputs:
        raise BendingError("give --inputs NAME=VALUE or the older --shape, not both")
    shape = parse_shape(args.shape) if args.shape else None  # checked before the model loads

    def inputs_for(model: torch.nn.Module, method: str) -> dict[str, Any] | None:
        if functions:
            return dict(entry_point(functions[0])())
        if shape is None:
            return None
        function = getattr(model, method)
        schema = getattr(function, "schema", None)  # a TorchScript method
        first = schema.arguments[1].name if schema is not None else next(iter(inspect.signature(function).parameters))
        return {first: torch.randn(shape, generator=torch.Generator().manual_seed(args.seed))}

    return inputs_for


def traced(args: argparse.Namespace) -> tuple[Any, str, dict[str, Any]]:
    """The traced `BendedModule`, the method and its inputs the command line asks for (config applied)."""
    from ...errors import BendingError
    from ...loading import DEFAULT_MODEL
    from ..cli import _traced

    if args.model_option:
        if args.model not in (DEFAULT_MODEL, "default", args.model_option):
            raise BendingError(f"give the model once: MODEL {args.model!r} or --model {args.model_option!r}")
        args = argparse.Namespace(**{**vars(args), "model": args.model_option})
    return _traced(args, _older_inputs(args))


def run(args: argparse.Namespace) -> int:
    """Serve the studio until interrupted."""
    from .server import check_host, serve
    from .state import StudioState

    try:
        check_host(args.host, args.allow_remote)
    except ValueError as error:
        raise SystemExit(f"torchbend studio: {error}") from None
    bended, fn, inputs = traced(args)
    server = serve(
        StudioState(bended, fn, inputs, out_dir=args.out),
        host=args.host,
        port=args.port,
        allow_remote=args.allow_remote,
    )
    print(f"torchbend studio: {server.url}  (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
