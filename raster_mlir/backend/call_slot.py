"""Calling instances of a class straight through one of their attributes: a native `tp_call`.

Why: `JitFunction.__call__` is a property whose getter is C code
(`operator.attrgetter("_dispatch")`), so `f(x)` runs no Python frame, but
CPython still looks `__call__` up on the type (`slot_tp_call`), runs the
property, which runs the attrgetter, which looks `_dispatch` up on the
instance, and only then calls it: about 60 ns of a 250 ns call of a compiled
function on 1,000 elements. `install(cls, "_dispatch")` replaces the class's
`tp_call` slot by native code doing the same with none of the lookups:

    PyObject* call(PyObject* self, PyObject* args, PyObject* kwargs):
        target = *(PyObject**)((char*)self + OFFSET)    # the __slots__ member
        if target == NULL: return original_tp_call(self, args, kwargs)   # its AttributeError
        Py_IncRef(target)                # (the call may rebind the attribute)
        result = PyObject_Call(target, args, kwargs)
        Py_DecRef(target)
        return result

which is what the property path computes (a member of `__slots__` is a data
descriptor, so `getattr` finds exactly the slot's value), with the same
argument tuple and keywords. `cls.__call__` stays the property, so
`f.__call__(x)` and introspection are unchanged; subclasses get CPython's
generic slot when they are created (their `__call__` is found in the MRO),
so they take the property path, which is equivalent.

Everything is verified before the slot is written (`_verified_layout`): the
`PyTypeObject` field offsets (on `__basicsize__`, `__itemsize__` and the
exported `PyObject_HashNotImplemented` of a class with `__hash__ = None`),
that the class's `tp_call` is CPython's generic one, the member's offset (by
the instance's memory holding the attribute's value) and a call through a
probe class. Anything unexpected leaves the class alone (the property path).
The code for the usual offset (the first member of `__slots__`) is part of dispatch.py's module;
another offset gets a tiny module of its own, from the compile cache.
"""

from __future__ import annotations

import ctypes
import operator
import sys
import threading

_PTR = 8
_TYPE_FIELDS = (
    "ob_refcnt", "ob_type", "ob_size", "tp_name", "tp_basicsize", "tp_itemsize", "tp_dealloc",
    "tp_vectorcall_offset", "tp_getattr", "tp_setattr", "tp_as_async", "tp_repr", "tp_as_number",
    "tp_as_sequence", "tp_as_mapping", "tp_hash", "tp_call",
)  # fmt: skip (Include/cpython/object.h, unchanged from CPython 3.8 to 3.13)
_OFF = {name: k * _PTR for k, name in enumerate(_TYPE_FIELDS)}

_lock = threading.Lock()
_modules: dict[int, tuple] = {}  # member offset -> (JIT module, address of the function): kept for the process
_installed: set[type] = set()


# The offset of the first `__slots__` member of a class deriving from object (after ob_refcnt, ob_type).
USUAL_OFFSET = 2 * _PTR


def ir(offset: int) -> str:
    """The tp_call (module docstring) for a member at `offset`, with its table `@call_slot_rt_<offset>`."""
    return f"""
@call_slot_rt_{offset} = global [4 x i64] zeroinitializer, align 8   ; PyObject_Call, original tp_call, Py_IncRef, Py_DecRef

define ptr @raster_mlir_call_slot_{offset}(ptr %self, ptr %args, ptr %kwargs) {{
entry:
  %p = getelementptr i8, ptr %self, i64 {offset}
  %target = load ptr, ptr %p
  %missing = icmp eq ptr %target, null
  br i1 %missing, label %generic, label %call
call:
  %incref_i = load i64, ptr getelementptr inbounds ([4 x i64], ptr @call_slot_rt_{offset}, i64 0, i64 2)
  %incref = inttoptr i64 %incref_i to ptr
  call void %incref(ptr %target)
  %call_i = load i64, ptr @call_slot_rt_{offset}
  %call_fn = inttoptr i64 %call_i to ptr
  %result = call ptr %call_fn(ptr %target, ptr %args, ptr %kwargs)
  %decref_i = load i64, ptr getelementptr inbounds ([4 x i64], ptr @call_slot_rt_{offset}, i64 0, i64 3)
  %decref = inttoptr i64 %decref_i to ptr
  call void %decref(ptr %target)
  ret ptr %result
generic:
  %orig_i = load i64, ptr getelementptr inbounds ([4 x i64], ptr @call_slot_rt_{offset}, i64 0, i64 1)
  %orig = inttoptr i64 %orig_i to ptr
  %g = tail call ptr %orig(ptr %self, ptr %args, ptr %kwargs)
  ret ptr %g
}}
"""


