"""The three native entry points of an entry function.

1. `void <name>_packed(ptr args)`: loads buffer pointer i from `args[i]`
   (the workspace pointer last) and calls `<name>`. One pointer argument
   makes the ctypes call cheap and independent of the arity.

2. `i64 <name>_checked(ptr args_tuple)`: the fast call path. It receives the
   Python tuple of arguments (ctypes `py_object`, called with the GIL held)
   and, reading object fields through the runtime table described in
   numpy_abi.py, checks in this order, branching to `return 1` at the first
   failure so nothing is read from an object that failed an earlier check:
       table ready; tuple length == arity;
       per argument: type is exactly ndarray; the dtype is the wanted one
       (canonical object, or same scalar type in native byte order); ndim;
       every dimension; flags contain C_CONTIGUOUS | ALIGNED (| WRITEABLE
       when the argument is written); the data pointer is a
       multiple of the promised alignment when that exceeds the element size;
       per written argument w and every other argument j (both non-empty):
       the byte ranges [p_w, p_w+n_w) and [p_j, p_j+n_j) are disjoint.
   Then it calls `<name>` with the data pointers and the workspace pointer
   from the table (in the flush-to-zero mode of fp_mode.py), and returns 0. A 1 means "not run"; Python then redoes
   the checks to raise a precise error (or to run a legitimate but unusual
   argument, such as an ndarray subclass, through the packed wrapper).

3. `PyObject* <name>_pycall(PyObject* self, PyObject* args_tuple)`: the
   same check and call with the signature of a CPython `METH_O` builtin,
   returning `<name>_checked`'s verdict as a Python bool (True: not run)
   made by `PyBool_FromLong` from the runtime table. call.py wraps it in a
   builtin function object (`PyCFunction_NewEx`), so the hot path is one
   builtin call, about 0.3 us cheaper than a ctypes call of `_checked`.
"""

from __future__ import annotations

from collections.abc import Sequence

from llvmlite import ir

from .analysis import FunctionInfo
from .entry_abi import EntryABI
from .fast_builder import FastBuilder
from .fp_mode import call_in_fp_mode
from .llvm_types import I1, I8, I32, I64, PTR
from .numpy_abi import (
    DTYPE_ORDER,
    NPY_ALIGNED,
    NPY_C_CONTIGUOUS,
    NPY_WRITEABLE,
    RT_DESCR,
    RT_NATIVE_BYTEORDER,
    RT_NDARRAY_TYPE,
    RT_OFF_DATA,
    RT_OFF_DESCR,
    RT_OFF_DESCR_BYTEORDER,
    RT_OFF_DESCR_TYPEOBJ,
    RT_OFF_DIMS,
    RT_OFF_FLAGS,
    RT_OFF_ND,
    RT_OFF_OB_TYPE,
    RT_OFF_TUPLE_ITEMS,
    RT_OFF_TUPLE_SIZE,
    RT_PYBOOL_FROMLONG,
    RT_READY,
    RT_SCALAR_TYPE,
    RT_SLOTS,
    RT_WORKSPACE,
)
from .specs import ArgSpec


def emit_entry_points(mctx, info: FunctionInfo, specs: Sequence[ArgSpec]):
    """Add `<name>_packed`, `<name>_checked` and the table global; return the EntryABI."""
    kernel = mctx.llvm_functions[info.name]
    buffers = tuple(info.arg_types)
    written = tuple(spec.written for spec in specs)
    aligns = tuple(spec.align or buf.itemsize for spec, buf in zip(specs, buffers))
    packed = _emit_packed(mctx, info.name, kernel, len(buffers))
    table = ir.GlobalVariable(mctx.llmod, ir.ArrayType(I64, RT_SLOTS), name=mctx.symbol(f"{info.name}_rt"))
    table.initializer = ir.Constant(ir.ArrayType(I64, RT_SLOTS), [0] * RT_SLOTS)
    table.align = 64
    checked = CheckedEmitter(mctx, info.name, kernel, table, buffers, written, aligns).emit()
    pycall = _emit_pycall(mctx, info.name, checked, table)
    return EntryABI(
        name=info.name,
        packed_symbol=packed.name,
        checked_symbol=checked.name,
        pycall_symbol=pycall.name,
        runtime_table_symbol=table.name,
        specs=tuple(specs),
        workspace_bytes=info.workspace_bytes,
    )


def unoptimised(fn: ir.Function) -> None:
    """Keep LLVM's optimiser and inliner away from an entry point (`optnone`, `noinline`).

    The entry points are straight-line checks that LLVM's O3 pipeline barely
    improves, but it spent 30-45% of a train step's LLVM time on them (their
    size grows with the arguments, the overlap checks with their square):
    784-128-10 step 145 -> 100 ms, 8 layers 584 -> 325 ms. The checked call
    costs 12 ns more with 11 arguments (354 -> 367 ns) and 35 ns with 30.
    """
    fn.attributes.add("optnone")
    fn.attributes.add("noinline")


