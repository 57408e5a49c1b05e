"""Unroll-and-jam of reduction nests (jam.py): where it applies, and that results stay exact.

Every program is checked against numpy at sizes with and without a
remainder (M mod 4 = 0..3), with the default factor 4 and with jam off.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from backend_programs import NP_DTYPE, load, parse, source

from raster_mlir.backend import compile_module

RTOL = {"f64": 1e-12, "f32": 1e-5}
ROWS = [1, 3, 4, 7, 8, 129]


def fmul_count(f) -> int:
    return f.llvm_ir.count(" = fmul ")


def check(got, want, scale, T):
    assert np.all(np.abs(got.astype(np.float64) - want) <= RTOL[T] * scale + 1e-300)


@pytest.mark.parametrize("T", ["f64", "f32"])
@pytest.mark.parametrize("m", ROWS)
@pytest.mark.parametrize("jam", [4, 0])
def test_dense_relu(T, m, jam):
    k = 37
    f = compile_module(load("dense_relu", T, M=m, K=k), "dense_relu", jam=jam)
    jammed = jam and m >= 4
    assert fmul_count(f) == (1 if not jammed else 4 + (1 if m % 4 else 0))
    rng = np.random.default_rng(m)
    dt = NP_DTYPE[T]
    W, x, b = (rng.standard_normal(s).astype(dt) for s in ((m, k), k, m))
    h = np.full(m, np.nan, dtype=dt)
    f(W, x, b, h)
    W64, x64, b64 = W.astype(np.float64), x.astype(np.float64), b.astype(np.float64)
    check(h, np.maximum(W64 @ x64 + b64, 0), np.abs(W64) @ np.abs(x64) + np.abs(b64), T)


@pytest.mark.parametrize("T", ["f64", "f32"])
@pytest.mark.parametrize("m", [3, 5, 12])
def test_batched_dense_jams_the_middle_loop(T, m):
    nb, k = 3, 19
    f = compile_module(load("batched_dense", T, B=nb, M=m, K=k), "batched")
    assert fmul_count(f) == (1 if m < 4 else 4 + (1 if m % 4 else 0))
    rng = np.random.default_rng(m)
    dt = NP_DTYPE[T]
    X, W, b = (rng.standard_normal(s).astype(dt) for s in ((nb, k), (m, k), m))
    Y = np.zeros((nb, m), dtype=dt)
    f(X, W, b, Y)
    X64, W64, b64 = X.astype(np.float64), W.astype(np.float64), b.astype(np.float64)
    check(Y, X64 @ W64.T + b64, np.abs(X64) @ np.abs(W64).T + np.abs(b64), T)


@pytest.mark.parametrize("m", [5, 9])
def test_loop_carried_recurrence_is_not_jammed(m):
    k = 6
    f = compile_module(load("row_recurrence", "f64", M=m, K=k), "recurrence")
    assert fmul_count(f) == 2  # the carry and the product: one copy of the row body
    rng = np.random.default_rng(0)
    W, x = rng.standard_normal((m, k)), rng.standard_normal(k)
    y = np.zeros(m)
    y[0] = 3.0
    want = y.copy()
    for i in range(1, m):
        want[i] = want[i - 1] / 2 + W[i] @ x
    f(W, x, y)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


def test_nests_in_called_functions_are_not_jammed():
    # Without noalias on its arguments the callee's buffers might overlap.
    text = source("matvec", "f64", M=8, K=5).replace("func.func @matvec", "func.func private @matvec")
    entry = """
      func.func @entry(%W: memref<8x5xf64>, %x: memref<5xf64>, %b: memref<8xf64>, %y: memref<8xf64>) {
        func.call @matvec(%W, %x, %b, %y) : (memref<8x5xf64>, memref<5xf64>, memref<8xf64>, memref<8xf64>) -> ()
        func.return
      }
    }"""
    module = parse(text[: text.rstrip().rindex("}")] + entry)
    f = compile_module(module, "entry")
    assert fmul_count(f) == 1
    rng = np.random.default_rng(1)
    W, x, b, y = rng.standard_normal((8, 5)), rng.standard_normal(5), rng.standard_normal(8), np.zeros(8)
    f(W, x, b, y)
    np.testing.assert_allclose(y, W @ x + b, rtol=1e-12)


def test_nests_with_several_inner_loops_are_not_jammed():
    f = compile_module(load("softmax_rows", "f64", M=8, N=5), "softmax")
    assert len(re.findall(r'call [^@]*@"(?:llvm|rm\.vm)\.exp\.f64"', f.llvm_ir)) == 1  # exp: a vmath call or the intrinsic


def test_reverse_loop_row_nest_with_a_guarded_update_is_jammed():
    """A tanh RNN's reverse loop: per row, the recomputed dot product, then the weights' gradient row under
    skip-zero-updates' scf.if. The dot products are jammed (the update is emitted once per copy)."""
    from helpers import tanh_rnn_loss as loss

    import raster_mlir as rm
    from raster_mlir.backend.jam import jam_plan

    rng = np.random.default_rng(0)
    for rows in (7, 8):  # with and without a remainder of the jam factor
        W, xs, h0 = rng.standard_normal((rows, rows)) * 0.3, rng.standard_normal((6, rows)), rng.standard_normal(rows)
        c = rm.compile(rm.grad(loss, argnums=0), W, xs, h0)
        plans = [jam_plan(op, "grad", True, 4) for op in c.final_module.walk() if op.name == "scf.for"]
        assert any(p is not None and any(op.name == "scf.if" for op in p.post) for p in plans)
        value = rm.jit(loss)
        d, eps = rng.standard_normal(W.shape), 1e-6
        fd = (value(W + eps * d, xs, h0) - value(W - eps * d, xs, h0)) / (2 * eps)
        assert np.sum(c(W, xs, h0) * d) == pytest.approx(fd, rel=1e-6)
