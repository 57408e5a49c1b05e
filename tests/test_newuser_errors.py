"""Errors a new user met that were not RasterErrors naming their line (each failed before its fix)."""

import numpy as np
import pytest

import raster_mlir as rm


@pytest.mark.parametrize(
    ("method", "expected"),
    [("item", "x.item\\(\\) needs the values"), ("tolist", "x.tolist\\(\\) needs the values"),
     ("argmax", "ndarray.argmax is not supported on traced arrays \\(\\(3,\\) f64\\); they have: .*reshape")],
)  # fmt: skip
def test_numpy_methods_traced_arrays_lack_are_trace_errors_naming_the_line(method, expected):
    f = rm.jit(lambda x: getattr(x, method)())  # before: a bare AttributeError from TracedArray
    with pytest.raises(rm.TraceError, match=expected) as info:
        f(np.ones(3))
    assert "test_newuser_errors.py" in str(info.value)
    assert isinstance(info.value, AttributeError)  # (hasattr and getattr with a default keep working)


def test_hasattr_on_traced_arrays_still_answers():
    @rm.jit
    def f(x):
        assert not hasattr(x, "argmax") and not hasattr(x, "item") and not hasattr(x, "__array_interface__")
        assert hasattr(x, "reshape") and getattr(x, "nonzero", None) is None
        return x * 2.0

    np.testing.assert_array_equal(f(np.ones(2)), 2.0 * np.ones(2))


def test_boolean_mask_indexing_points_at_where():
    with pytest.raises(rm.DTypeError, match=r"boolean-mask and integer-array indexing are not supported; select with rm\.where") as info:
        rm.jit(lambda x: x[x > 0])(np.ones(3))  # before: only "index 0 must be a 0-d traced integer"
    assert "test_newuser_errors.py" in str(info.value)


def test_an_attribute_error_inside_a_traced_array_property_is_not_called_unsupported():
    """A property of TracedArray that fails with an AttributeError shows that error (here: a traced array
    made without a value), not 'ndarray.shape is not supported', and does not recurse."""
    from raster_mlir.frontend.tracer import TracedArray

    bare = TracedArray.__new__(TracedArray)
    with pytest.raises(AttributeError, match="'value'") as caught:
        bare.shape
    assert "not supported" not in str(caught.value)
