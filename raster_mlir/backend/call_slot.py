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

Vectorcall (PEP 590). Even a native tp_call costs CPython an argument tuple
per call and two more calls (`_PyObject_MakeTpCall`, `PyObject_Call`): about
20 ns. A class that declares a second `__slots__` member for it (`_vectorcall`)
and passes it to `prepare_vectorcall` right after the class statement gets
CPython's vectorcall instead: that member becomes a raw `Py_ssize_t` word
(its PyMemberDef's type is rewritten, so the garbage collector and
deallocation skip it), `install` sets the class's `tp_vectorcall_offset` to
it and `Py_TPFLAGS_HAVE_VECTORCALL` (after a probe class of the same layout
answered positional and keyword calls and a missing member as the property
does), and writes the address of

    PyObject* vectorcall(PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames):
        target = *(PyObject**)((char*)self + OFFSET)
        if target == NULL or Py_TYPE(self)->tp_call != <the tp_call above>:
            # a missing member (the property's AttributeError), or `__call__` replaced on the class
            # (CPython 3.11 then rewrites tp_call but keeps the flag): what obj.__call__ gives
            return PyObject_Vectorcall(getattr(self, "__call__"), args, nargsf, kwnames)
        Py_IncRef(target)
        if kwnames == NULL and target is a builtin whose ml_meth is dispatch.py's fastcall dispatcher:
            result = dispatcher(target->m_self, args, PyVectorcall_NARGS(nargsf), NULL)
        else:
            result = PyObject_Vectorcall(target, args, nargsf, kwnames)
        Py_DecRef(target)
        return result

into each instance `install` is given (a word left 0 means "use tp_call", so
instances made before still work). Subclasses get no vectorcall flag from
CPython (heap types do not inherit it), so they keep the property path.
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
    "tp_as_sequence", "tp_as_mapping", "tp_hash", "tp_call", "tp_str", "tp_getattro", "tp_setattro",
    "tp_as_buffer", "tp_flags",
)  # fmt: skip (Include/cpython/object.h, unchanged from CPython 3.8 to 3.13)
_OFF = {name: k * _PTR for k, name in enumerate(_TYPE_FIELDS)}

_lock = threading.Lock()
_modules: dict[int, tuple] = {}  # member offset -> (JIT module, address of the function): kept for the process
_installed: set[type] = set()
_vectorcall_members: dict[type, int] = {}  # class -> offset of its vectorcall member (prepare_vectorcall)
_vectorcall_installed: dict[type, int] = {}  # class -> address of its vectorcall function

Py_TPFLAGS_HAVE_VECTORCALL = 1 << 11
T_OBJECT_EX = 16  # (Include/structmember.h)
T_PYSSIZET = 19
_MEMBER_DEF = {"name": 0, "type": 8, "offset": 16, "flags": 24}  # PyMemberDef's fields
_DESCR = {"d_type": 16, "d_name": 24, "d_member": 40}  # PyMemberDescrObject's fields
_CFUNCTION = {"m_ml": 16, "m_self": 24, "ml_meth": 8}  # PyCFunctionObject's fields, and PyMethodDef's ml_meth


# The offset of the first `__slots__` member of a class deriving from object (after ob_refcnt, ob_type).
USUAL_OFFSET = 2 * _PTR


def ir(offset: int) -> str:
    """The tp_call (module docstring) for a member at `offset`, with its table `@call_slot_rt_<offset>`,
    and the vectorcall of `vectorcall_ir`."""
    return _tp_call_ir(offset) + vectorcall_ir(offset)


