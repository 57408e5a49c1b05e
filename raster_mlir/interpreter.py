"""Reference interpreter: executes tensor-level raster IR with numpy.

It is the semantic oracle of the project: native code is tested against it.
Each raster op runs its numpy kernel from `reference.KERNELS` (the same
kernels eager mode uses); `func.call` runs the callee; `raster.grad` / `raster.jvp`
must have been expanded by the AD passes first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp

from raster_mlir.dialects import raster as R
from raster_mlir.errors import CompileError
from raster_mlir.frontend.tracer import NUMPY_DTYPES
from raster_mlir.reference import run_kernel


def interpret(module: ModuleOp, entry: str, args: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Run function `entry` of `module` on numpy arrays; returns its results as arrays."""
    functions = {op.sym_name.data: op for op in module.ops if isinstance(op, func.FuncOp)}
    if entry not in functions:
        raise CompileError(f"no function @{entry} in the module")
    return _run(functions, functions[entry], list(args))


def _run(functions: dict[str, func.FuncOp], function: func.FuncOp, args: list[np.ndarray]) -> list[np.ndarray]:
    env = dict(zip(function.body.block.args, args))
    for op in function.body.block.ops:
        operands = [env[v] for v in op.operands]
        if isinstance(op, func.ReturnOp):
            return operands
        if isinstance(op, func.CallOp):
            outs = _run(functions, functions[op.callee.root_reference.data], operands)
        elif isinstance(op, R.AD_OPS):
            raise CompileError(f"{op.name} must be expanded by the AD passes (autodiff, forward-ad) before interpretation")
        elif isinstance(op, R.RasterOp):
            dtype = NUMPY_DTYPES[R.dtype_of(op.results[0].type)]
            outs = run_kernel(op.name, operands, op.params(), dtype)
        else:
            raise CompileError(f"the reference interpreter does not execute {op.name}")
        env.update(zip(op.results, outs))
    raise CompileError(f"@{function.sym_name.data} has no func.return")
