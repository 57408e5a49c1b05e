"""The `raster-mlir` command (also `python -m raster_mlir`).

    raster-mlir train [options]   the 784->128->10 MLP on real MNIST digits, one native train step
    raster-mlir demo  [options]   the seed's 4->8->3 MLP for a few hundred SGD steps
    raster-mlir cache info|clear  show or empty the compile cache ($RASTER_MLIR_CACHE_DIR)

`raster-mlir train` needs the optional demo extra: pip install -e '.[demo]'.
"""

from __future__ import annotations

import argparse
import os
import sys


def program_name() -> str:
    return "python -m raster_mlir" if os.path.basename(sys.argv[0]) == "__main__.py" else "raster-mlir"


def build_parser() -> argparse.ArgumentParser:
    from raster_mlir.apps import train_command

    parser = argparse.ArgumentParser(
        prog=program_name(), description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser(
        "train",
        help="train the 784->128->10 MLP on MNIST digits with the compiled train step",
        description=train_command.__doc__,
        formatter_class=train_command.HelpFormatter,
    )
    train_command.add_arguments(train)
    demo = sub.add_parser("demo", help="train the seed's 4->8->3 MLP for a few hundred SGD steps")
    demo.add_argument("--steps", type=int, default=200, help="SGD steps on the one sample (default: 200)")
    demo.add_argument("--lr", type=float, default=0.5, help="SGD learning rate (default: 0.5)")
    cache = sub.add_parser("cache", help="show or empty the compile cache")
    cache.add_argument("action", choices=("info", "clear"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "train":
        from raster_mlir.apps import train_command

        return train_command.run(args)
    if args.command == "cache":
        return cache_command(args.action)
    from raster_mlir.apps.demo import run

    history = run(steps=args.steps, lr=args.lr)
    return 0 if history[-1] < history[0] else 1


def cache_command(action: str) -> int:
    from raster_mlir.compile_cache import cache_info, clear_cache

    if action == "clear":
        removed = clear_cache()
        print(f"removed {removed} entries from {cache_info()['directory']}")
        return 0
    info = cache_info()
    state = "on" if info["enabled"] else "off (RASTER_MLIR_CACHE=0)"
    print(f"directory: {info['directory']}")
    print(f"caching:   {state}")
    print(f"entries:   {info['entries']} ({info['functions']} functions, {info['objects']} object files)")
    print(f"size:      {info['bytes'] / 2**20:.1f} MB of at most {info['max_bytes'] / 2**20:.0f} MB (RASTER_MLIR_CACHE_MAX_MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
