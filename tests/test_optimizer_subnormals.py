"""Optimiser state never goes subnormal while flush-to-zero is on (the default), so steps keep their speed.

Adam's first moment and momentum's velocity of a weight whose gradient
stops decay by 0.9 per step; in f32 they cross the subnormal range
(1.4e-45 .. 1.2e-38) between about 780 and 940 steps after the last
non-zero gradient, where every update of them costs ~100 cycles on x86.
With flushing they become exactly 0 instead. No timing here: the count of
subnormal entries is what slows the step down (bench/bench_transcendental.py
times it).
"""

from __future__ import annotations

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir import nn


def subnormal_count(arrays) -> int:
    return int(sum(((a != 0) & (np.abs(a) < np.finfo(a.dtype).tiny)).sum() for a in arrays))


def loss(W, b, x, y):
    return nn.mse(nn.dense(W, x, b), y)


def train(optimizer, flush: bool, steps: int = 850):
    rng = np.random.default_rng(0)
    W = rng.standard_normal((4, 8)).astype(np.float32) * 0.3
    b = np.zeros(4, np.float32)
    X = rng.standard_normal((steps, 8)).astype(np.float32)
    X[1:, :3] = 0.0  # features 0-2 are seen once: their weights' moments only decay afterwards
    Y = rng.standard_normal((steps, 4)).astype(np.float32)
    step = rm.compile_train_step(loss, params=(0, 1), optimizer=optimizer)
    before = rm.get_flush_denormal()
    rm.set_flush_denormal(flush)
    try:
        step.run(W, b, X, Y)
    finally:
        rm.set_flush_denormal(before)
    return step._state.arrays


@pytest.mark.parametrize("optimizer", [rm.optim.Adam(lr=1e-2), rm.optim.SGD(lr=1e-2, momentum=0.9)], ids=["adam", "momentum"])
def test_optimizer_state_has_no_subnormals_with_flushing(optimizer):
    assert rm.get_flush_denormal()  # the default
    state = train(optimizer, flush=True)
    assert subnormal_count(state) == 0
    assert any((a == 0).any() for a in state)  # the decayed moments were flushed to zero


@pytest.mark.parametrize("optimizer", [rm.optim.Adam(lr=1e-2), rm.optim.SGD(lr=1e-2, momentum=0.9)], ids=["adam", "momentum"])
def test_gradual_underflow_keeps_subnormal_moments(optimizer):
    """The same run without flushing: the moments are subnormal (what the flushing avoids)."""
    assert subnormal_count(train(optimizer, flush=False)) > 0
