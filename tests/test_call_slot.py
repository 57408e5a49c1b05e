"""`f(x)` of an `@rm.jit` function through the native tp_call of backend/call_slot.py.

The class's tp_call reads the instance's `_dispatch` and calls it, as the
`__call__` property does; these tests hold it to the property path (a
subclass keeps CPython's generic slot, so it is the reference): the same
results, the same errors for keywords and a missing attribute, and the
attribute rebound during a call (a new signature) keeps working.
"""

from __future__ import annotations

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir.backend import call_slot
from raster_mlir.jit import JitFunction


class PropertyPath(JitFunction):
    """CPython gives a subclass its generic tp_call: `__call__` is found in the MRO (the property)."""


def _body(a):
    return rm.exp(a) * 2.0


def _native(fn, *args):
    fn(*args)
    if type(fn._dispatch).__name__ != "builtin_function_or_method":
        pytest.skip("no native dispatcher here")
    return fn


def test_installed_once_a_native_dispatcher_exists_and_equal_to_the_property_path():
    x = np.linspace(0.0, 1.0, 50)
    f, g = _native(rm.jit(_body), x), _native(PropertyPath(_body), x)
    assert JitFunction in call_slot._installed and PropertyPath not in call_slot._installed
    np.testing.assert_array_equal(f(x), g(x))
    np.testing.assert_array_equal(f(x), f.__call__(x))  # (the property is still there)


def test_keywords_and_a_missing_attribute_give_the_property_paths_errors():
    x = np.ones(4)
    f, g = _native(rm.jit(_body), x), _native(PropertyPath(_body), x)
    messages = []
    for fn in (f, g):
        with pytest.raises(TypeError) as caught:
            fn(x, extra=1)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    del f._dispatch
    with pytest.raises(AttributeError, match="_dispatch"):
        f(x)


def test_the_attribute_rebound_during_the_call():
    """Alternating signatures: each call of the other one goes to `_call`, which rebinds `_dispatch`."""
    f = rm.jit(_body)
    x64, x32 = np.arange(6.0), np.arange(6.0, dtype=np.float32)
    for _ in range(50):
        assert f(x64).dtype == np.float64 and f(x32).dtype == np.float32
    np.testing.assert_allclose(f(x32), np.exp(x32) * 2.0, rtol=1e-6)


def test_compiled_functions_are_called_the_same_way():
    from raster_mlir.errors import ShapeError
    from raster_mlir.jit import CompiledFunction

    x = np.linspace(0.0, 1.0, 20)
    c = rm.compile(_body, x)
    if type(c._dispatch).__name__ != "builtin_function_or_method":
        pytest.skip("no native dispatcher here")
    assert CompiledFunction in call_slot._installed
    np.testing.assert_array_equal(c(x), c._call(x))
    with pytest.raises(ShapeError, match="compiled for"):
        c(np.ones(3))
