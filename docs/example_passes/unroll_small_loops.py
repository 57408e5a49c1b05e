"""`unroll-small-loops`: replace each innermost scf.for of at most `max-trip` iterations by copies of its body.

A loop-level pass: it runs after `lower-to-loops`, on the upstream dialects
(scf, arith, memref). Small loops come from small dimensions: a softmax over
3 classes, a batch of 2. LLVM's own unroller usually handles them; unrolling
here makes the straight-line code visible to the passes that follow.

Algorithm: visit the loops innermost first. A loop with no loop inside it
(any more: its inner loops may have just been unrolled) whose lower bound,
upper bound and step are `arith.constant`s runs
n = ceil((ub - lb) / step) times; if n <= max_trip, clone its body n times
in front of it, mapping the induction variable to the constant lb + k*step
and the iteration arguments to the previous copy's yielded values (the
initial values for the first copy), replace the loop's results by the last
copy's yielded values, and erase the loop. The same operations run in the
same order (LLVM may still vectorise the unrolled code differently, within
the re-association the backend allows).

Before:
    %s = scf.for %j = %c0 to %c2 step %c1 iter_args(%acc = %zero) -> (f64) {
      %v = memref.load %x[%j] : memref<2xf64>
      %a = arith.addf %acc, %v : f64
      scf.yield %a : f64
    }
After:
    %j0 = arith.constant 0 : index
    %v0 = memref.load %x[%j0] : memref<2xf64>
    %a0 = arith.addf %zero, %v0 : f64
    %j1 = arith.constant 1 : index
    %v1 = memref.load %x[%j1] : memref<2xf64>
    %s = arith.addf %a0, %v1 : f64
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, scf
from xdsl.dialects.builtin import IndexType, IntegerAttr, ModuleOp
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter


def constant_index(value: SSAValue) -> int | None:
    """The value of an `arith.constant` of index type, or None."""
    op = value.owner
    if isinstance(op, arith.ConstantOp) and isinstance(op.value, IntegerAttr):
        return op.value.value.data
    return None


def trip_count(loop: scf.ForOp) -> int | None:
    lb, ub, step = (constant_index(v) for v in (loop.lb, loop.ub, loop.step))
    if lb is None or ub is None or step is None or step <= 0:
        return None
    return max(0, -(-(ub - lb) // step))


def unroll(loop: scf.ForOp, trips: int) -> None:
    """Replace `loop` by `trips` copies of its body (module docstring)."""
    body = loop.body.block
    lb, step = constant_index(loop.lb), constant_index(loop.step)
    carried = list(loop.iter_args)
    for k in range(trips):
        iv = arith.ConstantOp(IntegerAttr(lb + k * step, IndexType()))
        Rewriter.insert_op(iv, InsertPoint.before(loop))
        mapping: dict[SSAValue, SSAValue] = {body.args[0]: iv.result, **dict(zip(body.args[1:], carried))}
        for op in body.ops:
            if isinstance(op, scf.YieldOp):
                carried = [mapping.get(v, v) for v in op.operands]
            else:  # clone() maps the copy's operands and records its results in `mapping`
                Rewriter.insert_op(op.clone(value_mapper=mapping), InsertPoint.before(loop))
    Rewriter.replace_op(loop, [], carried)


@dataclass(frozen=True)
class UnrollSmallLoopsPass(ModulePass):
    """Fully unroll scf.for loops with a constant trip count of at most `max_trip`."""

    name = "unroll-small-loops"

    max_trip: int = 4
    """The largest trip count unrolled (`-p unroll-small-loops{max-trip=8}`)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        loops = [o for o in op.walk() if isinstance(o, scf.ForOp)]  # pre-order: outer loops first
        for loop in reversed(loops):  # innermost first
            innermost = not any(isinstance(inner, scf.ForOp) for inner in loop.body.block.walk())
            trips = trip_count(loop)
            if innermost and trips is not None and trips <= self.max_trip:
                unroll(loop, trips)
