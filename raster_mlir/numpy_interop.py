"""numpy functions called on traced arrays (numpy's `__array_function__` protocol).

`np.sum(x, axis=0)`, `np.where(x > 0, x, 0)`, `np.concatenate([a, x])`...
with a traced argument reach `TracedArray.__array_function__`, which calls
`array_function`: the numpy function is looked up in `NUMPY_FUNCTIONS` and
the raster_mlir function with the same meaning is called with the same
arguments. A numpy function that is not in the table, or a parameter the
raster_mlir version does not take (`dtype=`, `out=`...), raises a
`TraceError` naming the numpy function and the user's line. (Ufuncs such as
`np.sin` go through `__array_ufunc__` instead; see the tracer.)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np

from raster_mlir import array_ops as A
from raster_mlir import moments as M
from raster_mlir import ops as O
from raster_mlir.errors import TraceError, with_location
from raster_mlir.frontend.source import user_location
from raster_mlir.frontend.tracer import TracedArray


def _numpy_reshape(a, shape=None, order="C", **kwargs):
    if order != "C":
        raise TraceError(f"numpy.reshape: order={order!r} is not supported (only 'C')")
    if "newshape" in kwargs and shape is None:
        shape = kwargs.pop("newshape")
    if kwargs:
        raise TypeError(f"unexpected arguments {sorted(kwargs)}")
    return O.reshape(a, shape)


def _method(name: str):
    """np.sum(x, ...) as x.sum(...): the traced methods also refuse numpy's options (out=, dtype=)."""

    def call(a, *args, **kwargs):
        if isinstance(a, TracedArray):
            return getattr(a, name)(*args, **kwargs)
        return getattr(M if hasattr(M, name) else O, name)(a, *args, **kwargs)

    call.__name__ = name
    return call


NUMPY_FUNCTIONS: dict[Callable, Callable] = {
    np.sum: _method("sum"),
    np.mean: _method("mean"),
    np.max: _method("max"),
    np.amax: _method("max"),
    np.min: _method("min"),
    np.amin: _method("min"),
    np.prod: _method("prod"),
    np.cumsum: _method("cumsum"),
    np.var: _method("var"),
    np.std: _method("std"),
    np.outer: A.outer,
    np.where: O.where,
    np.clip: O.clip,
    np.round: O.round,
    np.around: O.round,
    np.dot: O.dot,
    np.transpose: O.transpose,
    np.reshape: _numpy_reshape,
    np.broadcast_to: O.broadcast_to,
    np.linalg.norm: O.norm,
    np.concatenate: A.concatenate,
    np.stack: A.stack,
    np.expand_dims: A.expand_dims,
    np.squeeze: A.squeeze,
    np.ravel: A.ravel,
    np.flip: A.flip,
    np.roll: A.roll,
    np.pad: A.pad,
    np.diff: A.diff,
    np.zeros_like: A.zeros_like,
    np.ones_like: A.ones_like,
    np.full_like: lambda a, fill_value: A.full_like(a, fill_value),
    np.shape: A._shape,
    np.ndim: lambda a: len(A._shape(a)),
    np.size: lambda a: int(np.prod(A._shape(a), dtype=np.int64)),
}


def _name(func) -> str:
    prefix = "numpy.linalg" if "linalg" in (getattr(func, "__module__", "") or "") else "numpy"
    return f"{prefix}.{func.__name__}"


def array_function(func, args, kwargs):
    """Call the raster_mlir version of numpy function `func`, or raise a TraceError naming it."""
    ours = NUMPY_FUNCTIONS.get(func)
    if ours is None:
        supported = ", ".join(sorted(_name(f) for f in NUMPY_FUNCTIONS))
        error = TraceError(f"{_name(func)} is not supported on traced arrays; supported numpy functions: {supported}")
        raise with_location(error, user_location())
    try:
        inspect.signature(ours).bind(*args, **kwargs)
    except TypeError as e:
        error = TraceError(f"{_name(func)} on traced arrays: these arguments are not supported ({e})")
        raise with_location(error, user_location()) from None
    return ours(*args, **kwargs)
