"""One native dispatcher for every compiled function: check, allocate, run and return, with no Python.

Why: with only `<entry>_pycall` (llvm_entry.py) the hot path of `f(x)` still
runs Python per call: `np.empty` per output (~0.2 us each), a tuple of all
the buffers, `.item()` for a scalar result, a closure frame; about 0.3-1 us
of a call whose kernel may take 0.1 us. This module compiles, once per
process, one generic native function with the signature of a CPython builtin,

    PyObject* raster_mlir_dispatch(PyObject* self, PyObject* args)           (METH_O / METH_VARARGS)
    PyObject* raster_mlir_dispatch_fastcall(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames)

(the second for `f(*args, **kwargs)` builtins, METH_FASTCALL | METH_KEYWORDS: CPython passes its
argument array, no tuple; call_slot.py's vectorcall calls it directly; a call with keyword
arguments goes straight to the fallback)
driven by a per-signature descriptor (an int64 array built by `describe`), so
no compiled function carries code of its own for it (its cold compile time
is unchanged). `self` is the tuple `(fallback, descriptor, keep-alive...)`
that pycall.py gives a builtin. Per call it:

1. declines if a trace is open (the C int64 whose address is `traces_open`),
   or if there is not one argument per input;
2. checks each input as `<entry>_checked` does: exact ndarray type; the dtype
   object (or the same scalar type in native byte order); ndim and every
   dimension; C-contiguous, aligned (and writeable if written) flags; the
   promised alignment of the data pointer;
3. takes each fresh output from the builtin's result cache if it can (below),
   else allocates it with numpy's `PyArray_New` (C order); a 0-d output
   uses a stack slot;
4. calls `<entry>_packed(slots)` (data pointers, constants, workspace: the
   flush-to-zero wrapper of fp_mode.py);
5. returns by the descriptor's kind: 1 the one result, 2 a tuple of the
   results, 3 `(first, (others...))` (value_and_grad); 0-d results as
   Python floats (ints for integer dtypes), as `CompiledFunction` returns them.

Result recycling: allocating and later freeing a 1,000-element result costs
about 135 ns (f64; numpy's allocator caches only blocks under 1 KiB, glibc
takes its slow path for 8 KB), as much as the rest of the call. So each
builtin keeps the two most recent arrays of each output smaller than
RECYCLE_BYTES (`_ResultCache`: owned references in an int64 array whose
address is descriptor word 6) and hands one out again when its reference
count is 1 (only the cache holds it: no name, container, view, memoryview or
argument tuple refers to it, since all of those hold references), it has no
base and no weak reference, and its type, dtype object, flags, shape and
strides are still those it was made with. Two, because in `y = f(x)` the
previous `y` is still bound during the call. A new array replaces the older
cached one, whose reference is dropped after the kernel (its deallocation
may run Python code, which may call this builtin again). Visible effects:
a dropped result stays allocated until it is reused or evicted or the
function is freed (at most two per output, each < 64 KiB), and
`result.resize()` needs `refcheck=False` because the cache's reference
counts. The GIL is held for the whole call, so the check and the reuse are
atomic for other threads.

Declining (before anything is allocated) calls `fallback(*args)` (a vectorcall
with the same array in the fastcall entry), or returns
`NotImplemented` (a new reference) when the fallback is NotImplemented, so a
Python caller can fall back itself. A failed allocation releases what was
made and returns NULL with CPython's MemoryError set. No overlap checks: a
descriptor is built only when no input is written (the fresh outputs overlap
nothing), which `describe` enforces.

The offsets of CPython and numpy structures and the C functions it calls are
read from the table `@rt`, filled from numpy_abi.probe_layout() (verified on
live objects) after loading; without a verified layout there is no
dispatcher and callers keep the Python path.
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np

from . import call_slot, pycall
from . import numpy_abi as abi
from .numpy_abi import DTYPE_ORDER, probe_layout

MAX_DIMS = 8
RECORD = 8 + 2 * MAX_DIMS  # int64 words per buffer record (dims, then an output's strides)
HEADER = 8
# Results smaller than this are recycled (module docstring): the allocation matters next to the
# kernel only for small arrays (8 KB: ~135 ns against 0.2-1 us; 64 KB: ~3%), and what a signature
# keeps alive stays small (two per output). Below numpy's 256 KiB threshold for eliding temporaries
# in place (`f(x) + 1` reusing f's result), which a cached reference would prevent.
RECYCLE_BYTES = 64 * 1024
KINDS = {"single": 1, "tuple": 2, "value_and_tuple": 3}
_DTYPE_CODES = {"float64": 0, "float32": 1, "int64": 2, "int32": 3}

# @rt slots (filled by _fill_table).
_T_NAMES = (
    "ndarray_type", "off_ob_type", "off_tuple_size", "off_tuple_items", "off_data", "off_nd", "off_dims",
    "off_descr", "off_flags", "off_typeobj", "off_byteorder", "native_byteorder", "pyarray_new",
    "pyfloat_fromdouble", "pylong_fromlonglong", "pytuple_new", "py_incref", "py_decref", "pyobject_call",
    "not_implemented", "traces_open", "off_refcnt", "off_strides", "off_base", "off_weakreflist",
    "pyobject_vectorcall",
)  # fmt: skip
_T = {name: k for k, name in enumerate(_T_NAMES)}


def _ir() -> str:
    """The dispatcher's LLVM IR (module docstring); text, so one reads it as it runs."""

    def rt(name: str, reg: str) -> str:
        return f"  %{reg} = load i64, ptr getelementptr inbounds ([{len(_T)} x i64], ptr @rt, i64 0, i64 {_T[name]})\n"

    loads = "".join(rt(n, n) for n in _T_NAMES)
    return f"""
@rt = global [{len(_T)} x i64] zeroinitializer, align 8

; METH_VARARGS (or METH_O with the tuple as its argument): the arguments are the tuple's items.
define ptr @raster_mlir_dispatch(ptr %self, ptr %args) {{
entry:
{rt("off_tuple_size", "size_off")}{rt("off_tuple_items", "items_off")}  %size_p = getelementptr i8, ptr %args, i64 %size_off
  %size = load i64, ptr %size_p
  %items = getelementptr i8, ptr %args, i64 %items_off
  %result = call ptr @dispatch(ptr %self, ptr %items, i64 %size, ptr %args)
  ret ptr %result
}}

; METH_FASTCALL | METH_KEYWORDS: CPython passes the arguments as an array, with no tuple (a vectorcall),
; and the names of the keyword arguments (null when there are none), whose values follow the positional
; ones. A call with keywords goes to the fallback (the Python path binds them to parameters).
define ptr @raster_mlir_dispatch_fastcall(ptr %self, ptr %args, i64 %nargs, ptr %kwnames) {{
entry:
  %positional = icmp eq ptr %kwnames, null
  br i1 %positional, label %dispatch, label %keywords
dispatch:
  %result = call ptr @dispatch(ptr %self, ptr %args, i64 %nargs, ptr null)
  ret ptr %result
keywords:
{rt("off_tuple_items", "items_off")}{rt("pyobject_vectorcall", "vcall_i")}  %self_items = getelementptr i8, ptr %self, i64 %items_off
  %fallback = load ptr, ptr %self_items
  %vcall = inttoptr i64 %vcall_i to ptr
  %called = call ptr %vcall(ptr %fallback, ptr %args, i64 %nargs, ptr %kwnames)
  ret ptr %called
}}

; The dispatcher: `args_items[0 .. size)` are the arguments; `args` their tuple, or null (fastcall).
define internal ptr @dispatch(ptr %self, ptr %args_items, i64 %size, ptr %args) alwaysinline {{
entry:
{loads}  %self_items = getelementptr i8, ptr %self, i64 %off_tuple_items
  %desc_obj_p = getelementptr ptr, ptr %self_items, i64 1
  %desc_obj = load ptr, ptr %desc_obj_p
  %desc_pp = getelementptr i8, ptr %desc_obj, i64 %off_data
  %d = load ptr, ptr %desc_pp
  %packed_i = load i64, ptr %d
  %packed = inttoptr i64 %packed_i to ptr
  %n_in_p = getelementptr i64, ptr %d, i64 1
  %n_in = load i64, ptr %n_in_p
  %n_out_p = getelementptr i64, ptr %d, i64 2
  %n_out = load i64, ptr %n_out_p
  %n_const_p = getelementptr i64, ptr %d, i64 3
  %n_const = load i64, ptr %n_const_p
  %kind_p = getelementptr i64, ptr %d, i64 4
  %kind = load i64, ptr %kind_p
  %ws_p = getelementptr i64, ptr %d, i64 5
  %ws = load i64, ptr %ws_p
  %cache_pp = getelementptr i64, ptr %d, i64 6
  %cache_i = load i64, ptr %cache_pp
  %cache = inttoptr i64 %cache_i to ptr
  %has_cache = icmp ne i64 %cache_i, 0
  %n_io = add i64 %n_in, %n_out
  %n_buf = add i64 %n_io, %n_const
  %traces_p = inttoptr i64 %traces_open to ptr
  %traces = load i64, ptr %traces_p
  %tracing = icmp ne i64 %traces, 0
  br i1 %tracing, label %declined, label %arity

arity:
  %arity_ok = icmp eq i64 %size, %n_in
  br i1 %arity_ok, label %setup, label %declined

setup:
  %n_slots = add i64 %n_buf, 1
  %slots = alloca ptr, i64 %n_slots, align 8
  %n_out1 = add i64 %n_out, 1
  %objects = alloca ptr, i64 %n_out1, align 8
  %scalars = alloca i64, i64 %n_out1, align 8
  %evicted = alloca ptr, i64 %n_out1, align 8
  %native_bo = trunc i64 %native_byteorder to i8
  br label %in_loop

in_loop:
  %i = phi i64 [ 0, %setup ], [ %i_next, %in_store ]
  %in_done = icmp eq i64 %i, %n_in
  br i1 %in_done, label %zero_loop, label %in_type

in_type:
  %rec = call ptr @record(ptr %d, i64 %i)
  %obj_p = getelementptr ptr, ptr %args_items, i64 %i
  %obj = load ptr, ptr %obj_p
  %type_p = getelementptr i8, ptr %obj, i64 %off_ob_type
  %type = load i64, ptr %type_p
  %is_nd = icmp eq i64 %type, %ndarray_type
  br i1 %is_nd, label %in_header, label %declined

in_header:
  %descr_p = getelementptr i8, ptr %obj, i64 %off_descr
  %descr = load ptr, ptr %descr_p
  %descr_i = ptrtoint ptr %descr to i64
  %want_descr_p = getelementptr i64, ptr %rec, i64 1
  %want_descr = load i64, ptr %want_descr_p
  %canonical = icmp eq i64 %descr_i, %want_descr
  %typeobj_p = getelementptr i8, ptr %descr, i64 %off_typeobj
  %typeobj = load i64, ptr %typeobj_p
  %want_scalar_p = getelementptr i64, ptr %rec, i64 2
  %want_scalar = load i64, ptr %want_scalar_p
  %same_scalar = icmp eq i64 %typeobj, %want_scalar
  %bo_p = getelementptr i8, ptr %descr, i64 %off_byteorder
  %bo = load i8, ptr %bo_p
  %bo_host = icmp eq i8 %bo, %native_bo
  %bo_eq = icmp eq i8 %bo, 61
  %bo_na = icmp eq i8 %bo, 124
  %bo1 = or i1 %bo_host, %bo_eq
  %bo_ok = or i1 %bo1, %bo_na
  %same_native = and i1 %same_scalar, %bo_ok
  %dtype_ok = or i1 %canonical, %same_native
  %nd_p = getelementptr i8, ptr %obj, i64 %off_nd
  %nd32 = load i32, ptr %nd_p
  %nd = sext i32 %nd32 to i64
  %want_nd = load i64, ptr %rec
  %nd_ok = icmp eq i64 %nd, %want_nd
  %flags_p = getelementptr i8, ptr %obj, i64 %off_flags
  %flags32 = load i32, ptr %flags_p
  %flags = zext i32 %flags32 to i64
  %need_p = getelementptr i64, ptr %rec, i64 3
  %need = load i64, ptr %need_p
  %have = and i64 %flags, %need
  %flags_ok = icmp eq i64 %have, %need
  %ok1 = and i1 %dtype_ok, %nd_ok
  %ok2 = and i1 %ok1, %flags_ok
  br i1 %ok2, label %dims_start, label %declined

dims_start:
  %dims_pp = getelementptr i8, ptr %obj, i64 %off_dims
  %dims = load ptr, ptr %dims_pp
  %want_dims = getelementptr i64, ptr %rec, i64 8
  br label %dims_loop

dims_loop:
  %k = phi i64 [ 0, %dims_start ], [ %k_next, %dims_body ]
  %dims_done = icmp eq i64 %k, %nd
  br i1 %dims_done, label %in_data, label %dims_body

dims_body:
  %dk_p = getelementptr i64, ptr %dims, i64 %k
  %dk = load i64, ptr %dk_p
  %wk_p = getelementptr i64, ptr %want_dims, i64 %k
  %wk = load i64, ptr %wk_p
  %k_next = add i64 %k, 1
  %dk_ok = icmp eq i64 %dk, %wk
  br i1 %dk_ok, label %dims_loop, label %declined

in_data:
  %data_p = getelementptr i8, ptr %obj, i64 %off_data
  %data = load ptr, ptr %data_p
  %data_i = ptrtoint ptr %data to i64
  %amask_p = getelementptr i64, ptr %rec, i64 4
  %amask = load i64, ptr %amask_p
  %low = and i64 %data_i, %amask
  %aligned = icmp eq i64 %low, 0
  br i1 %aligned, label %in_store, label %declined

in_store:
  %slot_i = getelementptr ptr, ptr %slots, i64 %i
  store ptr %data, ptr %slot_i
  %i_next = add i64 %i, 1
  br label %in_loop

zero_loop:
  %z = phi i64 [ 0, %in_loop ], [ %z_next, %zero_body ]
  %zero_done = icmp eq i64 %z, %n_out
  br i1 %zero_done, label %out_loop, label %zero_body

zero_body:
  %zp = getelementptr ptr, ptr %objects, i64 %z
  store ptr null, ptr %zp
  %ep = getelementptr ptr, ptr %evicted, i64 %z
  store ptr null, ptr %ep
  %z_next = add i64 %z, 1
  br label %zero_loop

out_loop:
  %o = phi i64 [ 0, %zero_loop ], [ %o_next, %out_store ]
  %out_done = icmp eq i64 %o, %n_out
  br i1 %out_done, label %const_loop, label %out_rec

out_rec:
  %ob = add i64 %n_in, %o
  %orec = call ptr @record(ptr %d, i64 %ob)
  %ond = load i64, ptr %orec
  %is_scalar = icmp eq i64 %ond, 0
  br i1 %is_scalar, label %out_scalar, label %out_array

out_scalar:
  %sp = getelementptr i64, ptr %scalars, i64 %o
  br label %out_store

out_array:
  %recycle_p = getelementptr i64, ptr %orec, i64 4
  %recycle = load i64, ptr %recycle_p
  %recyclable = icmp ne i64 %recycle, 0
  %try_cache = and i1 %recyclable, %has_cache
  %o2 = mul i64 %o, 2
  %c0_p = getelementptr ptr, ptr %cache, i64 %o2
  %c1_p = getelementptr ptr, ptr %c0_p, i64 1
  br i1 %try_cache, label %try0, label %out_new

try0:
  %c0 = load ptr, ptr %c0_p
  %reuse0 = call i1 @reusable(ptr %c0, ptr %orec, i64 %ndarray_type, i64 %off_ob_type, i64 %off_refcnt, i64 %off_nd, i64 %off_dims, i64 %off_strides, i64 %off_descr, i64 %off_flags, i64 %off_base, i64 %off_weakreflist)
  br i1 %reuse0, label %reuse, label %try1

try1:
  %c1 = load ptr, ptr %c1_p
  %reuse1 = call i1 @reusable(ptr %c1, ptr %orec, i64 %ndarray_type, i64 %off_ob_type, i64 %off_refcnt, i64 %off_nd, i64 %off_dims, i64 %off_strides, i64 %off_descr, i64 %off_flags, i64 %off_base, i64 %off_weakreflist)
  br i1 %reuse1, label %reuse, label %out_new

reuse:
  %kept = phi ptr [ %c0, %try0 ], [ %c1, %try1 ]
  %incref_k = inttoptr i64 %py_incref to ptr
  call void %incref_k(ptr %kept)
  br label %out_made

out_new:
  %typenum_p = getelementptr i64, ptr %orec, i64 1
  %typenum64 = load i64, ptr %typenum_p
  %typenum = trunc i64 %typenum64 to i32
  %ond32 = trunc i64 %ond to i32
  %odims = getelementptr i64, ptr %orec, i64 8
  %new_fn = inttoptr i64 %pyarray_new to ptr
  %ndarray_type_p = inttoptr i64 %ndarray_type to ptr
  %made = call ptr %new_fn(ptr %ndarray_type_p, i32 %ond32, ptr %odims, i32 %typenum, ptr null, ptr null, i32 0, i32 0, ptr null)
  %made_null = icmp eq ptr %made, null
  br i1 %made_null, label %release_fail, label %out_keep

out_keep:
  br i1 %try_cache, label %out_cache, label %out_made

out_cache:
  ; The cache keeps the newest two: the new array in front, the front one behind, the one behind
  ; is let go (its reference dropped after the kernel, when nothing of ours can be reentered).
  %old0 = load ptr, ptr %c0_p
  %old1 = load ptr, ptr %c1_p
  %evict_p = getelementptr ptr, ptr %evicted, i64 %o
  store ptr %old1, ptr %evict_p
  store ptr %old0, ptr %c1_p
  store ptr %made, ptr %c0_p
  %incref_c = inttoptr i64 %py_incref to ptr
  call void %incref_c(ptr %made)
  br label %out_made

out_made:
  %arr = phi ptr [ %kept, %reuse ], [ %made, %out_keep ], [ %made, %out_cache ]
  %objp = getelementptr ptr, ptr %objects, i64 %o
  store ptr %arr, ptr %objp
  %adata_p = getelementptr i8, ptr %arr, i64 %off_data
  %adata = load ptr, ptr %adata_p
  %adata_i = ptrtoint ptr %adata to i64
  %oamask_p = getelementptr i64, ptr %orec, i64 3
  %oamask = load i64, ptr %oamask_p
  %olow = and i64 %adata_i, %oamask
  %oaligned = icmp eq i64 %olow, 0
  br i1 %oaligned, label %out_store, label %release_declined

out_store:
  %odata = phi ptr [ %sp, %out_scalar ], [ %adata, %out_made ]
  %oslot = getelementptr ptr, ptr %slots, i64 %ob
  store ptr %odata, ptr %oslot
  %o_next = add i64 %o, 1
  br label %out_loop

const_loop:
  %c = phi i64 [ 0, %out_loop ], [ %c_next, %const_body ]
  %const_done = icmp eq i64 %c, %n_const
  br i1 %const_done, label %run, label %const_body

const_body:
  %constants = call ptr @record(ptr %d, i64 %n_io)
  %caddr_p = getelementptr i64, ptr %constants, i64 %c
  %caddr = load i64, ptr %caddr_p
  %cptr = inttoptr i64 %caddr to ptr
  %cb = add i64 %n_io, %c
  %cslot = getelementptr ptr, ptr %slots, i64 %cb
  store ptr %cptr, ptr %cslot
  %c_next = add i64 %c, 1
  br label %const_loop

run:
  %ws_slot = getelementptr ptr, ptr %slots, i64 %n_buf
  %ws_ptr = inttoptr i64 %ws to ptr
  store ptr %ws_ptr, ptr %ws_slot
  call void %packed(ptr %slots)
  call void @release(ptr %evicted, i64 %n_out, i64 %py_decref)
  br label %box_loop

box_loop:
  %q = phi i64 [ 0, %run ], [ %q_next, %box_next ]
  %box_done = icmp eq i64 %q, %n_out
  br i1 %box_done, label %result, label %box_rec

box_rec:
  %qb = add i64 %n_in, %q
  %qrec = call ptr @record(ptr %d, i64 %qb)
  %qnd = load i64, ptr %qrec
  %q_scalar = icmp eq i64 %qnd, 0
  br i1 %q_scalar, label %box_code, label %box_next

box_code:
  %code_p = getelementptr i64, ptr %qrec, i64 2
  %code = load i64, ptr %code_p
  %qsp = getelementptr i64, ptr %scalars, i64 %q
  %fromdouble = inttoptr i64 %pyfloat_fromdouble to ptr
  %fromlong = inttoptr i64 %pylong_fromlonglong to ptr
  switch i64 %code, label %box_i32 [ i64 0, label %box_f64
                                      i64 1, label %box_f32
                                      i64 2, label %box_i64 ]

box_f64:
  %vf64 = load double, ptr %qsp
  %bf64 = call ptr %fromdouble(double %vf64)
  br label %box_made

box_f32:
  %vf32 = load float, ptr %qsp
  %vf32d = fpext float %vf32 to double
  %bf32 = call ptr %fromdouble(double %vf32d)
  br label %box_made

box_i64:
  %vi64 = load i64, ptr %qsp
  %bi64 = call ptr %fromlong(i64 %vi64)
  br label %box_made

box_i32:
  %vi32 = load i32, ptr %qsp
  %vi32l = sext i32 %vi32 to i64
  %bi32 = call ptr %fromlong(i64 %vi32l)
  br label %box_made

box_made:
  %boxed = phi ptr [ %bf64, %box_f64 ], [ %bf32, %box_f32 ], [ %bi64, %box_i64 ], [ %bi32, %box_i32 ]
  %boxed_null = icmp eq ptr %boxed, null
  br i1 %boxed_null, label %release_fail, label %box_store

box_store:
  %qobjp = getelementptr ptr, ptr %objects, i64 %q
  store ptr %boxed, ptr %qobjp
  br label %box_next

box_next:
  %q_next = add i64 %q, 1
  br label %box_loop

result:
  %first_obj = load ptr, ptr %objects
  %is_single = icmp eq i64 %kind, 1
  br i1 %is_single, label %ret_single, label %tuples

ret_single:
  ret ptr %first_obj

tuples:
  %tuple_new = inttoptr i64 %pytuple_new to ptr
  %nested = icmp eq i64 %kind, 3
  br i1 %nested, label %outer_new, label %flat_new

outer_new:
  %outer_made = call ptr %tuple_new(i64 2)
  %outer_null = icmp eq ptr %outer_made, null
  br i1 %outer_null, label %release_fail, label %flat_new

flat_new:
  %outer = phi ptr [ null, %tuples ], [ %outer_made, %outer_new ]
  %first = zext i1 %nested to i64
  %flat_n = sub i64 %n_out, %first
  %flat = call ptr %tuple_new(i64 %flat_n)
  %flat_null = icmp eq ptr %flat, null
  br i1 %flat_null, label %release_outer, label %fill

release_outer:
  %decref_o = inttoptr i64 %py_decref to ptr
  call void %decref_o(ptr %outer)
  br label %release_fail

fill:
  %flat_items = getelementptr i8, ptr %flat, i64 %off_tuple_items
  br label %fill_loop

fill_loop:
  %f = phi i64 [ %first, %fill ], [ %f_next, %fill_body ]
  %fill_done = icmp eq i64 %f, %n_out
  br i1 %fill_done, label %filled, label %fill_body

fill_body:
  %fobj_p = getelementptr ptr, ptr %objects, i64 %f
  %fobj = load ptr, ptr %fobj_p
  %fidx = sub i64 %f, %first
  %fdst = getelementptr ptr, ptr %flat_items, i64 %fidx
  store ptr %fobj, ptr %fdst
  %f_next = add i64 %f, 1
  br label %fill_loop

filled:
  br i1 %nested, label %ret_nested, label %ret_flat

ret_flat:
  ret ptr %flat

ret_nested:
  %outer_items = getelementptr i8, ptr %outer, i64 %off_tuple_items
  store ptr %first_obj, ptr %outer_items
  %outer_1 = getelementptr ptr, ptr %outer_items, i64 1
  store ptr %flat, ptr %outer_1
  ret ptr %outer

release_fail:
  call void @release(ptr %objects, i64 %n_out, i64 %py_decref)
  call void @release(ptr %evicted, i64 %n_out, i64 %py_decref)
  ret ptr null

release_declined:
  call void @release(ptr %objects, i64 %n_out, i64 %py_decref)
  call void @release(ptr %evicted, i64 %n_out, i64 %py_decref)
  br label %declined

declined:
  %fallback = load ptr, ptr %self_items
  %na = inttoptr i64 %not_implemented to ptr
  %plain = icmp eq ptr %fallback, %na
  br i1 %plain, label %decline_plain, label %decline_call

decline_plain:
  %incref = inttoptr i64 %py_incref to ptr
  call void %incref(ptr %na)
  ret ptr %na

decline_call:
  %has_tuple = icmp ne ptr %args, null
  br i1 %has_tuple, label %decline_tuple, label %decline_vector

decline_tuple:
  %call_fn = inttoptr i64 %pyobject_call to ptr
  %called = call ptr %call_fn(ptr %fallback, ptr %args, ptr null)
  ret ptr %called

decline_vector:
  %vcall_fn = inttoptr i64 %pyobject_vectorcall to ptr
  %vcalled = call ptr %vcall_fn(ptr %fallback, ptr %args_items, i64 %size, ptr null)
  ret ptr %vcalled
}}

; The record of buffer %b: descriptor words HEADER + b * RECORD (the constants' addresses follow the last).
define internal ptr @record(ptr %d, i64 %b) alwaysinline {{
  %w = mul i64 %b, {RECORD}
  %w2 = add i64 %w, {HEADER}
  %rec = getelementptr i64, ptr %d, i64 %w2
  ret ptr %rec
}}

; Whether the cached result %a (or null) can be handed out again: only the cache holds it (reference
; count 1, so no view, memoryview or argument tuple refers to it) and the user left it as it was made
; (type, dtype object, flags, shape and strides; no base, no weak reference).
define internal i1 @reusable(ptr %a, ptr %rec, i64 %ndarray_type, i64 %off_ob_type, i64 %off_refcnt, i64 %off_nd, i64 %off_dims, i64 %off_strides, i64 %off_descr, i64 %off_flags, i64 %off_base, i64 %off_weakreflist) alwaysinline {{
entry:
  %present = icmp ne ptr %a, null
  br i1 %present, label %alone, label %no
alone:
  %rc_p = getelementptr i8, ptr %a, i64 %off_refcnt
  %rc = load i64, ptr %rc_p
  %single = icmp eq i64 %rc, 1
  %type_p = getelementptr i8, ptr %a, i64 %off_ob_type
  %type = load i64, ptr %type_p
  %is_nd = icmp eq i64 %type, %ndarray_type
  %descr_p = getelementptr i8, ptr %a, i64 %off_descr
  %descr = load i64, ptr %descr_p
  %want_descr_p = getelementptr i64, ptr %rec, i64 5
  %want_descr = load i64, ptr %want_descr_p
  %same_descr = icmp eq i64 %descr, %want_descr
  %flags_p = getelementptr i8, ptr %a, i64 %off_flags
  %flags32 = load i32, ptr %flags_p
  %flags = zext i32 %flags32 to i64
  %want_flags_p = getelementptr i64, ptr %rec, i64 6
  %want_flags = load i64, ptr %want_flags_p
  %same_flags = icmp eq i64 %flags, %want_flags
  %nd_p = getelementptr i8, ptr %a, i64 %off_nd
  %nd32 = load i32, ptr %nd_p
  %nd = sext i32 %nd32 to i64
  %want_nd = load i64, ptr %rec
  %same_nd = icmp eq i64 %nd, %want_nd
  %base_p = getelementptr i8, ptr %a, i64 %off_base
  %base = load i64, ptr %base_p
  %weak_p = getelementptr i8, ptr %a, i64 %off_weakreflist
  %weak = load i64, ptr %weak_p
  %unref = or i64 %base, %weak
  %no_refs = icmp eq i64 %unref, 0
  %h1 = and i1 %single, %is_nd
  %h2 = and i1 %h1, %same_descr
  %h3 = and i1 %h2, %same_flags
  %h4 = and i1 %h3, %same_nd
  %h5 = and i1 %h4, %no_refs
  br i1 %h5, label %shape, label %no
shape:
  %dims_pp = getelementptr i8, ptr %a, i64 %off_dims
  %dims = load ptr, ptr %dims_pp
  %strides_pp = getelementptr i8, ptr %a, i64 %off_strides
  %strides = load ptr, ptr %strides_pp
  br label %loop
loop:
  %k = phi i64 [ 0, %shape ], [ %k_next, %body ]
  %done = icmp eq i64 %k, %nd
  br i1 %done, label %yes, label %body
body:
  %dk_p = getelementptr i64, ptr %dims, i64 %k
  %dk = load i64, ptr %dk_p
  %wdk = add i64 %k, 8
  %wd_p = getelementptr i64, ptr %rec, i64 %wdk
  %wd = load i64, ptr %wd_p
  %sk_p = getelementptr i64, ptr %strides, i64 %k
  %sk = load i64, ptr %sk_p
  %wsk = add i64 %k, {8 + MAX_DIMS}
  %ws_p = getelementptr i64, ptr %rec, i64 %wsk
  %ws = load i64, ptr %ws_p
  %dk_ok = icmp eq i64 %dk, %wd
  %sk_ok = icmp eq i64 %sk, %ws
  %k_ok = and i1 %dk_ok, %sk_ok
  %k_next = add i64 %k, 1
  br i1 %k_ok, label %loop, label %no
yes:
  ret i1 true
no:
  ret i1 false
}}

define internal void @release(ptr %objects, i64 %n, i64 %py_decref) {{
entry:
  %decref = inttoptr i64 %py_decref to ptr
  br label %loop
loop:
  %r = phi i64 [ 0, %entry ], [ %r_next, %body ]
  %done = icmp eq i64 %r, %n
  br i1 %done, label %exit, label %body
body:
  %p = getelementptr ptr, ptr %objects, i64 %r
  %obj = load ptr, ptr %p
  call void %decref(ptr %obj)
  %r_next = add i64 %r, 1
  br label %loop
exit:
  ret void
}}
"""


