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

Exact for finite values: a skipped term is W * 0 = 0 and a skipped update
writes W - e * 0 = W. (W or e infinite or NaN in a skipped column would have
made a NaN that the skip leaves out; a zero's sign can differ.) The dot
product's terms are added in another order (chunk by chunk), as under any
`reassoc` vectorisation.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, func, memref, scf, vector
from xdsl.dialects.builtin import IndexType, IntegerType, MemRefType, ModuleOp, VectorType
from xdsl.ir import Block, BlockArgument, Operation, SSAValue
from xdsl.passes import ModulePass

from raster_mlir.errors import CompileError

from .loop_analysis import defined_values, loop_bounds, product_factors, update_term
from .loop_builder import LoopBuilder

I64 = IntegerType(64)


@dataclass
class ChunkSite:
    """A loop over j that may skip the chunks where `x` is zero."""

    loop: scf.ForOp
    x_load: memref.LoadOp  # x[..., j]
    reduction: bool  # the dot-product form (one iter_arg); else the update form


def _is_input(value: SSAValue, function: func.FuncOp, written: set[SSAValue]) -> bool:
    return (
        isinstance(value, BlockArgument)
        and value.block is function.body.blocks.first
        and value not in written
    )


def _row_load(value: SSAValue, j: SSAValue) -> memref.LoadOp | None:
    """The load when `value` is `memref.load B[..., j]` with j only in the last place."""
    load = value.owner
    if isinstance(load, memref.LoadOp) and load.indices and load.indices[-1] is j:
        if all(index is not j for index in load.indices[:-1]):
            return load
    return None


def written_buffers(function: func.FuncOp) -> set[SSAValue]:
    """Buffers the function may write: stored to, copied into, or handed to a call."""
    written: set[SSAValue] = set()
    for op in function.walk():
        if isinstance(op, (memref.StoreOp, vector.StoreOp)):
            written.add(op.operands[1])
        elif isinstance(op, memref.CopyOp):
            written.add(op.destination)
        elif isinstance(op, func.CallOp) or op.name.startswith("llvm."):
            written.update(v for v in op.operands if isinstance(v.type, MemRefType))
    return written


def match_site(loop: scf.ForOp, function: func.FuncOp, written: set[SSAValue]) -> ChunkSite | None:
    bounds = loop_bounds(loop)
    if bounds is None or bounds[0] != 0 or bounds[2] != 1:
        return None
    j = loop.body.block.args[0]
    ops = list(loop.body.block.ops)
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
                    return ChunkSite(loop, load, True)
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
            return ChunkSite(loop, load, False)
    return None


class _Rewriter:
    def __init__(self, function: func.FuncOp, chunk_bytes: int, min_chunks: int):
        self.function = function
        self.entry = function.body.blocks.first
        self.chunk_bytes = chunk_bytes
        self.min_chunks = min_chunks
        self.lists: dict[tuple, tuple[SSAValue, SSAValue, Operation]] = {}  # -> (list, count, hoist point)
        self.b = LoopBuilder(self.entry)  # for its constants, made once at the top of the function

    @staticmethod
    def _hoist_point(site: ChunkSite) -> Operation:
        """The outermost op around the loop that defines none of x's other indices."""
        needed = set(site.x_load.indices[:-1])
        point: Operation = site.loop
        while True:
            parent = point.parent_op()
            if parent is None or isinstance(parent, func.FuncOp) or needed & defined_values(parent):
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

    # -- the chunk list -------------------------------------------------------------------
    def _chunk_list(self, site: ChunkSite, lanes: int, chunks: int) -> tuple[SSAValue, SSAValue]:
        """`list[0:count]`: starts of the chunks of x's row holding a non-zero (NaN counts as non-zero)."""
        x, rows = site.x_load.memref, tuple(site.x_load.indices[:-1])
        point = self._hoist_point(site)
        key = (x, rows, point.parent_block(), lanes, chunks)
        if key in self.lists:
            chunk_list, count, _ = self.lists[key]
            return chunk_list, count
        alloc = memref.AllocOp.get(I64, 64, [chunks])
        self.entry.insert_op_before(alloc, self._first_non_constant())
        chunk_list = alloc.memref
        scan = chunk_scan([(x, rows)], lanes, chunks, chunk_list, self.b)
        point.parent_block().insert_op_before(scan, point)
        self.lists[key] = (chunk_list, scan.results[0], point)
        return chunk_list, scan.results[0]

    def _first_non_constant(self) -> Operation:
        for op in self.entry.ops:
            if not isinstance(op, arith.ConstantOp):
                return op
        raise CompileError("skip-zero-chunks: function without a terminator")

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
        outside = _Outside(parent, loop, lanes)
        lane_types = [VectorType(loop.results[0].type, [lanes])] if site.reduction else []
        work = Block(arg_types=[IndexType(), *lane_types])  # (chunk start, accumulator): placeholders
        if not _vectorise(loop, work, lanes, outside, site.reduction):
            for op in reversed(list(work.ops)):  # the half-built body first: it uses the splats
                op.detach()
                op.erase()
            outside.discard()
            return False
        chunk_list, count = self._chunk_list(site, lanes, chunks)
        body = Block(arg_types=[IndexType(), *lane_types])
        start = _append(body, arith.IndexCastOp(_append(body, memref.LoadOp.get(chunk_list, [body.args[0]])), IndexType()))
        for placeholder, value in zip(work.args, [start, *body.args[1:]]):
            placeholder.replace_all_uses_with(value)
        for op in list(work.ops):
            op.detach()
            body.add_op(op)
        inits = [outside.splat(self.b.float(0.0, loop.results[0].type))] if site.reduction else []
        chunked = scf.ForOp(self.b.index(0), count, self.b.index(1), inits, body)
        parent.insert_op_before(chunked, loop)
        rest_from = self.b.index(chunks * lanes)
        if site.reduction:
            total = _insert(parent, loop, reduce_lanes(chunked.results[0], vector.CombiningKindFlag.ADD))
            total = _insert(parent, loop, arith.AddfOp(loop.iter_args[0], total))
            if chunks * lanes < columns:  # the last columns, one by one as before
                tail = loop.clone()
                tail.operands = (rest_from, tail.ub, tail.step, total)
                parent.insert_op_before(tail, loop)
                total = tail.results[0]
            loop.results[0].replace_all_uses_with(total)
        elif chunks * lanes < columns:
            tail = loop.clone()
            tail.operands = (rest_from, tail.ub, tail.step)
            parent.insert_op_before(tail, loop)
        loop.detach()
        loop.erase()
        return True


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


class _Outside:
    """Splats of values defined outside the loop, made once, just before it."""

    def __init__(self, block: Block, before: Operation, lanes: int):
        self.block, self.before, self.lanes = block, before, lanes
        self.splats: dict[SSAValue, SSAValue] = {}

    def splat(self, value: SSAValue) -> SSAValue:
        if value not in self.splats:
            op = vector.BroadcastOp(value, VectorType(value.type, [self.lanes]))
            self.splats[value] = _insert(self.block, self.before, op)
        return self.splats[value]

    def discard(self) -> None:
        """Erase the splats (the rewrite gave up)."""
        for value in self.splats.values():
            value.owner.detach()
            value.owner.erase()
        self.splats.clear()


_LANEWISE = (arith.AddfOp, arith.SubfOp, arith.MulfOp, arith.DivfOp)


def _vectorise(loop: scf.ForOp, body: Block, lanes: int, outside: _Outside, reduction: bool) -> bool:
    """Append to `body` the loop's body on the chunk at body.args[0], one vector per value that depends on j.

    Values defined outside the loop become splats. Gives up (False, `body`
    left unusable) on an op it cannot widen or a use of j other than as the
    last index of a load or store.
    """
    j, start = loop.body.block.args[0], body.args[0]
    vectors: dict[SSAValue, SSAValue] = {}
    if reduction:
        vectors[loop.body.block.args[1]] = body.args[1]
    inside = defined_values(loop)

    def widen(value: SSAValue) -> SSAValue | None:
        if value in vectors:
            return vectors[value]
        if value in inside:
            return None
        return outside.splat(value)

    for op in loop.body.block.ops:
        if isinstance(op, scf.YieldOp):
            if reduction:
                body.add_op(scf.YieldOp(vectors[op.operands[0]]))
            continue
        if isinstance(op, (memref.LoadOp, memref.StoreOp)):
            if not op.indices or op.indices[-1] is not j or any(i is j or i in inside for i in op.indices[:-1]):
                return False
            indices = [*op.indices[:-1], start]
            if isinstance(op, memref.LoadOp):
                lane_type = VectorType(op.res.type, [lanes])
                vectors[op.res] = _append(body, vector.LoadOp(op.memref, indices, lane_type))
            else:
                value = widen(op.value)
                if value is None:
                    return False
                body.add_op(vector.StoreOp(value, op.memref, indices))
        elif isinstance(op, _LANEWISE) or isinstance(op, arith.NegfOp):
            operands = [widen(v) for v in op.operands]
            if any(v is None for v in operands):
                return False
            vectors[op.results[0]] = _append(body, type(op)(*operands))
        else:
            return False
    if not reduction:
        body.add_op(scf.YieldOp())
    return True


def chunk_scan(
    rows: list[tuple[SSAValue, tuple[SSAValue, ...]]],
    lanes: int,
    chunks: int,
    chunk_list: SSAValue,
    b: LoopBuilder,
) -> scf.ForOp:
    """A loop (not yet inserted) listing in `chunk_list` the starts of the `lanes`-wide chunks
    where some row of `rows` (buffer, leading indices) has a bit set; its result is the count.
    `b` makes the constants.

    A bit set means a non-zero, a NaN or a -0.0 (keeping a -0.0 chunk is merely not skipping it).
    """
    body = Block(arg_types=[IndexType(), IndexType()])
    start, n = body.args
    union = None
    for buffer, leading in rows:
        element = buffer.type.element_type
        bits = IntegerType(element.bitwidth)
        chunk = _append(body, vector.LoadOp(buffer, [*leading, start], VectorType(element, [lanes])))
        words = _append(body, vector.BitcastOp(chunk, VectorType(bits, [lanes])))
        union = words if union is None else _append(body, arith.OrIOp(union, words))
    total = _append(body, reduce_lanes(union, vector.CombiningKindFlag.OR))
    any_set = _append(body, arith.CmpiOp(total, b.integer(0, total.type), "ne"))
    position = _append(body, arith.IndexCastOp(start, I64))
    body.add_op(memref.StoreOp.get(position, chunk_list, [n]))
    step = _append(body, arith.SelectOp(any_set, b.index(1), b.index(0)))
    body.add_op(scf.YieldOp(_append(body, arith.AddiOp(n, step))))
    return scf.ForOp(b.index(0), b.index(chunks * lanes), b.index(lanes), [b.index(0)], body)


def reduce_lanes(lanes: SSAValue, kind: vector.CombiningKindFlag) -> Operation:
    """vector.reduction to the lane type (xDSL's constructor gives it the vector's type)."""
    return vector.ReductionOp.create(
        operands=[lanes],
        result_types=[lanes.type.element_type],
        properties={"kind": vector.CombiningKindAttr(kind)},
    )


def _append(block: Block, op: Operation) -> SSAValue:
    block.add_op(op)
    return op.results[0]


def _insert(block: Block, before: Operation, op: Operation) -> SSAValue:
    block.insert_op_before(op, before)
    return op.results[0]


def skip_zero_chunks(function: func.FuncOp, chunk_bytes: int = 64, min_chunks: int = 4) -> int:
    """Rewrite every matching loop of `function`; returns how many were rewritten."""
    written = written_buffers(function)
    sites = [
        site
        for op in list(function.walk())
        if isinstance(op, scf.ForOp) and (site := match_site(op, function, written)) is not None
    ]
    rewriter = _Rewriter(function, chunk_bytes, min_chunks)
    return sum(rewriter.rewrite(site) for site in sites)


@dataclass(frozen=True)
class SkipZeroChunksPass(ModulePass):
    """Dot products and rank-one updates against an input vector skip its all-zero chunks."""

    name = "skip-zero-chunks"

    chunk_bytes: int = 64
    min_chunks: int = 4

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.chunk_bytes < 8 or self.chunk_bytes & (self.chunk_bytes - 1):
            raise CompileError(f"skip-zero-chunks: chunk-bytes must be a power of two >= 8, got {self.chunk_bytes}")
        for function in [f for f in op.ops if isinstance(f, func.FuncOp)]:
            if function.body.blocks:
                skip_zero_chunks(function, self.chunk_bytes, self.min_chunks)
