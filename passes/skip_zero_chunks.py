"""`skip-zero-chunks`: loops over an input vector visit only the cache lines where it is non-zero.

Input sparsity, the way `skip-zero-updates` uses ReLU sparsity. A first
layer multiplies every row of W element-wise by the input x, forward

    for i { a = sum_j W[i, j] * x[j] }                          (dot product)

and backward

    for i { ... for j { W[i, j] = W[i, j] - e * x[j] } }        (rank-one update)

A term with x[j] == 0 adds nothing and an update with x[j] == 0 writes back
what it read, so only the columns where x is non-zero matter. On MNIST 81% of
the pixels are zero, and 41% of the 64-byte chunks of a row (f32) or 60%
(f64) hold no non-zero pixel at all: skipping those chunks skips those cache
lines of W, in the dot products and in the update, whose read-modify-write
traffic is what bounds a per-sample step.

Rewrite, per loop over j in [0, C) that is one of the two forms above, x being
a function argument the function never writes (the sample; its other
indices, such as the step of a data loop, defined outside the hoisting point,
and no loop around that point leaves x's row unchanged, or the scan would be
repeated for nothing: a batch's update `for i { for b { for j } }` is left alone):

    // once per x row, before the outermost loop that does not define its indices:
    %count = for c in [0, C - C % L) step L iter(n = 0) {      // L = chunk-bytes / element size
               list[n] = c; n + (x[c] != 0 or ... or x[c + L - 1] != 0) }
    // the loop itself:
    for q in [0, %count) iter(a_0 .. a_(L-1)) {
      c = list[q]
      a_k += W[i, c + k] * x[c + k]  for k < L       // straight-line: one vector per chunk
    }
    a = (a_0 + a_1) + ... ; then the last C % L columns as before

The update form becomes the same chunk loop with the original body repeated L
times. The L accumulators keep the sum vectorised across chunks.

Only where the scan is amortised (`_amortised`): its list serves every row
of W, or several loops over the same row of x, or the row fits in L1. A lone
loop over a long vector (a dot product of two 10^6-element vectors) is left
alone: the scan would be one more pass over memory.

Exact for finite values: a skipped term is W * 0 = 0 and a skipped update
writes W - e * 0 = W. (W or e infinite or NaN in a skipped column would have
made a NaN that the skip leaves out; a zero's sign can differ.) The dot
product's terms are added in another order (chunk by chunk), as under any
`reassoc` vectorisation.

The chunks start at the first 64-byte boundary of W's rows when W is a
function argument whose rows are whole cache lines (option `align`, on by
default; chunk_frame.py): numpy's arrays then run at the speed of 64-byte
aligned ones, and give bitwise the same results at any alignment. Chunks are
vectorised by chunk_vectorise.py. With `align`, loops that only write a row of
an output argument (`dW[i, j] = e[i] * x[j]`) get the same frame, so that their
stores are whole cache lines too (aligned_writes.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects import arith, func, memref, scf, vector
from xdsl.dialects.builtin import IntegerType, ModuleOp, VectorType
from xdsl.ir import Block, BlockArgument, Operation, OpResult, Region, SSAValue
from xdsl.passes import ModulePass

from raster_mlir.errors import CompileError
from raster_mlir.ir_create import create_op
from raster_mlir.ir_clone import clone_op

from .chunk_frame import (
    ChunkFrame,
    after_constants,
    build_frame,
    frame_applies,
    gate_on_input,
    insert_all,
    is_argument,
    reduce_lanes,
    vector_of,
)
from .aligned_writes import align_row_writes
from .chunk_vectorise import Outside, Staged, append, chunk_body, guarded, hoist_invariant_factors, inline, insert, insert_op, restage
from .loop_analysis import defined_values, loop_bounds, product_factors, update_term, written_buffers
from .loop_builder import INDEX, LoopBuilder, aligned_alloc, memref_type, same_type
from raster_mlir.ir_walk import block_ops, walk_ops
from .pass_dataclass import pass_dataclass

I64 = IntegerType(64)


@dataclass
class ChunkSite:
    """A loop over j that may skip the chunks where `x` is zero."""

    loop: scf.ForOp
    x_load: memref.LoadOp  # x[..., j]
    reduction: bool  # the dot-product form (one iter_arg); else the update form
    rows_of: SSAValue  # W: the buffer whose rows the chunks read (dot product) or update


def _is_input(value: SSAValue, function: func.FuncOp, written: set[SSAValue]) -> bool:
    return is_argument(value, function) and value not in written


def _row_load(value: SSAValue, j: SSAValue) -> memref.LoadOp | None:
    """The load when `value` is `memref.load B[..., j]` with j only in the last place."""
    load = value.owner
    if isinstance(load, memref.LoadOp) and load.indices and load.indices[-1] is j:
        if all(index is not j for index in load.indices[:-1]):
            return load
    return None


def match_site(loop: scf.ForOp, function: func.FuncOp, written: set[SSAValue]) -> ChunkSite | None:
    bounds = loop_bounds(loop)
    if bounds is None or bounds[0] != 0 or bounds[2] != 1:
        return None
    j = loop.body.block.args[0]
    ops = block_ops(loop.body.block)
    if any(op.regions for op in ops):
        return None
    if len(loop.iter_args) == 1:  # a = a + W[.., j] * x[.., j]
        acc = loop.body.block.args[1]
        if len(ops) != 5:
            return None
        total = ops[-1].operands[0].owner
        if not isinstance(total, arith.AddfOp) or acc not in (total.lhs, total.rhs):
            return None
        product = (total.rhs if total.lhs is acc else total.lhs).owner
        if not isinstance(product, arith.MulfOp):
            return None
        for candidate in (product.rhs, product.lhs):
            load = _row_load(candidate, j)
            if load is not None and _is_input(load.memref, function, written):
                other = _row_load(product.lhs if candidate is product.rhs else product.rhs, j)
                if other is not None:
                    return ChunkSite(loop, load, True, other.memref)
        return None
    if loop.iter_args:
        return None
    stores = [op for op in ops if isinstance(op, memref.StoreOp)]
    if len(stores) != 1 or stores[0].indices[-1:] != (j,):
        return None
    term = update_term(stores[0])
    if term is None:
        return None
    inside = defined_values(loop)
    for factor in product_factors(term, inside):  # x[j] must be one of them
        load = _row_load(factor, j)
        if load is not None and _is_input(load.memref, function, written):
            return ChunkSite(loop, load, False, stores[0].memref)
    return None


class _Rewriter:
    def __init__(self, function: func.FuncOp, chunk_bytes: int, min_chunks: int, align: bool):
        self.function = function
        self.entry = function.body.blocks.first
        self.chunk_bytes = chunk_bytes
        self.min_chunks = min_chunks
        self.align = align
        self.lists: dict[tuple, _ChunkList] = {}
        self.frames: dict[tuple, ChunkFrame] = {}
        self.partials: dict[Operation, list[_Partial]] = {}  # hoist point -> partial chunks inside it
        self.partial_flags: dict[Operation, set[SSAValue]] = {}  # hoist point -> the i1s: any partial lane set?
        self.b = LoopBuilder(self.entry)  # for its constants, made once at the top of the function

    @staticmethod
    def _hoist_point(site: ChunkSite) -> Operation:
        """The outermost op around the loop that defines none of x's other indices."""
        # An op defines one of the indices (`defined_values`: itself or inside its regions) exactly when it is
        # an ancestor of the index's owner (an op or a block): no walk of every op around the loop.
        needed = [index.owner for index in site.x_load.indices[:-1]]
        point: Operation = site.loop
        while True:
            parent = point.parent_op()
            if parent is None or isinstance(parent, func.FuncOp) or any(parent.is_ancestor(d) for d in needed):
                return point
            point = parent

    @staticmethod
    def _scanned_once_per_row(point: Operation, needed: set[SSAValue]) -> bool:
        """False when a loop around the hoisting point does not change x's row: the scan would be
        repeated for every one of its iterations (a batch loop over samples b inside a loop over the
        rows i of W: `for i { for b { for j: W[i, j] -= c[b, i] * x[b, j] } }`)."""
        parent = point.parent_op()
        while parent is not None and not isinstance(parent, func.FuncOp):
            if isinstance(parent, scf.ForOp):
                varying = set(parent.body.block.args)
                if not any(_depends_on(value, varying) for value in needed):
                    return False
            parent = parent.parent_op()
        return True

    # -- the frame and the chunk list -------------------------------------------------------
    def _frame(self, site: ChunkSite, lanes: int, chunks: int) -> ChunkFrame | None:
        """The frame of W's rows (chunk_frame.py), computed once per function; None: chunks from element 0."""
        if not self.align or not frame_applies(site.rows_of, self.function, self.chunk_bytes):
            return None
        key = (site.rows_of, lanes, chunks)
        if key not in self.frames:
            ops, self.frames[key] = build_frame(site.rows_of, lanes, chunks * lanes, self.chunk_bytes, self.b)
            insert_all(ops, self.entry, after_constants(self.entry))
        return self.frames[key]

    def _chunk_list(self, site: ChunkSite, lanes: int, chunks: int, frame: ChunkFrame | None) -> _ChunkList:
        """The starts of the chunks of x's row holding a non-zero (NaN counts as non-zero), and the
        frame's head and tail masks, no lane set where x is zero."""
        x, rows = site.x_load.memref, tuple(site.x_load.indices[:-1])
        point = self._hoist_point(site)
        key = (x, rows, point.parent_block(), lanes, chunks, frame)
        if key in self.lists:
            return self.lists[key]
        alloc = aligned_alloc(memref_type(I64, (chunks,)))
        self.entry.insert_op_before(alloc, after_constants(self.entry))
        chunk_list = alloc.memref
        block = point.parent_block()
        if frame is None:
            scan = chunk_scan([(x, rows)], lanes, chunks, chunk_list, self.b)
            block.insert_op_before(scan, point)
            found = self.lists[key] = _ChunkList(chunk_list, scan.results[0])
            return found
        # x's row staged in a 64-byte aligned buffer at the frame's alignment: xs[j + t] = x[j]
        element = x.type.element_type
        staged = aligned_alloc(memref_type(element, (chunks * lanes + lanes,)))
        self.entry.insert_op_before(staged, after_constants(self.entry))
        stage = staged.memref
        head = gate_on_input(frame.head_mask, frame, [(x, rows)], frame.head_start, self.b, stage)
        tail = gate_on_input(frame.tail_mask, frame, [(x, rows)], frame.tail_start, self.b, stage)
        scan = chunk_scan(
            [(x, rows)], lanes, chunks, chunk_list, self.b, frame.shift, frame.tail_start, (stage, frame.tail_length)
        )
        insert_all([*head, scan, *tail], block, point)
        found = self.lists[key] = _ChunkList(
            chunk_list,
            scan.results[0],
            head[-1].results[0],
            head[-2].results[0],
            tail[-1].results[0],
            tail[-2].results[0],
            Staged(x, rows, stage, frame.tail_length),
        )
        return found

    # -- the rewrite ----------------------------------------------------------------------
    def rewrite(self, site: ChunkSite) -> bool:
        loop = site.loop
        x = site.x_load.memref
        itemsize = x.type.element_type.bitwidth // 8
        lanes = self.chunk_bytes // itemsize
        columns = loop_bounds(loop)[1]
        chunks = columns // lanes
        if lanes < 2 or chunks < self.min_chunks:
            return False
        if not self._scanned_once_per_row(self._hoist_point(site), set(site.x_load.indices[:-1])):
            return False
        parent = loop.parent_block()
        if not site.reduction:
            hoist_invariant_factors(loop)
        outside = Outside(parent, loop, lanes)
        body = chunk_body(loop, lanes, outside, site.reduction)  # None unless every op can be widened
        if body is None:
            outside.discard()
            return False
        frame = self._frame(site, lanes, chunks)
        found = self._chunk_list(site, lanes, chunks, frame)
        body = restage(body, found.staged)
        inits = [outside.splat(self.b.float(0.0, loop.results[0].type))] if site.reduction else []
        head = tail = None
        partials: list[_Partial] = []
        if frame is not None:  # the partial chunks at both ends of the row, masked
            head = chunk_body(loop, lanes, outside, site.reduction, found.head_mask, self.b, found.staged)
            tail = chunk_body(loop, lanes, outside, site.reduction, found.tail_mask, self.b, found.staged)
            if site.reduction:  # straight-line code: it keeps the rows' loop jammed (backend/jam.py)
                ops = [op for op in head.ops if not isinstance(op, scf.YieldOp)]
                before = inits
                inits = inline(head, [frame.head_start, *inits], parent, loop)
                partials.append(_Partial(ops, list(zip(inits, before))))
            else:  # a branch: an aligned row (no lane set) or a zero input there skips the memory access
                partials.append(_Partial([insert_op(parent, loop, guarded(found.head_on, head, frame.head_start))]))
        each = Block(arg_types=[INDEX, *[v.type for v in inits]])  # (position in the list, accumulators)
        position = append(each, create_op(memref.LoadOp, [found.starts, each.args[0]], [found.starts.type.element_type]))
        start = append(each, create_op(arith.IndexCastOp, [position], [INDEX]))
        each.add_op(create_op(scf.YieldOp, inline(body, [start, *each.args[1:]], each)))
        chunked = create_op(scf.ForOp, [self.b.index(0), found.count, self.b.index(1), *inits], [v.type for v in inits], regions=(Region(each),))
        parent.insert_op_before(chunked, loop)
        results = list(chunked.results)
        if tail is not None and site.reduction:
            ops = [op for op in tail.ops if not isinstance(op, scf.YieldOp)]
            before = results
            results = inline(tail, [frame.tail_start, *results], parent, loop)
            partials.append(_Partial(ops, list(zip(results, before))))
        elif tail is not None:
            partials.append(_Partial([insert_op(parent, loop, guarded(found.tail_on, tail, frame.tail_start))]))
        point = self._hoist_point(site)
        if partials and point is not loop:  # the row loops run once more without them (`version_partials`)
            self.partials.setdefault(point, []).extend(partials)
            self.partial_flags.setdefault(point, set()).update((found.head_on, found.tail_on))
        rest_from = self.b.index(chunks * lanes)
        if site.reduction:
            total = insert(parent, loop, reduce_lanes(results[0], vector.CombiningKindFlag.ADD))
            total = insert(parent, loop, arith.AddfOp(loop.iter_args[0], total))
            if chunks * lanes < columns:  # the last columns, one by one as before
                rest = clone_op(loop)
                rest.operands = (rest_from, rest.ub, rest.step, total)
                parent.insert_op_before(rest, loop)
                total = rest.results[0]
            loop.results[0].replace_all_uses_with(total)
        elif chunks * lanes < columns:
            rest = clone_op(loop)
            rest.operands = (rest_from, rest.ub, rest.step)
            parent.insert_op_before(rest, loop)
        loop.detach()
        loop.erase()
        return True


    # -- versioning ------------------------------------------------------------------------
    def version_partials(self) -> None:
        """`if (some partial chunk has a lane set) { P } else { P without its partial chunks }` for every
        hoisting point P whose loops hold partial chunks.

        Their masks have no lane set when W is 64-byte aligned or when x is zero at both ends of its row
        (MNIST's borders), and then they change nothing, bit for bit (a masked-off lane adds fma(0, 0, a)
        = a, a is never -0.0); but they still cost a few masked loads per row, some 2-4% of a sparse
        step. The copy without them keeps those rows as fast as chunks from element 0."""
        for point, partials in self.partials.items():
            mapping: dict[SSAValue, SSAValue] = {}
            plain = clone_op(point, mapping)
            op_mapping = dict(zip(walk_ops(point), walk_ops(plain)))
            for partial in partials:
                for out, into in partial.replaces:
                    mapping[out].replace_all_uses_with(mapping.get(into, into))
                for op in reversed(partial.ops):
                    clone = op_mapping[op]
                    clone.detach()
                    clone.erase()
            block = point.parent_block()
            flags = sorted(self.partial_flags[point], key=lambda v: _position(v, block))
            condition = flags[0]
            for flag in flags[1:]:
                condition = insert(block, point, same_type(arith.OrIOp, condition, flag))
            then_block, else_block = Block(), Block()
            branch = create_op(scf.IfOp, [condition], [r.type for r in point.results], regions=(Region(then_block), Region(else_block)))
            block.insert_op_before(branch, point)
            for old, new in zip(point.results, branch.results):
                old.replace_all_uses_with(new)
            point.detach()
            then_block.add_ops([point, create_op(scf.YieldOp, point.results)])
            else_block.add_ops([plain, create_op(scf.YieldOp, plain.results)])


