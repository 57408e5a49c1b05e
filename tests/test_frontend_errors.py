"""Python constructs that cannot be traced raise RasterError subclasses naming the construct and the user's line.

Each offending line ends with a marker (`# <name>`); the test asserts that the
message contains `test_frontend_errors.py:<that line>` and words naming the
construct. After any such error the tracer must be left clean: eager calls
work again and the same function can be traced with good arguments.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import raster_mlir as rm
from helpers import marker_line
from raster_mlir import nn

THIS_FILE = os.path.abspath(__file__)
BASENAME = os.path.basename(THIS_FILE)


def line_of(marker: str) -> int:
    return marker_line(THIS_FILE, marker)


def assert_error(exc_info, marker: str, *words: str) -> str:
    """`words` must be in the message proper; the location (`at file:line: source`) is checked apart,
    since the quoted source line could itself contain the words."""
    msg = str(exc_info.value)
    head, _, where = msg.partition("\n  at ")
    location = f"{BASENAME}:{line_of(marker)}"
    assert location in where, f"{location} not in the location of: {msg!r}"
    missing = [w for w in words if w not in head]
    assert not missing, f"message lacks {missing}: {msg!r}"
    return msg


@pytest.fixture(autouse=True)
def tracer_is_clean_afterwards():
    yield
    from raster_mlir.frontend.tracer import active_scope

    assert active_scope() is None, "a failed trace left a scope on the tracer stack"
    out = rm.add(np.ones(2), 1.0)  # eager again
    assert isinstance(out, np.ndarray)


X = np.array([1.0, -2.0, 3.0])


# -- data-dependent control flow and conversions --------------------------------


def branchy(x):
    if x > 0:  # <if>
        return x
    return -x


def test_data_dependent_if():
    with pytest.raises(rm.TraceError) as info:
        rm.jit(branchy)(X)
    assert_error(info, "if", "bool()", "`if`")


def loop_on_value(x):
    while rm.sum(x) > 0:  # <while>
        x = x - 1.0
    return x


def test_data_dependent_while():
    with pytest.raises(rm.TraceError) as info:
        rm.compile(loop_on_value, X)
    assert_error(info, "while", "bool()")


def negated(x):
    return x if not x else -x  # <not>


def test_not_of_a_traced_value():
    with pytest.raises(rm.TraceError) as info:
        rm.compile(negated, X)
    assert_error(info, "not", "bool()")


def to_float(x):
    return rm.sum(x) * float(rm.max(x))  # <float>


def test_float_of_a_traced_value():
    with pytest.raises(rm.TraceError) as info:
        rm.compile(to_float, X)
    assert_error(info, "float", "float()", "() f64")


def to_int(x):
    return x * int(rm.sum(x))  # <int>


def test_int_of_a_traced_value():
    with pytest.raises(rm.TraceError) as info:
        rm.compile(to_int, X)
    assert_error(info, "int", "int()")


def indexed(x):
    return x[[0, 2]] + 1.0  # <index>


def test_advanced_indexing_of_a_traced_value():
    with pytest.raises(rm.TraceError) as info:
        rm.compile(indexed, X)
    assert_error(info, "index", "indexing with list", "basic indexing")


def out_of_bounds(x):
    return x[3] + 1.0  # <bounds>


def test_index_out_of_bounds():
    with pytest.raises(IndexError) as info:
        rm.compile(out_of_bounds, X)
    assert isinstance(info.value, rm.ShapeError)
    assert_error(info, "bounds", "index 3", "axis 0 with size 3")


def sliced(x):
    return x[::0]  # <slice>


def test_slicing_with_a_zero_step():
    with pytest.raises(rm.ShapeError) as info:
        rm.compile(sliced, X)
    assert_error(info, "slice", "step", "zero")


def iterated(x):
    total = 0.0
    for v in rm.sum(x):  # <iter>
        total = total + v
    return total


def test_iterating_over_a_0d_traced_value():
    with pytest.raises(rm.TraceError) as info:
        rm.compile(iterated, X)
    assert_error(info, "iter", "iteration", "0-d")


def as_numpy(x):
    return np.asarray(x) * 2.0  # <asarray>


def test_np_asarray_of_a_traced_value():
    with pytest.raises(rm.TraceError) as info:
        rm.compile(as_numpy, X)
    assert_error(info, "asarray", "np.asarray")


def numpy_function(x):  # (np.floor was the example until raster.floor existed)
    return np.logaddexp(x, x)  # <np-logaddexp>


def test_unsupported_numpy_ufunc_on_a_traced_value():
    with pytest.raises(rm.TraceError) as info:
        rm.compile(numpy_function, X)
    assert_error(info, "np-logaddexp", "numpy", "logaddexp")


def test_supported_numpy_ufuncs_on_traced_values_become_raster_ops():
    def f(x):
        return np.exp(x) + np.ones(X.shape) * np.tanh(x)

    c = rm.compile(f, X)
    assert "raster.exp" in c.ir("traced") and "raster.tanh" in c.ir("traced")
    np.testing.assert_allclose(c(X), np.exp(X) + np.tanh(X), rtol=1e-12)


def numpy_argmax(x):
    return x * np.argmax(x)  # <np-argmax>


def test_unsupported_numpy_function_on_a_traced_value():
    with pytest.raises(rm.TraceError) as info:
        rm.compile(numpy_argmax, X)
    assert_error(info, "np-argmax", "numpy.argmax", "not supported")


def numpy_sum_with_dtype(x):
    return np.sum(x, dtype=np.float32)  # <np-sum-dtype>


def test_unsupported_parameter_of_a_numpy_function():
    with pytest.raises(rm.TraceError) as info:
        rm.compile(numpy_sum_with_dtype, X)
    assert_error(info, "np-sum-dtype", "np.sum", "dtype")


# -- foreign operands -----------------------------------------------------------


def adds_string(x):
    return x + "abc"  # <str>


def test_string_operand():
    with pytest.raises(rm.RasterError) as info:
        rm.compile(adds_string, X)
    assert_error(info, "str", "str")


def adds_dict(x):
    return rm.multiply(x, {"a": 1})  # <dict>


def test_dict_operand():
    with pytest.raises(rm.RasterError) as info:
        rm.compile(adds_dict, X)
    assert_error(info, "dict", "dict")


def adds_none(x):
    return nn.relu(x) + None  # <none>


def test_none_operand():
    with pytest.raises(rm.RasterError) as info:
        rm.compile(adds_none, X)
    assert_error(info, "none", "NoneType")


def adds_bool(x):
    return x * True  # <bool>


def test_bool_operand():
    with pytest.raises(rm.RasterError) as info:
        rm.compile(adds_bool, X)
    assert_error(info, "bool", "bool")


def returns_a_string(x):
    return "not an array"


def test_returning_a_foreign_object():
    with pytest.raises(rm.RasterError):
        rm.compile(returns_a_string, X)


def returns_nothing(x):
    return ()


def test_returning_no_array():
    with pytest.raises(rm.TraceError, match="returns no array"):
        rm.compile(returns_nothing, X)


# -- capturing a traced value -----------------------------------------------------


def outer_with_capture(x):
    @rm.jit
    def inner(y):
        return y + x  # <capture>

    return inner(x * 2.0)


def test_capturing_an_outer_traced_value():
    with pytest.raises(rm.TraceError) as info:
        rm.compile(outer_with_capture, X)
    assert_error(info, "capture", "outer_with_capture", "inner", "argument")


def outer_returning_capture(x):
    @rm.jit
    def inner(y):
        return x

    return inner(x)


def test_returning_an_outer_traced_value_from_a_callee():
    with pytest.raises(rm.TraceError, match="captured"):
        rm.compile(outer_returning_capture, X)


LEAKED = []


def leaks(x):
    y = x * 2.0
    LEAKED.append(y)
    return y


def uses_leaked(x):
    return x + LEAKED[0]  # <leaked>


def test_using_a_value_from_a_finished_trace():
    rm.compile(leaks, X)
    with pytest.raises(rm.TraceError) as info:
        rm.compile(uses_leaked, X)
    assert_error(info, "leaked", "finished trace")
    LEAKED.clear()


# -- dtypes and shapes inside a trace --------------------------------------------------


def mixes(x, y):
    return x * 2.0 + y  # <mix>


def test_mixing_f32_and_f64():
    with pytest.raises(rm.DTypeError) as info:
        rm.compile(mixes, X.astype(np.float32), X)
    assert_error(info, "mix", "raster.add", "f32", "f64")
    assert isinstance(info.value, TypeError)


def bad_dense(W, x):
    return nn.dense(W, x, np.zeros(3))  # <dense-shape>


def test_shape_error_inside_a_trace():
    with pytest.raises(rm.ShapeError) as info:
        rm.compile(bad_dense, np.ones((3, 4)), np.ones(5))
    assert_error(info, "dense-shape", "raster.dense", "(3, 4)", "(5,)")


def helper_with_bad_shapes(a, b):
    return a @ b  # <callee-shape>


def calls_bad_helper(a, b):
    return rm.jit(helper_with_bad_shapes)(a, b)


def test_shape_error_in_a_callee_names_the_callee_line():
    with pytest.raises(rm.ShapeError) as info:
        rm.compile(calls_bad_helper, np.ones((2, 3)), np.ones((4, 2)))
    assert_error(info, "callee-shape", "raster.matmul", "(2, 3)", "(4, 2)")


def test_tracing_works_again_after_an_error():
    with pytest.raises(rm.TraceError):
        rm.jit(branchy)(X)
    np.testing.assert_array_equal(rm.jit(lambda x: rm.maximum(x, -x))(X), np.abs(X))
    # An error inside a callee leaves no half-traced callee behind: the same callee traces
    # (as a func.call) with good shapes afterwards.
    with pytest.raises(rm.ShapeError):
        rm.compile(calls_bad_helper, np.ones((2, 3)), np.ones((4, 2)))
    c = rm.compile(calls_bad_helper, np.ones((2, 3)), np.ones((3, 2)))
    assert "func.call" in c.ir("traced")
    np.testing.assert_array_equal(c.run_reference(np.ones((2, 3)), np.ones((3, 2))), np.full((2, 2), 3.0))
