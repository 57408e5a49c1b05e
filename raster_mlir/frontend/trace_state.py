"""What a primitive asks about tracing: is a trace running, is this operand traced, which dtype.

The primitives (raster_mlir/ops.py) depend on this module, not on tracer.py:
TracedArray's operators call the primitives, so a primitive that imported
TracedArray would close an import cycle. tracer.py pushes and pops the scopes
and defines TracedArray as a subclass of `Traced`.
"""

from __future__ import annotations

import ctypes
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .tracer import FunctionScope

_STATE = threading.local()
# Scopes open on all threads together. Reading `threading.local` costs 0.1-0.7 us
# (an AttributeError inside getattr on a thread that never traced), more than a
# whole native call; this counter lets the call paths of compiled functions and
# the eager primitives skip it while nothing is traced anywhere. A C integer: the
# native dispatcher of compiled functions reads it too (backend/dispatch.py).
TRACES_OPEN = ctypes.c_int64(0)
_COUNT_LOCK = threading.Lock()


def active_scope() -> FunctionScope | None:
    """The function being traced on this thread, or None outside any trace."""
    if not TRACES_OPEN.value:
        return None
    stack = getattr(_STATE, "scopes", None)
    return stack[-1] if stack else None


def push_scope(scope: FunctionScope) -> None:
    if not hasattr(_STATE, "scopes"):
        _STATE.scopes = []
    _STATE.scopes.append(scope)
    with _COUNT_LOCK:
        TRACES_OPEN.value += 1


def pop_scope() -> None:
    _STATE.scopes.pop()
    with _COUNT_LOCK:
        TRACES_OPEN.value -= 1


class Traced:
    """Base class of traced values (tracer.TracedArray): the `scope` that builds their ops."""

    scope: FunctionScope


DTYPES = {np.dtype(np.float64): "f64", np.dtype(np.float32): "f32"}
# Traced integers (the loop index) are tensor<i64>; compiled functions take float arrays only.
NUMPY_DTYPES = {"f64": np.dtype(np.float64), "f32": np.dtype(np.float32), "i64": np.dtype(np.int64)}


def typed_dtype(value: Any) -> str | None:
    """'f32'/'f64' for a float numpy array or numpy float32 scalar; None for weakly typed values.

    Python floats (and numpy float64 scalars, which are Python floats) and
    integers take the dtype of the other operands.
    """
    if isinstance(value, np.ndarray) and value.dtype in DTYPES:
        return DTYPES[value.dtype]
    if isinstance(value, np.floating) and not isinstance(value, float) and value.dtype in DTYPES:
        return DTYPES[value.dtype]
    return None
