"""The fixed cost of calling an `@rm.jit` function: vectorcall against tp_call, in one process.

    python bench/bench_vectorcall.py [--quick] [--clock thread]

Each row times, interleaved in random order per round (ns per call, medians):

- `vectorcall`: `f(x)` as it runs now: CPython vectorcalls the function object
  (backend/call_slot.py), which calls the METH_FASTCALL dispatcher with the
  argument array (no tuple);
- `tp_call`: a twin compiled for the same signature whose `_vectorcall` word
  is 0, so CPython makes an argument tuple and calls tp_call (the path every
  call took before vectorcall);
- `numpy`: the same operation in numpy, and `numpy / call` for both paths.

Two passes swap the twins' roles (each path runs on both result buffers);
the figures are the mean of the two passes' medians.

A last row times `len(x)` through the same lambda: the harness's own cost,
in every figure above. Noisy machine: compare within one run.
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


def cases():
    rng = np.random.default_rng(0)
    x8 = rng.uniform(0.5, 2.0, 8)
    x1k = rng.uniform(0.5, 2.0, 1000)
    x1k32 = x1k.astype(np.float32)
    return [
        ("neg, 8 f64", lambda a: -a, (x8,), np.negative),
        ("neg, 1e3 f64", lambda a: -a, (x1k,), np.negative),
        ("sum, 1e3 f64 (returns a float)", rm.sum, (x1k,), np.sum),
        ("log, 1e3 f64", rm.log, (x1k,), np.log),
        ("log, 1e3 f32", rm.log, (x1k32,), np.log),
        ("exp, 1e3 f32", rm.exp, (x1k32,), np.exp),
        ("(2x, x+1), 1e3 f64", lambda a: (a * 2.0, a + 1.0), (x1k,), lambda a: (a * 2.0, a + 1.0)),
        ("a*b+c, 1e3 f64", lambda a, b, c: a * b + c, (x1k, x1k, x1k), lambda a, b, c: a * b + c),
    ]


def positional(fn, inputs):
    """`lambda: fn(a, b, ...)` with the arguments written out (`fn(*inputs)` would make a tuple)."""
    if len(inputs) == 1:
        (a,) = inputs
        return lambda: fn(a)
    if len(inputs) == 3:
        a, b, c = inputs
        return lambda: fn(a, b, c)
    raise ValueError(f"{len(inputs)} inputs")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--clock", choices=("wall", "thread"), default="wall", help="wall time or this thread's CPU time")
    args = parser.parse_args(argv)
    clock = time.thread_time_ns if args.clock == "thread" else time.perf_counter_ns
    rounds, number = (5, 2000) if args.quick else (21, 10000)
    print(f"{'row':34s} {'vectorcall':>10s} {'tp_call':>8s} {'saved':>6s} {'numpy':>8s} {'np/vc':>6s} {'np/tp':>6s} {'1st ms':>7s}")
    for label, body, inputs, peer in cases():
        one, two = rm.jit(body), rm.jit(body)
        t0 = time.perf_counter()
        one(*inputs)
        first_ms = (time.perf_counter() - t0) * 1e3
        two(*inputs)
        address = one._vectorcall
        if not address:
            print(f"{label:34s} no vectorcall here (no native dispatcher)")
            continue
        # Two passes with the roles swapped: each path runs on both twins' result buffers (a kernel's
        # speed depends on where its output lies relative to its input, by a few percent at 1e3).
        passes = []
        for fast, twin in ((one, two), (two, one)):
            fast._vectorcall, twin._vectorcall = address, 0  # (0: CPython calls tp_call with a tuple)
            passes.append(interleaved(
                {"vc": positional(fast, inputs), "tp": positional(twin, inputs), "np": positional(peer, inputs)},
                rounds, number, clock,
            ))  # fmt: skip
        m = {k: (passes[0][k] + passes[1][k]) / 2 for k in passes[0]}
        print(
            f"{label:34s} {m['vc']:10.0f} {m['tp']:8.0f} {m['tp'] - m['vc']:6.0f} {m['np']:8.0f} "
            f"{m['np'] / m['vc']:6.2f} {m['np'] / m['tp']:6.2f} {first_ms:7.1f}"
        )
    x = np.ones(8)
    m = interleaved({"len": lambda: len(x)}, rounds, number, clock)
    print(f"{'harness: lambda: len(x)':34s} {m['len']:10.0f}")
    print(f"clock: {args.clock}; ns per call, mean of two passes' medians of {rounds} interleaved rounds. Noisy machine: compare within one run.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