class _Dispatcher:
    """The loaded module and the address of `raster_mlir_dispatch` (one per process; the object code
    comes from the compile cache like any compiled function's, so a warm start does not compile it)."""

    def __init__(self):
        from .cache import load_or_compile
        from .target import host_target

        # (with the tp_call of backend/call_slot.py, so that installing it loads no module of its own)
        self.jit = load_or_compile(_ir() + call_slot.ir(call_slot.USUAL_OFFSET), host_target(), opt_level=1).module
        self.address = self.jit.function_address("raster_mlir_dispatch")
        self.fastcall_address = self.jit.function_address("raster_mlir_dispatch_fastcall")
        self.table_address = self.jit.global_address("rt")
        self._fill_table(self.table_address)

    @staticmethod
    def _fill_table(address: int) -> None:
        layout = probe_layout()
        api = ctypes.pythonapi
        table = (ctypes.c_int64 * len(_T)).from_address(address)

        def fn(f) -> int:
            return ctypes.cast(f, ctypes.c_void_p).value

        values = {
            "ndarray_type": layout[abi.RT_NDARRAY_TYPE], "off_ob_type": layout[abi.RT_OFF_OB_TYPE],
            "off_tuple_size": layout[abi.RT_OFF_TUPLE_SIZE], "off_tuple_items": layout[abi.RT_OFF_TUPLE_ITEMS],
            "off_data": layout[abi.RT_OFF_DATA], "off_nd": layout[abi.RT_OFF_ND], "off_dims": layout[abi.RT_OFF_DIMS],
            "off_descr": layout[abi.RT_OFF_DESCR], "off_flags": layout[abi.RT_OFF_FLAGS],
            "off_typeobj": layout[abi.RT_OFF_DESCR_TYPEOBJ], "off_byteorder": layout[abi.RT_OFF_DESCR_BYTEORDER],
            "native_byteorder": layout[abi.RT_NATIVE_BYTEORDER], "pyarray_new": layout[abi.RT_PYARRAY_NEW],
            "pyfloat_fromdouble": fn(api.PyFloat_FromDouble), "pylong_fromlonglong": fn(api.PyLong_FromLongLong),
            "pytuple_new": fn(api.PyTuple_New), "py_incref": fn(api.Py_IncRef), "py_decref": fn(api.Py_DecRef),
            "pyobject_call": fn(api.PyObject_Call), "not_implemented": id(NotImplemented),
            "pyobject_vectorcall": fn(api.PyObject_Vectorcall),
        }  # fmt: skip
        recycling = abi.probe_recycling()
        if recycling is not None:  # (else no descriptor gets a cache, so the offsets are never read)
            values.update({f"off_{k}": v for k, v in recycling.items()})
        for name, value in values.items():
            table[_T[name]] = value


