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
from . import dispatch, pool, pycall
from .numpy_abi import data_pointer, fill_runtime_table
from .specs import ArgSpec


@dataclass
class EntryRuntime:
    """Per-entry state shared by every NativeFunction of one loaded module."""

    workspace: np.ndarray
    workspace_address: int
    native_checks: bool


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
        runtime = entry_runtime(jit, abi)
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

    def result_descriptor(self, n_inputs: int, n_outputs: int, nesting: str, constants: tuple, traces_open: int):
        """The layout of a call served natively by dispatch.py, or None where it cannot be.

        The first `n_inputs` buffers come from the argument tuple (checked), the
        next `n_outputs` are fresh results, the rest are `constants`; `nesting`
        is how the results are returned ("single", "tuple", "value_and_tuple");
        `traces_open` the address of the count of open traces (it declines then).
        """
        specs = self.arg_specs
        if not self.native_checks or n_inputs + n_outputs + len(constants) != len(specs):
            return None
        in_specs, out_specs = specs[:n_inputs], specs[n_inputs : n_inputs + n_outputs]
        return dispatch.describe(
            self._jit.function_address(self.abi.packed_symbol), self._workspace_address, in_specs, out_specs,
            list(zip(specs[n_inputs + n_outputs :], constants)), nesting, traces_open,
        )  # fmt: skip

    def returning_builtin(self, descriptor, keep_alive, fallback=NotImplemented, varargs: bool = False):
        """The builtin running `descriptor`'s layout: `f(args)` (or `f(*args)` with `varargs`) returns
        the results, or `fallback(*args)` when it declines; None if there is no dispatcher here.
        `keep_alive`: what the descriptor's addresses point into (the constants)."""
        return dispatch.dispatcher(descriptor, (self._jit, keep_alive), fallback, varargs)

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
