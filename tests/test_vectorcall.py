"""`f(x)` of `@rm.jit` and compiled functions as a PEP 590 vectorcall (backend/call_slot.py).

Once a native dispatcher exists, CPython calls these objects through the
address held in their `_vectorcall` word, with the arguments as an array
(no tuple), straight into the METH_FASTCALL dispatcher. These tests hold it
to the tp_call path (the same instance with `_vectorcall = 0`) and to the
property path (a subclass): the same results and errors, argument counts
beyond the fast cases, calls made with a tuple (`f(*args)`, `map`,
`functools.partial`), no leaked references, and a replaced `__call__`.
"""

from __future__ import annotations

import copy
import functools
import operator
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import raster_mlir as rm
from raster_mlir.backend import call_slot
from raster_mlir.errors import DTypeError, ShapeError
from raster_mlir.jit import CompiledFunction, JitFunction


class PropertyPath(JitFunction):
    """A subclass gets CPython's generic tp_call and no vectorcall flag: the reference path."""


def _vectorcalled(fn, *args):
    fn(*args)
    if not fn._vectorcall:
        pytest.skip("no native vectorcall here")
    return fn


def _seven(a, b, c, d, e, f, g):
    return (a * b + c) * d - e / (1.0 + f * f) + g


def test_the_classes_take_vectorcalls_and_subclasses_keep_the_property_path():
    x = np.linspace(-1.0, 1.0, 9)
    f = _vectorcalled(rm.jit(lambda a: rm.exp(a) * 2.0), x)
    c = rm.compile(lambda a: rm.tanh(a), x)
    g = PropertyPath(lambda a: rm.exp(a) * 2.0)
    g(x)
    assert JitFunction.__flags__ & call_slot.Py_TPFLAGS_HAVE_VECTORCALL
    assert CompiledFunction.__flags__ & call_slot.Py_TPFLAGS_HAVE_VECTORCALL and c._vectorcall == f._vectorcall
    assert not PropertyPath.__flags__ & call_slot.Py_TPFLAGS_HAVE_VECTORCALL
    np.testing.assert_array_equal(f(x), g(x))
    np.testing.assert_array_equal(c(x), np.tanh(x))


