"""Functional updates with static basic indices, `x.at[key].set(v)` / `rm.at_add(x, key, v)`, against numpy's `x[key] = v`.

Keys are drawn by hypothesis as in test_array_ops.py (ints, negative and
stepped slices, `...`, None); values broadcast to x[key]'s shape. Eager,
interpreted and native, f32 and f64; gradients by the random-direction check;
a value that does not broadcast is a ShapeError at the user's line.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from array_checks import DTYPES, NATIVE, draw_array, draw_shape, three_ways
from helpers import marker_line
from hypothesis import given
from hypothesis import strategies as st
from test_array_ops import basic_keys

import raster_mlir as rm

THIS_FILE = os.path.abspath(__file__)


def _value_shape(data, target):
    """target with leading axes dropped and some axes of size 1 (numpy's broadcasting into x[key])."""
    keep = data.draw(st.integers(0, len(target)), label="value rank")
    return tuple(d if data.draw(st.booleans(), label="keep axis") else 1 for d in target[len(target) - keep :])


def _numpy_update(x, key, v, accumulate):
    y = x.copy()
    if accumulate:
        y[key] += v
    else:
        y[key] = v
    return y


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@NATIVE
@given(data=st.data())
def test_static_updates(dtype, data):
    shape = draw_shape(data, 1, 3)
    x = draw_array(data, shape, dtype)
    keys = [data.draw(basic_keys(shape), label=f"key {k}") for k in range(2)]
    values = [draw_array(data, _value_shape(data, x[k].shape), dtype, label=f"value {k}") for k in keys]

    def updates(x, a, b):
        return rm.at_set(x, keys[0], a), rm.at_add(x, keys[1], b)

    want = (_numpy_update(x, keys[0], values[0], False), _numpy_update(x, keys[1], values[1], True))
    three_ways(updates, [x, *values], want, dtype)


def test_static_update_gradients():
    rng = np.random.default_rng(0)
    x, v = rng.standard_normal((4, 7)), rng.standard_normal(3)

    def f(x, v):
        y = x.at[1:-1, 5:2:-1].set(v * x[0, :3]).at[::2, None, 1].add(v[0] * v[1])
        return rm.sum(y * y * x)

    report = rm.check_grads(f, x, v)
    assert report.ok, report


def test_heat_step_with_boundary_updates():
    u = np.random.default_rng(1).random(33)

    def step(u):
        u = u.at[1:-1].set(u[1:-1] + 0.2 * (u[2:] - 2 * u[1:-1] + u[:-2]))
        return u.at[0].set(0.0).at[-1:].set(1.0)

    want = u.copy()
    want[1:-1] = u[1:-1] + 0.2 * (u[2:] - 2 * u[1:-1] + u[:-2])
    want[0], want[-1] = 0.0, 1.0
    np.testing.assert_allclose(rm.jit(step)(u), want, rtol=1e-14)
    # a numpy value is cast to the array's dtype, as numpy's assignment does
    u32 = u.astype(np.float32)
    assert rm.jit(lambda u: u.at[2:4].set(np.zeros(2)))(u32).dtype == np.float32


def value_does_not_broadcast(x):
    return x.at[1:3].set(np.ones(4))  # <broadcast>


def test_value_that_does_not_broadcast_names_the_line():
    with pytest.raises(rm.ShapeError) as info:
        rm.jit(value_does_not_broadcast)(np.ones((5, 6)))
    head, _, where = str(info.value).partition("\n  at ")
    assert f"test_static_updates.py:{marker_line(THIS_FILE, 'broadcast')}" in where
    assert "(4,)" in head and "x[1:3]" in head and "(2, 6)" in head, head


def assigns_in_place(x):
    x[1:3] = 0.0  # <assign>
    return x


def test_in_place_assignment_points_to_at_set():
    with pytest.raises(rm.TraceError, match=r"immutable.*x\.at\[key\]\.set\(v\)") as info:
        rm.jit(assigns_in_place)(np.ones(4))
    assert f"test_static_updates.py:{marker_line(THIS_FILE, 'assign')}" in str(info.value)