def vectorcall_ir(offset: int) -> str:
    """`raster_mlir_vectorcall_<offset>`: a PEP 590 vectorcall reading the member at `offset` and
    vectorcalling it (module docstring), with its table `@vectorcall_rt_<offset>`.

    While the class's tp_call is still the native one of `ir` it calls the member (a vectorcall: no
    argument tuple, keywords passed on); if somebody replaced the class's `__call__` since (CPython
    then rewrites tp_call but keeps the vectorcall flag), or the member is empty, it calls what
    `obj.__call__` gives (the property: the member, or its AttributeError; or the new `__call__`)."""
    return f"""
@vectorcall_rt_{offset} = global [7 x i64] zeroinitializer, align 8   ; PyObject_Vectorcall, PyObject_GetAttr, Py_IncRef, Py_DecRef, "__call__", builtin type, dispatcher

define ptr @raster_mlir_vectorcall_{offset}(ptr %self, ptr %args, i64 %nargsf, ptr %kwnames) {{
entry:
  %type_p = getelementptr i8, ptr %self, i64 {_OFF["ob_type"]}
  %type = load ptr, ptr %type_p
  %tp_call_p = getelementptr i8, ptr %type, i64 {_OFF["tp_call"]}
  %tp_call = load ptr, ptr %tp_call_p
  %ours = icmp eq ptr %tp_call, @raster_mlir_call_slot_{offset}
  %p = getelementptr i8, ptr %self, i64 {offset}
  %target = load ptr, ptr %p
  %present = icmp ne ptr %target, null
  %direct = and i1 %ours, %present
  %vcall_i = load i64, ptr @vectorcall_rt_{offset}
  %vcall = inttoptr i64 %vcall_i to ptr
  %incref_i = load i64, ptr getelementptr inbounds ([7 x i64], ptr @vectorcall_rt_{offset}, i64 0, i64 2)
  %incref = inttoptr i64 %incref_i to ptr
  %decref_i = load i64, ptr getelementptr inbounds ([7 x i64], ptr @vectorcall_rt_{offset}, i64 0, i64 3)
  %decref = inttoptr i64 %decref_i to ptr
  br i1 %direct, label %call, label %generic
call:
  call void %incref(ptr %target)                 ; (the call may rebind the member)
  %builtin_i = load i64, ptr getelementptr inbounds ([7 x i64], ptr @vectorcall_rt_{offset}, i64 0, i64 5)
  %dispatcher_i = load i64, ptr getelementptr inbounds ([7 x i64], ptr @vectorcall_rt_{offset}, i64 0, i64 6)
  %target_type_p = getelementptr i8, ptr %target, i64 {_OFF["ob_type"]}
  %target_type = load i64, ptr %target_type_p
  %is_builtin = icmp eq i64 %target_type, %builtin_i
  %no_keywords = icmp eq ptr %kwnames, null
  %may_be_ours = and i1 %is_builtin, %no_keywords
  br i1 %may_be_ours, label %builtin, label %vectorcall
builtin:
  %ml_p = getelementptr i8, ptr %target, i64 {_CFUNCTION["m_ml"]}
  %ml = load ptr, ptr %ml_p
  %meth_p = getelementptr i8, ptr %ml, i64 {_CFUNCTION["ml_meth"]}
  %meth = load i64, ptr %meth_p
  %is_dispatcher = icmp eq i64 %meth, %dispatcher_i
  br i1 %is_dispatcher, label %dispatch, label %vectorcall
dispatch:
  ; dispatch.py's METH_FASTCALL dispatcher, called as CPython would (without its recursion check:
  ; the dispatcher recurses only through its Python fallback, which has its own)
  %m_self_p = getelementptr i8, ptr %target, i64 {_CFUNCTION["m_self"]}
  %m_self = load ptr, ptr %m_self_p
  %nargs = and i64 %nargsf, {2**63 - 1}
  %dispatch_fn = inttoptr i64 %dispatcher_i to ptr
  %dispatched = call ptr %dispatch_fn(ptr %m_self, ptr %args, i64 %nargs, ptr null)   ; (no keywords)
  call void %decref(ptr %target)
  ret ptr %dispatched
vectorcall:
  %result = call ptr %vcall(ptr %target, ptr %args, i64 %nargsf, ptr %kwnames)
  call void %decref(ptr %target)
  ret ptr %result
generic:
  %getattr_i = load i64, ptr getelementptr inbounds ([7 x i64], ptr @vectorcall_rt_{offset}, i64 0, i64 1)
  %getattr = inttoptr i64 %getattr_i to ptr
  %name_i = load i64, ptr getelementptr inbounds ([7 x i64], ptr @vectorcall_rt_{offset}, i64 0, i64 4)
  %name = inttoptr i64 %name_i to ptr
  %method = call ptr %getattr(ptr %self, ptr %name)
  %failed = icmp eq ptr %method, null
  br i1 %failed, label %fail, label %call_method
call_method:
  %result2 = call ptr %vcall(ptr %method, ptr %args, i64 %nargsf, ptr %kwnames)
  call void %decref(ptr %method)
  ret ptr %result2
fail:
  ret ptr null
}}
"""


