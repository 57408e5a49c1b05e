"""bench/native_loop.py: a native loop over a compiled step does exactly what the same steps from Python do.

The "kernel alone" rows of bench/bench_alignment.py rest on it: if the loop
skipped a call, reused a sample or missed the pointer update, its time would
be wrong, and the parameters would differ from the Python steps'.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import raster_mlir as rm
from bench.native_loop import NativeLoop, train_step_loop
from helpers import mlp_loss


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_native_loop_matches_the_same_steps_from_python(dtype):
    rng = np.random.default_rng(3)
    params = [rng.normal(0, 0.1, s).astype(dtype) for s in ((24, 37), 24, (5, 24), 5)]
    X = rng.random((7, 37)).astype(dtype)
    Y = np.eye(5, dtype=dtype)[rng.integers(0, 5, 7)]

    def new_step():
        return rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.05))

    native, python = [p.copy() for p in params], [p.copy() for p in params]
    loop = train_step_loop(new_step(), (*native, X[0], Y[0]), {4: X, 5: Y})  # one step on sample 0
    loop(12, 1)  # samples 1..6, then 0..5: the rows wrap around
    step = new_step()
    for i in [0, *range(1, 7), *range(0, 6)]:
        step(*python, X[i], Y[i])
    for a, b in zip(native, python):
        np.testing.assert_array_equal(a, b)


def test_native_loop_refuses_stacks_of_different_lengths():
    def double(x):
        return x * 2.0

    f = rm.compile(double, np.zeros(3))
    with pytest.raises(ValueError, match="same number of rows"):
        NativeLoop(f.native.function, (np.zeros(3), np.zeros(3)), {0: np.zeros((4, 3)), 1: np.zeros((5, 3))})
