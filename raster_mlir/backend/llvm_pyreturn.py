"""`<name>_pyreturn`: check the inputs, allocate the outputs, run, and return the Python result, all native.

Why: with `<name>_pycall` (llvm_entry.py) the hot path of `f(x)` still runs
Python for each call: `np.empty` per output (~0.1 us), a tuple of all the
buffers, `.item()` for a scalar result and a closure frame around them, about
0.3 us of a 0.5 us call of `sum(x)` on 1,000 elements. This entry point does
all of it in the builtin call (`METH_O`, pycall.py):

    PyObject* <name>_pyreturn(PyObject* self, PyObject* args_tuple)

Buffer j of the kernel comes, by the call layout in the runtime table
(numpy_abi.py, filled by call.py once per loaded entry), from:
    j <  n_in                the argument tuple's item j, checked exactly as
                             `<name>_checked` checks it (type, dtype, ndim,
                             shape, flags, alignment);
    n_in <= j < n_in+n_out   a fresh output: `PyArray_New` (C order, owned
                             data), or for a 0-d output a stack slot whose
                             value is returned as a Python float (int for
                             integer dtypes), as `CompiledFunction` does;
    the rest                 a constant array whose address is table slot
                             `RT_SLOTS + j` (kept alive by call.py).
It returns the one fresh output (kind 1), a tuple of them (kind 2), or the
first and a tuple of the others (kind 3: value_and_grad's nesting). When
the arity or an argument check fails, the layout is not set up (kind 0) or
a trace is open (the count at RT_TRACES_OPEN), nothing is allocated and it
declines: it calls the fallback its builtin carries (pycall.py), which for
an `@rm.jit` function is the Python call path, or returns `NotImplemented`
(a new reference) to a Python caller that falls back itself; either way the
slow path then runs, or raises the precise error. An allocation failure
releases what was allocated and returns NULL with CPython's MemoryError set.

No overlap check is needed: call.py sets a layout up only when no input is
written, so the only written buffers are the fresh outputs, which overlap
nothing. All input checks come before the first allocation (inputs are the
leading buffers), so declining never has anything to release, except after a
fresh array misses a promised alignment beyond numpy's (released, declined).
"""

from __future__ import annotations

from llvmlite import ir

from .fp_mode import call_in_fp_mode
from .llvm_entry import CheckedEmitter, unoptimised
from .llvm_types import I32, I64, PTR

F64 = ir.DoubleType()
from .numpy_abi import (
    DTYPE_ORDER,
    RT_DECLINED,
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
    RT_PY_DECREF,
    RT_PY_INCREF,
    RT_PYARRAY_NEW,
    RT_PYOBJECT_CALL,
    RT_PYFLOAT_FROMDOUBLE,
    RT_PYLONG_FROMLONGLONG,
    RT_PYTUPLE_NEW,
    RT_READY,
    RT_RET_KIND,
    RT_RET_N_IN,
    RT_RET_N_OUT,
    RT_SCALAR_TYPE,
    RT_SLOTS,
    RT_TRACES_OPEN,
    RT_TYPENUM,
    RT_WORKSPACE,
)

_BRANCH_SLOTS = (
    RT_NDARRAY_TYPE, RT_OFF_OB_TYPE, RT_OFF_DESCR, RT_OFF_DESCR_TYPEOBJ, RT_OFF_DESCR_BYTEORDER,
    RT_NATIVE_BYTEORDER, RT_OFF_ND, RT_OFF_FLAGS, RT_OFF_DIMS, RT_OFF_DATA, RT_OFF_TUPLE_ITEMS, RT_WORKSPACE,
)  # fmt: skip
_PYARRAY_NEW = ir.FunctionType(PTR, [PTR, I32, PTR, I32, PTR, PTR, I32, I32, PTR])
_UNARY_OBJECT = ir.FunctionType(ir.VoidType(), [PTR])