_lock = threading.Lock()
_dispatcher: _Dispatcher | None = None
_unavailable = False


def _get() -> _Dispatcher | None:
    """The process's dispatcher (compiled on first use), or None where it cannot work."""
    global _dispatcher, _unavailable
    if _dispatcher is not None or _unavailable:
        return _dispatcher
    with _lock:
        if _dispatcher is None and not _unavailable:
            layout = probe_layout()
            if layout is None or not layout[abi.RT_PYARRAY_NEW] or not pycall.available():
                _unavailable = True
            else:
                _dispatcher = _Dispatcher()
    return _dispatcher


def describe(packed_address: int, workspace_address: int, in_specs, out_specs, constants, nesting: str, traces_open: int):
    """The descriptor (int64 array) of one call layout, or None if the dispatcher cannot serve it.

    `in_specs` / `out_specs`: backend ArgSpecs of the inputs (taken from the
    argument tuple) and the fresh outputs; `constants`: arrays for the
    buffers after them; `nesting`: a key of KINDS; `traces_open`: the address
    of the int64 counting open traces.
    """
    layout = probe_layout()
    if layout is None or nesting not in KINDS or any(s.written for s in in_specs):
        return None
    if nesting == "single" and len(out_specs) != 1 or nesting == "value_and_tuple" and not out_specs:
        return None
    if any(len(s.shape) > MAX_DIMS or s.dtype not in _DTYPE_CODES for s in (*in_specs, *out_specs)):
        return None
    n_in, n_out = len(in_specs), len(out_specs)
    words = np.zeros(HEADER + (n_in + n_out) * RECORD + len(constants), dtype=np.int64)
    words[:6] = (packed_address, n_in, n_out, len(constants), KINDS[nesting], workspace_address)
    for j, spec in enumerate((*in_specs, *out_specs)):
        record = words[HEADER + j * RECORD : HEADER + (j + 1) * RECORD]
        k = DTYPE_ORDER.index(spec.dtype)
        record[0] = len(spec.shape)
        record[8 : 8 + len(spec.shape)] = spec.shape
        if j < n_in:
            record[1], record[2] = layout[abi.RT_DESCR + k], layout[abi.RT_SCALAR_TYPE + k]
            record[3] = abi.NPY_C_CONTIGUOUS | abi.NPY_ALIGNED | (abi.NPY_WRITEABLE if spec.written else 0)
            record[4] = (spec.align or spec.np_dtype.itemsize) - 1
        else:
            record[1], record[2], record[3] = np.dtype(spec.dtype).num, _DTYPE_CODES[spec.dtype], (spec.align or 1) - 1
            nbytes = spec.np_dtype.itemsize * int(np.prod(spec.shape, dtype=np.int64))
            if spec.shape and nbytes < RECYCLE_BYTES:
                record[4], record[5], record[6] = 1, layout[abi.RT_DESCR + k], abi.fresh_flags(spec.shape, spec.dtype)
                record[8 + MAX_DIMS : 8 + MAX_DIMS + len(spec.shape)] = np.empty(spec.shape, spec.dtype).strides
    base = HEADER + (n_in + n_out) * RECORD
    for c, (spec, array) in enumerate(constants):
        if not (type(array) is np.ndarray and array.dtype == spec.np_dtype and array.shape == spec.shape
                and array.flags.c_contiguous and array.ctypes.data % (spec.align or array.itemsize) == 0):  # fmt: skip
            return None
        words[base + c] = array.ctypes.data
    words[7] = traces_open  # (kept for inspection; the counter's address is in @rt)
    return words


