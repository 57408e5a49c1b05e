"""Time a compiled function's native code alone: a JIT-compiled loop calls its entry N times.

`bench_alignment.py` asks how much of a step called from Python is the kernel
and how much the call path (argument checks, the native call, the loss
conversion, slicing the sample out of the data set). This loop answers the
first half: it calls the function's packed entry (`<name>_packed(ptr args)`,
backend/llvm_entry.py) `count` times from native code, moving the pointer
of each data argument to the next row of its stacked array before every
call, as the Python loop does with `X[i]`. No Python runs between calls.

    loop = NativeLoop(native_function, arrays, stacked={4: X, 5: Y})
    loop(count, first_row)      # runs, returns nothing; time it from outside

The arrays must be those the function accepts (checked once here, by the same
Python checks as a slow call); they are kept alive by the loop object.
"""

from __future__ import annotations

import ctypes

import llvmlite.binding as llvm
import numpy as np

from raster_mlir.backend.call import check_arguments
from raster_mlir.backend.target import ensure_llvm_initialised, host_target

_LOOP_IR = r"""
define void @repeat(ptr %function, ptr %slots, i64 %count, i64 %first, i64 %rows, ptr %stacked, i64 %n_stacked) {
entry:
  br label %call
call:
  %i = phi i64 [ 0, %entry ], [ %next, %moved ]
  %k = add i64 %first, %i
  %row = urem i64 %k, %rows
  br label %move
move:
  %s = phi i64 [ 0, %call ], [ %s1, %move ]
  %desc = getelementptr [3 x i64], ptr %stacked, i64 %s
  %slotp = getelementptr i64, ptr %desc, i64 0
  %basep = getelementptr i64, ptr %desc, i64 1
  %stridep = getelementptr i64, ptr %desc, i64 2
  %slot = load i64, ptr %slotp
  %base = load i64, ptr %basep
  %stride = load i64, ptr %stridep
  %offset = mul i64 %row, %stride
  %address = add i64 %base, %offset
  %target = getelementptr i64, ptr %slots, i64 %slot
  store i64 %address, ptr %target
  %s1 = add i64 %s, 1
  %more = icmp ult i64 %s1, %n_stacked
  br i1 %more, label %move, label %moved
moved:
  call void %function(ptr %slots)
  %next = add i64 %i, 1
  %again = icmp ult i64 %next, %count
  br i1 %again, label %call, label %done
done:
  ret void
}
"""

_engine = None
_repeat = None


def _repeat_function():
    """The `repeat` loop, compiled once per process."""
    global _engine, _repeat
    if _repeat is None:
        ensure_llvm_initialised()
        module = llvm.parse_assembly(_LOOP_IR)
        module.verify()
        _engine = llvm.create_mcjit_compiler(module, host_target().create_target_machine(3))
        _engine.finalize_object()
        signature = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 2, *[ctypes.c_int64] * 3, ctypes.c_void_p, ctypes.c_int64)
        _repeat = signature(_engine.get_function_address("repeat"))
    return _repeat


class NativeLoop:
    """`count` calls of one compiled function from native code (module docstring)."""

    def __init__(self, function, arrays: tuple, stacked: dict[int, np.ndarray]):
        """`function`: a NativeFunction; `arrays`: one call's arguments (the data arguments may be any row);
        `stacked`: argument index -> the array whose rows that argument takes in turn (C-contiguous)."""
        self._arrays = tuple(arrays)
        self._stacked = dict(stacked)
        pointers = check_arguments(function.name, function.arg_specs, self._arrays)
        self._slots = function._slot_type(*pointers, function._workspace_address)
        rows = {len(a) for a in self._stacked.values()}
        if len(rows) != 1:  # also: at least one stacked argument
            raise ValueError(f"the stacked arrays need the same number of rows, got {sorted(rows)}")
        self._rows = rows.pop()
        descriptors = [(slot, a.ctypes.data, a.strides[0]) for slot, a in self._stacked.items()]
        self._descriptors = (ctypes.c_int64 * (3 * len(descriptors)))(*[v for d in descriptors for v in d])
        self._entry = function._jit.function_address(function.abi.packed_symbol)
        self._function = function  # keeps the machine code alive

    def __call__(self, count: int, first_row: int = 0) -> None:
        _repeat_function()(
            self._entry, ctypes.addressof(self._slots), count, first_row, self._rows,
            ctypes.addressof(self._descriptors), len(self._stacked),
        )  # fmt: skip


def train_step_loop(step, args: tuple, stacked: dict[int, np.ndarray]) -> NativeLoop:
    """A NativeLoop over the native step of `step` (an rm.compile_train_step) for `step(*args)`'s signature.

    Calls `step(*args)` once (compiling if needed, choosing the signature), then passes the
    arguments the step's own fast path passes (train.py: the optimiser state, the per-step scalars
    of the next step, the loss buffer, the module's constants). The optimiser's step count does not
    advance in the loop: use it for SGD, whose step has no per-step scalars.
    """
    step(*args)
    compiled, state = step._last, step._state
    dtype = args[step.params[0]].dtype
    scalars = [np.asarray(v, dtype) for v in step.optimizer.step_scalars(state.steps + 1)]
    arrays = (*args, *state.arrays, *scalars, np.empty((), dtype), *compiled.native.constants)
    return NativeLoop(compiled.native.function, arrays, stacked)