@settings(deadline=None)
@given(n=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_seven_arguments_match_the_tp_call_path_and_numpy(n, seed):
    """Seven inputs: the arguments array read in place, results as numpy computes them; a twin whose
    vectorcall word is 0 goes through tp_call (the path of every call before)."""
    rng = np.random.default_rng(seed)
    args = tuple(rng.standard_normal(n) for _ in range(7))
    f = _vectorcalled(rm.jit(_seven), *args)
    twin = rm.jit(_seven)
    twin(*args)
    twin._vectorcall = 0
    want = _seven(*args)
    np.testing.assert_allclose(f(*args), want, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(f(*args), twin(*args))


def test_calls_with_a_tuple_or_through_other_callables():
    x = np.arange(6.0)
    f = _vectorcalled(rm.jit(lambda a: a * 3.0), x)
    for result in (f(*(x,)), f(*[x], **{}), functools.partial(f)(x), next(map(f, [x])), copy.copy(f)(x)):
        np.testing.assert_array_equal(result, x * 3.0)


def test_declined_calls_get_the_same_errors_and_the_other_signatures_run():
    x = np.arange(4.0)
    f = _vectorcalled(rm.jit(lambda a: a + 1.0), x)
    with pytest.raises(DTypeError, match="'a'"):
        f(np.arange(4, dtype=np.int8))
    with pytest.raises(TypeError):
        f(x, x)
    def with_a_keyword(h):  # (one source line for both calls: the error names it)
        return h(x, extra=1)

    with pytest.raises(TypeError) as vector:
        with_a_keyword(f)
    g = PropertyPath(lambda a: a + 1.0)
    g(x)
    with pytest.raises(TypeError) as reference:
        with_a_keyword(g)
    assert str(vector.value) == str(reference.value)
    np.testing.assert_array_equal(f(np.arange(3.0)), np.arange(3.0) + 1.0)  # (another signature)
    c = rm.compile(lambda a: a * 2.0, x)
    with pytest.raises(ShapeError, match="compiled for"):
        c(np.ones(3))


def test_no_reference_is_leaked():
    x, bad = np.arange(16.0), np.arange(16, dtype=np.int8)
    f = _vectorcalled(rm.jit(lambda a: rm.sum(a * a)), x)
    g = _vectorcalled(rm.jit(lambda a: a - 1.0), x)
    target = f._dispatch
    before = (sys.getrefcount(x), sys.getrefcount(bad), sys.getrefcount(target), sys.getrefcount(f))
    for _ in range(1000):
        f(x)
        g(x)
        try:
            f(bad)  # (declined: the Python path)
        except DTypeError:
            pass
    assert (sys.getrefcount(x), sys.getrefcount(bad), sys.getrefcount(target), sys.getrefcount(f)) == before


def _fresh_class():
    class Fresh:
        __slots__ = ("_dispatch", "_vectorcall", "__dict__", "__weakref__")
        __call__ = property(operator.attrgetter("_dispatch"))

    return Fresh


def test_a_replaced_call_and_a_missing_member_are_honoured():
    """A class whose `__call__` is replaced after installation: CPython rewrites tp_call but keeps the
    vectorcall flag, so the vectorcall must notice and call the new `__call__`."""
    Fresh = _fresh_class()
    if not call_slot.prepare_vectorcall(Fresh, "_vectorcall"):
        pytest.skip("no vectorcall member layout here")
    assert not call_slot.prepare_vectorcall(Fresh, "_vectorcall")  # (prepared once: no longer an object member)
    instance = Fresh()
    instance._dispatch = lambda *a, **k: ("member", a, k)
    if not call_slot.install(Fresh, "_dispatch", instance) or not instance._vectorcall:
        pytest.skip("no native vectorcall here")
    assert instance(1, 2, key=3) == ("member", (1, 2), {"key": 3})
    other = Fresh()
    other._dispatch = lambda *a: ("other", a)
    assert other(4) == ("other", (4,))  # (its vectorcall word is 0: through tp_call)
    del instance._dispatch
    with pytest.raises(AttributeError, match="_dispatch"):
        instance(1)
    Fresh.__call__ = lambda self, *a, **k: ("replaced", a, k)
    assert instance(5, key=6) == ("replaced", (5,), {"key": 6})


def test_prepare_refuses_what_is_not_an_object_member():
    class NoSlots:
        pass

    class WrongName:
        __slots__ = ("_other",)

    assert not call_slot.prepare_vectorcall(NoSlots, "_vectorcall")
    assert not call_slot.prepare_vectorcall(WrongName, "_vectorcall")


def test_the_vectorcall_word_refuses_anything_but_zero_or_its_address():
    """CPython calls whatever address the word holds: a wrong value would crash the process, so the
    attribute takes only 0 (the tp_call path) or the installed address; copies keep working."""
    f = rm.jit(_seven)
    args = tuple(np.arange(3.0) + k for k in range(7))
    f(*args)
    address = f._vectorcall
    if not address:
        pytest.skip("vectorcall is not installed on this interpreter")
    for bad in (12345, address + 1, "x", 1.5, None):
        with pytest.raises(ValueError, match="_vectorcall"):
            f._vectorcall = bad
    assert f._vectorcall == address
    with pytest.raises(AttributeError):
        del f._vectorcall
    np.testing.assert_allclose(copy.copy(f)(*args), _seven(*args))
    f._vectorcall = 0
    np.testing.assert_allclose(f(*args), _seven(*args))
    f._vectorcall = address
    np.testing.assert_allclose(f(*args), _seven(*args))
