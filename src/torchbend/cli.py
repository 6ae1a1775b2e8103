"""The `torchbend` command.

    torchbend demo [--out DIR] [--seed N]     # the seed notebook's story on the shipped MNIST VAE
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
    args = parser.parse_args(argv)

    if args.command == "demo":
        from .demo import run_demo

        run_demo(args.out, seed=args.seed)
        print(f"report: {(args.out / 'index.html').resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
