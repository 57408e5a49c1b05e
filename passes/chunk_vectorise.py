"""One chunk of a scalar loop body as vector ops (for `skip-zero-chunks`).

A loop over j whose body is a dot product (`acc + W[.., j] * x[j]`) or an
element-wise update (`W[.., j] = W[.., j] - t(j)`) becomes a block that does
the same on the `lanes` columns starting at its first argument: every value
that depends on j becomes a vector, every value from outside the loop a splat
(made once, before the loop), and loads and stores at j become vector loads
and stores there, or masked ones for a partial chunk.

The same block is made up to three times per loop: for the chunk loop, and
for the masked partial chunks at both ends of a row (chunk_frame.py). All
three must round alike, so nothing is left to LLVM's fast-math freedom:

- `a + b * c` and `a - b * c` (the product used once) become `math.fma`
  (`a - b * c` as fma(-b, c, a)): LLVM contracts a multiply and an add into
  one FMA only when it sees both in one basic block, which depends on where
  its scheduling puts them (a partial chunk's product hoisted out of a row's
  loop stays a separate multiply and add);
- every vector op carries `raster.exact` (no `reassoc`, no `contract`): LLVM
  would otherwise hoist `lr * e` out of the chunk loop, (`lr * e) * x`, but
  leave the partial chunks' `lr * (e * x)` as written;
- the update's factors that do not depend on j are multiplied first, once
  (`hoist_invariant_factors`), which is the reassociation LLVM did in the
  chunk loop before, now made explicitly and everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.dialects import arith, math, memref, scf, vector
from xdsl.dialects.builtin import UnitAttr
from xdsl.ir import Block, Operation, Region, SSAValue

from raster_mlir.backend.llvm_ops import EXACT_FP
from raster_mlir.ir_create import create_op
from raster_mlir.ir_walk import block_ops

from .chunk_frame import vector_of
from .loop_builder import INDEX, LoopBuilder, same_type
from .loop_analysis import defined_values, product_factors, update_term

LANEWISE = (arith.AddfOp, arith.SubfOp, arith.MulfOp, arith.DivfOp)
_UNIT = UnitAttr()  # (attributes are immutable: made once, not per op)


@dataclass(frozen=True)
class Staged:
    """x's row (buffer `x`, leading indices `rows`) copied to `copy` at an offset: copy[j + shift] = x[j]."""

    x: SSAValue
    rows: tuple[SSAValue, ...]
    copy: SSAValue
    shift: SSAValue


class StagedRow:
    """Where the loads of a chunk body read when x's row is staged (`Staged`): a load of
    staged.x[*staged.rows, start] reads staged.copy[start + staged.shift], that index made once, by
    `place` (which puts an op where the body needs it), before the first such load. The one
    definition of the redirect, for bodies made with `staged` (`chunk_body`) and made without it
    and redirected afterwards (`restage`)."""

    def __init__(self, staged: Staged | None, start: SSAValue):
        self.staged, self.start = staged, start
        self.index: SSAValue | None = None

    def address(self, base: SSAValue, leading, place) -> tuple[SSAValue, list[SSAValue]] | None:
        """(staged.copy, [start + shift]) for a load of `base` at `leading` indices then start, else None."""
        staged = self.staged
        if staged is None or base is not staged.x or tuple(leading) != staged.rows:
            return None
        if self.index is None:
            self.index = place(same_type(arith.AddiOp, self.start, staged.shift))
        return staged.copy, [self.index]


class Outside:
    """Splats of values defined outside the loop, made once, just before it."""

    def __init__(self, block: Block, before: Operation, lanes: int):
        self.block, self.before, self.lanes = block, before, lanes
        self.splats: dict[SSAValue, SSAValue] = {}
        self.negated: dict[SSAValue, SSAValue] = {}

    def splat(self, value: SSAValue) -> SSAValue:
        if value not in self.splats:
            op = create_op(vector.BroadcastOp, [value], [vector_of(value.type, self.lanes)])
            self.splats[value] = insert(self.block, self.before, op)
        return self.splats[value]

    def negated_splat(self, value: SSAValue) -> SSAValue:
        """The splat of -value (negated once, before the loop)."""
        if value not in self.negated:
            self.negated[value] = insert(self.block, self.before, same_type(arith.NegfOp, value))
        return self.splat(self.negated[value])

    def discard(self) -> None:
        """Erase the splats (the rewrite gave up)."""
        for value in [*self.splats.values(), *self.negated.values()]:
            value.owner.detach()
            value.owner.erase()
        self.splats.clear()
        self.negated.clear()


