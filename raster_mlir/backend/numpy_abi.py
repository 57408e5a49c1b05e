"""The runtime table that lets native code validate numpy arrays by itself.

Why: checking shape, dtype, contiguity, writability and overlap of six
arrays in Python costs about 1 us (each `a.shape`, `a.flags.x` builds an
object, and `a.__array_interface__` alone costs 0.8 us), which is the whole
per-call budget. The `<entry>_checked` function (llvm_entry.py) instead reads
the fields of the argument tuple and of each `ndarray` object directly, the
way numpy's own C macros (`PyArray_DATA`, `PyArray_DIMS`, ...) do, and calls
the kernel only if every check passes.

Algorithm: the struct offsets are not baked into the IR (which is cached on
disk and must not depend on one process); they live in a per-entry table of
int64 slots that Python fills after loading the object code:

    slot  RT_NDARRAY_TYPE    address of the `numpy.ndarray` type object
    slot  RT_OFF_OB_TYPE     offset of `ob_type` in every PyObject
    slot  RT_OFF_TUPLE_SIZE  offset of `ob_size` in a tuple
    slot  RT_OFF_TUPLE_ITEMS offset of `ob_item[0]` in a tuple
    slot  RT_OFF_DATA ...    offsets of data / nd / dimensions / descr / flags
                             in numpy's `PyArrayObject_fields`
    slot  RT_WORKSPACE       address of the entry's workspace buffer
    slot  RT_OFF_DESCR_TYPEOBJ, RT_OFF_DESCR_BYTEORDER
                             offsets of `typeobj` and `byteorder` in a
                             PyArray_Descr (the same in numpy 1.x and 2.x)
    slot  RT_NATIVE_BYTEORDER  '<' or '>': the host's explicit byte order
    slot  RT_DESCR + k       address of the canonical dtype object of
                             DTYPE_ORDER[k]
    slot  RT_SCALAR_TYPE + k address of its scalar type (numpy.float64, ...)
    slot  RT_READY           1 once the table is filled
    slot  RT_PYBOOL_FROMLONG address of CPython's `PyBool_FromLong`, which
                             `<entry>_pycall` uses to return its verdict as a
                             Python bool (a new reference, on every version)
    slot  RT_PYARRAY_NEW     numpy's `PyArray_New` (from its C-API capsule,
                             checked by a call; 0 if that failed), for
                             dispatch.py, which allocates results natively

A dtype matches when its descriptor is the canonical object, or when its
scalar type is the wanted one and its byte order is native ('=', '|' or the
host's explicit one); the second form accepts the equal-but-distinct dtype
objects that unpickled arrays carry (multiprocessing hands arrays over
that way), while a byte-swapped dtype still goes to the Python path.

`probe_layout()` derives every offset from the public numpy ABI and then
*verifies* it on live objects (arrays of different ranks, a read-only and a
non-contiguous view, a tuple); if anything disagrees it returns None and the
call path validates in Python only (correct, just slower). Any argument the
native check does not accept (wrong type, subclass, non-canonical dtype
object, bad shape...) makes `<entry>_checked` return 1 without running the
kernel, and Python redoes the checks to raise the precise error.
"""

from __future__ import annotations

import ctypes
import functools
import pickle
import struct
import sys

import numpy as np

DTYPE_ORDER = ("float64", "float32", "int64", "int32")

RT_READY = 0
RT_NDARRAY_TYPE = 1
RT_OFF_OB_TYPE = 2
RT_OFF_TUPLE_SIZE = 3
RT_OFF_TUPLE_ITEMS = 4
RT_OFF_DATA = 5
RT_OFF_ND = 6
RT_OFF_DIMS = 7
RT_OFF_DESCR = 8
RT_OFF_FLAGS = 9
RT_WORKSPACE = 10
RT_OFF_DESCR_TYPEOBJ = 11
RT_OFF_DESCR_BYTEORDER = 12
RT_NATIVE_BYTEORDER = 13
RT_DESCR = 14
RT_SCALAR_TYPE = RT_DESCR + len(DTYPE_ORDER)
RT_PYBOOL_FROMLONG = RT_SCALAR_TYPE + len(DTYPE_ORDER)
RT_PYARRAY_NEW = RT_PYBOOL_FROMLONG + 1
RT_SLOTS = RT_PYARRAY_NEW + 1

# numpy's public flag bits (ndarraytypes.h); part of its stable C API.
NPY_C_CONTIGUOUS = 0x0001
NPY_ALIGNED = 0x0100
NPY_WRITEABLE = 0x0400

