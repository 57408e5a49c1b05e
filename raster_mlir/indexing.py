"""Indexing with traced integers: `x[i]`, `rm.at_set(x, i, v)`, `x.at[i].set(v)` / `.add(v)`.

Inside a trace, an index that is a traced integer (the loop index `i`, or
`i + 1`, `n - 1 - i`...) reads or updates a sub-array at a position known
only at run time (`raster.dynamic_index` / `raster.dynamic_update` /
`raster.dynamic_update_add`). The indices address the leading axes; the
remaining axes are kept (`xs[i]` of a (N, 3) array is a (3,) row).

Out-of-range policy:
- a Python integer index is checked while tracing: out of range is a
  `ShapeError` naming the axis and its size (negative ones count from the end);
- a traced index is resolved at run time like JAX's dynamic slices: negative
  counts from the end, then it is clamped into [0, n - 1]. Reads never leave
  the array and updates never write outside it (there is no run-time error).

Eagerly (numpy arrays, outside any trace) `rm.at_set` / `rm.at_add` follow
the same policy and return a new array.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from raster_mlir.dialects import raster as R
from raster_mlir.dialects.raster_index import DynamicIndexOp, DynamicUpdateAddOp, DynamicUpdateOp, FloorDivOp, ModOp
from raster_mlir.errors import DTypeError, ShapeError, TraceError, with_location
from raster_mlir.frontend.source import user_location
from raster_mlir.frontend.tracer import TracedArray, active_scope, typed_dtype


def _index_items(item) -> list[Any]:
    """The leading-axis indices of `item`; trailing `:` and `...` keep the remaining axes."""
    items = _leading_items(item)
    for k, i in enumerate(items):
        if isinstance(i, TracedArray) or (isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_))):
            continue
        raise TraceError(
            f"indexing with a traced integer supports integer indices on the leading axes "
            f"(x[i], x[i, j], x[i, :]); index {k} is {i!r}. Index first, then slice the result: x[i][1:3]"
        )
    return items


def _clamp(i: int, n: int) -> int:
    """The run-time policy (module docstring) on a concrete integer."""
    i = i + n if i < 0 else i
    return min(max(i, 0), n - 1)


def _index_values(scope, shape: tuple[int, ...], items, loc) -> list:
    if len(items) > len(shape):
        raise ShapeError(f"{len(items)} indices for an array of shape {shape}")
    values = []
    for axis, i in enumerate(items):
        n = shape[axis]
        if n == 0:
            raise ShapeError(f"cannot index axis {axis} of an array of shape {shape}: it is empty")
        if isinstance(i, TracedArray):
            if i.dtype_name != "i64" or i.shape != ():
                mask = " (boolean-mask and integer-array indexing are not supported; select with rm.where(mask, x, 0.0))"
                raise DTypeError(
                    f"index {axis} must be a 0-d traced integer (like a loop index), got a traced "
                    f"{i.dtype_name} array of shape {i.shape}{mask if i.shape != () else ''}"
                )
            values.append(scope.resolve(i.value, loc))
            continue
        i = int(i)
        if not -n <= i < n:
            raise ShapeError(f"index {i} is out of range for axis {axis} of size {n} (array shape {shape})")
        fill = R.FillOp.make([], value=i % n, shape=(), dtype="i64")
        values.append(scope.append(fill, loc).results[0])
    return values


def dynamic_getitem(x: TracedArray, item) -> TracedArray:
    """x[i, ...] with at least one traced integer index (TracedArray.__getitem__)."""
    loc = user_location()
    try:
        scope = x.scope
        items = _index_items(item)
        indices = _index_values(scope, x.shape, items, loc)
        op = DynamicIndexOp.make([scope.resolve(x.value, loc), *indices])
    except (ShapeError, DTypeError, TraceError) as e:
        raise with_location(e, loc) from None
    scope.append(op, loc)
    return TracedArray(scope, op.result, weak=x.weak)


def _update(op_cls, x, item, value, what: str):
    if _is_static_box(item):
        # x.at[1:3].set(v), x.at[:, 0].add(v): slices, None or `...` among static indices.
        from raster_mlir.static_updates import static_update

        return static_update(x, item, value, op_cls is DynamicUpdateAddOp, what)
    loc = user_location()
    scope = active_scope()
    if scope is None and not any(isinstance(a, TracedArray) for a in (x, value, *_as_tuple(item))):
        return _eager_update(x, item, value, add=op_cls is DynamicUpdateAddOp)
    if not isinstance(x, TracedArray):  # a numpy array updated inside a trace: a constant
        scope = scope or value.scope
        x = TracedArray(scope, scope.lift(x, typed_dtype(x) or "f64", loc))
    scope = x.scope
    try:
        items = _index_items(item)
        indices = _index_values(scope, x.shape, items, loc)
        slice_shape = x.shape[len(items) :]
        v = _as_operand(scope, value, x, slice_shape, what, loc)
        op = op_cls.make([scope.resolve(x.value, loc), v, *indices])
    except (ShapeError, DTypeError, TraceError) as e:
        raise with_location(e, loc) from None
    scope.append(op, loc)
    return TracedArray(scope, op.result, weak=x.weak)


def _is_static_box(item) -> bool:
    """No traced index, and not only integers on the leading axes (those are dynamic updates)."""
    if any(isinstance(i, TracedArray) for i in _as_tuple(item)):
        return False
    items = _leading_items(item)
    return not items or any(i is None or i is Ellipsis or isinstance(i, slice) for i in items)


def _as_tuple(item) -> tuple:
    return item if isinstance(item, tuple) else (item,)


def _leading_items(item) -> list:
    """The items of `item` without its trailing `:` and `...` (they keep the remaining axes)."""
    items = list(_as_tuple(item))
    while items and (items[-1] is Ellipsis or (isinstance(items[-1], slice) and items[-1] == slice(None))):
        items.pop()
    return items


def _as_operand(scope, value, x: TracedArray, slice_shape, what: str, loc):
    """`value` as an SSA value of x's dtype, broadcast to the updated slice's shape."""
    from raster_mlir import ops

    if isinstance(value, TracedArray) and not value.weak and value.dtype_name not in ("i64", x.dtype_name):
        raise DTypeError(f"{what}: the value is {value.dtype_name} but the array is {x.dtype_name}")
    v = scope.lift(value, x.dtype_name, loc)
    if R.shape_of(v.type) != tuple(slice_shape):
        v = ops.broadcast_to(TracedArray(scope, v), slice_shape).value
    return v


def _eager_update(x, item, value, add: bool) -> np.ndarray:
    x = np.array(x, copy=True)
    items = [int(i) for i in _as_tuple(item) if not (i is Ellipsis or i == slice(None))]
    index = tuple(_clamp(i, x.shape[axis]) for axis, i in enumerate(items))
    if add:
        x[index] = x[index] + np.asarray(value, dtype=x.dtype)
    else:
        x[index] = np.asarray(value, dtype=x.dtype)
    return x


def at_set(x, index, value):
    """x with x[index] = value, as a new array (JAX's `x.at[index].set(value)`); see the module docstring."""
    return _update(DynamicUpdateOp, x, index, value, "rm.at_set")


def at_add(x, index, value):
    """x with value added to x[index], as a new array (`x.at[index].add(value)`)."""
    return _update(DynamicUpdateAddOp, x, index, value, "rm.at_add")


class AtIndexer:
    """`x.at[i]` on a traced array: `.set(v)`, `.add(v)` and `.get()`."""

    def __init__(self, x: TracedArray):
        self.x = x

    def __getitem__(self, item):
        return _AtSlot(self.x, item)


class _AtSlot:
    def __init__(self, x, item):
        self.x, self.item = x, item

    def set(self, value):
        return at_set(self.x, self.item, value)

    def add(self, value):
        return at_add(self.x, self.item, value)

    def get(self):
        return dynamic_getitem(self.x, self.item)


def floor_divide(a, b):
    """a // b on traced integers (Python's floor division; x // 0 gives 0)."""
    from raster_mlir.ops import apply

    return apply(FloorDivOp, [a, b])


def mod(a, b):
    """a % b on traced integers (the sign of b, as Python; x % 0 gives 0)."""
    from raster_mlir.ops import apply

    return apply(ModOp, [a, b])
