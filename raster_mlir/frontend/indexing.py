"""numpy basic indexing with static indices, as a strided box and a result shape.

`basic_index(shape, key)` turns `x[key]` for ints, slices (negative bounds
and steps), `...` and `None` into one `raster.slice` box (start, step and
element count per input axis) plus the result shape, which drops the
integer-indexed axes and inserts the `None` axes; the caller emits the slice
and, when the shapes differ, a reshape. The rules are numpy's: a slice is
clamped to the axis (`x[:100]` of 10 elements is all 10), an integer must be
in range (negative counts from the end), and a missing trailing index means
`:`.

Not covered (a clear error): integer-array and boolean-mask ("advanced")
indexing, bool scalars, and traced values as indices (the loop ops handle a
traced integer index).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from raster_mlir.dialects.shapes import Shape, fmt
from raster_mlir.errors import IndexOutOfBoundsError, ShapeError, TraceError


@dataclass(frozen=True)
class BasicIndex:
    start: tuple[int, ...]  # per input axis
    step: tuple[int, ...]
    box: tuple[int, ...]  # elements taken per input axis (1 for an integer index)
    shape: tuple[int, ...]  # the result: integer axes dropped, None axes added

    def is_whole(self, shape: Shape) -> bool:
        return self.box == tuple(shape) and all(s == 0 for s in self.start) and all(t == 1 for t in self.step)


def _is_int(item) -> bool:
    return isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_))


def _check_item(item) -> None:
    if item is None or item is Ellipsis or _is_int(item):
        return
    if isinstance(item, slice):
        for part in (item.start, item.stop, item.step):
            if part is not None and not _is_int(part):
                raise TraceError(
                    f"slice bounds must be Python integers or None, got {type(part).__name__} in {item}; "
                    "slicing with traced bounds is not supported (use a static slice)"
                )
        return
    if isinstance(item, (bool, np.bool_)):
        raise TraceError(f"a bool ({item!r}) is not an index (numpy would add an axis); use an integer or a slice")
    raise TraceError(
        f"indexing with {type(item).__name__} is not supported on traced arrays: only integers, slices, "
        "`...` and None (basic indexing); for integer-array or boolean-mask indexing use rm.where with a "
        "mask, or gather outside the compiled function"
    )


def basic_index(shape: Shape, key) -> BasicIndex:
    """The box and result shape of `x[key]` for an array of `shape`; numpy's basic indexing rules."""
    items = key if isinstance(key, tuple) else (key,)
    for item in items:
        _check_item(item)
    ellipses = [k for k, item in enumerate(items) if item is Ellipsis]
    if len(ellipses) > 1:
        raise ShapeError(f"an index can only have a single ellipsis ('...'), got {key!r}")
    consumed = sum(1 for item in items if item is not None and item is not Ellipsis)
    rank = len(shape)
    if consumed > rank:
        raise IndexOutOfBoundsError(
            f"too many indices for an array of shape {fmt(shape)}: {consumed} were given for {rank} axes"
        )
    fill = (slice(None),) * (rank - consumed)
    if ellipses:
        items = items[: ellipses[0]] + fill + items[ellipses[0] + 1 :]
    else:
        items = items + fill

    start, step, box, out = [], [], [], []
    axis = 0
    for item in items:
        if item is None:
            out.append(1)
            continue
        n = shape[axis]
        if isinstance(item, slice):
            if item.step == 0:
                raise ShapeError(f"slice step cannot be zero (axis {axis} of an array of shape {fmt(shape)})")
            first, stop, stride = item.indices(n)
            count = len(range(first, stop, stride))
            start.append(first if count else 0)
            step.append(stride)
            box.append(count)
            out.append(count)
        else:
            k = int(item)
            if not -n <= k < n:
                raise IndexOutOfBoundsError(
                    f"index {k} is out of bounds for axis {axis} with size {n} (array of shape {fmt(shape)})"
                )
            start.append(k % n)
            step.append(1)
            box.append(1)
        axis += 1
    return BasicIndex(tuple(start), tuple(step), tuple(box), tuple(out))
