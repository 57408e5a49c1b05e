"""Row writes that store whole cache lines (part of `skip-zero-chunks`, which owns the chunk frame).

Why: a loop that writes a row of a fresh output, `for j { out[i, j] = f(j) }`
(the outer product `dW[i, j] = e[i] * x[j]` of a first layer's gradient, any
element-wise result), is vectorised by LLVM from column 0. numpy allocates
the output 16 bytes past a 64-byte boundary, so every 512-bit store of it
straddles two cache lines; for the 128x784 f64 gradient of W1 that write is
about half of a per-sample gradient or hvp (measured on the hvp: 45% of the
native time in that one loop).

Rewrite, per loop over j in [0, C) with no iter_args whose only memory write
is one store `out[..., j] = v` to a function argument `out` whose rows are
whole 64-byte chunks, which the loop does not read, and whose body
chunk_vectorise.py can widen:

    head: the chunk at s - L, lanes L - s .. L - 1 (masked; none when out is aligned)
    body: for c in [s, C - t) step L { the chunk at c }      // each store one cache line
    tail: the chunk at C - t, lanes 0 .. t - 1 (masked)

with the frame of out's rows (chunk_frame.py: s, t from out's address,
computed once per function). Every column is written once, by the same
lane-wise operations as before; a body that LLVM could have contracted into
an FMA (`a + b * c`) is left alone, so the results are bitwise those of the
scalar loop.
"""

from __future__ import annotations

from xdsl.dialects import arith, func, memref, scf
from xdsl.dialects.builtin import IndexType
from xdsl.ir import Block, Operation

from .chunk_frame import ChunkFrame, after_constants, build_frame, frame_applies, insert_all, is_argument
from .chunk_vectorise import LANEWISE, Outside, Staged, _fused_product, append, chunk_body, guarded, inline, insert, restage
from .loop_analysis import defined_values, loop_bounds
from .loop_builder import LoopBuilder
from raster_mlir.ir_walk import block_ops, walk_ops


def _write_site(loop: scf.ForOp, function: func.FuncOp) -> memref.StoreOp | None:
    """The store when `loop` is a pure row write to a function argument (module docstring)."""
    bounds = loop_bounds(loop)
    if bounds is None or bounds[0] != 0 or bounds[2] != 1 or loop.iter_args:
        return None
    ops = block_ops(loop.body.block)
    if any(op.regions for op in ops):
        return None
    stores = [op for op in ops if isinstance(op, memref.StoreOp)]
    if len(stores) != 1:
        return None
    store = stores[0]
    j = loop.body.block.args[0]
    if not store.indices or store.indices[-1] is not j:
        return None
    out = store.memref
    inside = defined_values(loop)
    for op in ops:
        if isinstance(op, (memref.StoreOp, scf.YieldOp)):
            continue
        if isinstance(op, memref.LoadOp):
            if op.memref is out:
                return None
            continue
        if not (isinstance(op, LANEWISE) or isinstance(op, arith.NegfOp)):
            return None
        if _fused_product(op, inside) is not None:
            return None
    if not frame_applies(out, function, 64) or out.type.get_num_dims() < 2:
        return None
    return store


def _stage(x, frame: ChunkFrame, lanes: int, b: LoopBuilder, entry: Block, before: Operation) -> Staged:
    """x (a 1-D input) copied once, at the function's entry, to a 64-byte aligned buffer at the frame's
    alignment: copy[j + t] = x[j], so that the chunks read whole cache lines of it too."""
    columns = x.type.get_shape()[0]
    alloc = memref.AllocOp.get(x.type.element_type, 64, [columns + lanes])
    entry.insert_op_before(alloc, before)
    body = Block(arg_types=[IndexType()])
    value = append(body, memref.LoadOp.get(x, [body.args[0]]))
    body.add_op(memref.StoreOp.get(value, alloc.memref, [append(body, arith.AddiOp(body.args[0], frame.tail_length))]))
    body.add_op(scf.YieldOp())
    entry.insert_op_before(scf.ForOp(b.index(0), b.index(columns), b.index(1), [], body), before)
    return Staged(x, (), alloc.memref, frame.tail_length)


def _staged_input(loop: scf.ForOp, function: func.FuncOp, written: set, columns: int):
    """The one 1-D input of `columns` elements, never written by the function, that the loop reads at j (else None)."""
    j = loop.body.block.args[0]
    found = None
    for op in loop.body.block.ops:
        if isinstance(op, memref.LoadOp) and op.indices and op.indices[-1] is j:
            x = op.memref
            if (
                len(op.indices) == 1
                and is_argument(x, function)
                and x not in written
                and x.type.get_shape() == (columns,)
            ):
                if found is not None and found is not x:
                    return None
                found = x
    return found


def align_row_writes(function: func.FuncOp, chunk_bytes: int = 64, min_chunks: int = 4, written: set | None = None) -> int:
    """Rewrite every pure row write of `function` into a head, aligned chunks and a tail; how many."""
    entry = function.body.blocks.first
    b = LoopBuilder(entry)
    frames: dict[tuple, ChunkFrame] = {}
    stages: dict[tuple, Staged] = {}
    anchors: dict[tuple, Operation] = {}
    sites = [(op, store) for op in walk_ops(function) if op.name == "scf.for" and (store := _write_site(op, function))]
    done = 0
    for loop, store in sites:
        out = store.memref
        itemsize = out.type.element_type.bitwidth // 8
        lanes = chunk_bytes // itemsize
        columns = loop_bounds(loop)[1]
        if lanes < 2 or columns % lanes or columns // lanes < min_chunks:
            continue
        parent = loop.parent_block()
        outside = Outside(parent, loop, lanes)
        body = chunk_body(loop, lanes, outside, False)  # None unless every op can be widened
        if body is None:
            outside.discard()
            continue
        key = (out, lanes, columns)
        if key not in frames:
            ops, frames[key] = build_frame(out, lanes, columns, chunk_bytes, b)
            first = after_constants(entry)
            insert_all(ops, entry, first)
            anchors[key] = first  # the op right after the frame's
        frame = frames[key]
        staged = None
        x = _staged_input(loop, function, written, columns) if written is not None else None
        if x is not None:
            if (x, key) not in stages:
                stages[(x, key)] = _stage(x, frame, lanes, b, entry, anchors[key])
            staged = stages[(x, key)]

        head = chunk_body(loop, lanes, outside, False, frame.head_mask, b, staged)
        body = restage(body, staged)
        tail = chunk_body(loop, lanes, outside, False, frame.tail_mask, b, staged)
        shifted = insert(parent, loop, arith.CmpiOp(frame.shift, b.index(0), "ne"))
        parent.insert_op_before(guarded(shifted, head, frame.head_start), loop)
        each = Block(arg_types=[loop.body.block.args[0].type])
        inline(body, [each.args[0]], each)
        each.add_op(scf.YieldOp())
        parent.insert_op_before(scf.ForOp(frame.shift, frame.tail_start, b.index(lanes), [], each), loop)
        parent.insert_op_before(guarded(shifted, tail, frame.tail_start), loop)
        loop.detach()
        loop.erase()
        done += 1
    return done
