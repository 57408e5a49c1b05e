"""Functional updates with static basic indices: `x.at[1:3].set(v)`, `x.at[:, 0].add(v)`, `x.at[::2, None]...`.

`rm.at_set(x, key, v)` / `rm.at_add(x, key, v)` with a key of Python ints,
slices (negative bounds and steps), `...` and None, none of them traced, is
the box of `x[key]` (frontend/indexing.py's `basic_index`) replaced by v, or
incremented by it:

    set: raster.insert_slice(broadcast(v to x[key]'s shape, reshaped to the box), into x)
    add: set(x, key, x[key] + v)

v broadcasts to `x[key]`'s shape as in numpy's `x[key] = v`; an empty box
leaves x as it is. Gradients come from the slice and insert_slice rules: the
updated box of x gets no gradient from `set`, v gets the box's gradient
(summed over its broadcast axes). Keys with a traced integer go to the loop
ops' dynamic updates instead (raster_mlir/indexing.py).
"""

from __future__ import annotations

import numpy as np

from raster_mlir.array_ops import _shape, getitem
from raster_mlir.dialects import raster as R
from raster_mlir.errors import RasterError, ShapeError
from raster_mlir.frontend.indexing import basic_index
from raster_mlir.frontend.tracer import TracedArray
from raster_mlir.ops import add, apply, broadcast_to, fail, reshape


def static_update(x, key, value, accumulate: bool, what: str):
    """x with x[key] replaced by (or incremented by) value; key static (module docstring)."""
    shape = _shape(x)
    try:
        index = basic_index(shape, key)
        value_shape = _shape(value)
        if not _broadcasts(value_shape, index.shape):
            raise ShapeError(f"{what}: a value of shape {value_shape} cannot be broadcast to x[{_key_text(key)}] of "
                             f"shape {index.shape} (x has shape {shape})")
    except RasterError as e:
        fail(e)
    if 0 in index.box:
        return x
    if isinstance(x, TracedArray) and not isinstance(value, TracedArray):
        value = np.asarray(value, dtype=x.dtype)  # numpy's x[key] = v casts v to x's dtype
    new = add(getitem(x, key), value) if accumulate else value
    if _shape(new) != index.shape:
        new = broadcast_to(new, index.shape)
    box_value = reshape(new, index.box) if index.shape != index.box else new
    return apply(R.InsertSliceOp, [box_value, x], start=index.start, step=index.step)


def _broadcasts(value_shape, target) -> bool:
    if len(value_shape) > len(target):
        return all(d == 1 for d in value_shape[: len(value_shape) - len(target)]) and _broadcasts(
            value_shape[len(value_shape) - len(target) :], target)  # fmt: skip
    return all(v in (1, t) for v, t in zip(value_shape[::-1], target[::-1]))


def _key_text(key) -> str:
    items = key if isinstance(key, tuple) else (key,)

    def one(item):
        if item is Ellipsis:
            return "..."
        if isinstance(item, slice):
            parts = ["" if p is None else str(p) for p in (item.start, item.stop, item.step)]
            return ":".join(parts[:2]) + (f":{parts[2]}" if item.step is not None else "")
        return str(item)

    return ", ".join(map(one, items))
