"""The `torchbend` command.

    torchbend demo [--out DIR] [--seed N]     # the seed notebook's story on the shipped MNIST VAE
    torchbend studio [--model M:F] [--config bends.json] [--host H] [--port P]   # the bending studio
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
    from .studio import command as studio_command

    studio_command.add_arguments(commands.add_parser("studio", help="browse, bend and play a model in a web page"))
    args = parser.parse_args(argv)

    if args.command == "demo":
        from .demo import run_demo

        run_demo(args.out, seed=args.seed)
        print(f"report: {(args.out / 'index.html').resolve()}")
    if args.command == "studio":
        return studio_command.run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
