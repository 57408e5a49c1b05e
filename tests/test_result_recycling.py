"""The native dispatcher reuses a small result array that nobody holds any more (backend/dispatch.py).

A result is handed out again only when the dispatcher's cache holds the only
reference and the array is as it was made; these tests hold every way a user
can still see or have changed a dropped result against that, and check that
reuse does happen, that large results are not cached and that the cache is
released with the function.
"""

from __future__ import annotations

import gc
import sys
import weakref

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir.backend import dispatch, numpy_abi

pytestmark = pytest.mark.skipif(
    numpy_abi.probe_recycling() is None, reason="no verified reference-count layout (results are not recycled)"
)


def _exp(x):
    return rm.exp(x)


def _pair(x):
    return x * 2.0, rm.sum(x)


def _compiled(fn, x):
    f = rm.jit(fn)
    f(x)
    assert type(f._dispatch).__name__ == "builtin_function_or_method", "not on the native path"
    return f


def test_a_dropped_result_is_reused_and_holds_the_new_values():
    x = np.linspace(-1.0, 1.0, 100)
    f = _compiled(_exp, x)
    first = f(x)
    first[:] = -7.0
    address = first.ctypes.data
    del first
    again = f(x)
    assert again.ctypes.data == address
    np.testing.assert_allclose(again, np.exp(x), rtol=1e-12)


def test_a_loop_rebinding_its_result_alternates_between_two_arrays():
    x = np.arange(10.0)
    f = _compiled(_exp, x)
    seen = set()
    y = f(x)
    for _ in range(6):
        y = f(x)  # the previous y is still bound during the call
        seen.add(y.ctypes.data)
    assert len(seen) == 2


@pytest.mark.parametrize(
    "keep",
    [
        lambda r: r[2:],  # a view: its base is the result
        lambda r: memoryview(r),  # an exported buffer
        lambda r: weakref.ref(r),  # a weak reference could still read it
        lambda r: [r],  # simply held
    ],
    ids=["view", "memoryview", "weakref", "held"],
)
def test_a_result_someone_can_still_reach_is_never_overwritten(keep):
    x = np.arange(8.0)
    f = _compiled(_exp, x)
    result = f(x)
    result[:] = 5.0
    handle = keep(result)
    del result
    for _ in range(3):
        np.testing.assert_allclose(f(x), np.exp(x), rtol=1e-12)
    if isinstance(handle, weakref.ref):
        assert handle() is not None  # (alive: the cache holds it) and unchanged
        seen = handle()
    elif isinstance(handle, list):
        seen = handle[0]
    else:
        seen = np.asarray(handle)
    assert np.all(seen == 5.0)


@pytest.mark.parametrize(
    "change",
    [
        lambda r: setattr(r, "shape", (2, 4)),
        lambda r: r.setflags(write=False),
        lambda r: r.resize(16, refcheck=False),
        lambda r: setattr(r, "dtype", np.int64),
    ],
    ids=["reshaped", "read-only", "resized", "retyped"],
)
def test_a_result_the_user_changed_is_not_reused(change):
    x = np.arange(8.0)
    f = _compiled(_exp, x)
    result = f(x)
    change(result)
    address = result.ctypes.data
    del result
    fresh = f(x)
    assert fresh.shape == (8,) and fresh.dtype == np.float64 and fresh.flags.writeable and fresh.flags.owndata
    assert fresh.ctypes.data != address or fresh.strides == (8,)
    np.testing.assert_allclose(fresh, np.exp(x), rtol=1e-12)


def test_an_argument_is_never_a_recycled_output():
    x = np.arange(6.0)
    f = _compiled(_exp, x)
    y = f(x)
    z = f(y)  # y is the cached result and the argument: it must not be written
    np.testing.assert_allclose(y, np.exp(x), rtol=1e-12)
    np.testing.assert_allclose(z, np.exp(np.exp(x)))


def test_tuple_results_and_scalars():
    x = np.arange(5.0)
    f = _compiled(_pair, x)
    a, s = f(x)
    a[:] = 0.0
    del a
    b, t = f(x)
    np.testing.assert_array_equal(b, x * 2.0)
    assert s == t == 10.0


def test_large_results_are_not_cached():
    n = dispatch.RECYCLE_BYTES // 8
    x = np.ones(n)
    f = _compiled(_exp, x)
    result = f(x)
    assert sys.getrefcount(result) == 2  # (the argument of getrefcount and `result`: no cache)


def test_the_cache_is_released_with_the_function():
    x = np.arange(4.0)
    f = _compiled(_exp, x)
    result = f(x)
    watch = weakref.ref(result)
    del result
    assert watch() is not None  # the cache holds it
    del f
    gc.collect()
    assert watch() is None