_PTR = struct.calcsize("P")


def _read_ptr(addr: int) -> int:
    return ctypes.c_void_p.from_address(addr).value or 0


def _read_int(addr: int) -> int:
    return ctypes.c_int.from_address(addr).value


@functools.lru_cache(maxsize=1)
def probe_layout() -> dict[int, int] | None:
    """Return {slot: value} for every slot except RT_WORKSPACE, or None if unverified."""
    if sys.implementation.name != "cpython" or _PTR != 8:
        return None
    # PyObject_HEAD is (ob_refcnt, ob_type); PyVarObject adds ob_size;
    # PyArrayObject_fields is: data, nd, dimensions, strides, base, descr, flags.
    head = 2 * _PTR
    layout = {
        RT_OFF_OB_TYPE: _PTR,
        RT_OFF_TUPLE_SIZE: head,
        RT_OFF_TUPLE_ITEMS: head + _PTR,
        RT_OFF_DATA: head,
        RT_OFF_ND: head + _PTR,
        RT_OFF_DIMS: head + 2 * _PTR,
        RT_OFF_DESCR: head + 5 * _PTR,
        RT_OFF_FLAGS: head + 6 * _PTR,
        RT_NDARRAY_TYPE: id(np.ndarray),
        # PyArray_Descr: PyObject_HEAD, typeobj, then the chars kind, type, byteorder.
        RT_OFF_DESCR_TYPEOBJ: head,
        RT_OFF_DESCR_BYTEORDER: head + _PTR + 2,
        RT_NATIVE_BYTEORDER: ord("<" if sys.byteorder == "little" else ">"),
    }
    layout[RT_PYBOOL_FROMLONG] = ctypes.cast(ctypes.pythonapi.PyBool_FromLong, ctypes.c_void_p).value
    layout[RT_PYARRAY_NEW] = _pyarray_new_address() or 0
    for k, name in enumerate(DTYPE_ORDER):
        layout[RT_DESCR + k] = id(np.dtype(name))
        layout[RT_SCALAR_TYPE + k] = id(np.dtype(name).type)
    try:
        ok = _verify(layout)
    except (ValueError, OverflowError):
        ok = False
    return layout if ok else None


_PYARRAY_NEW_INDEX = 93  # PyArray_New's slot in numpy's C-API table (the same in numpy 1.x and 2.x)


def _pyarray_new_address() -> int | None:
    """The address of numpy's `PyArray_New`, verified by allocating with it; None if that fails."""
    try:
        try:
            from numpy._core import _multiarray_umath as multiarray
        except ImportError:  # numpy 1.x
            from numpy.core import _multiarray_umath as multiarray
        get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
        get_pointer.restype = ctypes.c_void_p
        get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        table = get_pointer(multiarray._ARRAY_API, None)
        address = _read_ptr(table + _PYARRAY_NEW_INDEX * _PTR)
        vp, c_int = ctypes.c_void_p, ctypes.c_int
        new = ctypes.PYFUNCTYPE(ctypes.py_object, vp, c_int, vp, c_int, vp, vp, c_int, c_int, vp)(address)
        for dtype, shape in ((np.float64, (3, 5)), (np.float32, (7,)), (np.float64, ())):
            dims = (ctypes.c_int64 * max(len(shape), 1))(*shape)
            a = new(id(np.ndarray), len(shape), ctypes.addressof(dims), np.dtype(dtype).num, None, None, 0, 0, None)
            if type(a) is not np.ndarray or a.shape != shape or a.dtype != dtype:
                return None
            if not (a.flags.c_contiguous and a.flags.writeable and a.flags.aligned and a.flags.owndata):
                return None
        return address
    except (AttributeError, ImportError, ValueError, TypeError, OSError):
        return None


