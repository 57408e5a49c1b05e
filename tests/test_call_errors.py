"""Errors a new user met calling compiled code (issue 18, items 4-6), each pinned down.

- `step.run(..., epochs=0)` returns no losses; a negative count is a RasterError
  (was numpy's "need at least one array to concatenate").
- A read-only or non-C-contiguous parameter of a train step raises the same
  classes as `@rm.jit` and the backend (ReadOnlyError / NotContiguousError),
  not a DTypeError.
- `np.sum(traced)` works like `x.sum()`; numpy options with no traced meaning
  are a TraceError at the user's line (was a bare TypeError about `out`).
- Call-time errors name the argument and its position; train-step errors carry
  the caller's source line; `step.run` with mismatched data says which
  arguments, which shapes and why.

Lines that must appear in a message end with a marker `# <name>`.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import raster_mlir as rm
from helpers import marker_line
from raster_mlir import nn

THIS_FILE = os.path.abspath(__file__)


def located_here(error: Exception, marker: str) -> bool:
    return f"{os.path.basename(THIS_FILE)}:{marker_line(THIS_FILE, marker)}" in str(error)


def mlp_loss(W1, b1, W2, b2, x, y):
    return nn.cross_entropy(nn.softmax(nn.dense(W2, nn.relu(nn.dense(W1, x, b1)), b2)), y)


@pytest.fixture
def model():
    rng = np.random.default_rng(0)
    return [rng.normal(size=(8, 4)), np.zeros(8), rng.normal(size=(3, 8)), np.zeros(3)]


@pytest.fixture(scope="module")
def step():
    return rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.1, momentum=0.9))


X, Y = np.random.default_rng(1).standard_normal((5, 4)), np.eye(3)[[0, 1, 2, 0, 1]]


# -- item 4: epochs ------------------------------------------------------------------------


def test_run_with_zero_epochs_returns_no_losses_and_changes_nothing(step, model):
    before = [p.copy() for p in model]
    taken = step.steps_taken
    losses = step.run(*model, X, Y, epochs=0)
    assert losses.shape == (0,) and losses.dtype == np.float64
    assert step.steps_taken == taken
    for p, q in zip(model, before):
        np.testing.assert_array_equal(p, q)
    assert step.run(*model, X, Y, epochs=2).shape == (10,)


@pytest.mark.parametrize("epochs", [-1, 1.5, True, "2"])
def test_run_refuses_a_bad_epoch_count(step, model, epochs):
    with pytest.raises(rm.RasterError, match="epochs must be a non-negative int") as info:
        step.run(*model, X, Y, epochs=epochs)  # <bad-epochs>
    assert located_here(info.value, "bad-epochs"), info.value


# -- item 5: one error class per problem, whoever is called ---------------------------------


def test_train_step_refuses_layouts_with_the_backends_classes(step, model):
    x, y = X[0], Y[0]
    read_only = model[0].copy()
    read_only.setflags(write=False)
    with pytest.raises(rm.ReadOnlyError) as info:
        step(read_only, *model[1:], x, y)  # <read-only-param>
    assert "argument 0 ('W1')" in str(info.value) and located_here(info.value, "read-only-param")
    fortran = np.asfortranarray(model[0])
    with pytest.raises(rm.NotContiguousError) as info:
        step(fortran, *model[1:], x, y)
    assert "argument 0 ('W1')" in str(info.value)
    # The same array given to a plain @rm.jit function raises the same class.
    with pytest.raises(rm.NotContiguousError):
        rm.jit(mlp_loss)(fortran, *model[1:], x, y)
    np.testing.assert_array_equal(read_only, model[0])  # nothing ran
    assert issubclass(rm.ReadOnlyError, ValueError) and issubclass(rm.NotContiguousError, rm.ShapeError)


# -- item 6: messages ------------------------------------------------------------------------


def test_numpy_reductions_of_traced_arrays():
    x = np.arange(6.0).reshape(2, 3)
    got = rm.jit(lambda a: np.sum(a) + np.mean(a, axis=0) + np.max(a, axis=1, keepdims=True))(x)
    np.testing.assert_allclose(got, np.sum(x) + np.mean(x, axis=0) + np.max(x, axis=1, keepdims=True))
    with pytest.raises(rm.TraceError, match=r"np.sum / x.sum\(\).*option\(s\) out") as info:
        rm.jit(lambda a: np.sum(a, out=a))(x)  # <numpy-out>
    assert located_here(info.value, "numpy-out")


def test_call_errors_name_the_argument_and_its_position(step, model):
    jitted = rm.jit(mlp_loss)
    bad_x = np.ones(4, dtype=np.int64)
    with pytest.raises(rm.DTypeError) as info:
        jitted(*model, bad_x, Y[0])
    assert "mlp_loss: argument 4 ('x') has dtype int64" in str(info.value)
    with pytest.raises(rm.DTypeError) as info:
        step(*model, bad_x, Y[0])  # <step-dtype>
    assert "argument 4 ('x')" in str(info.value) and located_here(info.value, "step-dtype")
    with pytest.raises(rm.RasterError) as info:
        step(2.0, *model[1:], X[0], Y[0])
    assert "argument 0 ('W1') is a parameter" in str(info.value)


def test_run_with_mismatched_data_says_which_arguments_and_why(step, model):
    with pytest.raises(rm.ShapeError) as info:
        step.run(*model, X[0], Y)  # <run-1d>
    message = str(info.value)
    for part in ("argument 4 ('x') (4,): N = 4", "argument 5 ('y') (5, 3): N = 5", "stacks of samples", "sample[None]"):
        assert part in message, message
    assert located_here(info.value, "run-1d")
    with pytest.raises(rm.RasterError, match=r"argument 4 \('x'\) is data") as info:
        step.run(*model, 1.0, Y)


def test_a_jit_function_called_with_the_wrong_number_of_arguments_names_the_argument():
    @rm.jit
    def scaled_dot(x, y):
        return rm.sum(x * y)

    x = np.ones(3)
    assert scaled_dot(x, x) == 3.0
    with pytest.raises(rm.DTypeError, match=r"scaled_dot: called with 1 argument\(s\): missing a required argument: 'y'") as missing:
        scaled_dot(x)  # <arity-missing>
    assert isinstance(missing.value, TypeError) and located_here(missing.value, "arity-missing")
    with pytest.raises(rm.DTypeError, match=r"scaled_dot: called with 3 argument\(s\): too many positional arguments"):
        scaled_dot(x, x, x)


def test_every_transform_names_a_missing_argument():
    def weighted(x, w):
        return rm.sum(x * w)

    x = np.ones(3)
    for transform in (rm.grad(weighted), rm.compile_train_step(weighted, params=(0,))):
        with pytest.raises(rm.DTypeError, match=r"weighted: called with 1 argument\(s\): missing a required argument: 'w'"):
            transform(x)
