"""Reference interpreter: executes tensor-level raster IR with numpy.

It is the semantic oracle of the project: native code is tested against it.
Each raster op runs its numpy kernel from `reference.KERNELS` (the same
kernels eager mode uses); `func.call` runs the callee; the region ops
(`raster.for`, `scan`, `while`, `if`) run their blocks in Python loops;
`raster.grad` / `raster.jvp` must have been expanded by the AD passes first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Block

from raster_mlir.dialects import raster as R
from raster_mlir.dialects import raster_control as C
from raster_mlir.dialects import raster_tape as T
from raster_mlir.errors import CompileError
from raster_mlir.frontend.trace_state import NUMPY_DTYPES
from raster_mlir.runtime.reference import run_kernel


def interpret(module: ModuleOp, entry: str, args: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Run function `entry` of `module` on numpy arrays; returns its results as arrays."""
    functions = {op.sym_name.data: op for op in module.ops if isinstance(op, func.FuncOp)}
    if entry not in functions:
        raise CompileError(f"no function @{entry} in the module")
    return _run(functions, functions[entry], list(args))


def _run(functions: dict[str, func.FuncOp], function: func.FuncOp, args: list[np.ndarray]) -> list[np.ndarray]:
    out = _run_block(functions, function.body.block, args)
    if out is None:
        raise CompileError(f"@{function.sym_name.data} has no func.return")
    return out


def _run_block(functions, block: Block, args: Sequence[np.ndarray]) -> list[np.ndarray] | None:
    """Execute `block`; returns the operands of its terminator (func.return, raster.yield/condition)."""
    env = dict(zip(block.args, args))
    for op in block.ops:
        operands = [env[v] for v in op.operands]
        if isinstance(op, (func.ReturnOp, C.YieldOp, C.ConditionOp)):
            return operands
        if isinstance(op, func.CallOp):
            outs = _run(functions, functions[op.callee.root_reference.data], operands)
        elif isinstance(op, R.AD_OPS):
            raise CompileError(f"{op.name} must be expanded by the AD passes (autodiff, forward-ad) before interpretation")
        elif type(op) in _REGION_OPS:
            outs = _REGION_OPS[type(op)](functions, op, operands)
        elif isinstance(op, R.RasterOp):
            dtype = NUMPY_DTYPES[R.dtype_of(op.results[0].type)]
            outs = run_kernel(op.name, operands, op.params(), dtype)
        else:
            raise CompileError(f"the reference interpreter does not execute {op.name}")
        env.update(zip(op.results, outs))
    return None


def _indices(lb: int, ub: int, reverse: bool) -> range:
    return range(ub - 1, lb - 1, -1) if reverse else range(lb, ub)


def _for(functions, op: C.ForOp, operands):
    n_carries = len(op.inits)
    lb, ub = int(operands[0]), int(operands[1])
    carries = operands[2 : 2 + n_carries]
    captures = operands[2 + n_carries :]
    for i in _indices(lb, ub, op.is_reverse):
        carries = _run_block(functions, op.body_block(), [np.asarray(i, np.int64), *carries, *captures])
    return carries


def _scan(functions, op: C.ScanOp, operands):
    n_carries, n_xs = len(op.inits), len(op.xs)
    carries = operands[:n_carries]
    xs = operands[n_carries : n_carries + n_xs]
    captures = operands[n_carries + n_xs :]
    ys = [np.empty(R.shape_of(r.type), NUMPY_DTYPES[R.dtype_of(r.type)]) for r in op.ys_results()]
    for k in _indices(0, op.trip_count, op.is_reverse):
        out = _run_block(functions, op.body_block(), [np.asarray(k, np.int64), *carries, *(x[k] for x in xs), *captures])
        carries = out[:n_carries]
        for y, value in zip(ys, out[n_carries:]):
            y[k] = value
    return [*carries, *ys]


def _while(functions, op: C.WhileOp, operands):
    n_carries = len(op.inits)
    carries, captures = operands[:n_carries], operands[n_carries:]
    while _run_block(functions, op.cond_block(), [*carries, *captures])[0] != 0:
        carries = _run_block(functions, op.body_block(), [*carries, *captures])
    return carries


def _if(functions, op: C.IfOp, operands):
    then_block, else_block = op.branches()
    return _run_block(functions, then_block if operands[0] != 0 else else_block, operands[1:])


# Growable tapes (reverse mode through loops with a run-time trip count) are Python lists.


def _tape_new(functions, op, operands):
    return [[]]


def _tape_push(functions, op, operands):
    tape, value = operands
    tape.append(np.array(value, copy=True))
    return []


def _tape_get(functions, op, operands):
    tape, index = operands
    return [tape[int(index)]]


_REGION_OPS = {
    C.ForOp: _for, C.ScanOp: _scan, C.WhileOp: _while, C.IfOp: _if,
    T.TapeNewOp: _tape_new, T.TapePushOp: _tape_push, T.TapeGetOp: _tape_get,
}  # fmt: skip