def chunk_body(
    loop: scf.ForOp,
    lanes: int,
    outside: Outside,
    reduction: bool,
    mask: SSAValue | None = None,
    constants: LoopBuilder | None = None,
    staged: Staged | None = None,
) -> Block | None:
    """The loop's body on one chunk: a block of arguments (chunk start, accumulator if a reduction)
    ending in scf.yield; masked accesses where `mask` is given (masked-off lanes of a load read 0.0, a
    constant of `constants`, the function's builder at its entry); loads of `staged.x`'s row read its copy. None if some op cannot be widened."""
    lane_types = [vector_of(loop.results[0].type, lanes)] if reduction else []
    body = Block(arg_types=[INDEX, *lane_types])
    if _vectorise(loop, body, lanes, outside, reduction, mask, constants, staged):
        return body
    erase_block(body)
    return None


def restage(body: Block, staged: Staged | None) -> Block:
    """`body` (an unmasked chunk_body made without `staged`) as chunk_body makes it with `staged`: its
    loads of staged.x's row read staged.copy at start + staged.shift instead (made before the first).
    So the body that showed every op can be widened is used, not made a second time."""
    if staged is None:
        return body
    row = StagedRow(staged, body.args[0])
    for op in block_ops(body):
        if op.name != "vector.load":
            continue
        address = row.address(op.base, op.indices[:-1], lambda new, op=op: insert(body, op, new))
        if address is None:
            continue
        source, indices = address
        load = insert(body, op, create_op(vector.LoadOp, [source, *indices], [op.result.type]))
        op.result.replace_all_uses_with(load)
        op.detach()
        op.erase()
    return body


def erase_block(block: Block) -> None:
    """Erase a (detached) block's ops, last first: they may use each other and the splats."""
    for op in reversed(block_ops(block)):
        op.detach()
        op.erase()


def guarded(condition: SSAValue, chunk: Block, start: SSAValue) -> scf.IfOp:
    """`if condition { chunk at start }` for an update's chunk (no results)."""
    then = Block()
    inline(chunk, [start], then)
    then.add_op(create_op(scf.YieldOp))
    return create_op(scf.IfOp, [condition], regions=(Region(then), Region()))  # (an empty else region, as scf.IfOp makes)


def inline(block: Block, args: list[SSAValue], target: Block, before: Operation | None = None) -> list[SSAValue]:
    """Move `block`'s ops into `target` (before `before`, or at its end) with its arguments replaced by
    `args`; returns what its scf.yield yielded (the yield itself is dropped)."""
    for placeholder, value in zip(block.args, args, strict=True):
        placeholder.replace_all_uses_with(value)
    yielded: list[SSAValue] = []
    for op in block_ops(block):
        op.detach()
        if isinstance(op, scf.YieldOp):
            yielded = list(op.operands)
            op.erase()
        elif before is None:
            target.add_op(op)
        else:
            target.insert_op_before(op, before)
    return yielded


def _fused_product(op: Operation, inside: set[SSAValue]) -> tuple[SSAValue, arith.MulfOp] | None:
    """(a, b * c) when `op` is a + b * c, b * c + a or a - b * c with the product used only there."""
    if isinstance(op, arith.AddfOp):
        candidates = [(op.lhs, op.rhs), (op.rhs, op.lhs)]
    elif isinstance(op, arith.SubfOp):
        candidates = [(op.lhs, op.rhs)]
    else:
        return None
    for addend, product in candidates:
        if product in inside and isinstance(product.owner, arith.MulfOp) and product.has_one_use():
            return addend, product.owner
    return None


def _exact(op: Operation) -> Operation:
    op.attributes[EXACT_FP] = _UNIT
    return op


