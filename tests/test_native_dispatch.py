"""The native call path of `@rm.jit` functions (backend/dispatch.py, backend/pycall.py).

A compiled signature is called through a builtin that checks the arguments,
allocates the outputs, runs and boxes the results natively. These tests hold
it to the Python path: the same numbers and result types, the same precise
errors for every argument it declines, no reference leaks, traces still traced.
"""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import raster_mlir as rm
from raster_mlir import nn
from raster_mlir.errors import DTypeError, NotContiguousError, ShapeError
from raster_mlir.frontend.trace_state import TRACES_OPEN


def _sum(x):
    return rm.sum(x)


def _exp(x):
    return rm.exp(x)


def _several(x, y):
    return x * y, rm.sum(x * y), nn.softmax(x), rm.max(y)


def _natively_dispatched(fn) -> bool:
    return type(fn._dispatch).__name__ == "builtin_function_or_method"


@settings(deadline=None)
@given(n=st.integers(1, 40), dtype=st.sampled_from([np.float64, np.float32]), seed=st.integers(0, 2**16))
def test_results_match_the_python_path(n, dtype, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    for body, args in ((_sum, (x,)), (_exp, (x,)), (_several, (x, y))):
        f = rm.jit(body)
        first = f(*args)  # the Python path compiles and installs the dispatcher
        assert _natively_dispatched(f)
        again = f(*args)
        reference = f.lower(*args).run_reference(*args)
        for got, python, want in zip(*(r if isinstance(r, tuple) else (r,) for r in (again, first, reference))):
            assert type(got) is type(python) is type(want)
            if isinstance(got, np.ndarray):
                assert got.dtype == dtype and got.shape == want.shape and got.flags.owndata and got.flags.writeable
            # Sums of n terms of either sign cancel: their error is a few ulps of the terms' magnitude, not
            # of the result (an f32 sum of 40 normals once came out 2.4e-7 from the reference at -0.0042).
            terms = n * float(max(np.max(np.abs(x)), np.max(np.abs(y * x))))
            atol = 4 * np.finfo(dtype).eps * terms
            np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=atol)


@pytest.mark.parametrize("argnums", [None, (1,), (0, 1)])
def test_value_and_grad_nesting(argnums):
    rng = np.random.default_rng(3)
    W, x = rng.standard_normal((3, 4)), rng.standard_normal(4)
    vg = rm.value_and_grad(lambda W, x: rm.sum(rm.tanh(W @ x)), argnums=argnums)
    first = vg(W, x)
    assert _natively_dispatched(vg)
    value, grads = vg(W, x)
    want_value, want_grads = vg.lower(W, x).run_reference(W, x)
    assert type(value) is float and type(grads) is tuple and len(grads) == len(want_grads) == len(first[1])
    np.testing.assert_allclose(value, want_value, rtol=1e-12)
    for got, want in zip(grads, want_grads):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    before = sys.getrefcount(W)
    for _ in range(200):
        vg(W, x)
    assert sys.getrefcount(W) == before


def test_scalar_results_are_python_floats_of_the_values():
    x32 = np.linspace(-1, 1, 7, dtype=np.float32)
    f = rm.jit(_sum)
    f(x32)
    got = f(x32)
    # The same kernel through the Python path (its 0-d f32 array): the boxed float is that value
    # exactly. (Not the reference interpreter: a vectorised sum may round differently.)
    (value,) = f.lower(x32).run_flat((x32,))
    assert value.dtype == np.float32 and value.ndim == 0
    assert type(got) is float and got == float(value)
    assert got == pytest.approx(float(np.float32(f.lower(x32).run_reference(x32))), abs=1e-6)


def test_a_fresh_array_per_call():
    x = np.arange(5.0)
    f = rm.jit(_exp)
    a, b = f(x), f(x)
    assert a is not b and not np.shares_memory(a, b)
    a[:] = 0.0
    np.testing.assert_allclose(b, np.exp(x))