@dataclass(frozen=True)
class _Partial:
    """The ops of one partial chunk, and (its result, the value it stands for when it is left out) pairs."""

    ops: list[Operation]
    replaces: list[tuple[SSAValue, SSAValue]] = field(default_factory=list)


def _position(value: SSAValue, block: Block) -> int:
    """Where `value` is defined in `block` (an i1 flag made before the hoisting point)."""
    owner = value.owner
    return block.get_operation_index(owner) if isinstance(value, OpResult) and owner.parent is block else -1  # (not isinstance(owner, Operation): see forward_gathers._ivs_of)


@dataclass(frozen=True)
class _ChunkList:
    starts: SSAValue  # memref<chunks x i64>: the chunks' first columns
    count: SSAValue  # how many
    head_mask: SSAValue | None = None  # the frame's, no lane set where x is zero there
    head_on: SSAValue | None = None  # i1: some lane set
    tail_mask: SSAValue | None = None
    tail_on: SSAValue | None = None
    staged: Staged | None = None  # where the chunk bodies read x's row instead


def _depends_on(value: SSAValue, arguments: set[SSAValue]) -> bool:
    """Does `value` change with `arguments` (a loop's induction variable and carried values)?"""
    if value in arguments:
        return True
    if isinstance(value, BlockArgument):
        return False
    owner = value.owner
    if owner.regions:  # a loop's or an if's result: assume it does
        return True
    return any(_depends_on(operand, arguments) for operand in owner.operands)


