"""Result recycling of the native dispatcher (backend/dispatch.py): on against off, in one process.

    python bench/bench_result_recycling.py [--quick] [--clock wall|thread]

Each function is compiled twice, once with result recycling (the default)
and once without (RECYCLE_BYTES = 0 while it compiles), and the two are
called interleaved in random order per round with numpy's own operation, on
1,000 elements, f64 and f32. Two call patterns: `f(x)` with the result
dropped at once, and `y = f(x)` twice in a row (the previous result still
bound during the call, as in a loop that rebinds its result). Printed: ns per
call (median of rounds), off - on, and numpy / on. Noisy machine: compare
within one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import raster_mlir as rm  # noqa: E402
from bench.bench_call_overhead import interleaved  # noqa: E402
from raster_mlir import nn  # noqa: E402
from raster_mlir.backend import dispatch  # noqa: E402

CASES = {
    "neg": (lambda a: -a, np.negative),
    "exp": (lambda a: rm.exp(a), np.exp),
    "sigmoid": (lambda a: nn.sigmoid(a), lambda a: 1.0 / (1.0 + np.exp(-a))),
    "(2x, x+1)": (lambda a: (a * 2.0, a + 1.0), lambda a: (a * 2.0, a + 1.0)),
}


def compiled_pair(body, x):
    """(with recycling, without), both compiled and called once."""
    on = rm.jit(body)
    on(x)
    saved = dispatch.RECYCLE_BYTES
    dispatch.RECYCLE_BYTES = 0
    try:
        off = rm.jit(body)
        off(x)
    finally:
        dispatch.RECYCLE_BYTES = saved
    return on, off


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--clock", choices=("wall", "thread"), default="wall")
    args = parser.parse_args(argv)
    clock = time.thread_time_ns if args.clock == "thread" else time.perf_counter_ns
    rounds, number = (5, 1000) if args.quick else (21, 5000)
    print(f"{'row':34s} {'on ns':>7s} {'off ns':>7s} {'off-on':>7s} {'numpy':>7s} {'numpy/on':>8s} {'numpy/off':>9s}")
    for dtype in (np.float64, np.float32):
        x = np.random.default_rng(0).uniform(-2.0, 2.0, 1000).astype(dtype)
        contenders = {}
        for name, (body, peer) in CASES.items():
            on, off = compiled_pair(body, x)
            contenders[(name, "drop", "on")] = (lambda f: lambda: f(x))(on)
            contenders[(name, "drop", "off")] = (lambda f: lambda: f(x))(off)
            contenders[(name, "drop", "numpy")] = (lambda f: lambda: f(x))(peer)
            contenders[(name, "rebind", "on")] = (lambda f: lambda: (y := f(x), y := f(x)))(on)  # noqa: F841
            contenders[(name, "rebind", "off")] = (lambda f: lambda: (y := f(x), y := f(x)))(off)  # noqa: F841
            contenders[(name, "rebind", "numpy")] = (lambda f: lambda: (y := f(x), y := f(x)))(peer)  # noqa: F841
        measured = interleaved(contenders, rounds, number, clock)
        for name in CASES:
            for pattern, calls in (("drop", 1), ("rebind", 2)):
                on, off, peer = (measured[(name, pattern, k)] / calls for k in ("on", "off", "numpy"))
                label = f"{name} {np.dtype(dtype).name} {'f(x)' if pattern == 'drop' else 'y = f(x)'}"
                print(f"{label:34s} {on:7.0f} {off:7.0f} {off - on:7.0f} {peer:7.0f} {peer / on:8.2f} {peer / off:9.2f}")
    print(f"clock: {args.clock}; ns per call, 1e3 elements; median of {rounds} interleaved rounds. Noisy machine: use ratios.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