def test_constants_of_equal_code_stay_apart():
    """Two functions whose code is shared (equal LLVM IR) but whose captured arrays differ."""
    x = np.ones(3)
    scale = np.array([1.0, 2.0, 3.0])
    f = rm.jit(lambda v: rm.sum(v * scale))
    assert f(x) == f(x) == 6.0
    scale[2] = 4.0  # a captured array is a constant of the trace: a new function sees the new one
    g = rm.jit(lambda v: rm.sum(v * scale))
    assert g(x) == g(x) == 7.0
    assert f(x) == 6.0


def test_declined_arguments_raise_the_precise_errors():
    x = np.ones(6)
    f = rm.jit(_exp)
    f(x)
    with pytest.raises(NotContiguousError, match="'x'"):
        f(np.ones(12)[::2])
    with pytest.raises(DTypeError, match="'x'"):
        f(np.ones(6, dtype=np.int64))
    with pytest.raises(TypeError, match="positional argument"):
        f(x, x)  # another arity: traced anew, and Python's own error
    with pytest.raises(DTypeError, match="'x'"):
        f("not an array")
    g = rm.jit(_several)
    g(x, x)
    with pytest.raises(ShapeError):
        g(x, np.ones(5))  # a second signature with mismatched shapes: the trace refuses it


def test_other_signatures_subclasses_and_numbers_take_the_python_path():
    f = rm.jit(_exp)
    x = np.linspace(0, 1, 4)
    np.testing.assert_allclose(f(x), np.exp(x))
    np.testing.assert_allclose(f(x[:3].copy()), np.exp(x[:3]))  # another signature
    np.testing.assert_allclose(f(x), np.exp(x))  # and back

    class Tagged(np.ndarray):
        pass

    np.testing.assert_allclose(f(x.view(Tagged)), np.exp(x))
    assert f(2.0) == pytest.approx(np.exp(2.0))


def test_the_dispatcher_declines_while_a_trace_is_open():
    x = np.ones(3)
    compiled = rm.jit(_sum).lower(x)
    dispatch = compiled.dispatcher(lambda *args: ("fallback", len(args)))
    if dispatch is None:
        pytest.skip("no native dispatcher on this interpreter")
    assert dispatch(x) == 3.0
    assert dispatch(x, x) == ("fallback", 2)
    TRACES_OPEN.value += 1
    try:
        assert dispatch(x) == ("fallback", 1)
    finally:
        TRACES_OPEN.value -= 1


def test_a_called_jit_function_is_still_traced_as_a_call():
    inner = rm.jit(_exp)
    x = np.ones(4)
    inner(x)  # installs the native dispatcher

    def outer(v):
        return rm.sum(inner(v)) + rm.sum(inner(x))  # a traced and a concrete argument

    c = rm.compile(outer, x)
    assert c.ir("traced").count("func.call") == 2
    assert c(x) == pytest.approx(2 * np.exp(1.0) * 4)


def test_no_reference_leaks():
    x, y = np.ones(8), np.full(8, 2.0)
    f, g = rm.jit(_exp), rm.jit(_several)
    f(x), g(x, y)
    before = sys.getrefcount(x), sys.getrefcount(y), sys.getrefcount(NotImplemented)
    for _ in range(500):
        f(x), g(x, y)
        with pytest.raises(NotContiguousError):
            f(np.ones(16)[::2])
    assert (sys.getrefcount(x), sys.getrefcount(y), sys.getrefcount(NotImplemented)) == before
    result = g(x, y)
    # Each array also has the reference of the dispatcher's result cache (test_result_recycling.py).
    assert sys.getrefcount(result) == 2 and all(sys.getrefcount(r) == 3 + isinstance(r, np.ndarray) for r in result)


def test_concurrent_calls_from_threads():
    f = rm.jit(_several)
    rng = np.random.default_rng(0)
    inputs = [(rng.standard_normal(64), rng.standard_normal(64)) for _ in range(4)]
    want = [f(*a) for a in inputs]
    failures = []

    def worker(k):
        for _ in range(300):
            got = f(*inputs[k])
            if not all(np.array_equal(a, b) for a, b in zip(got, want[k])):
                failures.append(k)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