def _verify(layout: dict[int, int]) -> bool:
    base = np.zeros((3, 5, 7))
    samples = [base, np.zeros(11, dtype=np.float32), base[:, ::2], np.zeros((2, 4), dtype=np.int64)]
    readonly = np.zeros(6, dtype=np.int32)
    readonly.flags.writeable = False
    samples.append(readonly)
    for a in samples:
        obj = id(a)
        if _read_ptr(obj + layout[RT_OFF_OB_TYPE]) != layout[RT_NDARRAY_TYPE]:
            return False
        if _read_ptr(obj + layout[RT_OFF_DATA]) != a.__array_interface__["data"][0]:
            return False
        if _read_int(obj + layout[RT_OFF_ND]) != a.ndim:
            return False
        dims = _read_ptr(obj + layout[RT_OFF_DIMS])
        if tuple((ctypes.c_int64 * a.ndim).from_address(dims)) != a.shape:
            return False
        if _read_ptr(obj + layout[RT_OFF_DESCR]) != layout[RT_DESCR + DTYPE_ORDER.index(a.dtype.name)]:
            return False
        flags = _read_int(obj + layout[RT_OFF_FLAGS])
        if bool(flags & NPY_C_CONTIGUOUS) != a.flags.c_contiguous:
            return False
        if bool(flags & NPY_WRITEABLE) != a.flags.writeable or bool(flags & NPY_ALIGNED) != a.flags.aligned:
            return False
    for dtype in (
        pickle.loads(pickle.dumps(np.dtype("float64"))),
        np.dtype("float32"),
        np.dtype(">f8"),
        np.dtype("<i4"),
    ):
        descr = _read_ptr(id(np.zeros(2, dtype=dtype)) + layout[RT_OFF_DESCR])
        if descr != id(dtype):
            return False
        if _read_ptr(descr + layout[RT_OFF_DESCR_TYPEOBJ]) != id(dtype.type):
            return False
        if ctypes.c_char.from_address(descr + layout[RT_OFF_DESCR_BYTEORDER]).value != dtype.byteorder.encode():
            return False
    probe = (samples[0], samples[1], samples[2])
    if ctypes.c_ssize_t.from_address(id(probe) + layout[RT_OFF_TUPLE_SIZE]).value != 3:
        return False
    items = id(probe) + layout[RT_OFF_TUPLE_ITEMS]
    return all(_read_ptr(items + i * _PTR) == id(x) for i, x in enumerate(probe))


def fill_runtime_table(address: int, workspace_address: int) -> bool:
    """Fill the table at `address`; return False (table left not-ready) if the ABI probe failed."""
    layout = probe_layout()
    table = (ctypes.c_int64 * RT_SLOTS).from_address(address)
    table[RT_READY] = 0
    if layout is None:
        return False
    for slot, value in layout.items():
        table[slot] = value
    table[RT_WORKSPACE] = workspace_address
    table[RT_READY] = 1
    return True


def data_pointer(a: np.ndarray) -> int:
    """The data address of ndarray `a` (a subclass too): a direct field read
    when the layout is verified, else `__array_interface__`."""
    layout = probe_layout()
    if layout is None:
        return a.__array_interface__["data"][0]
    return _read_ptr(id(a) + layout[RT_OFF_DATA])


@functools.lru_cache(maxsize=1)
def probe_recycling() -> dict[str, int] | None:
    """Offsets dispatch.py needs to reuse a result array nobody else holds, verified on live objects; or None.

    `refcnt` (ob_refcnt, a Py_ssize_t), `strides`, `base` and `weakreflist` of
    `PyArrayObject_fields` (data, nd, dimensions, strides, base, descr, flags,
    weakreflist: the same in numpy 1.x and 2.x). None on interpreters without a
    GIL (a reference count read there is not the whole count) or if any check fails.
    """
    layout = probe_layout()
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    if layout is None or not gil:
        return None
    head = 2 * _PTR
    offsets = {"refcnt": 0, "strides": head + 3 * _PTR, "base": head + 4 * _PTR, "weakreflist": head + 7 * _PTR}
    try:
        import weakref

        owner = np.zeros((3, 4))
        view = owner[:, ::2]
        for a in (owner, view, np.zeros(5, dtype=np.float32)):
            before = sys.getrefcount(a) - 1  # (getrefcount's own argument)
            if ctypes.c_ssize_t.from_address(id(a) + offsets["refcnt"]).value != before:
                return None
            strides = _read_ptr(id(a) + offsets["strides"])
            if tuple((ctypes.c_int64 * a.ndim).from_address(strides)) != a.strides:
                return None
        if _read_ptr(id(view) + offsets["base"]) != id(owner) or _read_ptr(id(owner) + offsets["base"]) != 0:
            return None
        if _read_ptr(id(owner) + offsets["weakreflist"]) != 0:
            return None
        ref = weakref.ref(owner)
        if _read_ptr(id(owner) + offsets["weakreflist"]) != id(ref):
            return None
    except (ValueError, OverflowError, TypeError):
        return None
    return offsets


def fresh_flags(shape: tuple[int, ...], dtype: str) -> int:
    """numpy's flags word of a fresh C-ordered array of `shape` and `dtype` (probe_layout must have succeeded)."""
    a = np.empty(shape, dtype)
    return _read_int(id(a) + probe_layout()[RT_OFF_FLAGS])