def chunk_scan(
    rows: list[tuple[SSAValue, tuple[SSAValue, ...]]],
    lanes: int,
    chunks: int,
    chunk_list: SSAValue,
    b: LoopBuilder,
    first: SSAValue | None = None,
    end: SSAValue | None = None,
    stage: tuple[SSAValue, SSAValue] | None = None,
) -> scf.ForOp:
    """A loop (not yet inserted) listing in `chunk_list` the starts of the `lanes`-wide chunks
    where some row of `rows` (buffer, leading indices) has a bit set; its result is the count.
    `b` makes the constants. The chunks start at `first` and end before `end` (default: from
    0 to chunks * lanes; a frame's body otherwise, see chunk_frame.py). With `stage` = (buffer,
    t), the one row's chunk at c is also stored at buffer[c + t].

    A bit set means a non-zero, a NaN or a -0.0 (keeping a -0.0 chunk is merely not skipping it).
    """
    body = Block(arg_types=[INDEX, INDEX])
    start, n = body.args
    union = None
    for buffer, leading in rows:
        element = buffer.type.element_type
        bits = IntegerType(element.bitwidth)
        chunk = append(body, create_op(vector.LoadOp, [buffer, *leading, start], [vector_of(element, lanes)]))
        if stage is not None:
            body.add_op(create_op(vector.StoreOp, [chunk, stage[0], append(body, same_type(arith.AddiOp, start, stage[1]))]))
        words = append(body, create_op(vector.BitcastOp, [chunk], [vector_of(bits, lanes)]))
        union = words if union is None else append(body, same_type(arith.OrIOp, union, words))
    total = append(body, reduce_lanes(union, vector.CombiningKindFlag.OR))
    any_set = append(body, arith.CmpiOp(total, b.integer(0, total.type), "ne"))
    position = append(body, create_op(arith.IndexCastOp, [start], [I64]))
    body.add_op(create_op(memref.StoreOp, [position, chunk_list, n]))
    step = append(body, create_op(arith.SelectOp, [any_set, b.index(1), b.index(0)], [INDEX]))
    body.add_op(create_op(scf.YieldOp, [append(body, same_type(arith.AddiOp, n, step))]))
    first = b.index(0) if first is None else first
    end = b.index(chunks * lanes) if end is None else end
    return create_op(scf.ForOp, [first, end, b.index(lanes), b.index(0)], [INDEX], regions=(Region(body),))