def _emit_packed(mctx, name: str, kernel: ir.Function, n_buffers: int) -> ir.Function:
    fn = ir.Function(mctx.llmod, ir.FunctionType(ir.VoidType(), [PTR]), name=mctx.symbol(f"{name}_packed"))
    mctx.set_target_attributes(fn)
    unoptimised(fn)
    args = fn.args[0]
    args.name = "args"
    for attr in ("noundef", "captures(none)"):
        args.add_attribute(attr)
    args.attributes.align = 8
    args.attributes.dereferenceable = 8 * (n_buffers + 1)
    b = FastBuilder(fn.append_basic_block("entry"))
    ptrs = []
    for i in range(n_buffers + 1):
        slot = b.gep(args, [ir.Constant(I64, i)], inbounds=True, source_etype=PTR)
        ptrs.append(b.load(slot, typ=PTR, align=8))
    call_in_fp_mode(mctx, b, kernel, ptrs)
    b.ret_void()
    return fn


def _emit_pycall(mctx, name: str, checked: ir.Function, table: ir.GlobalVariable) -> ir.Function:
    """`ptr <name>_pycall(ptr self, ptr args_tuple)`: `PyBool_FromLong(<name>_checked(args_tuple))`.

    Only called once the table is ready (call.py builds the builtin only then),
    so the PyBool_FromLong slot is filled."""
    fn = ir.Function(mctx.llmod, ir.FunctionType(PTR, [PTR, PTR]), name=mctx.symbol(f"{name}_pycall"))
    mctx.set_target_attributes(fn)
    unoptimised(fn)
    fn.args[0].name, fn.args[1].name = "self", "args_tuple"
    b = FastBuilder(fn.append_basic_block("entry"))
    verdict = b.call(checked, [fn.args[1]])
    slot = b.gep(table, [ir.Constant(I64, 0), ir.Constant(I64, RT_PYBOOL_FROMLONG)], inbounds=True)
    from_long = b.inttoptr(b.load(slot, typ=I64, align=8), ir.FunctionType(PTR, [I64]).as_pointer())
    b.ret(b.call(from_long, [verdict]))
    return fn