def dispatcher(descriptor: np.ndarray, keep_alive, fallback=NotImplemented, varargs: bool = False):
    """A builtin running the layout `descriptor` describes (module docstring), or None.

    `varargs=False`: `f(args_tuple)`, NotImplemented-style fallback by default;
    `varargs=True`: `f(*args)`, for an `@rm.jit` function's `__call__`.
    `keep_alive` (the JIT holding the code, the constants) lives as long as the builtin.
    """
    native = _get()
    if native is None or descriptor is None:
        return None
    table = (ctypes.c_int64 * len(_T)).from_address(native.table_address)
    table[_T["traces_open"]] = int(descriptor[7])
    descriptor, cache = _with_result_cache(descriptor)
    if varargs:  # (f(*args) as a vectorcall: no argument tuple)
        flags = pycall.METH_FASTCALL | pycall.METH_KEYWORDS  # (keyword calls go to the fallback)
        return pycall.builtin(native.fastcall_address, "raster_mlir_dispatch", descriptor, fallback, flags, (keep_alive, native, cache))
    return pycall.builtin(native.address, "raster_mlir_dispatch", descriptor, fallback, pycall.METH_O, (keep_alive, native, cache))


class _ResultCache:
    """The two most recent results of each output of one builtin (module docstring): an int64 array of
    owned references, `2 * n_out` words, read and written by the native code; released with the builtin."""

    _decref = ctypes.PYFUNCTYPE(None, ctypes.c_void_p)(("Py_DecRef", ctypes.pythonapi))

    def __init__(self, n_out: int):
        self.slots = np.zeros(2 * n_out, dtype=np.int64)

    def clear(self) -> None:
        """Drop the cached results (they are freed if nobody else holds them)."""
        held = [int(a) for a in self.slots if a]
        self.slots[:] = 0
        for address in held:
            self._decref(address)

    def __del__(self):
        self.clear()


def _with_result_cache(descriptor: np.ndarray):
    """A copy of `descriptor` pointing at a result cache of its own, and the cache; or (descriptor, None)
    when no result is recycled (none small enough, or the reference-count layout is unverified)."""
    n_out = int(descriptor[2])
    outputs = [HEADER + (int(descriptor[1]) + o) * RECORD for o in range(n_out)]
    if abi.probe_recycling() is None or not any(descriptor[w + 4] for w in outputs):
        return descriptor, None
    cache = _ResultCache(n_out)
    own = descriptor.copy()
    own[6] = cache.slots.ctypes.data
    return own, cache
