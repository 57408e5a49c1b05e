"""Verification between passes: xDSL's op verifiers plus SSA dominance, in linear time.

xDSL's `verify()` checks each op (types, properties, traits) but not where its
operands come from, so a pass that leaves a value used before its
definition, or used outside the region that defines it, goes through
verification and crashes a later pass. `verify_module` adds that check.

Algorithm: one walk of the module with a stack of scopes (sets of the values
visible at this point). Entering a block pushes its arguments; each op's
operands must be in some scope of the stack, then its results are added to
the innermost scope; an op's regions are walked with their own scopes on top,
so values defined inside a region are popped when it ends and a later use is
caught. An op that is `IsolatedFromAbove` (func.func) starts from an empty
stack. A region of several blocks (cf branches) is walked along its
dominator tree (Cooper, Harvey and Kennedy's iterative algorithm): a block
sees the values of the blocks that dominate it. Blocks not reachable from
the entry are not checked (as MLIR). Each op and operand is visited once.

Errors are `CompileError`s naming the op, the value and its defining op, and
the op's source location when it has one.
"""

from __future__ import annotations

from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Block, BlockArgument, Operation, Region, SSAValue
from xdsl.traits import IsolatedFromAbove
from xdsl.utils.exceptions import VerifyException

from raster_mlir.cfg import postorder, successors
from raster_mlir.dialects.raster_rules_core import describe_location
from raster_mlir.errors import CompileError
from raster_mlir.op_verifier import verify_ops


def verify_module(module: ModuleOp, after: str | None = None) -> None:
    """xDSL's verifier (op_verifier.py), then SSA dominance; a CompileError says what is wrong (after pass `after`)."""
    where = f" after pass {after}" if after else ""
    try:
        verify_ops(module, dominance_follows=True)
    except VerifyException as e:
        raise CompileError(f"IR does not verify{where}: {e}") from None
    problem = dominance_problem(module)
    if problem is not None:
        raise CompileError(f"IR does not verify{where}: {problem}")


def dominance_problem(root: Operation) -> str | None:
    """A sentence about the first operand not defined where it is used, or None."""
    scopes: list[set[SSAValue]] = []
    return _check_op(root, scopes)


def _check_op(op: Operation, scopes: list[set[SSAValue]]) -> str | None:
    for operand in op.operands:
        if not any(operand in scope for scope in reversed(scopes)):
            return _describe(op, operand)
    if not op.regions:
        return None
    inner = [] if op.has_trait(IsolatedFromAbove) else scopes
    for region in op.regions:
        problem = _check_region(region, inner)
        if problem is not None:
            return problem
    return None


def _check_region(region: Region, scopes: list[set[SSAValue]]) -> str | None:
    blocks = list(region.blocks)
    if len(blocks) == 1:
        return _check_block(blocks[0], scopes, keep=False)
    if not blocks:
        return None
    children = _dominator_children(blocks[0])
    # Depth-first over the dominator tree: a block's scope stays while its children are checked.
    stack: list[tuple[Block, bool]] = [(blocks[0], False)]
    depth = len(scopes)
    while stack:
        block, leaving = stack.pop()
        if leaving:
            scopes.pop()
            continue
        problem = _check_block(block, scopes, keep=True)
        if problem is not None:
            del scopes[depth:]
            return problem
        stack.append((block, True))
        stack.extend((child, False) for child in reversed(children.get(block, ())))
    return None


def _check_block(block: Block, scopes: list[set[SSAValue]], keep: bool) -> str | None:
    """Check the ops of `block` in order; its scope stays on the stack when `keep`."""
    scope: set[SSAValue] = set(block.args)
    scopes.append(scope)
    for op in block.ops:
        problem = _check_op(op, scopes)
        if problem is not None:
            scopes.pop()
            return problem
        scope.update(op.results)
    if not keep:
        scopes.pop()
    return None


def _dominator_children(entry: Block) -> dict[Block, list[Block]]:
    """Immediate-dominator tree of the blocks reachable from `entry`, as children lists."""
    order = postorder(entry)
    number = {block: i for i, block in enumerate(order)}
    predecessors: dict[Block, list[Block]] = {block: [] for block in order}
    for block in order:
        for succ in successors(block):
            predecessors[succ].append(block)
    idom: dict[Block, Block] = {entry: entry}
    changed = True
    while changed:
        changed = False
        for block in reversed(order[:-1]):  # reverse post-order without the entry
            done = [p for p in predecessors[block] if p in idom]
            new = done[0]
            for p in done[1:]:
                new = _intersect(p, new, idom, number)
            if idom.get(block) is not new:
                idom[block] = new
                changed = True
    children: dict[Block, list[Block]] = {}
    for block, parent in idom.items():
        if block is not entry:
            children.setdefault(parent, []).append(block)
    return children


def _intersect(a: Block, b: Block, idom: dict[Block, Block], number: dict[Block, int]) -> Block:
    while a is not b:
        while number[a] < number[b]:
            a = idom[a]
        while number[b] < number[a]:
            b = idom[b]
    return a


def _describe(op: Operation, value: SSAValue) -> str:
    name = f"%{value.name_hint}" if value.name_hint else "a value"
    if isinstance(value, BlockArgument):
        origin = f"{name} (an argument of a block of {_owner_name(value.block)})"
        definer_block = value.block
    elif isinstance(value.owner, Operation):
        origin = f"{name} (a result of {value.owner.name})"
        definer_block = value.owner.parent_block()
    else:  # an erased value
        return f"{op.name} uses {name}, whose defining op was erased{_location(op)}"
    if definer_block is None:
        return f"{op.name} uses {origin}, which is not in the IR any more{_location(op)}"
    if _inside(op, definer_block):
        why = "before its definition"
    elif _inside(op, definer_block.parent):
        why = "in a block its definition does not dominate"
    else:
        why = "outside the region that defines it"
    return f"{op.name} uses {origin} {why}{_location(op)}"


def _inside(op: Operation, container: Block | Region | None) -> bool:
    """Is `op` inside `container` (a block or region), directly or in a nested region?"""
    current: Operation | None = op
    while current is not None:
        block = current.parent_block()
        if block is container or (block is not None and block.parent is container):
            return True
        current = current.parent_op()
    return False


def _owner_name(block: Block) -> str:
    owner = block.parent_op()
    return owner.name if owner is not None else "no op"


def _location(op: Operation) -> str:
    where = describe_location(op)
    return f"\n  at {where}" if where else ""
