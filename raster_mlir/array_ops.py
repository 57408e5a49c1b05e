"""Static indexing and shape operations: numpy semantics, built on three raster ops.

Everything here is `raster.slice`, `raster.insert_slice`, `raster.concatenate`
and `raster.reshape` (see `dialects/raster_array.py`), so each function works
eagerly on numpy arrays and builds IR when traced, and its gradient comes
from those ops' reverse rules:

- `getitem(x, key)` (`x[key]` on a traced array): one slice, then a reshape
  when integer indices drop axes or None adds them;
- `flip`: a slice with step -1; `roll`: two slices concatenated;
- `pad`: constant mode inserts x into a filled array; edge / wrap / reflect /
  symmetric concatenate slices of x (per padded axis);
- `stack`, `expand_dims`, `squeeze`, `ravel`: reshapes and a concatenate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from raster_mlir.dialects import raster as R
from raster_mlir.dialects.shapes import fmt, normalize_axis
from raster_mlir.errors import RasterError, ShapeError
from raster_mlir.frontend.indexing import basic_index
from raster_mlir.frontend.source import user_location
from raster_mlir.frontend.tracer import TracedArray
from raster_mlir.ops import apply, axis_argument, broadcast_to, fail, normalize_axes, reshape


def _shape(x) -> tuple[int, ...]:
    return x.shape if isinstance(x, TracedArray) else np.shape(x)


def _located(fn):
    """Run fn, raising its RasterErrors at the user's source line."""
    try:
        return fn()
    except RasterError as e:
        fail(e)


# ---------------------------------------------------------------------------
# Indexing


def getitem(x, key):
    """numpy basic indexing x[key] with static ints, slices (negative bounds, steps), `...` and None.

    A traced integer among the indices (a loop index) goes to the loop ops'
    dynamic indexing (`raster_mlir.indexing.dynamic_getitem`).
    """
    items = key if isinstance(key, tuple) else (key,)
    if any(isinstance(k, TracedArray) for k in items):
        from raster_mlir.indexing import dynamic_getitem

        return dynamic_getitem(x, key)
    shape = _shape(x)
    index = _located(lambda: basic_index(shape, key))
    y = x
    if not index.is_whole(shape):
        y = apply(R.SliceOp, [x], start=index.start, step=index.step, shape=index.box)
    if index.box != index.shape:
        y = reshape(y, index.shape)
    return y


def _take(x, axis: int, start: int | None, stop: int | None, step: int = 1):
    """x[..., start:stop:step, ...] along one axis."""
    key = (slice(None),) * axis + (slice(start, stop, step),)
    return getitem(x, key)


# ---------------------------------------------------------------------------
# Joining and splitting


def concatenate(arrays: Sequence, axis: int | None = 0):
    """Join arrays along an existing axis (None: flatten them first), as numpy.concatenate."""
    arrays = list(arrays)
    if not arrays:
        fail(ShapeError("concatenate: needs at least one array"))
    if axis is None:
        arrays, axis = [reshape(a, (-1,)) for a in arrays], 0
    if len(arrays) == 1 and isinstance(arrays[0], TracedArray):
        return arrays[0]
    return apply(R.ConcatenateOp, arrays, axis=axis)


def stack(arrays: Sequence, axis: int = 0):
    """Join arrays of one shape along a new axis, as numpy.stack."""
    arrays = list(arrays)
    if not arrays:
        fail(ShapeError("stack: needs at least one array"))
    shapes = [tuple(_shape(a)) for a in arrays]
    if any(s != shapes[0] for s in shapes):
        fail(ShapeError(f"stack: all arrays must have the same shape, got {', '.join(map(fmt, shapes))}"))
    return concatenate([expand_dims(a, axis) for a in arrays], axis=axis)


