"""`defer-updates`: apply the first layer's rank-one weight updates `block` steps at a time.

Input: a data loop built by `data-loop` (with `cross-step=false`):

    scf.for %n = 0 to N { F(n); R(n) }

where F, the first loop nest of the step, computes the first layer's
pre-activations, one dot product per row of a weight W against row n of a
data argument x,

    for i { a = sum_j W[i, j] * x[n, j]; ...a... }

and W is touched by nothing else but one update nest U in R: a rank-one
update by row n of a data argument u (u = x for a dense layer), with a
coefficient that does not depend on j,

    for i { ...e... ; [if ...] for j { W[i, j] = W[i, j] - e * u[n, j] } }

Why: per sample, W (784x128 doubles: 800 KB) is far larger than L1, so a
step-by-step loop streams it through the cache at least twice (forward, and
update of the active rows); that traffic, not arithmetic, sets the time. The
updates of K consecutive steps can be applied together, because the forward
pass of a later step in the block can be corrected exactly for the updates
not yet applied:

    W_(t0+s) x_s = W_t0 x_s - sum_(k<s) e_k (u_k . x_s)

so a block of K steps reads and writes W once: one pass over the rows of W
applies the previous block's K updates and computes the K dot products
P[s, i] = W[i] . x_(t0+s) while the row is in L1; then each step s takes its
pre-activations from P minus the correction (G[s, k] = u_k . x_s, a K x K
table per block), and stores its coefficients E[s, i] = e instead of
updating W.

The result equals the step-by-step loop up to rounding (the dot products
are reassociated): over 1,000 f64 steps of the 784-128-10 MLP, parameters
agree to about 5e-16 relative, normwise (tests/test_defer_updates.py checks
1e-12 over 100 steps and random shapes). A ReLU whose
pre-activation is within rounding of zero can therefore switch, as under
any reassociation.

Output (N = nb * K + tail):

    E = 0
    scf.for %t0 = 0 to nb*K step K {
      chunks: the 64-byte chunks where a row u[t0 - K + s] or x[t0 + s] is non-zero
      rows:  for i { W[i] -= sum_s E[s, i] u[t0 - K + s]   (only if some E[s, i] != 0)
                     P[s, i] = W[i] . x[t0 + s] }         (on those chunks, one vector each)
      gram:  G[s, k] = u[t0 + k] . x[t0 + s]  (k < s)
      scf.for %s = 0 to K { F'(t0 + s); R'(t0 + s) }
    }
    rows:  for i { W[i] -= sum_s E[s, i] u[nb*K - K + s] }
    scf.for %n = nb*K to N { F(n); R(n) }        (the tail, as before)

The function gets the attribute `raster.schedule`: "defer-updates{block=K}"
when rewritten, otherwise "step by step (defer-updates: <why not>)" and the
loop is left as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, func, memref, scf, vector
from xdsl.dialects.builtin import FloatAttr, IndexType, IntegerType, ModuleOp, StringAttr, VectorType
from xdsl.ir import Block, BlockArgument, Operation, SSAValue
from xdsl.passes import ModulePass

from raster_mlir.errors import CompileError
from raster_mlir.ir_walk import block_ops

from .loop_analysis import defined_values, loop_bounds, update_term, written_buffers
from .loop_builder import LoopBuilder
from .skip_zero_chunks import chunk_scan, reduce_lanes
from .pass_dataclass import pass_dataclass

SCHEDULE_ATTR = "raster.schedule"
UNE = 13  # arith.cmpf's predicate number for "une" (unordered or not equal)


@dataclass
class FirstLayer:
    """Where the pattern was found in the step loop."""

    step_loop: scf.ForOp
    weight: BlockArgument  # W, rows x cols
    rows: int
    cols: int
    forward_loop: scf.ForOp  # F: for i { ... }
    dot: scf.ForOp  # its inner dot product over j
    inputs: BlockArgument  # x, read as x[n, j] by the dot product
    update_loop: scf.ForOp  # U: for i { ... }
    update_inner: Operation  # the j-loop of the update, or the scf.if holding it
    factors: list[SSAValue]  # e = their product (defined outside the j-loop, or loads in it at j-invariant indices)
    negated: bool  # the update adds e * u instead of subtracting it
    vector: BlockArgument  # u, read as u[n, j] by the update


def _is_argument(value: SSAValue, function: func.FuncOp) -> bool:
    return isinstance(value, BlockArgument) and value.block is function.body.blocks.first


def _is_zero(value: SSAValue) -> bool:
    owner = value.owner
    return isinstance(owner, arith.ConstantOp) and isinstance(owner.value, FloatAttr) and owner.value.value.data == 0.0


def _signed_factors(value: SSAValue, inside: set[SSAValue]) -> tuple[list[SSAValue], bool]:
    """Leaves of the product tree of `value` (mulf and negf inside the loop) and whether it is negated."""
    owner = value.owner
    if value in inside and isinstance(owner, arith.MulfOp):
        left, neg_left = _signed_factors(owner.lhs, inside)
        right, neg_right = _signed_factors(owner.rhs, inside)
        return left + right, neg_left != neg_right
    if value in inside and isinstance(owner, arith.NegfOp):
        factors, negated = _signed_factors(owner.operand, inside)
        return factors, not negated
    return [value], False


def find_step_loop(function: func.FuncOp) -> scf.ForOp | None:
    """The data loop: a top-level `scf.for %n = 0 to N` whose %n is the leading index of some load."""
    for op in function.body.blocks.first.ops:
        if isinstance(op, scf.ForOp) and not op.iter_args and loop_bounds(op) is not None:
            lower, _, step = loop_bounds(op)
            n = op.body.block.args[0]
            if lower == 0 and step == 1 and any(
                isinstance(use.operation, memref.LoadOp) and use.index == 1 for use in n.uses
            ):
                return op
    return None


def _row_load(value: SSAValue, row: SSAValue, col: SSAValue, function) -> BlockArgument | None:
    """The argument A when `value` is `memref.load A[row, col]` of a function argument A."""
    load = value.owner
    if isinstance(load, memref.LoadOp) and _is_argument(load.memref, function):
        if tuple(load.indices) == (row, col):
            return load.memref
    return None


def _match_dot(forward: scf.ForOp, step: SSAValue, function) -> tuple[scf.ForOp, BlockArgument, BlockArgument] | None:
    """(dot loop, W, x) for `a = sum_j W[i, j] * x[n, j]` directly in the row loop `forward`."""
    i = forward.body.block.args[0]
    for dot in forward.body.block.ops:
        if not isinstance(dot, scf.ForOp) or len(dot.iter_args) != 1 or not _is_zero(dot.iter_args[0]):
            continue
        if loop_bounds(dot) is None or loop_bounds(dot)[0::2] != (0, 1):
            continue
        j, acc = dot.body.block.args
        body = block_ops(dot.body.block)
        if len(body) != 5 or not isinstance(body[-1], scf.YieldOp):
            continue
        total = body[-1].operands[0].owner
        if not isinstance(total, arith.AddfOp) or acc not in (total.lhs, total.rhs):
            continue
        product = (total.rhs if total.lhs is acc else total.lhs).owner
        if not isinstance(product, arith.MulfOp):
            continue
        for w_value, x_value in ((product.lhs, product.rhs), (product.rhs, product.lhs)):
            weight = _row_load(w_value, i, j, function)
            inputs = _row_load(x_value, step, j, function)
            if weight is not None and inputs is not None and weight is not inputs:
                return dot, weight, inputs
    return None


def match_first_layer(function: func.FuncOp) -> tuple[FirstLayer | None, str]:
    """The pattern of the module docstring, or None and the reason it does not apply."""
    loop = find_step_loop(function)
    if loop is None:
        return None, "no data loop (scf.for over the samples) at the top of the function"
    step = loop.body.block.args[0]
    body = block_ops(loop.body.block)
    forward = next((op for op in body if isinstance(op, scf.ForOp)), None)
    # (The row loop may carry values: the max of a softmax over the rows, merged into it by fuse-loops.)
    if forward is None or loop_bounds(forward) is None or loop_bounds(forward)[0::2] != (0, 1):
        return None, "the step does not start with a loop over rows"
    found = _match_dot(forward, step, function)
    if found is None:
        return None, "the first loop nest is not a dot product of a weight row with the sample"
    dot, weight, inputs = found
    shape = weight.type.get_shape()
    if len(shape) != 2 or shape[0] != loop_bounds(forward)[1] or shape[1] != loop_bounds(dot)[1]:
        return None, "the dot product does not cover the whole weight"
    uses = [use.operation for use in weight.uses]
    stores = [op for op in uses if isinstance(op, memref.StoreOp)]
    loads = [op for op in uses if isinstance(op, memref.LoadOp)]
    if len(stores) != 1 or len(loads) != 2 or len(uses) != 3:
        return None, "the weight is used elsewhere than one forward dot product and one update"
    store = stores[0]
    inner = store.parent_op()
    update = _top_level_ancestor(store, loop)
    if not isinstance(inner, scf.ForOp) or update is None or update is forward or not isinstance(update, scf.ForOp):
        return None, "the weight update is not a loop nest of the step"
    if update.iter_args or loop_bounds(update) != (0, shape[0], 1) or loop_bounds(inner) != (0, shape[1], 1):
        return None, "the weight update does not cover every row and column once"
    holder: Operation = inner
    parent = inner.parent_op()
    if isinstance(parent, scf.IfOp) and parent.parent_op() is update:
        then = block_ops(parent.true_region.block)
        if parent.results or len(then) != 2 or parent.false_region.blocks:
            return None, "the weight update is guarded by a condition that does other work"
        holder = parent
    elif parent is not update:
        return None, "the weight update is nested more deeply than its row loop"
    i, j = update.body.block.args[0], inner.body.block.args[0]
    if tuple(store.indices) != (i, j):
        return None, "the weight update does not write W[i, j]"
    if any(isinstance(op, memref.StoreOp) and op is not store for op in inner.walk()) or any(
        op.regions for op in inner.body.block.ops
    ):
        return None, "the weight update loop does other work"
    term = update_term(store)
    if term is None:
        return None, "the weight update is not W[i, j] +- term"
    added = isinstance(store.value.owner, arith.AddfOp)
    inside = defined_values(inner)
    factors, negated = _signed_factors(term, inside)
    varying = [f for f in factors if f in inside and not _invariant_load(f, inner, inside)]
    if len(varying) != 1 or _row_load(varying[0], step, j, function) is None:
        return None, "the update term is not a coefficient times a row of the samples"
    update_vector = varying[0].owner.memref
    written = written_buffers(function)
    if inputs in written or update_vector in written:
        return None, "the samples are written by the step"
    if update_vector.type.get_shape()[1:] != (shape[1],) or inputs.type.get_shape()[1:] != (shape[1],):
        return None, "the samples do not match the weight's columns"
    coefficient = [f for f in factors if f not in varying]
    if holder is not inner and not _guards_coefficient(holder, coefficient):
        return None, "the weight update is guarded by a condition other than its coefficient being non-zero"
    return (
        FirstLayer(
            loop, weight, shape[0], shape[1], forward, dot, inputs, update, holder,
            coefficient, negated != added, update_vector,
        ),
        "",
    )


def _invariant_load(value: SSAValue, loop: scf.ForOp, inside: set[SSAValue]) -> bool:
    """A load inside `loop` at indices defined outside it, from a buffer the loop does not write."""
    load = value.owner
    if not isinstance(load, memref.LoadOp) or value not in inside:
        return False
    written = written_buffers(loop)  # (stores, copies, and what an opaque op is handed)
    return load.memref not in written and not any(index in inside for index in load.indices)


def _guards_coefficient(guard: scf.IfOp, coefficient: list[SSAValue]) -> bool:
    """Is the guard `factor != 0` for a factor of the coefficient? (Then E = 0 where it skipped.)"""
    cond = guard.cond.owner
    if not isinstance(cond, arith.CmpfOp) or cond.predicate.value.data != UNE:
        return False
    return (cond.lhs in coefficient and _is_zero(cond.rhs)) or (cond.rhs in coefficient and _is_zero(cond.lhs))


def _top_level_ancestor(op: Operation, loop: scf.ForOp) -> Operation | None:
    while op is not None and op.parent_op() is not loop:
        op = op.parent_op()
    return op


class _Emitter:
    """Builds the blocked schedule for one matched first layer."""

    def __init__(self, function: func.FuncOp, layer: FirstLayer, block_size: int):
        self.layer = layer
        self.K = block_size
        self.b = LoopBuilder(function.body.blocks.first)
        self.ft = layer.weight.type.element_type
        self.zero = self.b.float(0.0, self.ft)
        anchor = layer.step_loop
        self.coefficients = self._alloc([block_size, layer.rows], anchor)  # E[s, i]
        self.products = self._alloc([block_size, layer.rows], anchor)  # P[s, i]
        self.gram = self._alloc([block_size, block_size], anchor)  # G[s, k] = u_k . x_s
        self.lanes = max(1, 64 // (self.ft.bitwidth // 8))  # one 64-byte chunk of a row per vector
        self.chunk_list = self._alloc([max(1, layer.cols // self.lanes)], anchor, IntegerType(64))

    def _alloc(self, shape, anchor: Operation, element=None) -> SSAValue:
        op = memref.AllocOp.get(element or self.ft, 64, shape)
        anchor.parent_block().insert_op_before(op, anchor)
        return op.results[0]

    def emit(self) -> Block:
        """The ops replacing the step loop, in a new block."""
        b, K, layer = self.b, self.K, self.layer
        steps = loop_bounds(layer.step_loop)[1]
        blocked = steps // K * K
        out = Block()

        def schedule():
            b.nest([K, layer.rows], lambda idx: b.store(self.zero, self.coefficients, idx))
            if blocked:
                b.range_loop(b.index(0), b.index(blocked), b.index(K), body=self._block)
                self._rows(b.index(blocked - K), None)

        b.inside(out, schedule)
        return out

    # one block of K steps starting at t0
    def _block(self, t0: SSAValue) -> None:
        b, K = self.b, self.K
        # Block 0 has no previous rows (E is all zero, so nothing is updated): scan rows t0.. instead of t0 - K..
        first = b.add(arith.CmpiOp(t0, b.index(0), "eq"))
        self._rows(b.select(first, t0, b.subi(t0, b.index(K))), t0)
        self._gram(t0)
        b.range_loop(b.index(0), b.index(K), b.index(1), body=lambda s: self._steps(t0, s))

    def _rows(self, updated_from: SSAValue, dots_at: SSAValue | None) -> None:
        """One pass over the rows of W: apply the pending updates, then the dot products of the next block.

        Only the 64-byte chunks where one of the block's rows of u or x is
        non-zero are visited (as in `skip-zero-chunks`: a zero column adds
        nothing to a dot product and leaves W unchanged), one vector per
        chunk; columns past the last whole chunk one by one.
        """
        b, K, layer = self.b, self.K, self.layer
        W, u, x = layer.weight, layer.vector, layer.inputs
        update_rows = [b.addi(updated_from, b.index(s)) for s in range(K)]
        dot_rows = [b.addi(dots_at, b.index(s)) for s in range(K)] if dots_at is not None else []
        lanes, chunks = self.lanes, layer.cols // self.lanes
        wide = VectorType(self.ft, [lanes])
        scanned = [(u, (r,)) for r in update_rows] + [(x, (r,)) for r in dot_rows]
        count = b.add(chunk_scan(scanned, lanes, chunks, self.chunk_list, b))

        def row(i):
            e = [b.load(self.coefficients, [b.index(s), i]) for s in range(K)]
            pending = b.cmpf(e[0], self.zero, "une")
            for s in range(1, K):
                pending = b.ori(pending, b.cmpf(e[s], self.zero, "une"))

            def sweep(update: bool) -> list[SSAValue]:
                def columns(j, width, e_lanes, *acc):
                    def load(buffer, row_index):
                        if width == 1:
                            return b.load(buffer, [row_index, j])
                        return b.add(vector.LoadOp(buffer, [row_index, j], wide))

                    w = load(W, i)
                    if update:  # the steps' updates in their order
                        for s in range(K):
                            w = b.subf(w, b.mulf(e_lanes[s], load(u, update_rows[s])))
                        b.add(memref.StoreOp.get(w, W, [i, j]) if width == 1 else vector.StoreOp(w, W, [i, j]))
                    return [b.addf(a, b.mulf(w, load(x, r))) for a, r in zip(acc, dot_rows)]

                e_wide = [b.add(vector.BroadcastOp(v, wide)) for v in e] if update else []
                zero_wide = b.add(vector.BroadcastOp(self.zero, wide))

                def chunk(q, *acc):
                    start = b.add(arith.IndexCastOp(b.load(self.chunk_list, [q]), IndexType()))
                    return columns(start, lanes, e_wide, *acc)

                wide_sums = b.range_loop(b.index(0), count, b.index(1), [zero_wide] * len(dot_rows), chunk)
                sums = [b.add(reduce_lanes(v, vector.CombiningKindFlag.ADD)) for v in wide_sums]
                if chunks * lanes < layer.cols:
                    last = b.range_loop(
                        b.index(chunks * lanes), b.index(layer.cols), b.index(1), sums,
                        lambda j, *acc: columns(j, 1, e, *acc),
                    )  # fmt: skip
                    sums = last
                return sums

            if not dot_rows:
                b.if_else(pending, lambda: sweep(True))
                return
            sums = b.if_else(pending, lambda: sweep(True), lambda: sweep(False))
            for s, total in enumerate(sums):
                b.store(total, self.products, [b.index(s), i])

        b.loop(layer.rows, body=row)

    def _gram(self, t0: SSAValue) -> None:
        """G[s, k] = u[t0 + k] . x[t0 + s] for k < s."""
        b, layer = self.b, self.layer

        def entry(s, k):
            rx, ru = b.addi(t0, s), b.addi(t0, k)

            def column(j, acc):
                return [b.addf(acc, b.mulf(b.load(layer.vector, [ru, j]), b.load(layer.inputs, [rx, j])))]

            (total,) = b.loop(layer.cols, [self.zero], column)
            b.store(total, self.gram, [s, k])

        b.loop(self.K, body=lambda s: b.range_loop(b.index(0), s, b.index(1), body=lambda k: entry(s, k)))

    def _steps(self, t0: SSAValue, s: SSAValue) -> None:
        """Step t0 + s: the original ops, with the dot product corrected and the update deferred."""
        b, layer = self.b, self.layer
        t = b.addi(t0, s)
        ops = [op for op in layer.step_loop.body.block.ops if not isinstance(op, scf.YieldOp)]
        for op in ops:
            op.detach()
            b.block.add_op(op)
        layer.step_loop.body.block.args[0].replace_all_uses_with(t)
        self._correct_dot(s)
        self._defer_update(s)

    def _correct_dot(self, s: SSAValue) -> None:
        """a = P[s, i] - sum_(k<s) E[k, i] G[s, k] in place of the dot product."""
        b, dot = self.b, self.layer.dot
        i = self.layer.forward_loop.body.block.args[0]
        here = Block()

        def correction():
            def term(k, acc):
                e = b.load(self.coefficients, [k, i])
                return [b.addf(acc, b.mulf(e, b.load(self.gram, [s, k])))]

            (pending,) = b.range_loop(b.index(0), s, b.index(1), [self.zero], term)
            return b.subf(b.load(self.products, [s, i]), pending)

        value = b.inside(here, correction)
        _replace(dot, here, [value])

    def _defer_update(self, s: SSAValue) -> None:
        """E[s, i] = e in place of the update loop (W is updated by the next pass over the rows)."""
        b, layer = self.b, self.layer
        i = layer.update_loop.body.block.args[0]
        here = Block()

        inside = defined_values(layer.update_inner)

        def factor(value: SSAValue) -> SSAValue:
            # A load inside the update loop at j-invariant indices is loaded again here, outside it.
            if value in inside:
                load = value.owner
                return b.load(load.memref, list(load.indices))
            return value

        def coefficient():
            factors = [factor(f) for f in layer.factors]
            e = factors[0] if factors else b.float(1.0, self.ft)
            for f in factors[1:]:
                e = b.mulf(e, f)
            if layer.negated:
                e = b.negf(e)
            b.store(e, self.coefficients, [s, i])

        b.inside(here, coefficient)
        _replace(layer.update_inner, here, [])


def _replace(op: Operation, ops: Block, results: list[SSAValue]) -> None:
    """Put the ops of `ops` where `op` is, route its results to `results`, and erase it."""
    parent = op.parent_block()
    for new in block_ops(ops):
        new.detach()
        parent.insert_op_before(new, op)
    for old, new in zip(op.results, results):
        old.replace_all_uses_with(new)
    op.detach()
    op.erase()


def defer_updates(function: func.FuncOp, block_size: int, l1_bytes: int = 32768) -> str:
    """Rewrite `function`'s data loop in blocks of `block_size` steps; returns '' or why it was left alone.

    `block_size` 0 picks the block from the row size and `l1_bytes`.
    """
    layer, reason = match_first_layer(function)
    if layer is None:
        return reason
    if block_size == 0:
        row_bytes = layer.cols * layer.weight.type.element_type.bitwidth // 8
        block_size = block_for_cache(row_bytes, l1_bytes)
    loop = layer.step_loop
    steps = loop_bounds(loop)[1]
    blocked = steps // block_size * block_size
    if not blocked:
        return f"fewer steps ({steps}) than one block ({block_size})"
    tail = loop.clone() if blocked < steps else None  # the original steps, before the body moves
    emitter = _Emitter(function, layer, block_size)
    ops = emitter.emit()
    if tail is not None:  # the last steps % block_size steps run as before
        tail.operands = (emitter.b.index(blocked), *tail.operands[1:])
        ops.add_op(tail)
    _replace(loop, ops, [])
    function.attributes[SCHEDULE_ATTR] = StringAttr(f"defer-updates{{block={block_size}}}")
    return ""


def block_for_cache(row_bytes: int, cache_bytes: int, largest: int = 8) -> int:
    """The largest block K (2..largest) whose rows fit in `cache_bytes` with room to spare.

    The pass over W's rows keeps 2K + 1 rows in L1 (K rows of u being applied,
    K rows of x being dotted, the row of W); one more K spills them to L2 and
    the pass slows down by more than the larger block saves. Measured on the
    784-128-10 MLP (48 KiB L1d): f64 K = 2/3/4/8: 8.3/7.6/9.9/10.8 us per
    sample; f32 K = 4/6/8: 3.9/3.8/5.0 us. The 4 KiB kept free are for the
    step's own temporaries and the stack.
    """
    budget = cache_bytes - 4096
    k = 2
    while k < largest and (2 * (k + 1) + 1) * row_bytes <= budget:
        k += 1
    return k


@pass_dataclass
class DeferUpdatesPass(ModulePass):
    """Apply the first layer's weight updates `block` steps at a time in `@function`'s data loop.

    `block=0` chooses it from the weight's row size and `l1-bytes`, the data
    cache size (`block_for_cache`).
    """

    name = "defer-updates"

    function: str = ""
    block: int = 0
    l1_bytes: int = 32768

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        functions = {f.sym_name.data: f for f in op.ops if isinstance(f, func.FuncOp)}
        if self.function not in functions:
            raise CompileError(f"defer-updates: no function @{self.function} (functions: {', '.join(functions)})")
        if self.block == 1 or self.block < 0:
            raise CompileError(f"defer-updates: block must be at least 2 (or 0: from the cache size), got {self.block}")
        function = functions[self.function]
        reason = defer_updates(function, self.block, self.l1_bytes)
        if reason:  # say so in the IR: the loop still runs step by step
            function.attributes[SCHEDULE_ATTR] = StringAttr(f"step by step (defer-updates: {reason})")
