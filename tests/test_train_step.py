"""rm.compile_train_step: one native function per step, equal to value_and_grad + a numpy update."""

import re

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir import nn


def mlp_loss(W1, b1, W2, b2, x, y):
    h = nn.relu(nn.dense(W1, x, b1))
    p = nn.softmax(nn.dense(W2, h, b2))
    return nn.cross_entropy(p, y)


def make_problem(dtype=np.float64, n_in=12, hidden=9, n_out=5, batch=None, seed=0):
    rng = np.random.default_rng(seed)
    params = [
        rng.normal(0, 0.4, (hidden, n_in)),
        rng.normal(0, 0.1, hidden),
        rng.normal(0, 0.4, (n_out, hidden)),
        rng.normal(0, 0.1, n_out),
    ]
    xs_shape = (n_in,) if batch is None else (batch, n_in)
    x = rng.normal(size=xs_shape)
    labels = rng.integers(0, n_out, size=1 if batch is None else batch)
    y = np.eye(n_out)[labels].reshape((n_out,) if batch is None else (batch, n_out))
    return [p.astype(dtype) for p in params], x.astype(dtype), y.astype(dtype)


def numpy_sgd(params, x, y, lr, steps):
    """Reference: compiled value_and_grad, then the update in numpy."""
    vg = rm.value_and_grad(mlp_loss, argnums=(0, 1, 2, 3))
    params = [p.copy() for p in params]
    losses = []
    for _ in range(steps):
        loss, grads = vg(*params, x, y)
        losses.append(loss)
        params = [p - lr * g for p, g in zip(params, grads)]
    return params, losses


@pytest.mark.parametrize("batch", [None, 4])
def test_sgd_step_equals_value_and_grad_plus_numpy_update(batch):
    params, x, y = make_problem(batch=batch)
    expected, expected_losses = numpy_sgd(params, x, y, lr=0.1, steps=10)
    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.1))
    mine = [p.copy() for p in params]
    losses = [step(*mine, x, y) for _ in range(10)]
    assert isinstance(losses[0], float)
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-12)
    for got, want in zip(mine, expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_sgd_with_momentum_and_f32():
    params, x, y = make_problem(dtype=np.float32)
    opt = rm.optim.SGD(lr=0.05, momentum=0.9)
    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=opt)
    mine = [p.copy() for p in params]
    ref = [p.copy() for p in params]
    velocity = [np.zeros_like(p) for p in params]
    vg = rm.value_and_grad(mlp_loss, argnums=(0, 1, 2, 3))
    for _ in range(5):
        step(*mine, x, y)
        _, grads = vg(*ref, x, y)
        velocity = [0.9 * v + g for v, g in zip(velocity, grads)]
        ref = [p - np.float32(0.05) * v for p, v in zip(ref, velocity)]
    for got, want in zip(mine, ref):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)


def test_adam_matches_textbook_update():
    params, x, y = make_problem(batch=3)
    opt = rm.optim.Adam(lr=0.01)
    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=opt)
    mine = [p.copy() for p in params]
    ref = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    vg = rm.value_and_grad(mlp_loss, argnums=(0, 1, 2, 3))
    for t in range(1, 8):
        step(*mine, x, y)
        _, grads = vg(*ref, x, y)
        m = [0.9 * mi + 0.1 * g for mi, g in zip(m, grads)]
        v = [0.999 * vi + 0.001 * g * g for vi, g in zip(v, grads)]
        m_hat = [mi / (1 - 0.9**t) for mi in m]
        v_hat = [vi / (1 - 0.999**t) for vi in v]
        ref = [p - 0.01 * mh / (np.sqrt(vh) + 1e-8) for p, mh, vh in zip(ref, m_hat, v_hat)]
    for got, want in zip(mine, ref):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


def test_training_reduces_the_loss():
    params, x, y = make_problem(batch=8)
    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.5))
    losses = [step(*params, x, y) for _ in range(100)]
    assert losses[-1] < 0.1 * losses[0]


