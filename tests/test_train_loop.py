"""TrainStep.run: a whole dataset in one native call, with cross-step fusion, equal to per-sample steps.

The schedules that keep the order of operations (`update_block=1`, or no
cross-step fusion) are checked bitwise here; the deferred-update schedule
(the default for SGD) is checked to rounding in test_defer_updates.py.
"""

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir import nn

from helpers import mlp_params


def mlp_loss(W1, b1, W2, b2, x, y):
    h = nn.relu(nn.dense(W1, x, b1))
    p = nn.softmax(nn.dense(W2, h, b2))
    return nn.cross_entropy(p, y)


def problem(n=100, n_in=20, hidden=16, n_out=5, dtype=np.float64, seed=1):
    rng = np.random.default_rng(seed)
    params = mlp_params(rng, n_in, hidden, n_out)
    X = rng.normal(size=(n, n_in))
    Y = np.eye(n_out)[np.argmax(X[:, :n_out], axis=1)]  # a learnable labelling
    return [p.astype(dtype) for p in params], X.astype(dtype), Y.astype(dtype)


def per_sample(optimizer, params, X, Y, epochs=1):
    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=optimizer)
    params = [p.copy() for p in params]
    losses = [step(*params, X[i], Y[i]) for _ in range(epochs) for i in range(len(X))]
    return params, np.array(losses)


@pytest.mark.parametrize("cross_step", [False, True])
def test_run_equals_100_separate_steps_bitwise(cross_step):
    """update_block=1 keeps every step's own update: the results are bitwise those of separate steps."""
    params, X, Y = problem()
    want_params, want_losses = per_sample(rm.optim.SGD(lr=0.1), params, X, Y)
    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.1))
    mine = [p.copy() for p in params]
    losses = step.run(*mine, X, Y, cross_step_fusion=cross_step, update_block=1)
    assert step.run_schedule == ("cross-step fusion" if cross_step else "step by step")
    assert losses.shape == (100,)
    np.testing.assert_array_equal(losses, want_losses)
    for got, want in zip(mine, want_params):
        np.testing.assert_array_equal(got, want)
    assert losses[-20:].mean() < losses[:20].mean()


def update_then_next_forward(module) -> bool:
    """Is there a row loop that stores into W1 (argument 0) and then reduces over a row of W1?"""
    from xdsl.dialects import func, memref, scf

    loop_fn = next(f for f in module.ops if isinstance(f, func.FuncOp) and f.sym_name.data.endswith("_loop"))
    w1 = loop_fn.body.block.args[0]
    for row_loop in loop_fn.walk():
        if not isinstance(row_loop, scf.ForOp):
            continue
        stored = False
        for op in row_loop.body.block.ops:
            stored = stored or any(isinstance(o, memref.StoreOp) and o.memref is w1 for o in op.walk())
            reads_w1 = any(isinstance(o, memref.LoadOp) and o.memref is w1 for o in op.walk())
            if stored and isinstance(op, scf.ForOp) and op.results and reads_w1:
                return True
    return False


def test_cross_step_fusion_merges_the_update_with_the_next_forward():
    params, X, Y = problem(n=10)
    fused = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.1))
    fused.run(*[p.copy() for p in params], X, Y, update_block=1)
    assert "@mlp_loss_train_step_loop" in fused.run_ir()
    assert update_then_next_forward(fused._last_loop.module)
    unfused = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.1))
    unfused.run(*[p.copy() for p in params], X, Y, cross_step_fusion=False)
    assert not update_then_next_forward(unfused._last_loop.module)


def test_run_with_adam_epochs_and_float32():
    params, X, Y = problem(n=30, dtype=np.float32)
    opt = rm.optim.Adam(lr=0.01)
    want_params, want_losses = per_sample(opt, params, X, Y, epochs=2)
    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=opt)
    mine = [p.copy() for p in params]
    losses = step.run(*mine, X, Y, epochs=2)
    assert step.run_schedule == "cross-step fusion"  # Adam's update is not rank one: no deferred updates
    assert losses.dtype == np.float32 and losses.shape == (60,)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-6)
    for got, want in zip(mine, want_params):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert step.steps_taken == 60


def test_run_refuses_bad_data():
    params, X, Y = problem(n=10)
    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD())
    with pytest.raises(rm.ShapeError, match="leading dimension"):
        step.run(*params, X, Y[:5])
    all_params = rm.compile_train_step(lambda a, b: rm.sum(a * b), params=(0, 1), optimizer=rm.optim.SGD())
    with pytest.raises(rm.RasterError, match="no data"):
        all_params.run(np.ones(3), np.ones(3))
    before = [p.copy() for p in params]
    params[0].flags.writeable = False
    with pytest.raises(rm.RasterError):
        step.run(*params, X, Y)
    for got, want in zip(params, before):
        np.testing.assert_array_equal(got, want)


def misaligned(a):
    """A C-contiguous copy of `a` whose data starts 8 bytes past a 64-byte boundary."""
    raw = np.empty(a.nbytes + 128, dtype=np.uint8)
    start = (-raw.ctypes.data % 64) + 8
    out = raw[start : start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


def test_run_on_misaligned_arrays_updates_the_callers_parameters():
    """run() works on aligned copies of large misaligned arrays and writes the parameters back."""
    params, X, Y = problem(n=40, n_in=100, hidden=64)
    want_params, want_losses = per_sample(rm.optim.SGD(lr=0.1), params, X, Y)
    mine = [misaligned(p) for p in params]
    Xm, Ym = misaligned(X), misaligned(Y)
    assert mine[0].ctypes.data % 64 == 8 and mine[0].nbytes >= 4096
    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.1))
    losses = step.run(*mine, Xm, Ym, update_block=1)
    np.testing.assert_array_equal(losses, want_losses)
    for got, want in zip(mine, want_params):
        np.testing.assert_array_equal(got, want)


def test_run_refuses_a_parameter_that_aliases_the_data():
    params, X, Y = problem(n=64, n_in=64, hidden=64)
    shared = misaligned(np.zeros((64, 64)))
    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD())
    with pytest.raises(rm.RasterError):
        step.run(shared, params[1], params[2], params[3], shared, Y)
