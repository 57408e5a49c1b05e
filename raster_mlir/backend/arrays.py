"""64-byte aligned numpy arrays: the backend's fastest inputs and outputs.

numpy (through malloc) aligns large arrays to 16 bytes only; a 512-bit load
from such an array straddles two cache lines every time. Measured on the
AVX-512 host (bench/bench_backend_matvec.py), a 128x784 f64 matvec takes
about 7 us with a 64-byte aligned W and 10-12 us with numpy's default
placement. Code that allocates its own buffers (outputs, parameters,
optimiser state) can use these helpers; user arrays are accepted at any
element-aligned address.

Algorithm: over-allocate a byte buffer by `align` bytes and return the view
starting at the first aligned address (the view keeps the buffer alive).
"""

from __future__ import annotations

import numpy as np


def aligned_empty(shape, dtype=np.float64, align: int = 64) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts at a multiple of `align` bytes."""
    if align <= 0 or align & (align - 1):
        raise ValueError(f"align must be a power of two, got {align}")
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + align, dtype=np.uint8)
    start = -raw.__array_interface__["data"][0] % align
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def aligned_zeros(shape, dtype=np.float64, align: int = 64) -> np.ndarray:
    """Like `aligned_empty`, filled with zeros."""
    out = aligned_empty(shape, dtype, align)
    out[...] = 0
    return out


def aligned_copy(array, align: int = 64) -> np.ndarray:
    """A C-contiguous, `align`-byte aligned copy of `array` (same dtype and values)."""
    array = np.asarray(array)
    out = aligned_empty(array.shape, array.dtype, align)
    out[...] = array
    return out
