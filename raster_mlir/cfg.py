"""The control-flow graph of a region's blocks (functions that branch with cf.br / cf.cond_br).

Used by the verifier (dominance) and the LLVM backend (block order).
"""

from __future__ import annotations

from xdsl.ir import Block


def successors(block: Block) -> tuple[Block, ...]:
    """The blocks `block`'s terminator may branch to."""
    last = block.last_op
    return tuple(last.successors) if last is not None else ()


def postorder(entry: Block) -> list[Block]:
    """Blocks reachable from `entry`, each after every block it reaches first (iterative DFS)."""
    order: list[Block] = []
    seen = {entry}
    stack = [(entry, iter(successors(entry)))]
    while stack:
        block, pending = stack[-1]
        nxt = next(pending, None)
        if nxt is None:
            stack.pop()
            order.append(block)
        elif nxt not in seen:
            seen.add(nxt)
            stack.append((nxt, iter(successors(nxt))))
    return order


def reverse_postorder(entry: Block) -> list[Block]:
    """Blocks reachable from `entry`, each after the blocks that dominate it."""
    return postorder(entry)[::-1]