def expand_dims(x, axis):
    """Insert size-1 axes at the positions `axis` (int or tuple) of the result, as numpy."""
    shape = _shape(x)
    raw = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    rank = len(shape) + len(raw)
    axes = _located(lambda: normalize_axes("expand_dims", raw, rank, None))
    dims = iter(shape)
    return reshape(x, tuple(1 if d in axes else next(dims) for d in range(rank)))


def squeeze(x, axis=None):
    """Remove size-1 axes (all of them, or those in `axis`, which must have size 1)."""
    shape = _shape(x)
    if axis is None:
        axes = tuple(d for d, n in enumerate(shape) if n == 1)
    else:
        axes = _located(lambda: normalize_axes("squeeze", axis, len(shape), shape))
        wide = [d for d in axes if shape[d] != 1]
        if wide:
            fail(ShapeError(f"squeeze: axis {wide[0]} of shape {fmt(shape)} has size {shape[wide[0]]}, not 1"))
    return reshape(x, tuple(n for d, n in enumerate(shape) if d not in axes))


def ravel(x):
    """The elements in row-major order as a 1-D array."""
    return reshape(x, (-1,))


def outer(a, b):
    """numpy.outer: out[i, j] = a.ravel()[i] * b.ravel()[j]."""
    return apply(R.MulOp, [reshape(a, (-1, 1)), reshape(b, (1, -1))])


def diff(x, n: int = 1, axis: int = -1):
    """n-th forward difference along `axis`: x[1:] - x[:-1], n times (as numpy.diff)."""
    shape = _shape(x)
    d = _located(lambda: normalize_axis("diff", axis_argument("diff", axis), len(shape), shape))
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        fail(ShapeError(f"diff: order n={n!r} must be a non-negative integer"))
    for _ in range(n):
        x = _take(x, d, 1, None) - _take(x, d, None, -1)
    return x


# ---------------------------------------------------------------------------
# Reordering


def flip(x, axis=None):
    """Reverse the order of elements along `axis` (None: every axis), as numpy.flip."""
    shape = _shape(x)
    axes = _located(lambda: normalize_axes("flip", axis, len(shape), shape))
    if not axes:
        return x
    key = tuple(slice(None, None, -1) if d in axes else slice(None) for d in range(len(shape)))
    return getitem(x, key)


def roll(x, shift, axis=None):
    """Shift elements cyclically by `shift` along `axis` (None: the flattened array), as numpy.roll."""
    shape = _shape(x)
    if axis is None:
        return reshape(roll(ravel(x), shift, 0), shape)
    shifts = tuple(shift) if isinstance(shift, (tuple, list)) else (shift,)
    axis = axis_argument("roll", axis)
    raw = axis if isinstance(axis, tuple) else (axis,)
    if len(shifts) != len(raw) and len(shifts) != 1 and len(raw) != 1:
        fail(ShapeError(f"roll: shift {shift} and axis {axis} must have the same length"))
    pairs = np.broadcast(np.asarray(shifts), np.asarray(raw))
    total: dict[int, int] = {}
    for s, a in pairs:
        d = _located(lambda: normalize_axis("roll", int(a), len(shape), shape))
        total[d] = total.get(d, 0) + int(s)
    for d, s in total.items():
        n = shape[d]
        s = s % n if n else 0
        if s:
            x = concatenate([_take(x, d, n - s, None), _take(x, d, None, n - s)], axis=d)
    return x


# ---------------------------------------------------------------------------
# Padding


def _pad_widths(pad_width, rank: int) -> list[tuple[int, int]]:
    try:
        widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (rank, 2))
    except (ValueError, TypeError):
        raise ShapeError(
            f"pad: pad_width {pad_width!r} is not an int, (before, after) or one pair per axis of {rank} axes"
        ) from None
    if (widths < 0).any():
        raise ShapeError(f"pad: pad_width {pad_width!r} has negative entries")
    return [(int(lo), int(hi)) for lo, hi in widths]