def test_read_only_or_non_contiguous_parameters_are_refused_before_any_change():
    params, x, y = make_problem()
    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.1))
    before = [p.copy() for p in params]
    params[2].flags.writeable = False
    with pytest.raises(rm.RasterError, match="writ"):
        step(*params, x, y)
    for got, want in zip(params, before):
        np.testing.assert_array_equal(got, want)
    params[2] = params[2].copy()
    strided = np.zeros((params[0].shape[0], 2 * params[0].shape[1]))[:, ::2]
    strided[...] = params[0]
    with pytest.raises(rm.RasterError, match="contiguous"):
        step(strided, *params[1:], x, y)
    for got, want in zip(params, before):
        np.testing.assert_array_equal(got, want)


def test_bad_parameter_index_is_an_error():
    params, x, y = make_problem()
    step = rm.compile_train_step(mlp_loss, params=(0, 9), optimizer=rm.optim.SGD())
    with pytest.raises(rm.RasterError, match="parameter index 9"):
        step(*params, x, y)


LIBM = {"exp", "expf", "log", "logf", "tanh", "tanhf", "pow", "powf", "sqrt", "sqrtf"}


def test_the_step_is_one_native_function_without_weight_gradient_buffers():
    params, x, y = make_problem(n_in=784, hidden=128, n_out=10)
    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.01))
    step(*params, x, y)
    loops = step.ir()
    # No 128x784 or 10x128 buffer is allocated: dW1 and dW2 never exist.
    allocs = re.findall(r"memref\.alloc\(\)[^:]*: memref<([0-9x]+)xf64>", loops)
    assert "128x784" not in allocs and "10x128" not in allocs, allocs
    assert "memref<128x784xf64>" in loops  # W1 itself, updated in place
    # The optimised LLVM module defines the step (plus its call wrappers, the
    # segments it is cut into, backend/segment_emit.py, and the vector-maths helpers
    # of backend/vmath/fallback.py: log's vector variants) and calls nothing but
    # those, intrinsics and libm (the entry points, compiled as a module of their own,
    # declare the step).
    llvm = step.llvm_ir_optimized
    name = "mlp_loss_train_step"
    segment = re.compile(rf"{name}\.segment[0-9]+")
    defined = set(re.findall(r"^define [^@]*@\"?([\w.]+)\"?\(", llvm, re.M))
    entries = {name, *(f"{name}_{entry}" for entry in ("packed", "checked", "pycall"))}
    helpers = {d for d in defined if segment.fullmatch(d) or d.startswith("rm.vm.")}
    assert defined - helpers <= entries, defined
    declared = set(re.findall(r"^declare [^@]*@\"?([\w.]+)\"?\(", llvm, re.M))
    assert all(d.startswith("llvm.") or d in LIBM or segment.fullmatch(d) or d == name for d in declared), declared


def test_skipping_inactive_relu_rows_changes_no_bit():
    """skip-zero-updates is exact: the step with and without it gives identical parameters."""
    from raster_mlir.compiler import DEFAULT_PIPELINE

    assert "skip-zero-updates" in DEFAULT_PIPELINE
    params, x, y = make_problem(batch=None, n_in=30, hidden=40)
    dense_update = DEFAULT_PIPELINE.replace(",skip-zero-updates", "")
    with_skip = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.1))
    without = rm.compile_train_step(mlp_loss, (0, 1, 2, 3), rm.optim.SGD(lr=0.1), pipeline=dense_update)
    a = [p.copy() for p in params]
    b = [p.copy() for p in params]
    for _ in range(10):
        assert with_skip(*a, x, y) == without(*b, x, y)
    for got, want in zip(a, b):
        np.testing.assert_array_equal(got, want)
    assert "scf.if" in with_skip.ir() and "scf.if" not in without.ir()
    # Some hidden units were inactive, so some rows were really skipped.
    h = np.maximum(params[0] @ x + params[1], 0)
    assert 0 < np.count_nonzero(h == 0) < h.size
