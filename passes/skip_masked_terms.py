"""`skip-masked-terms`: compute a value only where the 0/1 mask that multiplies it is 1.

Forward mode through a ReLU multiplies the tangent of the pre-activation by
the mask `x > 0` (a 1.0 / 0.0 float); after fusion, the row loop of a
jvp or hvp of a dense layer reads

    for i {
      %z  = dot(W[i, :], x) + b[i]              // primal: decides the mask
      %dz = dot(V[i, :], x) + c[i]              // tangent: a second pass over a matrix row
      %on = arith.cmpf ogt, %z, %zero
      %m  = arith.select %on, %one, %zero       // the mask, 1.0 or 0.0
      %t  = arith.mulf %dz, %m                  // the only use of %dz
      ...
    }

For an inactive unit the row of V is read for a product with 0. This pass
moves the ops that compute such a factor, and that nothing else uses, under
the mask's condition:

    %dz' = scf.if %on -> (f64) {
      %dz = dot(V[i, :], x) + c[i]
      scf.yield %dz
    } else {
      scf.yield %zero
    }
    %t = arith.mulf %dz', %m

Algorithm, for every scalar `arith.mulf %a, %m` (either operand order) with
`%m = arith.select %c, 1.0, 0.0` (or `select %c, 0.0, 1.0`, the negated
condition): the ops that compute %a are its operands' defining ops in the
same block, transitively (values used inside their regions included). Of
those, the ones whose every result is used only by the mulf or by other
such ops, and that only read memory (arith, math, vector reads, loads and
scf loops / branches holding nothing else) move into the branch. The
rewrite is made when they hold a loop (a whole reduction, not a few
scalar ops: a branch around three instructions would cost more than it
saves, and would keep LLVM from vectorising an innermost loop) and when no
op that stays between the first moved op and the mulf writes a buffer the
moved ops read (loop-level IR has no views: a buffer is one SSA value, see
loop_analysis.py).

Exactness: where the mask is 0 the result is 0.0 instead of %a * 0.0, which
differs only when %a is inf or NaN (then NaN) or negative (-0.0): the same
terms as the other sparsity passes skip, so the pass is one of
`compiler.SPARSITY_PASSES` and `rm.STRICT_PIPELINE` leaves it out. Where
the mask is 1 nothing changes (the mulf stays).
"""

from __future__ import annotations

from xdsl.context import Context
from xdsl.dialects import arith, func, scf
from xdsl.dialects.builtin import FloatAttr, MemRefType, ModuleOp
from xdsl.ir import Block, Operation, OpResult, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.utils.hints import isa

from .parallelize_loops import UNKNOWN_TRIP, trip_count, work_estimate
from raster_mlir.ir_walk import walk_ops
from .pass_dataclass import pass_dataclass

# Ops that read memory; with arith, math and the vector ops that do not write, what may move under the branch.
READ_OPS = ("memref.load", "vector.load", "vector.maskedload")
CONTROL_OPS = ("scf.for", "scf.if", "scf.yield")


def float_constant(value: SSAValue) -> float | None:
    owner = value.owner
    if isinstance(owner, arith.ConstantOp) and isinstance(owner.value, FloatAttr):
        return owner.value.value.data
    return None


def mask_condition(mask: SSAValue) -> tuple[SSAValue, bool] | None:
    """(%c, True) for `select %c, 1.0, 0.0`; (%c, False) for `select %c, 0.0, 1.0`; else None.

    Scalar floats only: the constants of a vector select are not FloatAttrs.
    """
    select = mask.owner
    if not isinstance(select, arith.SelectOp):
        return None
    on, off = float_constant(select.lhs), float_constant(select.rhs)
    if (on, off) == (1.0, 0.0):
        return select.cond, True
    if (on, off) == (0.0, 1.0):
        return select.cond, False
    return None


def writes_memory(name: str) -> bool:
    return name.startswith("vector.") and any(w in name for w in ("store", "scatter", "write"))


def is_read_only(op: Operation) -> bool:
    """True when `op` and everything nested in it only computes or reads."""
    for inner in walk_ops(op):
        name = inner.name
        if name in READ_OPS or name in CONTROL_OPS or name.startswith(("arith.", "math.")):
            continue
        if name.startswith("vector.") and not writes_memory(name):
            continue
        return False
    return True


def top_level(op: Operation, block: Block) -> Operation | None:
    """`op` or its ancestor that sits directly in `block` (None if it is outside `block`)."""
    while op is not None and op.parent_block() is not block:
        op = op.parent_op()
    return op


