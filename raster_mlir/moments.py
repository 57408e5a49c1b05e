"""Variance and standard deviation (numpy.var / numpy.std), built from mean, sum and sqrt.

    var(x, axis, ddof) = sum((x - mean(x, axis))**2, axis) / (n - ddof)
    std(x, axis, ddof) = sqrt(var(x, axis, ddof))

with n the number of elements reduced over. The two-pass form (the mean
first) keeps the result accurate when the mean is large against the spread.
Gradients come from the primitives' rules; std's gradient is NaN where the
variance is 0 (a constant slice), as the derivative of sqrt at 0 (JAX gives
NaN too). n - ddof <= 0 (numpy: a warning and inf/NaN) is a ShapeError.
"""

from __future__ import annotations

import operator

import numpy as np

from raster_mlir import ops as O
from raster_mlir.errors import DTypeError, RasterError, ShapeError
from raster_mlir.frontend.tracer import TracedArray


def _count(name: str, x, axis, ddof) -> int:
    shape = x.shape if isinstance(x, TracedArray) else np.shape(x)
    axis = O.axis_argument(name, axis)
    try:
        ddof = operator.index(ddof)
    except TypeError:
        O.fail(DTypeError(f"{name}: ddof must be an int, got {ddof!r}"))
    try:
        n = int(np.prod([shape[a] for a in O.normalize_axes(name, axis, len(shape), shape)], dtype=np.int64))
    except RasterError as e:
        O.fail(e)
    if n - ddof <= 0:
        O.fail(ShapeError(f"{name}: ddof={ddof} leaves {n - ddof} degrees of freedom over axis {axis} of shape {shape}"))
    return n - ddof


def var(x, axis=None, ddof=0, keepdims=False, *, _name="var"):
    """numpy.var: the mean squared deviation from the mean over `axis` (int, tuple or None), divided by n - ddof."""
    dof = _count(_name, x, axis, ddof)
    centred = O.subtract(x, O.mean(x, axis=axis, keepdims=True))
    return O.divide(O.sum(O.multiply(centred, centred), axis=axis, keepdims=keepdims), float(dof))


def std(x, axis=None, ddof=0, keepdims=False):
    """numpy.std: sqrt(var(x, axis, ddof)); its gradient is NaN where the variance is 0."""
    return O.sqrt(var(x, axis=axis, ddof=ddof, keepdims=keepdims, _name="std"))