def full_like(x, value, shape=None):
    """An array of x's dtype (and shape, unless given) filled with `value` (a `raster.fill` when traced)."""
    shape = tuple(_shape(x) if shape is None else shape)
    if isinstance(x, TracedArray):
        op = R.FillOp.make([], value=float(value), shape=shape, dtype=x.dtype_name)
        return TracedArray(x.scope, x.scope.append(op, user_location()).results[0])
    dtype = np.asarray(x).dtype
    return np.full(shape, value, dtype=dtype if dtype in (np.float32, np.float64) else np.float64)


def zeros_like(x):
    """Zeros of x's shape and dtype."""
    return full_like(x, 0.0)


def ones_like(x):
    """Ones of x's shape and dtype."""
    return full_like(x, 1.0)


def _pad_pieces(x, d: int, lo: int, hi: int, n: int, mode: str):
    """The pieces before and after x along axis d for the copying modes (None for a width of 0)."""
    if mode == "edge":
        if n == 0:
            raise ShapeError(f"pad: mode 'edge' cannot pad the empty axis {d}")

        def edge(at: int, width: int):
            piece = _take(x, d, at, at + 1)
            return broadcast_to(piece, tuple(width if a == d else s for a, s in enumerate(_shape(piece))))

        return (edge(0, lo) if lo else None), (edge(n - 1, hi) if hi else None)
    limit = n - 1 if mode == "reflect" else n
    if lo > limit or hi > limit:
        raise ShapeError(
            f"pad: mode {mode!r} pads axis {d} of size {n} by at most {limit} per side, got ({lo}, {hi})"
        )
    if mode == "wrap":
        before, after = (lambda: _take(x, d, n - lo, None)), (lambda: _take(x, d, None, hi))
    elif mode == "reflect":  # mirror without repeating the edge: [3 2 | 1 2 3 4 | 3 2]
        before, after = (lambda: flip(_take(x, d, 1, lo + 1), d)), (lambda: flip(_take(x, d, n - 1 - hi, n - 1), d))
    else:  # symmetric: mirror repeating the edge: [2 1 | 1 2 3 4 | 4 3]
        before, after = (lambda: flip(_take(x, d, None, lo), d)), (lambda: flip(_take(x, d, n - hi, None), d))
    return (before() if lo else None), (after() if hi else None)


PAD_MODES = ("constant", "edge", "wrap", "reflect", "symmetric")


def pad(x, pad_width, mode: str = "constant", constant_values=0.0):
    """numpy.pad for modes constant (a scalar value, may be traced), edge, wrap, reflect and symmetric.

    wrap / symmetric pad by at most the axis size per side, reflect by at most size - 1.
    """
    shape = _shape(x)
    widths = _located(lambda: _pad_widths(pad_width, len(shape)))
    if mode not in PAD_MODES:
        fail(ShapeError(f"pad: mode {mode!r} is not supported (supported: {', '.join(PAD_MODES)})"))
    if not any(lo or hi for lo, hi in widths):
        return x
    if mode == "constant":
        padded = tuple(n + lo + hi for n, (lo, hi) in zip(shape, widths))
        if isinstance(constant_values, TracedArray):
            if constant_values.shape != ():
                fail(ShapeError(f"pad: a traced constant_values must be a scalar, got shape {constant_values.shape}"))
            dest = broadcast_to(constant_values, padded)
        elif np.ndim(constant_values) != 0:
            fail(ShapeError("pad: constant_values must be one scalar (per-axis values are not supported)"))
        else:
            dest = full_like(x, float(constant_values), padded)
        start = tuple(lo for lo, _ in widths)
        return apply(R.InsertSliceOp, [x, dest], start=start, step=(1,) * len(shape))
    for d, (lo, hi) in enumerate(widths):
        if lo or hi:
            before, after = _located(lambda: _pad_pieces(x, d, lo, hi, shape[d], mode))
            x = concatenate([p for p in (before, x, after) if p is not None], axis=d)
    return x
