"""The raster canonicalization patterns on the MNIST 784-128-10 train step: same schedule, not slower.

Compiles the default train step twice in one process: with the patterns of
dialects/raster_canonicalize.py (the default) and without them (canonicalize
as before: xDSL's folders only, no raster patterns). For f64 and f32, it
checks that both get the deferred data-loop schedule, prints the tensor ops
left after canonicalize, and times step(...) from Python and step.run over
the data (per sample), interleaved, with the ratio with / without.

    python bench/bench_canonicalize.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

# No compile cache: the two builds trace the same IR, and the patterns are raster_mlir's own code,
# so the cache would hand the second build the first one's native code.
os.environ["RASTER_MLIR_CACHE"] = "0"
sys.path.insert(0, os.path.dirname(__file__))
from timing import compare, table  # noqa: E402

import raster_mlir as rm  # noqa: E402
from raster_mlir import nn  # noqa: E402
from raster_mlir.dialects import raster_canonicalize  # noqa: E402


def mlp_loss(W1, b1, W2, b2, x, y):
    h = nn.relu(nn.dense(W1, x, b1))
    p = nn.softmax(nn.dense(W2, h, b2))
    return nn.cross_entropy(p, y)


def mnist_like(n: int, dtype):
    """784-pixel samples that are 81% zeros (as MNIST), 10 one-hot classes, He-initialised weights."""
    rng = np.random.default_rng(0)
    X = rng.random((n, 784)) * (rng.random((n, 784)) < 0.19)
    Y = np.eye(10)[rng.integers(0, 10, n)]
    params = [rng.normal(0, (2 / 784) ** 0.5, (128, 784)), np.zeros(128), rng.normal(0, (2 / 128) ** 0.5, (10, 128)), np.zeros(10)]
    return [p.astype(dtype) for p in params], X.astype(dtype), Y.astype(dtype)


def build(patterns: bool, dtype, n: int):
    saved = dict(raster_canonicalize.PATTERNS)
    if not patterns:
        raster_canonicalize.PATTERNS.clear()
    try:
        step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.01))
        params, X, Y = mnist_like(n, dtype)
        step(*[p.copy() for p in params], X[0], Y[0])
        step.run(*[p.copy() for p in params], X, Y)  # compiles the data loop
        # (stages are recomputed on demand: while the patterns are as they were for this build)
        ops = [line for line in step.ir("after:canonicalize").splitlines() if "= raster." in line]
    finally:
        raster_canonicalize.PATTERNS.update(saved)
    return step, params, X, Y, ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 200 if args.quick else 1000
    rounds = 5 if args.quick else 21
    for dtype in (np.float64, np.float32):
        runs = {}
        for label, patterns in (("with patterns", True), ("without", False)):
            step, params, X, Y, ops = build(patterns, dtype, n)
            print(f"{np.dtype(dtype).name} {label}: schedule {step.run_schedule}; {len(ops)} tensor ops after canonicalize")
            runs[label] = (step, params, X, Y)
        calls = {}
        for label, (step, params, X, Y) in runs.items():
            mine = [p.copy() for p in params]
            calls[f"step() {label}"] = lambda step=step, mine=mine, X=X, Y=Y: step(*mine, X[0], Y[0])
            calls[f"run/sample {label}"] = lambda step=step, mine=mine, X=X, Y=Y: step.run(*mine, X, Y)
        step_results = compare({k: v for k, v in calls.items() if k.startswith("step")}, rounds=rounds, number=200)
        run_results = compare({k: v for k, v in calls.items() if k.startswith("run")}, rounds=rounds, number=1)
        for r in run_results.values():  # per sample
            r.median /= n
            r.low /= n
            r.high /= n
        print(table(step_results, "step() without"))
        print(table(run_results, "run/sample without"))


if __name__ == "__main__":
    main()