class PyReturnEmitter(CheckedEmitter):
    """Emits `<name>_pyreturn` (module docstring); the input checks are CheckedEmitter's."""

    def __init__(self, mctx, name, kernel, table, buffers, written, aligns):
        self.mctx, self.name, self.kernel, self.table = mctx, name, kernel, table
        self.buffers, self.written, self.aligns = buffers, written, aligns
        self.fn = ir.Function(mctx.llmod, ir.FunctionType(PTR, [PTR, PTR]), name=mctx.symbol(f"{name}_pyreturn"))
        mctx.set_target_attributes(self.fn)
        unoptimised(self.fn)
        self.fn.args[0].name, self.fn.args[1].name = "self", "args_tuple"
        self.b = ir.IRBuilder(self.fn.append_basic_block("entry"))
        self._slots: dict[int, ir.Value] = {}
        self.fail = self._emit_declined()

    def _emit_declined(self) -> ir.Block:
        """Declining (the input checks branch here): `self` is the tuple `(fallback, ...)` of pycall.py;
        return NotImplemented (a new reference) if that is the fallback, else `fallback(*args_tuple)`."""
        block = self.fn.append_basic_block("declined")
        b = ir.IRBuilder(block)
        items = b.gep(self.fn.args[0], [b.load(self._table_slot(b, RT_OFF_TUPLE_ITEMS), typ=I64)], source_etype=ir.IntType(8))
        fallback = b.load(items, typ=PTR, align=8)
        declined = self._runtime_pointer(b, RT_DECLINED)
        with b.if_else(b.icmp_unsigned("==", fallback, declined)) as (plain, call):
            with plain:
                b.call(self._runtime_function(b, RT_PY_INCREF, _UNARY_OBJECT), [declined])
                b.ret(declined)
            with call:
                call_object = self._runtime_function(b, RT_PYOBJECT_CALL, ir.FunctionType(PTR, [PTR, PTR, PTR]))
                b.ret(b.call(call_object, [fallback, self.fn.args[1], ir.Constant(PTR, None)]))
        b.unreachable()
        return block

    def _table_slot(self, b: ir.IRBuilder, slot: int) -> ir.Value:
        return b.gep(self.table, [ir.Constant(I64, 0), ir.Constant(I64, slot)], inbounds=True)

    def _runtime_pointer(self, b: ir.IRBuilder, slot: int, typ: ir.Type = PTR) -> ir.Value:
        """Table slot `slot` loaded with builder `b` (outside the check chain, so not the cached `slot`)."""
        return b.inttoptr(b.load(self._table_slot(b, slot), typ=I64, align=8), typ)

    def _runtime_function(self, b: ir.IRBuilder, slot: int, ftype: ir.FunctionType) -> ir.Value:
        return self._runtime_pointer(b, slot, ftype.as_pointer())

    def emit(self) -> ir.Function:
        b, n = self.b, len(self.buffers)
        with b.goto_entry_block():
            self.objects = b.alloca(ir.ArrayType(PTR, max(n, 1)), name="objects")
        for j in range(n):
            b.store(ir.Constant(PTR, None), self._object_slot(j))
        self.release = self._emit_release()
        # The table slots the per-buffer branches use, loaded once here in the entry chain
        # (a load inside one branch would not dominate the others).
        for slot in _BRANCH_SLOTS:
            self.slot(slot)
        for k in sorted({DTYPE_ORDER.index(buf.dtype) for buf in self.buffers}):
            for base in (RT_DESCR, RT_SCALAR_TYPE, RT_TYPENUM):
                self.slot(base + k)
        kind = self.slot(RT_RET_KIND)
        self.require(b.and_(b.icmp_signed("!=", self.slot(RT_READY), ir.Constant(I64, 0)),
                            b.icmp_signed("!=", kind, ir.Constant(I64, 0))), "set_up")  # fmt: skip
        # Inside a trace a call must be traced, not run (jit.call_traced): decline while one is open.
        traces = self.slot(RT_TRACES_OPEN)
        zero = ir.GlobalVariable(self.mctx.llmod, I64, name=self.mctx.llmod.get_unique_name(f"{self.name}_no_traces"))
        zero.initializer, zero.global_constant, zero.linkage = ir.Constant(I64, 0), True, "private"
        counter = b.select(b.icmp_unsigned("!=", traces, ir.Constant(I64, 0)), b.inttoptr(traces, PTR), zero)
        self.require(b.icmp_signed("==", b.load(counter, typ=I64, align=8), ir.Constant(I64, 0)), "not_tracing")
        n_in = self.slot(RT_RET_N_IN)
        fresh_end = b.add(n_in, self.slot(RT_RET_N_OUT))
        tup = self.fn.args[1]
        self.require(b.icmp_signed("==", self.field(tup, RT_OFF_TUPLE_SIZE, I64), n_in), "arity")
        items = b.gep(tup, [self.slot(RT_OFF_TUPLE_ITEMS)], source_etype=ir.IntType(8))
        scratch = {}
        datas = []
        for j, buf in enumerate(self.buffers):
            if not buf.shape:
                with b.goto_entry_block():
                    scratch[j] = b.alloca(ir.IntType(64), name=f"scalar{j}")
            datas.append(self._buffer(j, items, n_in, fresh_end, scratch.get(j)))
        call_in_fp_mode(self.mctx, b, self.kernel, datas + [b.inttoptr(self.slot(RT_WORKSPACE), PTR)])
        for j, slot in scratch.items():
            self._box_scalar(j, slot, n_in, fresh_end)
        self._return(kind, n_in, fresh_end)
        return self.fn

    def _object_slot(self, j: int) -> ir.Value:
        return self.b.gep(self.objects, [ir.Constant(I64, 0), ir.Constant(I64, j)], inbounds=True)

    def _emit_release(self) -> ir.Block:
        """A block that releases every object made so far (Py_DecRef ignores NULL) and returns `then`."""
        blocks = {}
        for label, declined in (("release_fail", False), ("release_declined", True)):
            block = self.fn.append_basic_block(label)
            b = ir.IRBuilder(block)
            decref = self._runtime_function(b, RT_PY_DECREF, _UNARY_OBJECT)
            for j in range(len(self.buffers)):
                slot = b.gep(self.objects, [ir.Constant(I64, 0), ir.Constant(I64, j)], inbounds=True)
                b.call(decref, [b.load(slot, typ=PTR, align=8)])
            if declined:
                b.branch(self.fail)
            else:
                b.ret(ir.Constant(PTR, None))
            blocks[declined] = block
        self.release_declined = blocks[True]
        return blocks[False]

    def _between(self, j: int, low: ir.Value, high: ir.Value) -> ir.Value:
        b, jc = self.b, ir.Constant(I64, j)
        return b.and_(b.icmp_signed("<=", low, jc), b.icmp_signed("<", jc, high))

    def _buffer(self, j, items, n_in, fresh_end, scratch) -> ir.Value:
        """The data pointer of buffer j: checked input, fresh output or constant (by the layout)."""
        b = self.b
        is_input = b.icmp_signed("<", ir.Constant(I64, j), n_in)
        input_bb = self.fn.append_basic_block(f"b{j}.input")
        other_bb = self.fn.append_basic_block(f"b{j}.other")
        fresh_bb = self.fn.append_basic_block(f"b{j}.fresh")
        constant_bb = self.fn.append_basic_block(f"b{j}.constant")
        merge_bb = self.fn.append_basic_block(f"b{j}.data")
        b.cbranch(is_input, input_bb, other_bb)
        incoming = []
        b.position_at_end(input_bb)
        incoming.append((self._check_array(items, j), b.block))  # its failures decline
        b.branch(merge_bb)
        b.position_at_end(other_bb)
        b.cbranch(b.icmp_signed("<", ir.Constant(I64, j), fresh_end), fresh_bb, constant_bb)
        b.position_at_end(fresh_bb)
        incoming.append((scratch if scratch is not None else self._allocate(j), b.block))
        b.branch(merge_bb)
        b.position_at_end(constant_bb)
        incoming.append((self._runtime_pointer(b, RT_SLOTS + j), b.block))
        b.branch(merge_bb)
        b.position_at_end(merge_bb)
        data = b.phi(PTR, name=f"data{j}")
        for value, block in incoming:
            data.add_incoming(value, block)
        return data

    def _allocate(self, j: int) -> ir.Value:
        """A fresh C-ordered array for buffer j (kept in objects[j]); its data pointer."""
        b, buf = self.b, self.buffers[j]
        dims_type = ir.ArrayType(I64, len(buf.shape))
        dims = ir.GlobalVariable(self.mctx.llmod, dims_type, name=self.mctx.llmod.get_unique_name(f"{self.name}_dims{j}"))
        dims.initializer = ir.Constant(dims_type, list(buf.shape))
        dims.global_constant = True
        dims.linkage = "private"
        new = self._runtime_function(b, RT_PYARRAY_NEW, _PYARRAY_NEW)
        typenum = b.trunc(self.slot(RT_TYPENUM + DTYPE_ORDER.index(buf.dtype)), I32)
        null, zero = ir.Constant(PTR, None), ir.Constant(I32, 0)
        array_type = b.inttoptr(self.slot(RT_NDARRAY_TYPE), PTR)
        obj = b.call(new, [array_type, ir.Constant(I32, len(buf.shape)), dims, typenum, null, null, zero, zero, null])
        made = self.fn.append_basic_block(f"b{j}.made")
        b.cbranch(b.icmp_unsigned("==", obj, null), self.release, made)
        b.position_at_end(made)
        b.store(obj, self._object_slot(j))
        data = self.field(obj, RT_OFF_DATA, PTR)
        if self.aligns[j] > buf.itemsize:
            low = b.and_(b.ptrtoint(data, I64), ir.Constant(I64, self.aligns[j] - 1))
            aligned = self.fn.append_basic_block(f"b{j}.aligned")
            b.cbranch(b.icmp_unsigned("==", low, ir.Constant(I64, 0)), aligned, self.release_declined)
            b.position_at_end(aligned)
        return data

    def _box_scalar(self, j: int, slot: ir.Value, n_in: ir.Value, fresh_end: ir.Value) -> None:
        """If buffer j (0-d) is a fresh output: objects[j] = its value as a Python float or int."""
        b, buf = self.b, self.buffers[j]
        with b.if_then(self._between(j, n_in, fresh_end)):
            if buf.dtype.startswith("float"):
                elem = F64 if buf.dtype == "float64" else ir.FloatType()
                value = b.load(slot, typ=elem)
                value = value if elem == F64 else b.fpext(value, F64)
                box = self._runtime_function(b, RT_PYFLOAT_FROMDOUBLE, ir.FunctionType(PTR, [F64]))
            else:
                elem = I64 if buf.dtype == "int64" else I32
                value = b.load(slot, typ=elem)
                value = value if elem == I64 else b.sext(value, I64)
                box = self._runtime_function(b, RT_PYLONG_FROMLONGLONG, ir.FunctionType(PTR, [I64]))
            obj = b.call(box, [value])
            made = self.fn.append_basic_block(f"b{j}.boxed")
            b.cbranch(b.icmp_unsigned("==", obj, ir.Constant(PTR, None)), self.release, made)
            b.position_at_end(made)
            b.store(obj, self._object_slot(j))

    def _return(self, kind: ir.Value, n_in: ir.Value, fresh_end: ir.Value) -> None:
        """Kind 1: objects[n_in]; kind 2: a new tuple that takes over objects[n_in:fresh_end];
        kind 3: (objects[n_in], (objects[n_in+1:fresh_end])), value_and_grad's nesting.

        Every tuple is allocated before any object moves into one, so a failed
        allocation releases the (empty) tuples and the objects once each."""
        b = self.b
        single_bb = self.fn.append_basic_block("single")
        tuple_bb = self.fn.append_basic_block("tuple")
        b.cbranch(b.icmp_signed("==", kind, ir.Constant(I64, 1)), single_bb, tuple_bb)
        b.position_at_end(single_bb)
        b.ret(b.load(b.gep(self.objects, [ir.Constant(I64, 0), n_in], inbounds=True), typ=PTR, align=8))
        b.position_at_end(tuple_bb)
        null = ir.Constant(PTR, None)
        new_tuple = self._runtime_function(b, RT_PYTUPLE_NEW, ir.FunctionType(PTR, [I64]))
        nested = b.icmp_signed("==", kind, ir.Constant(I64, 3))
        with b.goto_entry_block():
            outer_slot = b.alloca(PTR, name="outer")
        b.store(null, outer_slot)
        with b.if_then(nested):
            outer = b.call(new_tuple, [ir.Constant(I64, 2)])
            made = self.fn.append_basic_block("outer.made")
            b.cbranch(b.icmp_unsigned("==", outer, null), self.release, made)
            b.position_at_end(made)
            b.store(outer, outer_slot)
        outer = b.load(outer_slot, typ=PTR)
        first = b.select(nested, b.add(n_in, ir.Constant(I64, 1)), n_in)  # the first object of the flat tuple
        result = b.call(new_tuple, [b.sub(fresh_end, first)])
        made = self.fn.append_basic_block("tuple.made")
        release_outer = self.fn.append_basic_block("release_outer")
        b.cbranch(b.icmp_unsigned("==", result, null), release_outer, made)
        rb = ir.IRBuilder(release_outer)
        rb.call(self._runtime_function(rb, RT_PY_DECREF, _UNARY_OBJECT), [outer])  # (NULL for kind 2: ignored)
        rb.branch(self.release)
        b.position_at_end(made)
        items = b.gep(result, [self.slot(RT_OFF_TUPLE_ITEMS)], source_etype=ir.IntType(8))
        for j in range(len(self.buffers)):
            with b.if_then(self._between(j, first, fresh_end)):
                obj = b.load(self._object_slot(j), typ=PTR, align=8)
                b.store(obj, b.gep(items, [b.sub(ir.Constant(I64, j), first)], source_etype=PTR), align=8)
        with b.if_then(nested):
            outer_items = b.gep(outer, [self.slot(RT_OFF_TUPLE_ITEMS)], source_etype=ir.IntType(8))
            value = b.load(b.gep(self.objects, [ir.Constant(I64, 0), n_in], inbounds=True), typ=PTR, align=8)
            b.store(value, outer_items, align=8)
            b.store(result, b.gep(outer_items, [ir.Constant(I64, 1)], source_etype=PTR), align=8)
            b.ret(outer)
        b.ret(result)