def movable_slice(root: Operation, multiply: Operation) -> list[Operation]:
    """The ops of root's block that compute root's operands for `multiply` alone, in block order.

    Empty when that holds no loop (nothing worth a branch). The walks stay within the
    slice's own span of the block, so the pass's work grows with the program, not its square.
    """
    block = multiply.parent_block()
    if root.parent_block() is not block or any(use.operation is not multiply for r in root.results for use in r.uses):
        return []
    candidates: set[Operation] = set()
    work = [root]
    while work:
        op = work.pop()
        if op in candidates or op.parent_block() is not block:
            continue
        candidates.add(op)
        for inner in walk_ops(op):
            for value in inner.operands:
                owner = value.owner
                if isinstance(value, OpResult) and owner.parent_block() is block:  # (by the value's class: `isinstance(block, Operation)` walks every op class the first time a process asks, ~1 ms)
                    work.append(owner)
    if not any(isinstance(op, scf.ForOp) for op in candidates):
        return []
    moved: list[Operation] = []
    chosen: set[Operation] = set()
    op, remaining = root, len(candidates)
    while op is not None and remaining:  # backwards: users come after their operands in a block
        if op in candidates:
            remaining -= 1
            users = {top_level(use.operation, block) for result in op.results for use in result.uses}
            if is_read_only(op) and users <= ({multiply} if op is root else chosen):
                chosen.add(op)
                moved.append(op)
        op = op.prev_op
    if root not in chosen:
        return []
    return moved[::-1]


def loop_work(ops: list[Operation]) -> int:
    """The estimated work of the loops among `ops` (0 when there is none: nothing worth a branch)."""
    total = 0
    for op in ops:
        if isinstance(op, scf.ForOp):
            trip = trip_count(op)
            total += (UNKNOWN_TRIP if trip is None else trip) * work_estimate(op.body.block)
    return total


def read_buffers(ops) -> set[SSAValue]:
    return {inner.operands[0] for top in ops for inner in walk_ops(top) if inner.name in READ_OPS}


def safe_to_move(moved: list[Operation], multiply: Operation) -> bool:
    """No op left between the first moved op and `multiply` writes what the moved ops read."""
    read = read_buffers(moved)
    chosen = set(moved)
    op = moved[0]
    while op is not multiply:
        if op not in chosen and not leaves_unwritten(op, read):
            return False
        op = op.next_op
    return True


def leaves_unwritten(top: Operation, read: set[SSAValue]) -> bool:
    """True when `top` (with what is nested in it) writes none of the buffers `read`."""
    for op in walk_ops(top):
        name = op.name
        if name == "memref.store" or writes_memory(name):
            if read & {v for v in op.operands if isa(v.type, MemRefType)}:
                return False
        elif not (name in READ_OPS or name in CONTROL_OPS or name.startswith(("arith.", "math.", "vector."))):
            if name not in ("memref.alloc", "memref.alloca"):
                return False  # a call, a copy, a tape op: it may write anything
    return True


def skip_masked(multiply: arith.MulfOp, min_work: int) -> bool:
    """Rewrite one `mulf %a, %mask` if it qualifies; True when it did."""
    for factor, mask in ((multiply.lhs, multiply.rhs), (multiply.rhs, multiply.lhs)):
        condition = mask_condition(mask)
        root = factor.owner
        if condition is None or not isinstance(factor, OpResult) or isinstance(root, scf.IfOp):
            continue
        moved = movable_slice(root, multiply)
        if not moved or loop_work(moved) < min_work:
            continue
        if not safe_to_move(moved, multiply):
            continue
        branch(multiply, factor, moved, *condition)
        return True
    return False


def branch(multiply: arith.MulfOp, factor: SSAValue, moved: list[Operation], cond: SSAValue, when: bool) -> None:
    """Put `moved` (which computes `factor`) under `scf.if cond` (or its negation) before `multiply`."""
    compute = Block()
    for op in moved:
        op.detach()
        compute.add_op(op)
    compute.add_op(scf.YieldOp(factor))
    zero = arith.ConstantOp(FloatAttr(0.0, factor.type))
    skip = Block([zero, scf.YieldOp(zero.result)])
    then, otherwise = (compute, skip) if when else (skip, compute)
    if_op = scf.IfOp(cond, [factor.type], Region(then), Region(otherwise))
    multiply.parent_block().insert_op_before(if_op, multiply)
    for i, operand in enumerate(multiply.operands):
        if operand is factor:
            multiply.operands[i] = if_op.results[0]


@pass_dataclass
class SkipMaskedTermsPass(ModulePass):
    """Compute a loop-carried value only where the 0/1 mask multiplying it is 1 (ReLU in forward mode)."""

    name = "skip-masked-terms"

    # The least work (parallelize_loops.work_estimate: element operations, vector lanes counted)
    # of the loops to skip: a branch mispredicted on a random mask costs ~20 cycles.
    min_work: int = 64

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for function in [f for f in op.ops if isinstance(f, func.FuncOp)]:
            # From the masks to their multiplications: a few selects, not every mulf.
            masks = [s for s in walk_ops(function) if s.name == "arith.select" and mask_condition(s.result)]  # (by name: cheaper than isinstance)
            for mask in masks:
                for multiply in list(dict.fromkeys(use.operation for use in mask.result.uses)):
                    if isinstance(multiply, arith.MulfOp):
                        skip_masked(multiply, self.min_work)
