"""The `torchbend` command: inspect, bend, render and export a model from the shell.

    torchbend --version
    torchbend inspect                                          # the shipped MNIST VAE's weights and activations
    torchbend apply MODEL glitch.json --inputs 'z=randn(16,64)' --out bent.png
    torchbend apply MODEL --bend 'Mask(prob=0.3)@decoder.net.convt1.weight' --save glitch.json
    torchbend render MODEL glitch.json --param keep --values 0 0.25 0.5 1 --out sweep.gif
    torchbend export MODEL glitch.json --to script --out bent.ts
    torchbend demo --out DIR --seed N                          # the tutorial, step by step, as an HTML report
    torchbend audio IN.wav --config bends.json --out OUT.wav [--model RAVE_RUN] [--method forward|encode|decode]
    torchbend studio [MODEL] [--config bends.json]            # the bending studio, a local web page

MODEL is ``package.module:factory`` (a function returning an ``nn.Module``) or a model file
(see `torchbend.loading.load_model`: a TorchScript ``.ts`` file, a ``.pt2`` program); the default
is the shipped MNIST VAE. A MODEL is code that runs on this machine (a package imported, a file's
graphs run): give only models from people you trust. CONFIG is a bending config saved with
``bended.bending_config().save(path)``, ``apply --save`` or by hand: data, whose loading runs no code.
The ``--inputs`` language is described in `torchbend.apps.input_spec`, the ``--bend`` one in `torchbend.apps.bend_spec`.
A bend whose target is not in the method a command runs is an error, never a bend that does nothing.
`python -m torchbend` is the same command.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..errors import BendingError, ConfigError
from ..loading import DEFAULT_MODEL, load_model

# a module missing at run time -> the extra that installs it
EXTRAS = {
    "matplotlib": "plot",
    "PIL": "plot",
    "tqdm": "demo",
    "mlxtend": "data",
    "nn_tilde": "nntilde",
    "transformers": "huggingface",
    "diffusers": "huggingface",
}
DEFAULT_METHOD = {DEFAULT_MODEL: "decode"}
DEFAULT_INPUTS = {DEFAULT_MODEL: ["z=randn(16,64)"]}

INPUTS_HELP = (
    "inputs of the method as NAME=VALUE, VALUE one of randn(d,...), rand(d,...), zeros(d,...), "
    "ones(d,...), linspace(a,b,n), a number, or a .pt file; repeat the option or separate with ';' "
    "(default for the shipped VAE: z=randn(16,64))"
)
BEND_HELP = (
    "a bend, after CONFIG's: CALLBACK(ARGS)@TARGET, e.g. 'Mask(prob=0.3)@decoder.net.convt1.weight' or "
    "'Scale(param(\"gain\", 2.0, 0, 4))@decode:decoder_net_convt1'; ARGS are literals, callbacks or "
    "param(NAME, VALUE[, LOW, HIGH]); repeatable (see torchbend.apps.bend_spec)"
)


# --- shared steps ------------------------------------------------------------------------------------
def _model_arguments(parser: argparse.ArgumentParser, config: bool) -> None:
    trust = "; it is code that runs here: use only models from people you trust"
    if config:
        parser.add_argument(
            "model", metavar="MODEL", help=f"module:factory or a model file ('default': {DEFAULT_MODEL}){trust}"
        )
        parser.add_argument(
            "config", metavar="CONFIG", type=Path, nargs="?", help="bending config (.json; data, runs no code)"
        )
        parser.add_argument("--bend", action="append", default=[], metavar="CALLBACK(ARGS)@TARGET", help=BEND_HELP)
    else:
        parser.add_argument(
            "model",
            metavar="MODEL",
            nargs="?",
            default=DEFAULT_MODEL,
            help=f"module:factory or a model file (default: %(default)s){trust}",
        )
    parser.add_argument("--method", help="method to trace and run (default: decode for the shipped VAE, else forward)")
    parser.add_argument("--inputs", action="append", default=[], metavar="SPEC", help=INPUTS_HELP)
    parser.add_argument("--seed", type=int, default=0, help="seed of random inputs (default: %(default)s)")


def _model_spec(args: argparse.Namespace) -> str:
    return DEFAULT_MODEL if args.model == "default" else args.model


def _traced(args: argparse.Namespace, inputs_for: Any = None) -> tuple[Any, str, dict[str, torch.Tensor]]:
    """Load the model, read the inputs, trace the method and apply the config (when given).

    `inputs_for(model, method)` may return the inputs instead of ``--inputs`` (None: read ``--inputs``).
    """
    import torchbend as tb

    from .input_spec import parse_inputs

    spec = _model_spec(args)
    model = load_model(spec)
    method = args.method or DEFAULT_METHOD.get(spec, "forward")
    inputs: dict[str, Any] | None = inputs_for(model, method) if inputs_for is not None else None
    if inputs is None:
        items = args.inputs or DEFAULT_INPUTS.get(spec, [])
        if not items:
            raise BendingError(f"give the inputs of {method}, e.g. --inputs 'x=randn(1,3,64,64)'")
        inputs = parse_inputs(items, seed=args.seed)
    torch.manual_seed(args.seed)
    bended = tb.BendedModule(model)
    _check_inputs(model, method, inputs)
    bended.trace(method, **inputs)
    apply_configs(bended, configs(args), [method], "give --method {method} (with its --inputs)")
    for item in getattr(args, "set", None) or []:
        name, _, value = item.partition("=")
        try:
            bended.update(name, _number(value))
        except (TypeError, ValueError) as error:  # out of range, NaN, a float for an int parameter
            raise BendingError(f"--set {item[:80]}: {error}") from None
    return bended, method, inputs


def configs(args: argparse.Namespace) -> list[Any]:
    """The configs a command applies, in order: CONFIG (or ``--config``), then the ``--bend`` options."""
    import torchbend as tb

    from .bend_spec import parse_bends

    found = [tb.BendingConfig.load(args.config)] if getattr(args, "config", None) is not None else []
    if getattr(args, "bend", None):
        found.append(parse_bends(args.bend))
    return found


def apply_configs(bended: Any, configs: Sequence[Any], runs: Sequence[str], fix: str) -> None:
    from .bend_spec import CommandLineConfig

    """Bend with each config, then make sure every bend reaches what the command runs (a weight, or an activation
    of a method in `runs`): a bend elsewhere would never apply, so it is an error naming the target, the methods
    where it is, and `fix` (``{method}`` is one of them)."""
    for config in configs:
        for _, targets in config:
            for target in targets:
                method, _ = bended.engine.names.split_method(target)
                if method is not None and method not in runs:
                    _never_applies(target, [method], runs, fix)
        try:
            group = bended.bend(config)
        except ConfigError as error:
            index = re.match(r"bends\[(\d+)\]\.targets: ", str(error))
            if index is None or not isinstance(config, CommandLineConfig):
                raise
            raise ConfigError(f"--bend {config.specs[int(index.group(1))]!r}: {str(error)[index.end() :]}") from None
        read = _read_paths(bended, runs)
        for (_, targets), bend in zip(config, group.bends):
            if not any(
                t.method in runs if t.kind == "activation" else _reads(bended, read, t.name) for t in bend.targets
            ):
                where = sorted({t.method for t in bend.targets if t.kind == "activation"})
                _never_applies(", ".join(targets), where, runs, fix)


def _read_paths(bended: Any, runs: Sequence[str]) -> set[str] | None:
    """The submodules and tensors the methods `runs` read, by path (None when a record has no graph to tell)."""
    paths: set[str] = set()
    for method in runs:
        graph = getattr(bended.engine.records.get(method), "graph", None)
        if not isinstance(graph, torch.fx.Graph):
            return None
        paths |= {n.target for n in graph.nodes if n.op in ("call_module", "get_attr") and isinstance(n.target, str)}
    return paths


def _reads(bended: Any, paths: set[str] | None, weight: str) -> bool:
    """True when `weight` (or a name it is tied to) is one of `paths` or inside one; True when unknown."""
    if paths is None:
        return True
    try:
        names = bended.engine.weights.aliases(weight) or [weight]
    except Exception:  # an effective weight, not a tensor of the module: assume it is read
        return True
    return any(name == path or name.startswith(path + ".") for name in names for path in paths)


def _never_applies(target: str, where: Sequence[str], runs: Sequence[str], fix: str) -> None:
    if not where:
        raise BendingError(
            f"the bend target {target!r} is a weight that {' and '.join(runs)} never reads, so "
            "it would never apply; bend a weight the method uses (torchbend inspect lists them)"
        )
    raise BendingError(
        f"the bend target {target!r} is in {' and '.join(where)}, but this command runs "
        f"{' and '.join(runs)}, so it would never apply; {fix.format(method=where[0])}"
    )


def _check_inputs(model: torch.nn.Module, method: str, inputs: dict[str, torch.Tensor]) -> None:
    """The method exists and takes these keyword inputs; else an error showing its signature."""
    import inspect

    function = getattr(model, method, None)
    if not callable(function):
        import difflib

        if isinstance(model, torch.jit.ScriptModule):
            methods = [n for n in model._c._method_names() if not n.startswith("_")]
        else:
            methods = [n for n in dir(type(model)) if not n.startswith("_") and callable(getattr(model, n, None))]
        close = difflib.get_close_matches(method, methods, n=5, cutoff=0.5)
        raise BendingError(f"the model has no method {method!r}" + (f"; closest: {', '.join(close)}" if close else ""))
    schema = getattr(function, "schema", None)
    if schema is not None:  # a TorchScript method
        arguments = schema.arguments[1:]
        unknown = [k for k in inputs if k not in [a.name for a in arguments]]
        missing = [a.name for a in arguments if not a.has_default_value() and a.name not in inputs]
        if unknown or missing:
            raise BendingError(
                f"{method}({', '.join(a.name for a in arguments)}) does not take the inputs "
                f"{', '.join(inputs) or 'none'}"
                + (f": unknown {unknown}" if unknown else "")
                + (f": missing {missing}" if missing else "")
            )
        return
    try:
        signature = inspect.signature(function)
        signature.bind(**inputs)
    except TypeError as error:
        from ..tracing.call_check import binding_error

        raise BendingError(
            f"--inputs {', '.join(inputs)}: {binding_error(method, signature, (), inputs, error)}"
        ) from None
    except ValueError:
        pass  # no signature to check against


def _number(text: str) -> float | int | bool:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return int(text) if text.lstrip("-").isdigit() else float(text)
    except ValueError:
        raise BendingError(f"--set NAME=VALUE: {text[:40]!r} is not a number, true or false") from None


def _parser(commands: Any, name: str, help: str, examples: str) -> argparse.ArgumentParser:
    return commands.add_parser(
        name,
        help=help,
        description=help,
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


# --- subcommands --------------------------------------------------------------------------------------
def inspect_command(args: argparse.Namespace) -> int:

    bended, method, _ = _traced(args)
    print(bended.weights_table())
    print()
    print(bended.activations_table(method))
    return 0


def apply_command(args: argparse.Namespace) -> int:
    from .outputs import save_output

    if args.out is None and args.save is None:
        raise BendingError("give --out (the bent output) or --save (the bends as a config), or both")
    bended, method, inputs = _traced(args)
    if args.save is not None:
        bended.bending_config().save(args.save)
        print(f"wrote {args.save}")
    if args.out is not None:
        with torch.no_grad():
            out = getattr(bended, method)(**inputs)
        print(f"wrote {save_output(out, args.out, args.sample_rate, args.scale)}")
    return 0


def render_command(args: argparse.Namespace) -> int:
    from .render import render_sweep

    bended, method, inputs = _traced(args)
    if args.param not in bended.controllables:
        known = ", ".join(bended.controllables) or "none"
        where = " and ".join(([str(args.config)] if args.config else []) + (["--bend"] if args.bend else []))
        raise BendingError(
            f"no bending parameter named {args.param!r} in {where or 'no bends'} (parameters: {known}); "
            "a --bend makes one with param(NAME, VALUE, LOW, HIGH)"
        )
    print(f"wrote {render_sweep(bended, method, inputs, args.param, args.values, args.out)}")
    return 0


def export_command(args: argparse.Namespace) -> int:
    bended, method, inputs = _traced(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.to == "script":
        torch.jit.save(bended.script([method]), str(out))
    elif args.to == "pt2":
        bended.export(str(out), method, *inputs.values())
    else:
        bended.export_nntilde(str(out), methods={method: _nntilde_metadata(bended, method, inputs)})
    print(f"wrote {out}")
    return 0


def _nntilde_metadata(bended: Any, method: str, inputs: dict[str, torch.Tensor]) -> dict[str, int]:
    """Channels and ratios for nn~ from the traced shapes: (B, C, T) in and out."""
    with torch.no_grad():
        out = getattr(bended, method)(**inputs)
    first = next(iter(inputs.values()))
    if first.ndim != 3 or not isinstance(out, torch.Tensor) or out.ndim != 3:
        raise BendingError("--to nntilde needs a method from (B, C, T) to (B, C, T) tensors")
    base = max(first.shape[-1], out.shape[-1])
    return dict(
        in_channels=first.shape[1],
        in_ratio=base // first.shape[-1],
        out_channels=out.shape[1],
        out_ratio=base // out.shape[-1],
    )


def demo_command(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.out, seed=args.seed)
    print(f"seed: {args.seed}")
    print(f"report: {(args.out / 'index.html').resolve()}")
    return 0


# --- the parser ---------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="torchbend",
        description="Network bending for PyTorch models.",
        epilog="MODEL (module:factory, a TorchScript or .pt2 file) is code that runs on this machine: use only models "
        "from people you trust. CONFIG files are data: loading one runs no code.",
    )
    parser.add_argument("--version", action="version", version=f"torchbend {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    p = _parser(
        commands,
        "inspect",
        "print a model's weights and the activations of one method",
        (
            "  torchbend inspect\n"
            "  torchbend inspect torchbend.zoo.mnist_vae:load_mnist_vae --method decode --inputs 'z=randn(4,64)'\n"
            "  torchbend inspect mypackage.models:make_unet --method forward --inputs 'x=rand(1,3,64,64)'"
        ),
    )
    _model_arguments(p, config=False)
    p.set_defaults(run=inspect_command)

    p = _parser(
        commands,
        "apply",
        "run a method with a bending config and save its output",
        (
            "  torchbend apply default glitch.json --out bent.png            # images: one PNG grid\n"
            "  torchbend apply default glitch.json --set keep=0.5 --out bent.pt\n"
            "  torchbend apply default --bend 'Mask(prob=0.3)@decoder.net.convt1.weight' \\\n"
            "      --bend 'Scale(-1)@decode:decoder_net_convt1' --save glitch.json   # write a config\n"
            "  torchbend apply mypackage.audio:load_decoder glitch.json --inputs 'z=randn(1,8,64)' --out bent.wav"
        ),
    )
    _model_arguments(p, config=True)
    p.add_argument("--out", type=Path, help="output file: .png (images), .wav (audio), .pt (tensors)")
    p.add_argument("--save", type=Path, metavar="CONFIG", help="write the bends (CONFIG's and --bend's) as a config")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="set a bending parameter (repeatable)")
    p.add_argument("--sample-rate", type=int, default=44100, help="sample rate of a .wav (default: %(default)s)")
    p.add_argument(
        "--scale",
        type=int,
        help="pixels per image pixel in a .png (default: tiles of at least 256 pixels, e.g. 10 for 28-pixel images)",
    )
    p.set_defaults(run=apply_command)

    p = _parser(
        commands,
        "render",
        "sweep one bending parameter and draw the outputs",
        (
            "  torchbend render default glitch.json --param keep --values 0 0.25 0.5 1 --out sweep.png\n"
            "  torchbend render default glitch.json --param keep --values 0 0.1 0.2 0.3 0.4 0.5 --out sweep.gif"
        ),
    )
    _model_arguments(p, config=True)
    p.add_argument("--param", required=True, help="name of the bending parameter to sweep")
    p.add_argument("--values", required=True, nargs="+", type=float, help="its values, in order")
    p.add_argument("--out", required=True, type=Path, help="sweep.png (one row per value) or sweep.gif (animation)")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="set another bending parameter first")
    p.set_defaults(run=render_command)

    p = _parser(
        commands,
        "export",
        "export a bent method: TorchScript, nn~ or torch.export",
        (
            "  torchbend export default glitch.json --to script --out bent.ts   # get_/set_ per parameter\n"
            "  torchbend export default glitch.json --to pt2 --out bent.pt2     # parameters as keyword inputs\n"
            "  torchbend export mypackage.audio:load_decoder glitch.json --to nntilde --inputs 'z=randn(1,8,16)' "
            "--out bent.ts"
        ),
    )
    _model_arguments(p, config=True)
    p.add_argument("--to", required=True, choices=("script", "nntilde", "pt2"), help="export format")
    p.add_argument("--out", required=True, type=Path, help="output file")
    p.set_defaults(run=export_command)

    p = _parser(
        commands,
        "demo",
        "bend the shipped MNIST VAE step by step and write an HTML report",
        ("  torchbend demo\n  torchbend demo --out report --seed 3"),
    )
    p.add_argument("--out", type=Path, default=Path("torchbend-demo"), help="output folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latents, masks and noise (default: %(default)s)")
    p.set_defaults(run=demo_command)

    from .studio import command as studio_command

    p = _parser(commands, "studio", "browse, bend and play a model in a web page", studio_command.EXAMPLES)
    p.description = studio_command.DESCRIPTION
    studio_command.add_arguments(p)
    p.set_defaults(run=studio_command.run)

    p = _parser(
        commands,
        "audio",
        "bend a sound file through an audio model, buffer by buffer",
        (
            "  torchbend audio in.wav --config bends.json --out out.wav              # the shipped audio model\n"
            "  torchbend audio in.wav --config bends.json --out out.wav --model run/  # a RAVE training run\n"
            "  torchbend audio in.wav --config bends.json --out out.wav --model rave.ts\n"
            "  torchbend audio in.wav --bend 'Select(Bias(1.0), channels=[0])@decode:z' --out octave_up.wav\n"
            "  torchbend audio in.wav --method encode --out z.pt && torchbend audio z.pt --method decode --out out.wav"
        ),
    )
    p.add_argument("input", type=Path, help="sound file to bend (a .pt file of latents for --method decode)")
    p.add_argument("--config", type=Path, help="bends, as a BendingConfig JSON file (default: none)")
    p.add_argument("--bend", action="append", default=[], metavar="CALLBACK(ARGS)@TARGET", help=BEND_HELP)
    p.add_argument("--out", type=Path, required=True, help="sound file to write (a .pt file for --method encode)")
    p.add_argument(
        "--method",
        choices=("forward", "encode", "decode"),
        default="forward",
        help="forward: sound to sound (decode:/encode: targets run it as decode(encode(x))); encode: "
        "sound to latents (.pt); decode: latents (.pt) to sound (default: %(default)s)",
    )
    p.add_argument("--sample-rate", type=int, help="sample rate of the output (default: the input's)")
    p.add_argument(
        "--match-level",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="scale the output to the input's RMS level (default: on)",
    )
    p.add_argument(
        "--model",
        type=Path,
        help="a RAVE run folder or .ckpt, or a TorchScript file (.ts) with "
        "encode/decode/forward on (1, 1, T) audio (default: the shipped audio "
        "model)",
    )
    p.set_defaults(run=audio_command)
    return parser


def audio_command(args: argparse.Namespace) -> int:
    from .audio_cli import bend_file

    out = bend_file(
        args.input,
        configs(args),
        args.out,
        args.model,
        method=args.method,
        sample_rate=args.sample_rate,
        match_level=args.match_level,
    )
    print(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default: ``sys.argv[1:]``); return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ModuleNotFoundError as error:
        top = (error.name or "").split(".")[0]
        if top not in EXTRAS:
            raise
        print(f"torchbend: error: {top} is not installed: pip install 'torchbend[{EXTRAS[top]}]'", file=sys.stderr)
        return 2
    except (BendingError, FileNotFoundError) as error:
        print(f"torchbend: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