class CheckedEmitter:
    def __init__(self, mctx, name, kernel, table, buffers, written, aligns):
        self.mctx, self.name, self.kernel, self.table = mctx, name, kernel, table
        self.buffers, self.written, self.aligns = buffers, written, aligns
        self.fn = ir.Function(mctx.llmod, ir.FunctionType(I64, [PTR]), name=mctx.symbol(f"{name}_checked"))
        mctx.set_target_attributes(self.fn)
        unoptimised(self.fn)
        self.fn.args[0].name = "args_tuple"
        self.b = FastBuilder(self.fn.append_basic_block("entry"))
        self._slots: dict[int, ir.Value] = {}
        self._unlikely = None  # the branch-weights node of `require`
        self.fail = self.fn.append_basic_block("fail")
        FastBuilder(self.fail).ret(ir.Constant(I64, 1))

    def slot(self, index: int) -> ir.Value:
        """Table slot `index`, loaded once: the check blocks form one chain, so
        the first load dominates every later use."""
        value = self._slots.get(index)
        if value is None:
            ptr = self.b.gep(self.table, [ir.Constant(I64, 0), ir.Constant(I64, index)], inbounds=True)
            value = self._slots[index] = self.b.load(ptr, typ=I64, align=8)
        return value

    def field(self, obj: ir.Value, offset_slot: int, typ: ir.Type) -> ir.Value:
        addr = self.b.gep(obj, [self.slot(offset_slot)], source_etype=ir.IntType(8))
        return self.b.load(addr, typ=typ, align=4 if typ == I32 else 8)

    def require(self, ok: ir.Value, label: str) -> None:
        """Continue in a fresh block if `ok`, else go to `fail` (marked unlikely)."""
        cont = self.fn.append_basic_block(label)
        br = self.b.cbranch(ok, cont, self.fail)
        if self._unlikely is None:
            br.set_weights([1 << 20, 1])
            self._unlikely = br.metadata["prof"]
        else:
            # The same node set_weights would find again (llvmlite deduplicates metadata by
            # comparing the printed text of its constants, which cost more than the branch).
            br.set_metadata("prof", self._unlikely)
        self.b.position_at_end(cont)

    def emit(self) -> ir.Function:
        b = self.b
        self.require(b.icmp_signed("!=", self.slot(RT_READY), ir.Constant(I64, 0)), "ready")
        tup = self.fn.args[0]
        size = self.field(tup, RT_OFF_TUPLE_SIZE, I64)
        self.require(b.icmp_signed("==", size, ir.Constant(I64, len(self.buffers))), "arity")
        items = b.gep(tup, [self.slot(RT_OFF_TUPLE_ITEMS)], source_etype=ir.IntType(8))
        datas = [self._check_array(items, i) for i in range(len(self.buffers))]
        self._check_overlaps(datas)
        workspace = b.inttoptr(self.slot(RT_WORKSPACE), PTR)
        call_in_fp_mode(self.mctx, b, self.kernel, datas + [workspace])
        b.ret(ir.Constant(I64, 0))
        return self.fn

    def _check_array(self, items: ir.Value, i: int) -> ir.Value:
        b, buf = self.b, self.buffers[i]
        obj = b.load(b.gep(items, [ir.Constant(I64, i)], source_etype=PTR), typ=PTR, align=8)
        obj_type = b.ptrtoint(self.field(obj, RT_OFF_OB_TYPE, PTR), I64)
        self.require(b.icmp_unsigned("==", obj_type, self.slot(RT_NDARRAY_TYPE)), f"a{i}.is_ndarray")
        ok = self._dtype_matches(self.field(obj, RT_OFF_DESCR, PTR), DTYPE_ORDER.index(buf.dtype))
        ok = b.and_(ok, b.icmp_signed("==", self.field(obj, RT_OFF_ND, I32), ir.Constant(I32, len(buf.shape))))
        need = NPY_C_CONTIGUOUS | NPY_ALIGNED | (NPY_WRITEABLE if self.written[i] else 0)
        flags = b.and_(self.field(obj, RT_OFF_FLAGS, I32), ir.Constant(I32, need))
        ok = b.and_(ok, b.icmp_signed("==", flags, ir.Constant(I32, need)))
        self.require(ok, f"a{i}.header")
        # Dimensions are read only once ndim is known to match.
        if buf.shape:
            dims = self.field(obj, RT_OFF_DIMS, PTR)
            ok = ir.Constant(I1, 1)
            for k, extent in enumerate(buf.shape):
                d = b.load(b.gep(dims, [ir.Constant(I64, k)], source_etype=I64), typ=I64, align=8)
                ok = b.and_(ok, b.icmp_signed("==", d, ir.Constant(I64, extent)))
            self.require(ok, f"a{i}.shape")
        data = self.field(obj, RT_OFF_DATA, PTR)
        if self.aligns[i] > buf.itemsize:
            low = b.and_(b.ptrtoint(data, I64), ir.Constant(I64, self.aligns[i] - 1))
            self.require(b.icmp_unsigned("==", low, ir.Constant(I64, 0)), f"a{i}.align")
        return data

    def _dtype_matches(self, descr: ir.Value, k: int) -> ir.Value:
        """Canonical dtype object, or same scalar type in native byte order (numpy_abi.py)."""
        b = self.b
        canonical = b.icmp_unsigned("==", b.ptrtoint(descr, I64), self.slot(RT_DESCR + k))
        scalar = self.field(descr, RT_OFF_DESCR_TYPEOBJ, PTR)
        same_type = b.icmp_unsigned("==", b.ptrtoint(scalar, I64), self.slot(RT_SCALAR_TYPE + k))
        order = b.load(b.gep(descr, [self.slot(RT_OFF_DESCR_BYTEORDER)], source_etype=I8), typ=I8, align=1)
        native = b.icmp_unsigned("==", order, b.trunc(self.slot(RT_NATIVE_BYTEORDER), I8))
        for char in "=|":
            native = b.or_(native, b.icmp_unsigned("==", order, ir.Constant(I8, ord(char))))
        return b.or_(canonical, b.and_(same_type, native))

    def _check_overlaps(self, datas: list[ir.Value]) -> None:
        b = self.b
        starts = [b.ptrtoint(d, I64) for d in datas]
        ends = [b.add(s, ir.Constant(I64, buf.nbytes)) for s, buf in zip(starts, self.buffers)]
        overlap = ir.Constant(I1, 0)
        for w, is_written in enumerate(self.written):
            if not is_written or not self.buffers[w].nbytes:
                continue
            for j, other in enumerate(self.buffers):
                if j == w or not other.nbytes or (self.written[j] and j < w):
                    continue  # a written pair is tested once
                hit = b.and_(b.icmp_unsigned("<", starts[w], ends[j]), b.icmp_unsigned("<", starts[j], ends[w]))
                overlap = b.or_(overlap, hit)
        self.require(b.not_(overlap), "disjoint")
