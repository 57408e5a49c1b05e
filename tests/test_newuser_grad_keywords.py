"""Keyword arguments of `rm.grad` / `value_and_grad` functions (passed to f, not differentiated, as in
JAX) and `rm.check_grads` with pytree arguments (before: "unexpected keyword argument 'shift'" and
"argument 0 must be an array or a number, got dict")."""

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir.errors import DTypeError


def shifted_energy(x, w, shift=1.0, *, power=2.0):
    return rm.sum(w * (x + shift) ** power)


def test_grad_and_value_and_grad_take_keywords_which_are_not_differentiated():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(4), rng.standard_normal(4)
    gx, gw = rm.grad(shifted_energy)(x, w, shift=3.0)
    np.testing.assert_allclose(gx, 2 * w * (x + 3.0))
    np.testing.assert_allclose(gw, (x + 3.0) ** 2)
    gx = rm.grad(shifted_energy, argnums=0)(x, w=w, power=3.0)  # keywords may name positional parameters
    np.testing.assert_allclose(gx, 3 * w * (x + 1.0) ** 2)
    value, (gw,) = rm.value_and_grad(shifted_energy, argnums=(1,))(x, w, shift=np.float64(-0.5))
    assert value == pytest.approx(np.sum(w * (x - 0.5) ** 2))
    np.testing.assert_allclose(gw, (x - 0.5) ** 2)


def test_has_aux_with_keywords_and_a_bad_keyword():
    x = np.arange(3.0)

    def loss(x, *, scale):
        y = x * scale
        return rm.sum(y * y), {"y": y}

    (value, aux), gx = rm.value_and_grad(loss, argnums=0, has_aux=True)(x, scale=2.0)
    assert value == pytest.approx(np.sum((2 * x) ** 2))
    np.testing.assert_allclose(aux["y"], 2 * x)
    np.testing.assert_allclose(gx, 8 * x)
    with pytest.raises(DTypeError, match="unexpected keyword argument 'scael'"):
        rm.grad(shifted_energy)(x, x, scael=2.0)


def test_check_grads_with_pytree_arguments_checks_every_leaf_of_the_selected_ones():
    rng = np.random.default_rng(1)
    params = {"W": rng.standard_normal((3, 2)), "out": [rng.standard_normal(2)]}
    x = rng.standard_normal((4, 3))

    def model(params, x):
        return rm.tanh(x @ params["W"]) * params["out"][0]

    report = rm.check_grads(model, params, x, n_directions=2)
    assert report.ok and sorted({c.argnum for c in report.checks}) == [0, 1, 2] and len(report.checks) == 6
    report = rm.check_grads(model, params, x, argnums=0, n_directions=1)
    assert sorted(c.argnum for c in report.checks) == [0, 1]  # the leaves of params only
