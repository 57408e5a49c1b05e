"""What `skip-zero-chunks` buys, i.e. what a strict-NaN default would cost (issue 18).

`skip-zero-chunks` skips the 64-byte chunks of W's rows where the input sample is
zero (81% of MNIST's pixels). It is exact for finite numbers, but an inf or NaN in
W in a skipped column no longer turns the result into NaN (numpy gives NaN:
0 * inf). This times the seed's 784-128-10 SGD step on MNIST digits with the
default pipeline, the strict one (`rm.STRICT_PIPELINE`: without
skip-zero-chunks and skip-zero-updates, whose skipped `W - e * 0` would also
have made a NaN of an inf) and the default without skip-zero-chunks only,
per-sample steps and `step.run` data loops, interleaved (ratios to the default).

    python bench/bench_strict_nan.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import raster_mlir as rm
from raster_mlir import nn
from raster_mlir.apps.datasets import load, one_hot


def loss(W1, b1, W2, b2, x, y):
    return nn.cross_entropy(nn.softmax(nn.dense(W2, nn.relu(nn.dense(W1, x, b1)), b2)), y)


def params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rm.aligned(a.astype(dtype)) for a in
            (rng.normal(0, 0.05, (128, 784)), np.zeros(128), rng.normal(0, 0.05, (10, 128)), np.zeros(10))]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions")
    args = parser.parse_args()
    rounds, samples = (5, 200) if args.quick else (15, 1000)
    try:
        data = load("mnist5k")
    except Exception:  # noqa: BLE001 - the demo extra is optional; sklearn's digits are not 784 wide
        raise SystemExit("needs the demo extra for MNIST: pip install -e '.[demo]'")
    X_all, labels = data.x_train[:samples], data.labels_train[:samples]
    print(f"{samples} MNIST digits, {np.mean(X_all == 0):.0%} zero pixels; median of {rounds} interleaved rounds")
    print(f"{'dtype':8} {'workload':20} {'default us':>11} {'strict us':>10} {'strict/default':>15} "
          f"{'only skip-zero-chunks off':>26}")  # fmt: skip
    for dtype in (np.float64, np.float32):
        X, Y = X_all.astype(dtype), one_hot(labels, 10, dtype)
        pipelines = {"default": rm.DEFAULT_PIPELINE, "strict": rm.STRICT_PIPELINE,
                     "no-chunks": rm.DEFAULT_PIPELINE.replace(",skip-zero-chunks", "")}  # fmt: skip
        steps = {name: rm.compile_train_step(loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.01), pipeline=p)
                 for name, p in pipelines.items()}  # fmt: skip
        per_sample = {k: [] for k in steps}
        loop = {k: [] for k in steps}
        models = {k: params(dtype) for k in steps}
        for name, step in steps.items():  # compile and warm up
            step(*models[name], X[0], Y[0])
            step.run(*models[name], X, Y)
        for _ in range(rounds):
            for name, step in steps.items():
                P = models[name]
                t0 = time.perf_counter()
                for i in range(samples):
                    step(*P, X[i], Y[i])
                per_sample[name].append((time.perf_counter() - t0) / samples * 1e6)
                t0 = time.perf_counter()
                step.run(*P, X, Y)
                loop[name].append((time.perf_counter() - t0) / samples * 1e6)
        for workload, times in (("per-sample step", per_sample), ("step.run data loop", loop)):
            d, s, c = (np.median(times[k]) for k in ("default", "strict", "no-chunks"))
            print(f"{np.dtype(dtype).name:8} {workload:20} {d:11.2f} {s:10.2f} {s / d:15.2f} {c / d:26.2f}")


if __name__ == "__main__":
    main()
