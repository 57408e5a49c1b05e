"""Keyword arguments of compiled functions, as Python and JAX allow them (before: a raw TypeError,
`tuple.raster_mlir_dispatch() takes no keyword arguments`, or `_call() got an unexpected keyword`)."""

import numpy as np
import pytest

import raster_mlir as rm


def affine(x, scale=2.0, *, shift=1.0):
    return x * scale + shift


def test_keywords_defaults_and_keyword_only_parameters():
    f = rm.jit(affine)
    x = np.arange(3.0)
    np.testing.assert_array_equal(f(x), x * 2 + 1)  # (the native dispatcher now exists)
    np.testing.assert_array_equal(f(x, shift=5.0), x * 2 + 5)
    np.testing.assert_array_equal(f(x, scale=3.0), x * 3 + 1)
    np.testing.assert_array_equal(f(x, shift=0.5, scale=np.array(4.0)), x * 4 + 0.5)
    np.testing.assert_array_equal(f(scale=-1.0, x=x), -x + 1)
    np.testing.assert_array_equal(f(x, 3.0), x * 3 + 1)  # positional calls are unchanged
    np.testing.assert_array_equal(f(x, shift=-2.0), x * 2 - 2)  # (a new value, the same compiled variant)


def test_keywords_inside_a_trace_and_in_a_gradient():
    f = rm.jit(affine)
    x = np.arange(3.0)

    @rm.jit
    def outer(x):
        return rm.sum(f(x, shift=x[0] + 1.0) ** 2)

    assert outer(x) == pytest.approx(np.sum((x * 2 + 1) ** 2))
    (gx,) = rm.grad(outer)(x)
    expected = 4 * (x * 2 + 1)
    expected[0] += 2 * np.sum(x * 2 + 1)
    np.testing.assert_allclose(gx, expected)


def test_bad_keywords_are_type_errors_naming_the_function_and_the_line():
    f = rm.jit(affine)
    with pytest.raises(rm.DTypeError, match="affine.*unexpected keyword argument 'bogus'") as info:
        f(np.ones(2), bogus=1.0)
    assert "test_newuser_keywords.py" in str(info.value)
    with pytest.raises(rm.DTypeError, match="multiple values for argument 'scale'"):
        f(np.ones(2), 2.0, scale=1.0)
    with pytest.raises(rm.DTypeError, match=r"argument 1 \('shift'\) is a str"):
        f(np.ones(2), shift="a")


def test_rm_compile_takes_its_positional_parameters_by_keyword():
    def sub(a, b):
        return a - b

    c = rm.compile(sub, np.ones(2), np.ones(2))
    np.testing.assert_array_equal(c(np.zeros(2), b=np.ones(2)), -np.ones(2))
    np.testing.assert_array_equal(c(b=np.ones(2), a=np.zeros(2)), -np.ones(2))
    with pytest.raises(rm.DTypeError, match="by position"):
        rm.compile(affine, np.ones(2))(np.ones(2), shift=1.0)
