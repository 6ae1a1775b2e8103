"""The `torchbend` command.

    torchbend demo [--out DIR] [--seed N]     # the seed notebook's story on the shipped MNIST VAE
    torchbend audio IN.wav --config bends.json --out OUT.wav [--model RAVE_RUN]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="torchbend", description="Network bending for PyTorch models.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="bend the shipped MNIST VAE step by step and write an HTML report")
    demo.add_argument("--out", type=Path, default=Path("torchbend-demo"), help="output folder (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the latents and masks (default: %(default)s)")
    audio = commands.add_parser("audio", help="bend a sound file through an audio model, buffer by buffer")
    audio.add_argument("input", type=Path, help="sound file to bend")
    audio.add_argument("--config", type=Path, help="bends, as a BendingConfig JSON file (default: none)")
    audio.add_argument("--out", type=Path, required=True, help="sound file to write")
    audio.add_argument("--model", type=Path, help="a RAVE run folder or .ckpt (default: the shipped audio model)")
    args = parser.parse_args(argv)

    if args.command == "demo":
        from .demo import run_demo

        run_demo(args.out, seed=args.seed)
        print(f"report: {(args.out / 'index.html').resolve()}")
    elif args.command == "audio":
        from .audio.cli import bend_file

        print(f"wrote {bend_file(args.input, args.config, args.out, args.model)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