def skip_zero_chunks(
    function: func.FuncOp, chunk_bytes: int = 64, min_chunks: int = 4, align: bool = True, align_writes: bool = True
) -> int:
    """Rewrite every matching loop of `function`; returns how many were rewritten."""
    written = written_buffers(function)
    sites = [
        site
        for op in walk_ops(function)
        if op.name == "scf.for" and (site := match_site(op, function, written)) is not None
    ]
    rewriter = _Rewriter(function, chunk_bytes, min_chunks, align)
    rewritten = sum(rewriter.rewrite(site) for site in _amortised(sites))
    rewriter.version_partials()
    if align and align_writes:  # the same frame for rows that are only written (aligned_writes.py)
        rewritten += align_row_writes(function, chunk_bytes, min_chunks, written)
    return rewritten


# A lone scan (see `_amortised`) is worth it while x's row stays in L1 for the loop that follows it
# (half of a 32 KiB L1: the loop's other operand needs room too).
LONE_SCAN_BYTES = 16 * 1024


def _amortised(sites: list[ChunkSite]) -> list[ChunkSite]:
    """The sites whose chunk scan pays for its pass over x's row.

    The scan reads x's row once more. That is free when its list is used again: by every row
    of W (the scan is hoisted out of a loop around the site), or by another site on the same
    row (a step's dot product and update); or when the row is small enough to stay in L1 for
    the loop. A lone loop over a long vector, such as `sum(x * y)` once fuse-loops has merged
    the product into the sum, would make one more pass over memory, and lose the thread pool
    (parallelize-loops takes no chunk loop).
    """
    def row(site: ChunkSite) -> tuple:
        point = _Rewriter._hoist_point(site)
        return site.x_load.memref, tuple(site.x_load.indices[:-1]), point.parent_block()

    def row_bytes(site: ChunkSite) -> int:
        return loop_bounds(site.loop)[1] * site.x_load.memref.type.element_type.bitwidth // 8

    users = Counter(row(site) for site in sites)
    return [
        site for site in sites
        if _Rewriter._hoist_point(site) is not site.loop or users[row(site)] > 1 or row_bytes(site) <= LONE_SCAN_BYTES
    ]  # fmt: skip


@pass_dataclass
class SkipZeroChunksPass(ModulePass):
    """Dot products and rank-one updates against an input vector skip its all-zero chunks."""

    name = "skip-zero-chunks"

    chunk_bytes: int = 64
    min_chunks: int = 4
    align: bool = True  # chunks from the first 64-byte boundary of W's rows (chunk_frame.py)
    align_writes: bool = True  # with align: also loops that only write an output's rows (aligned_writes.py)

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.chunk_bytes < 8 or self.chunk_bytes & (self.chunk_bytes - 1):
            raise CompileError(f"skip-zero-chunks: chunk-bytes must be a power of two >= 8, got {self.chunk_bytes}")
        for function in [f for f in op.ops if isinstance(f, func.FuncOp)]:
            if function.body.blocks:
                skip_zero_chunks(function, self.chunk_bytes, self.min_chunks, self.align, self.align_writes)
