"""Bugs found by differential fuzzing of the array ops and loops (tests/fuzz/), pinned down.

Each test is the smallest program of a fuzzer failure, checked against a numpy
reference of the same computation.
"""

from __future__ import annotations

import numpy as np
import pytest

import raster_mlir as rm


def damped(c):
    return 0.9 * c + 0.1 * np.cos(c)


@pytest.mark.parametrize("shape", [(), (1,), (1, 1), (2,), (3, 1)])
def test_gradient_through_a_while_loop_with_a_one_element_carry(shape):
    """skip-zero-updates hoisted the load of the step's carry above the reverse loop.

    The reverse loop of a while loop reads each step's carry back from its
    growable tape (`raster.rt_tape_read` into a workspace buffer) and loads it.
    For a one-element carry that load has no loop index, and the pass's
    invariant-load hoisting did not count the tape read as a write: every step
    used the buffer's contents before the loop (d cos = 0, gradient 0.9**4).
    """

    def f(b):
        return rm.while_loop(lambda s: s[0] < 4, lambda s: (s[0] + 1, 0.9 * s[1] + 0.1 * rm.cos(s[1])), (0, b))[1]

    b = np.full(shape, 0.7)
    (got,) = rm.grad(lambda b: rm.sum(f(b)))(b)
    step = 1e-6
    want = (damped(damped(damped(damped(b + step)))) - damped(damped(damped(damped(b - step))))) / (2 * step)
    np.testing.assert_allclose(got, want, rtol=1e-8)


@pytest.mark.parametrize("shape", [(0, 4), (3, 0), (2, 0, 3)])
def test_flattening_an_empty_array(shape):
    """lower-to-loops divided by the zero side while decomposing the index of a reshape (cumsum(axis=None))."""
    a = np.ones(shape)
    assert rm.jit(lambda a: rm.reshape(a, (0,)))(a).shape == (0,)
    assert rm.jit(lambda a: rm.cumsum(a))(a).shape == (0,)
    (g,) = rm.grad(lambda a: rm.sum(rm.cumsum(a) * 2.0))(a)
    assert g.shape == shape


@pytest.mark.parametrize("reverse", [False, True])
def test_gradient_of_a_scan_over_no_elements(reverse):
    """The reverse pass rewrote the scan as a for loop whose body indexed xs[i] on an empty axis (a ShapeError).

    JAX's answer: the carry is the init, ys is empty, the gradient flows to the init only.
    """
    xs = np.ones((0, 4))

    def loss(init, xs):
        carry, ys = rm.scan(lambda c, x: (0.7 * c + rm.sin(x), c * x), init, xs, reverse=reverse)
        return rm.sum(carry * carry) + rm.sum(ys)

    init = np.array([0.5, -1.0, 2.0, 0.25])
    value, (d_init, d_xs) = rm.value_and_grad(loss, argnums=(0, 1))(init, xs)
    assert value == pytest.approx(float(np.sum(init * init)))
    np.testing.assert_allclose(d_init, 2 * init, rtol=1e-15)
    assert d_xs.shape == (0, 4)
