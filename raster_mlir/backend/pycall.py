"""Native code as a CPython builtin function: the cheapest way to call it from Python.

A ctypes call of a JIT-compiled function costs about 0.3-0.5 us: ctypes
converts every argument and the result and goes through libffi. CPython calls
a builtin (`PyCFunction`) with `METH_O` directly, C to C, in tens of
nanoseconds. The entry points' `<name>_pycall` (llvm_entry.py) already has the
`METH_O` signature `PyObject* f(PyObject* self, PyObject* arg)`, as has dispatch.py's generic
dispatcher; this module wraps such an address in a builtin function object
with `PyCFunction_NewEx`.
With `METH_VARARGS` the same function receives the tuple of positional
arguments instead, and with `METH_FASTCALL` (signature `(self, args, nargs)`)
CPython's argument array, no tuple, so a builtin can stand for `f(*args)`
itself: an `@rm.jit` function's `_dispatch` (jit.py) is a METH_FASTCALL | METH_KEYWORDS one.

Lifetime: CPython keeps only a pointer to the `PyMethodDef` it is given, so
the definition (and the JIT that holds the machine code) must live as long as
the builtin. Both are held by the tuple passed as the builtin's `self`, which
the builtin holds a reference to, so nothing can outlive what it calls.
"""

from __future__ import annotations

import ctypes
import sys

METH_VARARGS = 0x0001
METH_KEYWORDS = 0x0002
METH_O = 0x0008
METH_FASTCALL = 0x0080


class _MethodDef(ctypes.Structure):
    _fields_ = [
        ("ml_name", ctypes.c_char_p),
        ("ml_meth", ctypes.c_void_p),
        ("ml_flags", ctypes.c_int),
        ("ml_doc", ctypes.c_char_p),
    ]


def _new_function():
    new = ctypes.pythonapi.PyCFunction_NewEx
    new.restype = ctypes.py_object
    new.argtypes = [ctypes.c_void_p, ctypes.py_object, ctypes.py_object]
    return new


_NEW = _new_function() if sys.implementation.name == "cpython" else None


def available() -> bool:
    """Whether native builtins can be made here (CPython only)."""
    return _NEW is not None


def builtin(address: int, name: str, state, fallback=NotImplemented, flags: int = METH_O, keep_alive=None):
    """A builtin calling the native function at `address`, by `flags`:

    METH_O: `PyObject* fn(PyObject* self, PyObject* arg)`, `f(t)` passes the object `t`;
    METH_VARARGS: the same signature, `f(*args)` passes the tuple `args`;
    METH_FASTCALL: `PyObject* fn(PyObject* self, PyObject* const* args, Py_ssize_t nargs)`,
    `f(*args)` passes the arguments as an array (a vectorcall: no tuple is made);
    METH_FASTCALL | METH_KEYWORDS: the same with a fourth argument, the tuple of keyword names (or NULL).
    The builtin's `self` is the tuple `(fallback, state, definition, name, keep_alive)`: the native
    code reads `state` (dispatch.py: its descriptor) and calls `fallback(*args)`
    when it declines (NotImplemented: returns that); everything in it, the
    machine code's owner included, lives as long as the builtin.
    """
    if _NEW is None:
        raise RuntimeError("native builtins need CPython")
    encoded = name.encode()
    if flags not in (METH_O, METH_VARARGS, METH_FASTCALL, METH_FASTCALL | METH_KEYWORDS):
        raise ValueError(f"unsupported builtin flags {flags:#x}")
    definition = _MethodDef(encoded, address, flags, None)
    owner = (fallback, state, definition, encoded, keep_alive)
    return _NEW(ctypes.addressof(definition), owner, None)
