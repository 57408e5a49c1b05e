"""Logical operations on masks: `&`, `|`, `^`, `~` and numpy's logical_* on traced arrays.

Masks are float tensors (1.0 where true, 0.0 where false; the comparisons
`x > 0`, `x == y`... build them), so numpy's idiom `(x > 0) & (x < 1)` needs
the bool operators on floats. Each function reads its operands as truth
values, numpy's way (non-zero = true, NaN is true), and returns a mask of
the operands' dtype:

    logical_and(a, b) = (a != 0) * (b != 0)
    logical_or(a, b)  = maximum(a != 0, b != 0)
    logical_xor(a, b) = (a != 0) != (b != 0)
    logical_not(a)    = (a == 0)

On traced float arrays the operators `&`, `|`, `^` and `~` are these
functions (so are numpy's bitwise_and/or/xor/invert ufuncs when a numpy bool
array meets a traced mask: for 0/1 values bitwise and logical agree). They
are built from comparisons, so no gradient flows through a mask. Bitwise
operations on traced integers (the loop index) are not supported: a
TraceError at the user's line.
"""

from __future__ import annotations

import numpy as np

from raster_mlir import ops as O
from raster_mlir.dialects import raster as R
from raster_mlir.errors import TraceError
from raster_mlir.frontend.tracer import TracedArray


def _truth(name: str, x):
    """x != 0 as a mask: traced and float operands keep their dtype; bools and ints become int8
    0/1 arrays, which adopt the dtype of the traced operand they meet (as Python numbers do)."""
    if isinstance(x, TracedArray):
        if not R.is_float_type(x.value.type):
            O.fail(TraceError(f"{name} of a traced integer ({x.dtype_name}): bitwise operations on traced "
                              "integers are not supported; &, |, ^ and ~ on traced float arrays are logical "
                              "operations on masks"))
        return O.not_equal(x, 0.0)
    a = np.asarray(x)
    if a.dtype.kind == "f" and a.ndim:
        return O.not_equal(a, a.dtype.type(0))
    return np.asarray(a != 0, dtype=np.int8)


def logical_and(a, b):
    """1.0 where both a and b are non-zero, else 0.0 (numpy.logical_and as a float mask; also `a & b`)."""
    return O.multiply(_truth("logical_and", a), _truth("logical_and", b))


def logical_or(a, b):
    """1.0 where a or b is non-zero, else 0.0 (numpy.logical_or as a float mask; also `a | b`)."""
    return O.maximum(_truth("logical_or", a), _truth("logical_or", b))


def logical_xor(a, b):
    """1.0 where exactly one of a and b is non-zero, else 0.0 (numpy.logical_xor; also `a ^ b`)."""
    return O.not_equal(_truth("logical_xor", a), _truth("logical_xor", b))


def logical_not(x):
    """1.0 where x is zero, else 0.0 (numpy.logical_not as a float mask; also `~mask`)."""
    return O.subtract(1, _truth("logical_not", x))
