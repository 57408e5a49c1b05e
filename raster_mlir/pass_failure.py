"""A pass that crashes becomes a CompileError naming the pass, the op it was working on, and its location.

A pass written by hand (or a plug-in) may fail with a bare Python error: a
`KeyError` from a table without the op, an `AttributeError` on an unexpected
operand. The pipeline turns it into one `CompileError`:

    pass lower-to-loops failed at raster.exp: KeyError: <OpResult ...>
      at model.py:12: y = rm.exp(x)

The op is the innermost one the failing code held: the `op` (or another
`Operation` local, the module and functions aside) of the deepest frame of
the traceback that has one. That is the op a walk or a rewrite pattern was
handling when it failed. The original error stays chained (`__cause__`) for
the full traceback.
"""

from __future__ import annotations

from types import TracebackType

from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation

from raster_mlir.dialects.raster_rules_core import describe_location
from raster_mlir.errors import CompileError, with_location

# Containers, not the op at fault: every pass holds the module, most hold a function.
_CONTAINERS = (ModuleOp, func.FuncOp)


def _op_of_frame(local_values: dict) -> Operation | None:
    op = local_values.get("op")
    if isinstance(op, Operation) and not isinstance(op, _CONTAINERS):
        return op
    for value in local_values.values():
        if isinstance(value, Operation) and not isinstance(value, _CONTAINERS):
            return value
    return None


def failing_op(traceback: TracebackType | None) -> Operation | None:
    """The op held by the deepest frame of `traceback` that holds one (None if none does)."""
    frames = []
    while traceback is not None:
        frames.append(traceback.tb_frame)
        traceback = traceback.tb_next
    for frame in reversed(frames):
        op = _op_of_frame(frame.f_locals)
        if op is not None:
            return op
    return None


def pass_crash_error(label: str, error: Exception) -> CompileError:
    """The CompileError for `error` escaping pass `label` (raise it `from error`)."""
    op = failing_op(error.__traceback__)
    at = f" at {op.name}" if op is not None else ""
    crash = CompileError(f"pass {label} failed{at}: {type(error).__name__}: {error}")
    return with_location(crash, describe_location(op)) if op is not None else crash
