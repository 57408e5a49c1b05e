"""`python -m raster_mlir demo`: the seed's MLP trained with compiled gradients."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m raster_mlir", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train the seed's 4->8->3 MLP for a few hundred SGD steps")
    demo.add_argument("--steps", type=int, default=200)
    demo.add_argument("--lr", type=float, default=0.5)
    args = parser.parse_args(argv)
    if args.command == "demo":
        from raster_mlir.demo import run

        history = run(steps=args.steps, lr=args.lr)
        return 0 if history[-1] < history[0] else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