def _vectorise(
    loop: scf.ForOp,
    body: Block,
    lanes: int,
    outside: Outside,
    reduction: bool,
    mask: SSAValue | None = None,
    constants: LoopBuilder | None = None,
    staged: Staged | None = None,
) -> bool:
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
    staged_row = StagedRow(staged, start)
    fused = set()  # the products that become part of an fma
    for op in loop.body.block.ops:
        if (found := _fused_product(op, inside)) is not None:
            fused.add(found[1])

    def widen(value: SSAValue) -> SSAValue | None:
        if value in vectors:
            return vectors[value]
        if value in inside:
            return None
        return outside.splat(value)

    for op in loop.body.block.ops:
        name = op.name  # (ops by name, operands by position: cheaper than isinstance and the IRDL accessors)
        if name == "scf.yield":
            if reduction:
                body.add_op(create_op(scf.YieldOp, [vectors[op._operands[0]]]))
            continue
        if name == "memref.load" or name == "memref.store":
            is_load = name == "memref.load"
            # load (memref, *indices) -> res; store (value, memref, *indices)
            buffer, all_indices = (op._operands[0], op._operands[1:]) if is_load else (op._operands[1], op._operands[2:])
            leading = all_indices[:-1]
            if not all_indices or all_indices[-1] is not j or any(i is j or i in inside for i in leading):
                return False
            source, indices = buffer, [*leading, start]
            if is_load:
                address = staged_row.address(source, leading, lambda new: append(body, new))
                if address is not None:
                    source, indices = address
                result = op.results[0]
                if mask is not None:
                    zero = outside.splat(constants.float(0.0, result.type))
                    load = create_op(vector.MaskedLoadOp, [source, *indices, mask, zero], [zero.type])
                else:
                    load = create_op(vector.LoadOp, [source, *indices], [vector_of(result.type, lanes)])
                vectors[result] = append(body, load)
            else:
                value = widen(op._operands[0])
                if value is None:
                    return False
                if mask is None:
                    body.add_op(create_op(vector.StoreOp, [value, buffer, *indices]))
                else:
                    body.add_op(create_op(vector.MaskedStoreOp, [buffer, *indices, mask, value]))
        elif op in fused:
            continue  # emitted as part of its fma, below
        elif (found := _fused_product(op, inside)) is not None:
            addend, product = found
            subtract = isinstance(op, arith.SubfOp)
            if subtract and product.lhs not in inside:  # c - s * v = fma(-s, v, c), -s made once
                a = outside.negated_splat(product.lhs)
            else:
                a = widen(product.lhs)
            b, c = widen(product.rhs), widen(addend)
            if a is None or b is None or c is None:
                return False
            if subtract and product.lhs in inside:
                a = append(body, _exact(same_type(arith.NegfOp, a)))
            vectors[op.results[0]] = append(body, _exact(same_type(math.FmaOp, a, b, c)))
        elif isinstance(op, LANEWISE) or isinstance(op, arith.NegfOp):
            operands = [widen(v) for v in op.operands]
            if any(v is None for v in operands):
                return False
            vectors[op.results[0]] = append(body, _exact(same_type(type(op), *operands)))
        else:
            return False
    if not reduction:
        body.add_op(create_op(scf.YieldOp))
    return True


def hoist_invariant_factors(loop: scf.ForOp) -> None:
    """In the update `W[.., j] = W[.., j] - t` with t a product such as lr * (e * x[j]), multiply the factors
    that do not depend on j first, once, before the loop: t = (lr * e) * x[j] (module docstring)."""
    store = next(op for op in loop.body.block.ops if isinstance(op, memref.StoreOp))
    term = update_term(store)
    inside = defined_values(loop)
    factors = product_factors(term, inside)
    invariant = [v for v in factors if v not in inside]
    if len(invariant) < 2 or not _single_use_tree(term, inside):
        return
    negations = _negations(term, inside)
    parent = loop.parent_block()
    scale = invariant[0]
    for factor in invariant[1:]:
        scale = insert(parent, loop, same_type(arith.MulfOp, scale, factor))
    if negations % 2:
        scale = insert(parent, loop, same_type(arith.NegfOp, scale))
    user = store.value.owner
    product = scale
    for factor in (v for v in factors if v in inside):
        product = insert(loop.body.block, user, same_type(arith.MulfOp, product, factor))
    old = term.owner
    term.replace_all_uses_with(product)
    _erase_tree(old, inside)


def _single_use_tree(value: SSAValue, inside: set[SSAValue]) -> bool:
    """Every mulf/negf node of `value`'s product tree inside the loop is used once (the tree can go)."""
    owner = value.owner
    if value not in inside or not isinstance(owner, (arith.MulfOp, arith.NegfOp)):
        return True
    return value.has_one_use() and all(_single_use_tree(v, inside) for v in owner.operands)


def _negations(value: SSAValue, inside: set[SSAValue]) -> int:
    owner = value.owner
    if value not in inside or not isinstance(owner, (arith.MulfOp, arith.NegfOp)):
        return 0
    return isinstance(owner, arith.NegfOp) + sum(_negations(v, inside) for v in owner.operands)


def _erase_tree(op: Operation, inside: set[SSAValue]) -> None:
    operands = [v for v in op.operands if v in inside and isinstance(v.owner, (arith.MulfOp, arith.NegfOp))]
    op.detach()
    op.erase()
    for value in operands:
        if value.first_use is None:
            _erase_tree(value.owner, inside)


def append(block: Block, op: Operation) -> SSAValue:
    block.add_op(op)
    return op.results[0]


def insert(block: Block, before: Operation, op: Operation) -> SSAValue:
    block.insert_op_before(op, before)
    return op.results[0]


def insert_op(block: Block, before: Operation, op: Operation) -> Operation:
    block.insert_op_before(op, before)
    return op
