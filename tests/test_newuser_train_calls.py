"""Train steps called with keywords (before: a raw TypeError, "_call() got an unexpected keyword
argument 'x'") and with dicts/tuples of parameters (before: a DTypeError, "argument 0 ('p') is a dict")."""

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir.errors import DTypeError


def linear_loss(w, b, x, y):
    return rm.mean((x @ w + b - y) ** 2)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((3, 2)), rng.standard_normal(2), rng.standard_normal((5, 3)), rng.standard_normal((5, 2))


def _numpy_sgd(w, b, x, y, lr, steps):
    losses = []
    for _ in range(steps):
        r = x @ w + b - y
        losses.append(np.mean(r**2))
        gr = 2 * r / r.size
        w, b = w - lr * x.T @ gr, b - lr * gr.sum(0)
    return w, b, losses


def test_keywords_bind_to_the_loss_functions_parameters():
    w, b, x, y = _data()
    expected_w, expected_b, expected_losses = _numpy_sgd(w, b, x, y, 0.1, 3)
    step = rm.compile_train_step(linear_loss, params=(0, 1), optimizer=rm.optim.SGD(lr=0.1))
    losses = [step(w, b, x=x, y=y), step(w, b, x, y), step(y=y, x=x, b=b, w=w)]  # before and after the fast path
    np.testing.assert_allclose(losses, expected_losses)
    np.testing.assert_allclose(w, expected_w)
    np.testing.assert_allclose(b, expected_b)
    assert step.steps_taken == 3
    with pytest.raises(DTypeError, match=r"linear_loss: .*keyword\(s\) z: missing a required argument: 'y'"):
        step(w, b, x, z=y)


def test_keyword_only_parameters_and_gaps_are_refused_by_name():
    def loss(w, x, y=None, *, scale):
        return scale * rm.mean((x @ w) ** 2)

    w, _, x, _ = _data(1)
    step = rm.compile_train_step(loss, params=(0,), optimizer=rm.optim.SGD(lr=0.1))
    with pytest.raises(DTypeError, match=r"by position; the keyword\(s\) scale do not name .*\(w, x, y\)"):
        step(w, x, scale=2.0)


def test_pytree_parameters_are_updated_in_place_like_arrays():
    w, b, x, y = _data(2)
    expected_w, expected_b, expected_losses = _numpy_sgd(w, b, x, y, 0.05, 3)

    def loss(params, x, y):
        return linear_loss(params["w"], params["layer"][0], x, y)

    params = {"w": w.copy(), "layer": [b.copy()]}
    step = rm.compile_train_step(loss, params=(0,), optimizer=rm.optim.SGD(lr=0.05))
    losses = [step(params, x, y) for _ in range(2)] + [step(params, x=x, y=y)]
    np.testing.assert_allclose(losses, expected_losses)
    np.testing.assert_allclose(params["w"], expected_w)
    np.testing.assert_allclose(params["layer"][0], expected_b)
    assert step.steps_taken == 3


def test_pytree_parameters_with_adam_match_the_same_step_by_position():
    w, b, x, y = _data(3)
    by_position = rm.compile_train_step(linear_loss, params=(0, 1), optimizer=rm.optim.Adam(lr=0.01))
    by_tree = rm.compile_train_step(lambda p, x, y: linear_loss(*p, x, y), params=(0,), optimizer=rm.optim.Adam(lr=0.01))
    w1, b1, params = w.copy(), b.copy(), (w.copy(), b.copy())
    for _ in range(3):
        assert by_tree(params, x, y) == pytest.approx(by_position(w1, b1, x, y), rel=1e-12)
    np.testing.assert_allclose(params[0], w1, rtol=1e-12)
    np.testing.assert_allclose(params[1], b1, rtol=1e-12)


def test_run_over_a_dataset_with_pytree_parameters_matches_steps_by_position():
    w, b, x, y = _data(4)
    xs, ys = np.stack([x, x + 1.0, x - 0.5]), np.stack([y, -y, 2 * y])
    by_position = rm.compile_train_step(linear_loss, params=(0, 1), optimizer=rm.optim.SGD(lr=0.01))
    by_tree = rm.compile_train_step(
        lambda p, x, y: linear_loss(p["w"], p["b"], x, y), params=(0,), optimizer=rm.optim.SGD(lr=0.01)
    )
    params = {"w": w.copy(), "b": b.copy()}
    losses = by_tree.run(params, xs, ys)
    expected = [by_position(w, b, xs[n], ys[n]) for n in range(3)]
    np.testing.assert_allclose(losses, expected, rtol=1e-12)
    np.testing.assert_allclose(params["w"], w, rtol=1e-12)
    np.testing.assert_allclose(params["b"], b, rtol=1e-12)
