"""`skip-zero-updates`: run an accumulate-into loop only when its common factor is non-zero.

Algorithm: for every `scf.for` without results and without nested regions,
first hoist loads that do not depend on the loop (their indices are defined
outside and the loop never writes their buffer), then look at its stores. If each one has the form

    %old = memref.load %B[%i...]
    %new = arith.subf %old, %t     (or arith.addf %old, %t / %t, %old)
    memref.store %new, %B[%i...]

where %t is a product (`arith.mulf`, through `arith.negf`) one of whose
factors is the same value %s for every store, and %s is defined outside the
loop, then when %s == 0 every store writes back the value it loaded. The loop
is wrapped in `scf.if %s != 0` (`une`: a NaN factor still runs the loop, so
NaNs propagate as before).

For a train step this is the sparsity of ReLU: a hidden unit that was
inactive has dz = 0, so its row of W1 -= lr * dz * x is skipped.

Exactness: skipping writes back the loaded value, where the loop would
have stored old - (+-0) * ... The results agree for finite other factors;
they differ only where another factor is inf or NaN (0 * inf = NaN), or in
the sign of a zero (-0.0 - +0.0).

Before:
    scf.for %i = %c0 to %c784 step %c1 {
      %x = memref.load %X[%i] ...
      %g = arith.mulf %dz, %x : f64
      %t = arith.mulf %lr, %g : f64
      %w = memref.load %W[%o, %i] ...
      %n = arith.subf %w, %t : f64
      memref.store %n, %W[%o, %i] ...
    }
After:
    %nz = arith.cmpf une, %dz, %zero : f64
    scf.if %nz {
      scf.for %i = ... { (unchanged) }
    }
"""

from __future__ import annotations

from xdsl.context import Context
from xdsl.dialects import arith, func, memref, scf
from xdsl.dialects.builtin import FloatAttr, ModuleOp
from xdsl.ir import Block, Region, SSAValue
from xdsl.passes import ModulePass

from .loop_analysis import product_factors, update_term, written_buffers
from raster_mlir.ir_walk import block_ops, walk_ops
from .pass_dataclass import pass_dataclass


def hoist_invariant_loads(loop: scf.ForOp) -> None:
    """Move loads whose indices are defined outside `loop` and whose buffer it never writes above it.

    (A factor such as dz[o] loaded inside the row's update loop becomes a value
    defined outside it, which the guard can test.)
    """
    body = loop.body.block
    # What the body's own ops may use of the loop's values: its arguments and the results of the ops
    # before them (one pass; a hoisted load's result stays in this set: conservative, never wrong).
    inside = set(body.args)
    candidates = []
    for op in block_ops(body):
        if op.name == "memref.load" and not any(i in inside for i in op._operands[1:]):  # (memref, *indices)
            candidates.append(op)
        inside.update(op.results)
    if candidates:  # (most loops have none: the walk below is for those that do)
        written = written_buffers(loop)
        for op in candidates:
            if op._operands[0] not in written:
                op.detach()
                loop.parent_block().insert_op_before(op, loop)


def common_zero_factor(loop: scf.ForOp) -> SSAValue | None:
    body = loop.body.block
    if loop.results:
        return None
    inside = set(body.args)  # every value the loop defines (`defined_values`: no nested regions), in one pass
    stores = []
    for op in block_ops(body):
        if op.regions:
            return None
        if op.name == "memref.store":
            stores.append(op)
        inside.update(op.results)
    if not stores:
        return None
    common: list[SSAValue] | None = None  # in the first store's order, so the choice is deterministic
    for store in stores:
        term = update_term(store)
        if term is None:
            return None
        outside = [f for f in product_factors(term, inside) if f not in inside]
        common = outside if common is None else [f for f in common if f in outside]
    if not common:
        return None
    # A constant factor (the learning rate) is never zero at run time: guarding on it is useless.
    candidates = [
        f for f in common if f.type == stores[0].value.type and not isinstance(f.owner, arith.ConstantOp)
    ]
    return candidates[0] if candidates else None


def already_guarded(loop: scf.ForOp, factor: SSAValue) -> bool:
    """True when `loop` already sits in `scf.if factor != 0` (the pass is idempotent)."""
    parent = loop.parent_op()
    if not isinstance(parent, scf.IfOp):
        return False
    cond = parent.cond.owner
    return isinstance(cond, arith.CmpfOp) and cond.lhs is factor


def guard(loop: scf.ForOp, factor: SSAValue) -> None:
    """Wrap `loop` in `scf.if factor != 0`."""
    parent = loop.parent_block()
    zero = arith.ConstantOp(FloatAttr(0.0, factor.type))
    nonzero = arith.CmpfOp(factor, zero, "une")
    for op in (zero, nonzero):
        parent.insert_op_before(op, loop)
    then = Block()
    if_op = scf.IfOp(nonzero, [], Region(then))
    parent.insert_op_before(if_op, loop)
    loop.detach()
    then.add_ops([loop, scf.YieldOp()])


@pass_dataclass
class SkipZeroUpdatesPass(ModulePass):
    """Guard accumulate-into loops by their common factor (skips rows of inactive ReLU units)."""

    name = "skip-zero-updates"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for function in [f for f in op.ops if isinstance(f, func.FuncOp)]:
            loops = [l for l in walk_ops(function) if l.name == "scf.for"]  # (by name: cheaper than isinstance against an op class)
            for loop in loops:
                hoist_invariant_loads(loop)
                factor = common_zero_factor(loop)
                if factor is not None and not already_guarded(loop, factor):
                    guard(loop, factor)