def _tp_call_ir(offset: int) -> str:
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


_CALL_NAME = sys.intern("__call__")  # (the vectorcall tables hold its address)


def _fastcall_dispatcher() -> int:
    """dispatch.py's METH_FASTCALL dispatcher, which the vectorcall calls directly when the member is a
    builtin running it; 0 (always vectorcall the member) without it or if a builtin's layout is unexpected."""
    from . import dispatch, pycall

    native = dispatch._get()
    if native is None:
        return 0
    address = native.fastcall_address
    probe = pycall.builtin(address, "probe", None, NotImplemented, pycall.METH_FASTCALL | pycall.METH_KEYWORDS)  # (never called)
    if type(probe) is not type(len) or _word(id(probe) + _CFUNCTION["m_self"]) != id(probe.__self__):
        return 0
    return address if _word(_word(id(probe) + _CFUNCTION["m_ml"]) + _CFUNCTION["ml_meth"]) == address else 0


def _functions(offset: int, generic: int) -> tuple[int, int]:
    """The addresses of the native tp_call and vectorcall for members at `offset`, their tables filled
    (kept for the process)."""
    entry = _modules.get(offset)
    if entry is None:
        jit = _module(offset)
        api = ctypes.pythonapi

        def fn(f) -> int:
            return ctypes.cast(f, ctypes.c_void_p).value

        table = (ctypes.c_int64 * 4).from_address(jit.global_address(f"call_slot_rt_{offset}"))
        table[:] = [fn(api.PyObject_Call), generic, fn(api.Py_IncRef), fn(api.Py_DecRef)]
        table = (ctypes.c_int64 * 7).from_address(jit.global_address(f"vectorcall_rt_{offset}"))
        table[:] = [
            fn(api.PyObject_Vectorcall), fn(api.PyObject_GetAttr), fn(api.Py_IncRef), fn(api.Py_DecRef), id(_CALL_NAME),
            id(type(len)), _fastcall_dispatcher(),
        ]  # fmt: skip
        entry = _modules[offset] = (
            jit, jit.function_address(f"raster_mlir_call_slot_{offset}"), jit.function_address(f"raster_mlir_vectorcall_{offset}")
        )  # fmt: skip
    return entry[1], entry[2]


def _probe(offset: int, attr: str, address: int, generic: int, vectorcall: int = 0) -> bool:
    """Install on a throwaway class whose member sits at `offset`, and call through it (and, given the
    `vectorcall` address, through that too)."""
    slots = (attr, "_vectorcall", "__dict__", "__weakref__") if vectorcall else (attr, "__dict__", "__weakref__")
    probe = type("Probe", (), {"__slots__": slots, "__call__": property(operator.attrgetter(attr))})
    if vectorcall and not (prepare_vectorcall(probe, "_vectorcall") and _enable_vectorcall(probe, vectorcall)):
        return False
    instance = probe()
    if vectorcall:
        instance._vectorcall = vectorcall
    setattr(instance, attr, lambda *a, **k: (a, k))
    if _member_offset(instance, attr) != offset or _word(id(probe) + _OFF["tp_call"]) != generic:
        return False
    ctypes.c_ssize_t.from_address(id(probe) + _OFF["tp_call"]).value = address
    if instance(1, 2, key=3) != ((1, 2), {"key": 3}) or instance(*range(7)) != (tuple(range(7)), {}):
        return False
    delattr(instance, attr)
    try:
        instance()
    except AttributeError:
        return True
    return False


