"""The per-call path: check the numpy arguments, then run the native entry.

Policy: refuse, never coerce. An argument with the wrong dtype, the wrong
shape, a non-C-contiguous layout, a read-only buffer where the function
writes, a data pointer below the promised alignment, or a written buffer
that overlaps another argument raises before any native code runs. We never
copy or cast silently: a silent copy of an output buffer would throw the
results away, a silent cast hides precision bugs, and both cost time the
caller did not ask for. The errors (all `RasterError`s) name the function,
the argument (index and name) and what was expected and received:

    wrong type / dtype / arity    DTypeError (also TypeError)
    wrong shape                   ShapeError (also ValueError)
    not C-contiguous              NotContiguousError (a ShapeError)
    read-only but written         ReadOnlyError (RasterError, ValueError)
    written buffer overlaps       AliasingError (RasterError, ValueError)
    misaligned data pointer       AlignmentError (RasterError, ValueError)

The overlap rule is what makes the kernels' `noalias` attributes true
(llvm_emit.py): buffers that are only read may overlap each other.

Fast path: one call of the builtin `checked_call(arrays)` (pycall.py), the
native `<entry>_pycall` with the argument tuple. That native function
performs every check above by reading the array objects directly
(numpy_abi.py) and runs the kernel; it returns False if it ran. No hashing,
no Python-level pointer extraction, no per-call allocation, no ctypes
conversion (a ctypes call of `<entry>_checked`, the fallback off CPython,
costs 0.3-0.5 us more).

Slow path: if the fast path declines (returns 1), Python repeats the checks
with numpy's own attributes and raises the precise error, or, when
everything is in fact acceptable (an ndarray subclass, a host where the ABI
probe failed), calls
`<entry>_packed` with a freshly built pointer array.

Threads: the native call is made with the GIL held (a builtin, or `ctypes.PYFUNCTYPE`),
because the checked path reads Python objects and because the workspace
buffer of a compiled entry is shared by all calls. Calls of one
`NativeFunction` from several threads are therefore safe but serialised.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

from ..errors import AliasingError, AlignmentError, DTypeError, NotContiguousError, ReadOnlyError, ShapeError
from .entry_abi import EntryABI
from .inspect import LLVMInspection
from . import pool, pycall
from .numpy_abi import (
    RT_PYARRAY_NEW, RT_RET_KIND, RT_RET_N_IN, RT_RET_N_OUT, RT_SLOTS, RT_TRACES_OPEN,
    data_pointer, fill_runtime_table, probe_layout,
)  # fmt: skip
from .specs import ArgSpec


@dataclass
class EntryRuntime:
    """Per-entry state shared by every NativeFunction of one loaded module."""

    workspace: np.ndarray
    workspace_address: int
    native_checks: bool
    # The call layout `<entry>_pyreturn` is set up for (returning_call), the constant
    # arrays whose addresses its table holds, and the builtin; None until set up.
    return_layout: tuple | None = None
    return_constants: tuple = ()
    returning: object = None


def entry_runtime(jit, abi: EntryABI) -> EntryRuntime:
    """Allocate the 64-byte aligned workspace and fill the runtime table, once."""
    with jit.state_lock:
        state = jit.entry_state.get(abi.name)
        if state is None:
            nbytes = max(abi.workspace_bytes, 64)
            raw = np.zeros(nbytes + 64, dtype=np.uint8)
            base = raw.__array_interface__["data"][0]
            offset = (-base) % 64
            workspace = raw[offset : offset + nbytes]
            native = fill_runtime_table(jit.global_address(abi.runtime_table_symbol), base + offset)
            pool.install(jit)  # parallel loops reach the thread pool through a module global
            state = EntryRuntime(workspace, base + offset, native)
            jit.entry_state[abi.name] = state
    return state


def check_arguments(name: str, specs: tuple[ArgSpec, ...], arrays: tuple) -> list[int]:
    """Validate `arrays` against `specs` (policy in the module docstring); return data pointers.

    Messages are built only on failure; pointers come from `data_pointer`
    (about 0.15 us instead of 0.85 us for `__array_interface__`).
    """
    if len(arrays) != len(specs):
        wanted = ", ".join(s.name or f"arg{i}" for i, s in enumerate(specs))
        raise DTypeError(f"{name}: expected {len(specs)} arrays ({wanted}), got {len(arrays)}")
    ranges = []
    for i, (a, spec) in enumerate(zip(arrays, specs)):
        if not isinstance(a, np.ndarray):
            raise DTypeError(
                f"{name}: {spec.label(i)}: expected a numpy.ndarray of {spec.dtype} with shape {spec.shape}, "
                f"got {type(a).__name__}"
            )
        if a.dtype != spec.np_dtype:
            raise DTypeError(
                f"{name}: {spec.label(i)}: expected dtype {spec.dtype}, got {a.dtype} "
                f"(arrays are never cast implicitly; use .astype(np.{spec.dtype}))"
            )
        if a.shape != spec.shape:
            raise ShapeError(f"{name}: {spec.label(i)}: expected shape {spec.shape}, got {a.shape}")
        flags = a.flags
        if not flags.c_contiguous:
            raise NotContiguousError(
                f"{name}: {spec.label(i)}: array with shape {a.shape} and strides {a.strides} is not C-contiguous "
                "(arrays are never copied implicitly; use np.ascontiguousarray)"
            )
        if spec.written and not flags.writeable:
            raise ReadOnlyError(f"{name}: {spec.label(i)}: the function writes this buffer but the array is read-only")
        ptr = data_pointer(a)
        align = spec.align or a.itemsize
        if ptr % align:
            raise AlignmentError(f"{name}: {spec.label(i)}: data pointer {ptr:#x} is not {align}-byte aligned")
        ranges.append((ptr, ptr + a.nbytes))
    for w, spec in enumerate(specs):
        if not spec.written:
            continue
        w_lo, w_hi = ranges[w]
        for j, (lo, hi) in enumerate(ranges):
            if j != w and w_lo < w_hi and lo < hi and w_lo < hi and lo < w_hi:
                raise AliasingError(
                    f"{name}: {spec.label(w)} is written but overlaps {specs[j].label(j)} in memory; "
                    "pass a separate output array"
                )
    return [lo for lo, _ in ranges]


# The result nestings `<entry>_pyreturn` builds (its RT_RET_KIND values, llvm_pyreturn.py).
_NESTING_KINDS = {"single": 1, "tuple": 2, "value_and_tuple": 3}


def _same_arrays(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(x is y or np.array_equal(x, y) for x, y in zip(a, b))


def _declined(arrays) -> int:
    return 1


class NativeFunction(LLVMInspection):
    """A compiled entry function: `f(*arrays)` runs it (returns None; results land in written buffers).

    Attributes: `name`, `arg_specs`, `workspace_bytes`, `llvm_ir` (before
    optimisation), `llvm_ir_optimized`, `asm`, `cache_hit`, `cache_source`
    ("memory", "disk" or None), `compile_seconds`, `native_checks` (whether
    the fast checked path is active), `abi` (symbols, specs, workspace size)
    and `cache_key` (the object cache entry it was loaded from or stored as).
    """

    def __init__(
        self,
        jit,
        abi: EntryABI,
        *,
        cache_source: str | None = None,
        compile_seconds: float = 0.0,
        cache_key: str | None = None,
    ):
        self.abi = abi
        self.cache_key = cache_key  # the object entry's key (cache.py)
        self.name = abi.name
        self.arg_specs = abi.specs
        self.workspace_bytes = abi.workspace_bytes
        self.cache_source = cache_source
        self.cache_hit = cache_source is not None
        self.compile_seconds = compile_seconds
        self._jit = jit  # keeps the machine code alive
        runtime = self._runtime = entry_runtime(jit, abi)
        self._workspace_address = runtime.workspace_address
        self.native_checks = runtime.native_checks
        self._packed = ctypes.PYFUNCTYPE(None, ctypes.c_void_p)(jit.function_address(abi.packed_symbol))
        self._slot_type = ctypes.c_void_p * (len(abi.specs) + 1)
        # `checked_call(arrays)`: truthy if it declined (nothing ran), falsy if the kernel ran.
        if runtime.native_checks and pycall.available():
            self.checked_call = pycall.builtin(jit.function_address(abi.pycall_symbol), abi.pycall_symbol, jit)
        elif runtime.native_checks:
            self.checked_call = ctypes.PYFUNCTYPE(ctypes.c_int64, ctypes.py_object)(jit.function_address(abi.checked_symbol))
        else:
            self.checked_call = _declined

    def __call__(self, *arrays) -> None:
        if self.checked_call(arrays):
            self._call_checked_in_python(arrays)

    def try_call(self, arrays: tuple) -> bool:
        """Run only if the native check accepts `arrays` (a tuple); False means nothing ran.

        The caller's hot path: on False it falls back to `__call__`, whose
        Python check raises the precise error (or runs an unusual but valid
        argument, such as an ndarray subclass).
        """
        return not self.checked_call(arrays)

    def returning_call(self, n_inputs: int, n_outputs: int, nesting: str, constants: tuple, traces_open: int = 0):
        """The builtin `<entry>_pyreturn` (llvm_pyreturn.py) for this call layout, or None where unavailable.

        `f(args)` checks the `n_inputs` arrays of the tuple `args`, allocates the
        next `n_outputs` buffers, takes the rest from `constants`, runs, and
        returns by `nesting`: "single" the fresh output, "tuple" a tuple of them,
        "value_and_tuple" (first, (others...)); 0-d ones as Python numbers;
        `NotImplemented` when it declines. One layout per loaded
        entry: a different one, or other constants, gets None (the caller keeps its Python path).
        None too when an input is written (the overlap checks are `_checked`'s).
        `traces_open`: the address of an int64 that is non-zero while a trace is
        open anywhere (the entry declines then), or 0.
        """
        specs, runtime = self.arg_specs, self._runtime
        layout = probe_layout()
        if not runtime.native_checks or not pycall.available() or layout is None or not layout[RT_PYARRAY_NEW]:
            return None
        if not self.abi.pyreturn_symbol:
            return None
        kind = _NESTING_KINDS.get(nesting)
        if kind is None or n_inputs + n_outputs + len(constants) != len(specs):
            return None
        if (nesting == "single" and n_outputs != 1) or (nesting == "value_and_tuple" and n_outputs < 1):
            return None
        if any(spec.written for spec in specs[:n_inputs]):
            return None
        for spec, c in zip(specs[n_inputs + n_outputs :], constants):
            if not (type(c) is np.ndarray and c.dtype == spec.np_dtype and c.shape == spec.shape and c.flags.c_contiguous):
                return None
            if data_pointer(c) % (spec.align or c.itemsize):
                return None
        wanted = (n_inputs, n_outputs, kind)
        with self._jit.state_lock:
            if runtime.return_layout is None:
                address = self._jit.global_address(self.abi.runtime_table_symbol)
                table = (ctypes.c_int64 * (RT_SLOTS + len(specs))).from_address(address)
                for j, c in enumerate(constants):
                    table[RT_SLOTS + n_inputs + n_outputs + j] = data_pointer(c)
                table[RT_RET_N_IN], table[RT_RET_N_OUT], table[RT_TRACES_OPEN] = n_inputs, n_outputs, traces_open
                table[RT_RET_KIND] = kind  # last: a non-zero kind enables the entry
                symbol = self.abi.pyreturn_symbol
                runtime.returning = pycall.builtin(self._jit.function_address(symbol), symbol, self._jit)
                runtime.return_layout, runtime.return_constants = wanted, tuple(constants)
            elif runtime.return_layout != wanted or not _same_arrays(runtime.return_constants, constants):
                return None  # (the loaded code is shared by equal LLVM IR; its constants may differ)
        return runtime.returning

    def returning_dispatcher(self, fallback):
        """`f(*args)`: `returning_call`'s builtin as METH_VARARGS, calling `fallback(*args)` when it declines.

        Only after `returning_call` set the entry up (else None)."""
        symbol = self.abi.pyreturn_symbol
        if self._runtime.returning is None:
            return None
        return pycall.builtin(self._jit.function_address(symbol), symbol, self._jit, fallback=fallback, varargs=True)

    def _call_checked_in_python(self, arrays: tuple) -> None:
        pointers = check_arguments(self.name, self.arg_specs, arrays)
        # A fresh pointer array per slow call: no state shared between threads.
        slots = self._slot_type(*pointers, self._workspace_address)
        self._packed(ctypes.addressof(slots))

    def _llvm_source(self):
        return self._jit

    def __repr__(self) -> str:
        args = ", ".join(f"{s.name or '_'}: {s.dtype}{list(s.shape)}{'!' if s.written else ''}" for s in self.arg_specs)
        return f"<NativeFunction {self.name}({args}) workspace={self.workspace_bytes}B>"
