"""fuse-loops: a reduction loop absorbs the loop producing what it reads (numbers, and what must not change).

- Compiled functions whose sums, maxima and row reductions read an
  element-wise producer (the science function sum(tanh(x) * exp(-x*x)) and
  its gradient, row and column sums, softmax, log-sum-exp, norms) agree with
  numpy on hypothesis-chosen shapes; the fusion happened where it should (the
  function's `raster.fusion` counts a removed temporary).
- `step.run`: a one-layer model (dense then softmax) has a forward row loop
  that absorbed the softmax max; the data loop's rotation carries that max
  from one step to the next and stays bitwise equal to separate steps
  (momentum, Adam), and SGD still gets defer-updates.

tests/filecheck/fuse_loops/reduction.mlir shows the fused IR and the cases left apart.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import profile_examples
from hypothesis import given, settings, strategies as st

import raster_mlir as rm
from raster_mlir import nn


def science(x):
    return rm.sum(rm.tanh(x) * rm.exp(-x * x))


def science_numpy(x):
    return np.sum(np.tanh(x) * np.exp(-x * x))


def science_grad_numpy(x):
    t, e = np.tanh(x), np.exp(-x * x)
    return (1 - t * t) * e - 2 * x * t * e


def fusion_counts(jitted, *args) -> dict[str, int]:
    ir = rm.compile(jitted.fn if hasattr(jitted, "fn") else jitted, *args).ir("after:fuse-loops")
    line = next(line for line in ir.splitlines() if "raster.fusion" in line)
    counts = line.split("raster.fusion = {")[1].split("}")[0]
    return {k.strip(): int(v.split(":")[0]) for k, v in (item.split("=") for item in counts.split(","))}


@settings(max_examples=profile_examples(2), deadline=None)
@given(n=st.sampled_from([1, 7, 64, 201, 1000]), dtype=st.sampled_from([np.float64, np.float32]), seed=st.integers(0, 2**16))
def test_science_function_value_and_gradient(n, dtype, seed):
    x = np.random.default_rng(seed).normal(0, 1.5, n).astype(dtype)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    value = rm.jit(science)(x)
    np.testing.assert_allclose(value, science_numpy(x.astype(np.float64)), rtol=tol, atol=tol * n)
    grad = rm.grad(science, argnums=0)(x)
    np.testing.assert_allclose(grad, science_grad_numpy(x.astype(np.float64)), rtol=tol * 10, atol=tol * 10)


def test_the_science_sum_makes_no_temporary():
    x = np.linspace(-3, 3, 1000)
    counts = fusion_counts(science, x)
    assert counts["temporaries_removed"] >= 1 and counts["loops_fused"] >= 2, counts
    ir = rm.compile(science, x).ir("after:fuse-loops")
    assert "memref.alloc" not in ir  # the product is summed as it is made


def row_and_column_sums(a, b):
    p = rm.exp(a) * b
    return rm.sum(p, axis=1), rm.sum(p, axis=0), rm.max(p * b, axis=1)


def softmax_rows(z):
    return nn.softmax(z)


def logsumexp(z):
    m = rm.max(z)
    return m + rm.log(rm.sum(rm.exp(z - m)))


def norms(a, b):
    d = a - b
    return rm.sqrt(rm.sum(d * d)), rm.max(rm.abs(d))


@settings(max_examples=profile_examples(3), deadline=None)
@given(rows=st.integers(1, 9), cols=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_reductions_of_producers_match_numpy(rows, cols, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(rows, cols)), rng.normal(size=(rows, cols))
    p = np.exp(a) * b
    got = rm.jit(row_and_column_sums)(a, b)
    for g, w in zip(got, (p.sum(axis=1), p.sum(axis=0), (p * b).max(axis=1))):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    z = a[0]
    e = np.exp(z - z.max())
    np.testing.assert_allclose(rm.jit(softmax_rows)(a), np.exp(a - a.max(1, keepdims=True)) / np.exp(a - a.max(1, keepdims=True)).sum(1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(rm.jit(logsumexp)(z), z.max() + np.log(e.sum()), rtol=1e-12)
    two, inf = rm.jit(norms)(a, b)
    np.testing.assert_allclose([two, inf], [np.linalg.norm(a - b), np.abs(a - b).max()], rtol=1e-12)


def one_layer_loss(W, b, x, y):
    return nn.cross_entropy(nn.softmax(nn.dense(W, x, b)), y)


def one_layer_problem(n=30, n_in=20, n_out=5, seed=3):
    rng = np.random.default_rng(seed)
    params = [rng.normal(0, 0.3, (n_out, n_in)), rng.normal(0, 0.1, n_out)]
    X = rng.normal(size=(n, n_in))
    Y = np.eye(n_out)[np.argmax(X[:, :n_out], axis=1)]
    return params, X, Y


@pytest.mark.parametrize(
    "optimizer", [rm.optim.SGD(lr=0.05, momentum=0.9), rm.optim.Adam(lr=0.01)], ids=["sgd-momentum", "adam"]
)
def test_rotation_carries_the_softmax_max_bitwise(optimizer):
    """The forward row loop carries the row max: the rotation passes it to the next step, bits unchanged."""
    params, X, Y = one_layer_problem()
    step = rm.compile_train_step(one_layer_loss, params=(0, 1), optimizer=optimizer)
    mine = [p.copy() for p in params]
    losses = step.run(*mine, X, Y)
    assert step.run_schedule == "cross-step fusion"
    fresh = rm.compile_train_step(one_layer_loss, params=(0, 1), optimizer=optimizer)
    theirs = [p.copy() for p in params]
    want = [fresh(*theirs, X[i], Y[i]) for i in range(len(X))]
    for got, expected in zip([losses, *mine], [np.array(want), *theirs]):
        np.testing.assert_array_equal(got, expected)


def test_a_forward_loop_carrying_the_max_still_gets_defer_updates():
    params, X, Y = one_layer_problem(n=40)
    step = rm.compile_train_step(one_layer_loss, params=(0, 1), optimizer=rm.optim.SGD(lr=0.1))
    mine = [p.copy() for p in params]
    losses = step.run(*mine, X, Y, update_block=4)
    assert step.run_schedule == "defer-updates{block=4}"
    theirs = [p.copy() for p in params]
    want = step.run(*theirs, X, Y, cross_step_fusion=False)
    for got, expected in zip([losses, *mine], [want, *theirs]):
        np.testing.assert_allclose(got, expected, rtol=1e-12)
