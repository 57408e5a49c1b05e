"""A loop around a long reduction loop is not unrolled by LLVM (llvm_emit.loop_metadata,
loop_hints.rolls_over_a_long_reduction).

O3's late unroller fully unrolled the 10 rows of a 10x128 matrix-vector product around the
vectorised dot product: ten copies of it in straight-line code, a third of a train step's LLVM
time, for no gain at run time (bench/bench_llvm_work.py). Loops LLVM may still unroll: around
short or cheap loops (which LLVM unrolls before vectorising; unroll.disable would then set the
interleave count of the vectorised loop to 1) and around loops that store."""

from __future__ import annotations

import re

import numpy as np

import raster_mlir as rm

from test_time_loop_unroll import _loop_ids


def _vector_multiplies(llvm_ir: str) -> int:
    return sum(1 for line in llvm_ir.splitlines() if re.search(r"= (fmul|call .*@llvm\.fmuladd)[^=]*<\d+ x double>", line))


def _disabled(c) -> list[str]:
    return [ids for ids in _loop_ids(c.llvm_ir) if "llvm.loop.unroll.disable" in ids]


def test_the_rows_of_a_matrix_vector_product_stay_a_loop():
    """The row loop carries the running maximum, so it is not jammed (jam.py) and was LLVM's to unroll."""
    rng = np.random.default_rng(0)
    w, x = rng.normal(size=(10, 128)), rng.normal(size=128)

    def largest_product(w, x):
        return rm.max(rm.matmul(w * 2.0, x))

    c = rm.compile(largest_product, w, x)
    assert len(_disabled(c)) == 1  # the row loop; the dot product itself is LLVM's to vectorise and unroll
    # One row's vector multiplies (128 elements, vectorised and interleaved), not ten rows' (320).
    assert 0 < _vector_multiplies(c.llvm_ir_optimized) <= 64
    np.testing.assert_allclose(c(w, x), np.max(2.0 * w @ x), rtol=1e-13)
    w8, x8 = np.ascontiguousarray(w[:, :8]), x[:8]
    narrow = rm.compile(largest_product, w8, x8)
    assert _disabled(narrow) == []  # 8 short iterations: LLVM unrolls the dot product first, then the rows
    np.testing.assert_allclose(narrow(w8, x8), np.max(2.0 * w8 @ x8), rtol=1e-13)


def test_small_programs_and_loops_around_stores_are_still_unrolled():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    small = rm.compile(lambda a, b: rm.matmul(a, b), a, b)
    assert _disabled(small) == []
    np.testing.assert_allclose(small(a, b), a @ b, rtol=1e-14)
    u, v = rng.normal(size=10), rng.normal(size=128)
    outer = rm.compile(lambda u, v: rm.outer(u, v) * 2.0, u, v)  # rows of stores, no reduction
    assert _disabled(outer) == []
    np.testing.assert_allclose(outer(u, v), 2.0 * np.outer(u, v), rtol=1e-15)


def test_a_train_step_keeps_its_layers_row_loops_rolled():
    """The output layer's 10 rows (forward) stay a loop; what the step computes does not change."""
    rng = np.random.default_rng(2)
    w1, w2 = rng.normal(size=(32, 64)) * 0.1, rng.normal(size=(10, 32)) * 0.1
    x, y = rng.normal(size=64), np.eye(10)[4]

    def loss(w1, w2, x, y):
        return -rm.sum(y * rm.log(rm.nn.softmax(rm.matmul(w2, rm.tanh(rm.matmul(w1, x))))))

    g = rm.compile(rm.grad(loss, argnums=(0, 1)), w1, w2, x, y)
    assert _disabled(g)
    eps, d = 1e-6, rng.normal(size=w2.shape)
    numeric = (loss_np(w1, w2 + eps * d, x, y) - loss_np(w1, w2 - eps * d, x, y)) / (2 * eps)
    np.testing.assert_allclose(np.sum(g(w1, w2, x, y)[1] * d), numeric, rtol=1e-6)


def loss_np(w1, w2, x, y):
    z = w2 @ np.tanh(w1 @ x)
    p = np.exp(z - z.max())
    return -np.sum(y * np.log(p / p.sum()))
