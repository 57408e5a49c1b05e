"""`data-loop`: run a lowered step function over a whole dataset inside one native function.

Input: a loop-level function `@f(args...)` (one training step). Output: a new
function `@f_loop` whose `sliced` arguments and `outputs` gain a leading
dimension of `steps`, and whose body is

    scf.for %n = 0 to steps { <body of @f, where a[i...] reads A[%n, i...]> }

Temporaries (`memref.alloc`) and constants stay at the top of the function,
outside the loop, so the workspace is allocated once for all steps.

Cross-step fusion (`cross-step`, on by default): the sequence of steps
P(0) R(0) P(1) R(1) ... is regrouped as

    P(0); for n in 0..steps-2: { R(n); P(n+1) }; R(steps-1)

where P is the first loop nest of the step (the first layer's forward pass)
and R the rest. The regrouping changes no order of execution, so it is always
valid; it puts the last loop of step n (the first layer's weight update) next
to the first loop of step n+1 (the first layer's forward pass), and
`fuse-loops` then merges them when each row of the next forward needs only
that row of the updated weights: W1 is then streamed through cache twice per
step (forward + backward/update of a row while it is in L1) instead of three
times.

Before (one step):
    func.func @step(%W: memref<8x4xf64>, %x: memref<4xf64>, %loss: memref<f64>) { ... }
After (`data-loop{steps=100 sliced=1 outputs=2}`):
    func.func @step_loop(%W: memref<8x4xf64>, %X: memref<100x4xf64>, %losses: memref<100xf64>) {
      ... P(0) ...
      scf.for %n = %c0 to %c99 step %c1 { ... R(n) ... P(n + 1) ... }
      ... R(99) ...
    }
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.context import Context
from xdsl.dialects import arith, func, memref, scf, vector
from xdsl.dialects.builtin import IndexType, IntegerAttr, MemRefType, ModuleOp
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass

from raster_mlir.errors import CompileError
from raster_mlir.ir_walk import block_ops

from .loop_analysis import defined_values
from .pass_dataclass import pass_dataclass


def _index(value: int) -> arith.ConstantOp:
    return arith.ConstantOp(IntegerAttr(value, IndexType()))


def _retarget(op: Operation, sliced: set[SSAValue], step: SSAValue) -> None:
    """Make every load/store of a sliced argument inside `op` address row `step` of its new buffer."""
    for inner in list(op.walk()):
        if isinstance(inner, memref.LoadOp) and inner.memref in sliced:
            new = memref.LoadOp.get(inner.memref, [step, *inner.indices])
        elif isinstance(inner, memref.StoreOp) and inner.memref in sliced:
            new = memref.StoreOp.get(inner.value, inner.memref, [step, *inner.indices])
        elif isinstance(inner, vector.LoadOp) and inner.base in sliced:
            new = vector.LoadOp(inner.base, [step, *inner.indices], inner.result.type)
        elif isinstance(inner, vector.StoreOp) and inner.base in sliced:
            new = vector.StoreOp(inner.vector, inner.base, [step, *inner.indices])
        else:
            continue
        inner.parent_block().insert_op_before(new, inner)
        for old_result, new_result in zip(inner.results, new.results):
            old_result.replace_all_uses_with(new_result)
        inner.detach()
        inner.erase()


def build_data_loop(
    function: func.FuncOp, steps: int, sliced_args: Sequence[int], cross_step: bool = True
) -> func.FuncOp:
    """A new function running `function`'s body `steps` times over the sliced arguments."""
    old = function.body.blocks.first
    sliced_args = sorted(set(sliced_args))
    for i in sliced_args:
        if not 0 <= i < len(old.args):
            raise CompileError(f"data-loop: argument {i} out of range for @{function.sym_name.data}")
    types = []
    for i, arg in enumerate(old.args):
        t = arg.type
        if i in sliced_args:
            t = MemRefType(t.element_type, [steps, *t.get_shape()])
        types.append(t)
    block = Block(arg_types=types)
    for new, arg in zip(block.args, old.args):
        new.name_hint = arg.name_hint
    for arg, new in zip(old.args, block.args):
        arg.replace_all_uses_with(new)

    # Allocations and constants stay outside the loop; everything else is one step.
    hoisted, body_ops = [], []
    for op in block_ops(old):
        if isinstance(op, func.ReturnOp):
            continue
        if isinstance(op, (memref.AllocOp, arith.ConstantOp)):
            hoisted.append(op)
        else:
            body_ops.append(op)
    for op in block_ops(old):
        op.detach()
    block.add_ops(hoisted)
    sliced = {block.args[i] for i in sliced_args}  # buffers that gain the leading step dimension

    first = next((i for i, op in enumerate(body_ops) if isinstance(op, scf.ForOp)), None)
    rotate = cross_step and steps > 1 and first is not None and first + 1 < len(body_ops)
    if not rotate:
        loop_body = Block(arg_types=[IndexType()])
        loop_body.add_ops(body_ops)
        for op in body_ops:
            _retarget(op, sliced, loop_body.args[0])
        loop_body.add_op(scf.YieldOp())
        bounds = [_index(0), _index(steps), _index(1)]
        block.add_ops([*bounds, scf.ForOp(*bounds, [], loop_body)])
    else:
        _emit_rotated(block, body_ops[: first + 1], body_ops[first + 1 :], sliced, steps)
    block.add_op(func.ReturnOp())
    new_function = func.FuncOp(f"{function.sym_name.data}_loop", (types, []), Region(block))
    new_function.attributes.update(function.attributes)
    return new_function