def prepare_vectorcall(cls: type, member: str) -> bool:
    """Turn `cls`'s __slots__ member `member` into a raw word (a `Py_ssize_t` member) that can hold a
    vectorcall function's address (module docstring); True if done. Call it right after the class
    statement, before any instance exists (an object stored there would be read as code)."""
    if sys.implementation.name != "cpython" or ctypes.sizeof(ctypes.c_void_p) != _PTR:
        return False
    descr = cls.__dict__.get(member)
    if type(descr).__name__ != "member_descriptor" or descr.__objclass__ is not cls:
        return False
    if _word(id(descr) + _DESCR["d_type"]) != id(cls) or _word(id(descr) + _DESCR["d_name"]) != id(descr.__name__):
        return False
    definition = _word(id(descr) + _DESCR["d_member"])
    offset = _word(definition + _MEMBER_DEF["offset"])
    if (
        ctypes.string_at(_word(definition + _MEMBER_DEF["name"])) != member.encode()
        or ctypes.c_int.from_address(definition + _MEMBER_DEF["type"]).value != T_OBJECT_EX
        or ctypes.c_int.from_address(definition + _MEMBER_DEF["flags"]).value != 0
        or not _PTR * 2 <= offset <= cls.__basicsize__ - _PTR
    ):
        return False
    ctypes.c_int.from_address(definition + _MEMBER_DEF["type"]).value = T_PYSSIZET
    _vectorcall_members[cls] = offset
    setattr(cls, member, _VectorcallWord(member, descr))
    return True


class _VectorcallWord:
    """The Python face of a prepared vectorcall member: reading gives the word; writing accepts only 0
    (call through tp_call) or the address `install` gave the class (or a base class). CPython calls
    whatever address the word holds, so any other value, written by mistake or by a copy gone wrong,
    would crash the process; it gets a ValueError instead."""

    def __init__(self, name: str, member):
        self.name, self.member = name, member  # (the slot's own descriptor, now a Py_ssize_t member)

    def __get__(self, instance, owner=None):
        return self if instance is None else self.member.__get__(instance, owner)

    def __set__(self, instance, value) -> None:
        allowed = {0, *(_vectorcall_installed.get(k) for k in type(instance).__mro__)} - {None}
        if type(value) is not int or value not in allowed:
            raise ValueError(
                f"{type(instance).__name__}.{self.name} holds the address of the native vectorcall function "
                f"(or 0 for the tp_call path); {value!r} is neither"
            )
        self.member.__set__(instance, value)

    def __delete__(self, instance) -> None:
        raise AttributeError(f"{type(instance).__name__}.{self.name} cannot be deleted (set it to 0 instead)")


def _enable_vectorcall(cls: type, address: int) -> bool:
    """Point `cls`'s tp_vectorcall_offset at its prepared member and set Py_TPFLAGS_HAVE_VECTORCALL
    (instances whose member holds 0 keep calling through tp_call)."""
    offset = _vectorcall_members.get(cls)
    flags = _word(id(cls) + _OFF["tp_flags"])
    if offset is None or flags != cls.__flags__ or flags & Py_TPFLAGS_HAVE_VECTORCALL:
        return False
    if _word(id(cls) + _OFF["tp_vectorcall_offset"]) != 0:
        return False
    ctypes.c_ssize_t.from_address(id(cls) + _OFF["tp_vectorcall_offset"]).value = offset
    ctypes.c_ssize_t.from_address(id(cls) + _OFF["tp_flags"]).value = flags | Py_TPFLAGS_HAVE_VECTORCALL
    _vectorcall_installed[cls] = address
    return True


def install(cls: type, attr: str, instance) -> bool:
    """Make `cls(...)` instances call their `attr` natively (module docstring); True if installed.

    `cls` must define `__call__ = property(operator.attrgetter(attr))` and `attr` in its `__slots__`;
    `instance` is one of its instances with `attr` set (to find the member's offset). If `cls` has a
    member prepared by `prepare_vectorcall`, instances are also called by vectorcall, `instance` from
    now on (others once they are passed here).
    """
    if cls in _installed:
        _set_vectorcall(cls, instance)
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
        address, vectorcall = _functions(offset, generic)
        if not _probe(offset, attr, address, generic):
            return False
        ctypes.c_ssize_t.from_address(id(cls) + _OFF["tp_call"]).value = address
        _installed.add(cls)
        if cls in _vectorcall_members and _probe(offset, attr, address, generic, vectorcall):
            _enable_vectorcall(cls, vectorcall)
    _set_vectorcall(cls, instance)
    return True


def _set_vectorcall(cls: type, instance) -> None:
    address = _vectorcall_installed.get(cls)
    if address is not None and type(instance) is cls:
        instance._vectorcall = address
