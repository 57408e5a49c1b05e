"""`@rm.jit` on methods binds like a function (JAX's jitted functions are descriptors); before,
`m(x)` said "missing a required argument: 'x'". What self's attributes become: bound_methods.py."""

from dataclasses import dataclass

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir.errors import DTypeError


class Dense:
    def __init__(self, W, b, scale=1.0):
        self.W, self.b, self.scale = W, b, scale
        self.name = "dense"

    @rm.jit
    def __call__(self, x):
        return rm.tanh(x @ self.W + self.b) * self.scale

    @rm.jit
    def loss(self, x, y, *, weight=1.0):
        return weight * rm.mean((self(x) - y) ** 2)


def _layer(rng, scale=1.0):
    return Dense(rng.standard_normal((3, 2)), rng.standard_normal(2), scale)


def test_methods_bind_and_see_reassigned_arrays_and_constants():
    rng = np.random.default_rng(0)
    layer, x = _layer(rng), rng.standard_normal((4, 3))
    np.testing.assert_allclose(layer(x), np.tanh(x @ layer.W + layer.b))
    layer.W = layer.W * 2.0  # a run-time argument: the next call sees it
    np.testing.assert_allclose(layer(x), np.tanh(x @ layer.W + layer.b))
    layer.scale = 3.0  # a constant: another variant, the right numbers
    np.testing.assert_allclose(layer(x), 3.0 * np.tanh(x @ layer.W + layer.b))
    assert len(Dense.__call__._method_variants) == 2
    other = _layer(rng)  # another instance with the same constants: the same variant, its own arrays
    np.testing.assert_allclose(other(x), np.tanh(x @ other.W + other.b))
    assert Dense.__call__ is Dense.__dict__["__call__"]  # through the class: the function itself


def test_methods_with_keywords_calls_of_methods_and_gradients():
    rng = np.random.default_rng(1)
    layer, x, y = _layer(rng), rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    expected = np.mean((np.tanh(x @ layer.W + layer.b) - y) ** 2)
    assert layer.loss(x, y) == pytest.approx(expected)
    assert layer.loss(x, y=y, weight=0.5) == pytest.approx(0.5 * expected)

    @rm.jit
    def outer(x):  # a method called inside a trace
        return rm.sum(layer(x))

    assert outer(x) == pytest.approx(np.sum(np.tanh(x @ layer.W + layer.b)))
    gx, gy = rm.grad(layer.loss)(x, y)
    residual = np.tanh(x @ layer.W + layer.b) - y
    np.testing.assert_allclose(gy, -2 * residual / residual.size)
    np.testing.assert_allclose(gx, (2 * residual / residual.size * (1 - np.tanh(x @ layer.W + layer.b) ** 2)) @ layer.W.T)


def test_attributes_that_are_neither_arrays_nor_constants_are_refused_by_name():
    rng = np.random.default_rng(2)
    layer = _layer(rng)
    layer.inner = _layer(rng)
    with pytest.raises(DTypeError, match=r"__call__: self.inner is a Dense; .*pass other values as arguments"):
        layer(np.ones((1, 3)))

    class Slotted:
        __slots__ = ("W",)

        @rm.jit
        def f(self, x):
            return x

    with pytest.raises(DTypeError, match="without __dict__"):
        Slotted().f(np.ones(2))


@dataclass(frozen=True)
class MLP:
    layers: list  # [(W, b), ...]: a pytree of arrays, run-time arguments
    depth: int  # a constant (range() needs a Python int)
    activation: object = rm.jit(rm.tanh)  # an @rm.jit function: a constant

    @rm.jit
    def __call__(self, x):
        for W, b in self.layers[: self.depth]:
            x = self.activation(x @ W + b)
        return x


def test_a_frozen_dataclass_with_a_list_of_layers_and_an_int_depth():
    rng = np.random.default_rng(3)
    model = MLP([(rng.standard_normal((3, 3)), rng.standard_normal(3)) for _ in range(3)], depth=2)
    x = rng.standard_normal((2, 3))
    expected = x
    for W, b in model.layers[:2]:
        expected = np.tanh(expected @ W + b)
    np.testing.assert_allclose(model(x), expected, rtol=1e-12)
    (gx,) = rm.grad(lambda x: rm.sum(model(x)))(x)
    inner = np.tanh(x @ model.layers[0][0] + model.layers[0][1])
    outer = 1 - np.tanh(inner @ model.layers[1][0] + model.layers[1][1]) ** 2
    np.testing.assert_allclose(gx, ((outer @ model.layers[1][0].T) * (1 - inner**2)) @ model.layers[0][0].T, rtol=1e-10)
