"""How much 64-byte alignment matters: the 784-128-10 SGD step and data loop, numpy vs rm.aligned arrays.

numpy aligns large arrays to 16 bytes, so every 512-bit load from a row of W1
straddles two cache lines. This script times, in one run and interleaved:
the step called from Python and `step.run` over 1,000 samples (with cross-step
fusion), once with numpy-allocated parameters and data and once with
`rm.aligned` copies. Random data (x uniform in [0, 1), about half the ReLU
units active).

    python bench/bench_alignment.py [f32]
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from timing import compare, table  # noqa: E402

import raster_mlir as rm  # noqa: E402
from raster_mlir import nn  # noqa: E402


def mlp_loss(W1, b1, W2, b2, x, y):
    h = nn.relu(nn.dense(W1, x, b1))
    p = nn.softmax(nn.dense(W2, h, b2))
    return nn.cross_entropy(p, y)


def main(dtype) -> None:
    rng = np.random.default_rng(0)
    n = 1000
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
    # lr 0 keeps the parameters, and so the ReLU activity, the same in every round.
    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.0))
    counter = [0]

    def one(ps, xs):
        i = counter[0] = (counter[0] + 1) % n
        return step(*ps, xs[i], Y[i])

    steps = compare(
        {
            "step, numpy arrays": lambda: one(plain, X),
            "step, rm.aligned W and X": lambda: one(aligned, XA),
        },
        rounds=20,
        number=300,
    )
    print(f"\n{np.dtype(dtype).name}: one step from Python, per sample")
    print(table(steps, "step, rm.aligned W and X"))
    loops = compare(
        {
            "run, numpy arrays": lambda: step.run(*plain, X, Y),
            "run, rm.aligned W and X": lambda: step.run(*aligned, XA, Y),
        },
        rounds=10,
        number=1,
    )
    for s in loops.values():
        s.median, s.low, s.high = s.median / n, s.low / n, s.high / n
    print(f"\n{np.dtype(dtype).name}: step.run over {n} samples (cross-step fusion), per sample")
    print(table(loops, "run, rm.aligned W and X"))


if __name__ == "__main__":
    main(np.float32 if sys.argv[1:] == ["f32"] else np.float64)