def _clone_at(ops: Sequence[Operation], step: SSAValue, sliced, target: Block, mapping=None) -> dict:
    """Copies of `ops` for step index `step`, appended to `target`; returns the value mapping."""
    mapping = {} if mapping is None else mapping
    copies = [op.clone(value_mapper=mapping) for op in ops]
    target.add_ops(copies)
    # Retarget only once every copy exists: `mapping` still names the loads being replaced.
    for copy in copies:
        _retarget(copy, sliced, step)
    return mapping


def _emit_rotated(block: Block, prefix, rest, sliced, steps: int) -> None:
    """P(0); for n { R(n); P(n + 1) }; R(steps - 1).

    Values of P that R reads (the max of a softmax row, when the first loop nest is a reduction
    that absorbed the forward pass) cross an iteration: the loop carries them, P(n + 1)'s copies
    are yielded and R(n) reads the loop's block arguments.
    """
    produced = set().union(*(defined_values(op) for op in prefix))
    crossing = [v for v in _ordered_uses(rest) if v in produced]
    zero, last, one = _index(0), _index(steps - 1), _index(1)
    block.add_ops([zero, last, one])
    first = _clone_at(prefix, zero, sliced, block)  # P(0)
    loop_body = Block(arg_types=[IndexType(), *(v.type for v in crossing)])
    n, carried = loop_body.args[0], loop_body.args[1:]
    next_n = arith.AddiOp(n, one)
    loop_body.add_op(next_n)
    _clone_at(rest, n, sliced, loop_body, dict(zip(crossing, carried)))  # R(n)
    following = _clone_at(prefix, next_n.result, sliced, loop_body)  # P(n + 1)
    loop_body.add_op(scf.YieldOp(*(following[v] for v in crossing)))
    loop = scf.ForOp(zero, last, one, [first[v] for v in crossing], loop_body)
    block.add_op(loop)
    after_loop = dict(zip(crossing, loop.results))
    for op in rest:  # R(steps - 1): the originals, reading the values of P(steps - 1)
        for inner in op.walk():
            inner.operands = [after_loop.get(v, v) for v in inner.operands]
        block.add_op(op)
        _retarget(op, sliced, last.result)
    for op in reversed(prefix):  # users before the values they use
        op.erase()


def _ordered_uses(ops: Sequence[Operation]) -> list[SSAValue]:
    """The values used inside `ops`, once each, in order of first use (a deterministic order)."""
    seen: dict[SSAValue, None] = {}
    for op in ops:
        for inner in op.walk():
            for operand in inner.operands:
                seen.setdefault(operand, None)
    return list(seen)


@pass_dataclass
class DataLoopPass(ModulePass):
    """Add `@<entry>_loop`: `steps` runs of `@<entry>` over the leading dimension of the sliced arguments."""

    name = "data-loop"

    entry: str = ""
    steps: int = 1
    sliced: tuple[int, ...] = ()
    cross_step: bool = True

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        functions = {f.sym_name.data: f for f in op.ops if isinstance(f, func.FuncOp)}
        if self.entry not in functions:
            raise CompileError(f"data-loop: no function @{self.entry} (functions: {', '.join(functions)})")
        if self.steps < 1:
            raise CompileError(f"data-loop: steps must be at least 1, got {self.steps}")
        original = functions[self.entry]
        op.body.block.add_op(build_data_loop(original.clone(), self.steps, self.sliced, self.cross_step))
