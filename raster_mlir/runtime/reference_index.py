"""numpy semantics of the traced-integer ops (dialects/raster_index.py), for the reference interpreter.

The run-time index policy is dialects/raster_index.py's: a negative index
counts from the end, then every index is clamped into [0, n - 1].
Float-to-integer conversion truncates toward zero, gives 0 for NaN and
saturates beyond the i64 range.
"""

from __future__ import annotations

import numpy as np

_I64 = np.iinfo(np.int64)


def clamp_index(i, n: int) -> int:
    i = int(i)
    i = i + n if i < 0 else i
    return min(max(i, 0), n - 1)


def _position(x: np.ndarray, indices) -> tuple[int, ...]:
    return tuple(clamp_index(i, x.shape[axis]) for axis, i in enumerate(indices))


def convert(x, to="f64"):
    if to != "i64" or x.dtype.kind != "f":
        return x
    x = np.nan_to_num(np.trunc(x), nan=0.0)
    # float(2**63 - 1) rounds up to 2**63, so saturate by comparison, not by clipping.
    return np.where(x >= 2.0**63, _I64.max, np.where(x <= -(2.0**63), _I64.min, x.astype(np.int64, casting="unsafe")))


def dynamic_index(x, *indices):
    return x[_position(x, indices)].copy()


def dynamic_update(x, value, *indices):
    y = x.copy()
    y[_position(x, indices)] = value
    return y


def dynamic_update_add(x, value, *indices):
    y = x.copy()
    y[_position(x, indices)] += value
    return y


def empty(shape=()):
    return np.full(shape, np.nan)  # cast to the result dtype: NaN shows a read before a write (0 for i64)


def _integer_division(op):
    def kernel(x, y):
        safe = np.where(y == 0, 1, y)
        return np.where(y == 0, 0, op(x, safe))

    return kernel


INDEX_KERNELS = {
    "raster.floordiv": _integer_division(np.floor_divide),
    "raster.mod": _integer_division(np.mod),
    "raster.empty": empty,
    "raster.convert": convert,
    "raster.dynamic_index": dynamic_index,
    "raster.dynamic_update": dynamic_update,
    "raster.dynamic_update_add": dynamic_update_add,
}