def _word(address: int) -> int:
    return ctypes.c_ssize_t.from_address(address).value


def _generic_tp_call() -> int | None:
    """CPython's `slot_tp_call` (the tp_call of a class defining `__call__`), once the type layout checks out."""

    class Hashless:
        __hash__ = None

    class Callable:
        def __call__(self):
            return None

    class Plain:
        pass

    not_implemented = ctypes.cast(ctypes.pythonapi.PyObject_HashNotImplemented, ctypes.c_void_p).value
    for cls in (Hashless, Callable, Plain):
        if _word(id(cls) + _OFF["tp_basicsize"]) != cls.__basicsize__:
            return None
        if _word(id(cls) + _OFF["tp_itemsize"]) != cls.__itemsize__:
            return None
    if _word(id(Hashless) + _OFF["tp_hash"]) != not_implemented or _word(id(Plain) + _OFF["tp_call"]) != 0:
        return None
    generic = _word(id(Callable) + _OFF["tp_call"])
    return generic or None


def _member_offset(instance, attr: str) -> int | None:
    """The offset of `instance`'s __slots__ member `attr`: the one word of the object holding its value."""
    value = getattr(instance, attr)
    hits = [o for o in range(_PTR, type(instance).__basicsize__, _PTR) if _word(id(instance) + o) == id(value)]
    return hits[0] if len(hits) == 1 else None


def _module(offset: int):
    """A loaded JIT module defining the tp_call for members at `offset`: dispatch.py's for the usual offset
    (its module carries that function, so installing costs no module load), else one of its own."""
    if offset == USUAL_OFFSET:
        from . import dispatch

        native = dispatch._get()
        if native is not None:
            return native.jit
    from .cache import load_or_compile
    from .target import host_target

    return load_or_compile(ir(offset), host_target(), opt_level=1).module


def _function(offset: int, generic: int) -> int:
    """The address of the native tp_call for members at `offset`, its table filled (kept for the process)."""
    entry = _modules.get(offset)
    if entry is None:
        jit = _module(offset)
        api = ctypes.pythonapi
        table = (ctypes.c_int64 * 4).from_address(jit.global_address(f"call_slot_rt_{offset}"))
        for k, fn in enumerate((api.PyObject_Call, None, api.Py_IncRef, api.Py_DecRef)):
            table[k] = generic if fn is None else ctypes.cast(fn, ctypes.c_void_p).value
        entry = _modules[offset] = (jit, jit.function_address(f"raster_mlir_call_slot_{offset}"))
    return entry[1]


def _probe(offset: int, attr: str, address: int, generic: int) -> bool:
    """Install on a throwaway class whose member sits at `offset`, and call through it."""
    probe = type("Probe", (), {"__slots__": (attr, "__dict__", "__weakref__"), "__call__": property(operator.attrgetter(attr))})
    instance = probe()
    setattr(instance, attr, lambda *a, **k: (a, k))
    if _member_offset(instance, attr) != offset or _word(id(probe) + _OFF["tp_call"]) != generic:
        return False
    ctypes.c_ssize_t.from_address(id(probe) + _OFF["tp_call"]).value = address
    if instance(1, 2, key=3) != ((1, 2), {"key": 3}):
        return False
    delattr(instance, attr)
    try:
        instance()
    except AttributeError:
        return True
    return False


def install(cls: type, attr: str, instance) -> bool:
    """Make `cls(...)` instances call their `attr` natively (module docstring); True if installed.

    `cls` must define `__call__ = property(operator.attrgetter(attr))` and `attr` in its `__slots__`;
    `instance` is one of its instances with `attr` set (to find the member's offset).
    """
    if cls in _installed:
        return True
    if sys.implementation.name != "cpython" or ctypes.sizeof(ctypes.c_void_p) != _PTR or type(instance) is not cls:
        return False
    with _lock:
        if cls in _installed:
            return True
        generic = _generic_tp_call()
        offset = _member_offset(instance, attr)
        if generic is None or offset is None or _word(id(cls) + _OFF["tp_call"]) != generic:
            return False
        address = _function(offset, generic)
        if not _probe(offset, attr, address, generic):
            return False
        ctypes.c_ssize_t.from_address(id(cls) + _OFF["tp_call"]).value = address
        _installed.add(cls)
    return True
