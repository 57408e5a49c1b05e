"""The run-time tape ops of reverse mode (`raster.rt_tape_*`, dialects/raster_tape.py) -> LLVM.

A tape header is an i64[4] buffer: {data pointer, rows, capacity (rows), unused}.

    init    ptr = null, rows = 0, capacity = 0
    reset   rows = 0                                      (the memory is kept)
    push    if rows == capacity: capacity = 2*capacity + 16; ptr = realloc(ptr, capacity * row_bytes)
            memcpy(ptr + rows * row_bytes, source, row_bytes); rows += 1
    read    memcpy(target, ptr + index * row_bytes, row_bytes)
    free    free(ptr); ptr = null, rows = 0, capacity = 0

Pushing N rows costs O(N) copies in total (the capacity doubles).
`realloc` and `free` are the C library's, resolved in the running process
like the libm functions. A failed `realloc` (no memory left) stops the
push: the tape keeps its rows, and the reverse sweep would read rows that
were never written; there is no way to raise from native code, so such a
run is out of the library's guarantees (as for numpy, which raises
MemoryError instead).
"""

from __future__ import annotations

from llvmlite import ir
from xdsl.ir import Operation

from .llvm_types import I64, PTR

_GROW_MIN = 16


class TapeTranslator:
    """Mixin for `FunctionBodyEmitter`: the growable tapes' run-time operations."""

    def _tape_slots(self, header):
        b = self.builder
        base = self.value(header)
        return [b.gep(base, [ir.Constant(I64, k)], inbounds=True, source_etype=I64) for k in range(3)]

    def _row_bytes(self, buffer) -> ir.Constant:
        return ir.Constant(I64, self.buffers[buffer].nbytes)

    def _emit_tape_init(self, op: Operation) -> None:
        data, rows, capacity = self._tape_slots(op.operands[0])
        self.builder.store(ir.Constant(PTR, None), data, align=8)
        self.builder.store(ir.Constant(I64, 0), rows, align=8)
        self.builder.store(ir.Constant(I64, 0), capacity, align=8)

    def _emit_tape_reset(self, op: Operation) -> None:
        _, rows, _ = self._tape_slots(op.operands[0])
        self.builder.store(ir.Constant(I64, 0), rows, align=8)

    def _emit_tape_free(self, op: Operation) -> None:
        data, rows, capacity = self._tape_slots(op.operands[0])
        free = self.mctx.declare("free", ir.VoidType(), [PTR])
        self.builder.call(free, [self.builder.load(data, typ=PTR, align=8)])
        self._emit_tape_init(op)

    def _emit_tape_push(self, op: Operation) -> None:
        b = self.builder
        header, source = op.operands
        data, rows, capacity = self._tape_slots(header)
        row_bytes = self._row_bytes(source)
        count = b.load(rows, typ=I64, align=8)
        cap = b.load(capacity, typ=I64, align=8)
        grow = self.llfn.append_basic_block("tape.grow")
        store = self.llfn.append_basic_block("tape.push")
        b.cbranch(b.icmp_unsigned("==", count, cap), grow, store)

        b.position_at_end(grow)
        new_cap = b.add(b.mul(cap, ir.Constant(I64, 2)), ir.Constant(I64, _GROW_MIN))
        realloc = self.mctx.declare("realloc", PTR, [PTR, I64])
        grown = b.call(realloc, [b.load(data, typ=PTR, align=8), b.mul(new_cap, row_bytes)])
        failed = self.llfn.append_basic_block("tape.oom")
        keep = self.llfn.append_basic_block("tape.grown")
        b.cbranch(b.icmp_unsigned("==", b.ptrtoint(grown, I64), ir.Constant(I64, 0)), failed, keep)
        b.position_at_end(keep)
        b.store(grown, data, align=8)
        b.store(new_cap, capacity, align=8)
        b.branch(store)

        done = self.llfn.append_basic_block("tape.done")
        b.position_at_end(store)
        base = b.load(data, typ=PTR, align=8)
        target = b.gep(base, [b.mul(count, row_bytes)], inbounds=True, source_etype=ir.IntType(8))
        self.emit_memcpy(target, self.value(source), row_bytes)
        b.store(b.add(count, ir.Constant(I64, 1)), rows, align=8)
        b.branch(done)

        b.position_at_end(failed)  # out of memory: the row is dropped (module docstring)
        b.branch(done)
        b.position_at_end(done)

    def _emit_tape_read(self, op: Operation) -> None:
        b = self.builder
        header, index, target = op.operands
        data, _, _ = self._tape_slots(header)
        row_bytes = self._row_bytes(target)
        base = b.load(data, typ=PTR, align=8)
        source = b.gep(base, [b.mul(self.value(index), row_bytes)], inbounds=True, source_etype=ir.IntType(8))
        self.emit_memcpy(self.value(target), source, row_bytes)

    TAPE_HANDLERS = {
        "raster.rt_tape_init": _emit_tape_init,
        "raster.rt_tape_reset": _emit_tape_reset,
        "raster.rt_tape_free": _emit_tape_free,
        "raster.rt_tape_push": _emit_tape_push,
        "raster.rt_tape_read": _emit_tape_read,
    }
