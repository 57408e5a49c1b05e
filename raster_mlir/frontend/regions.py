"""Tracing into regions: where ops go, and how a body's closures become explicit captures.

A `FunctionScope` keeps a stack of `RegionFrame`s. The bottom frame is the
function's entry block; tracing a loop body or a branch pushes a frame whose
blocks are the region blocks being built (one for a loop body, `cond` and
`do` for a while loop, then/else for a branch; one of them is active at a
time and receives the ops).

Closures: a body may use any traced value of an enclosing block
(`lambda i, x: x + dt * f(x, k)`). The raster region ops are isolated from
above, so such a use is resolved to a capture: the frame adds a block
argument (to each of its blocks, so the regions of one op keep one
signature) and records the outer value as the op's capture operand. Through
nested frames the capture is chained (the inner body captures the middle
body's argument, which captures the outer value). A value defined in a
region that has been closed (kept in a Python variable after the loop) is
an error: it only exists inside that body.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.ir import Block, BlockArgument, SSAValue

from raster_mlir.errors import TraceError


def defining_block(value: SSAValue) -> Block | None:
    if isinstance(value, BlockArgument):
        return value.block
    return value.owner.parent_block()


class RegionFrame:
    """The blocks of one region op being traced; `capture_values` become its capture operands."""

    def __init__(self, blocks: Sequence[Block], what: str = "function"):
        self.blocks = list(blocks)
        self.active = self.blocks[0]
        self.what = what  # "the body of rm.fori_loop"... for error messages
        # Every block has the same fixed arguments before the captures.
        self.fixed_args = len(self.blocks[0].args)
        self.capture_values: list[SSAValue] = []
        self._position: dict[SSAValue, int] = {}

    def activate(self, block: Block) -> None:
        self.active = block

    def capture(self, outer: SSAValue) -> SSAValue:
        """The active block's argument standing for `outer` (added on first use)."""
        position = self._position.get(outer)
        if position is None:
            position = len(self.capture_values)
            self.capture_values.append(outer)
            self._position[outer] = position
            for block in self.blocks:
                arg = block.insert_arg(outer.type, len(block.args))
                if outer.name_hint:
                    arg.name_hint = outer.name_hint
        return self.active.args[self.fixed_args + position]


def resolve(frames: Sequence[RegionFrame], value: SSAValue) -> SSAValue:
    """`value` as seen from the innermost frame's active block (captured through the frames between)."""
    block = defining_block(value)
    for depth in range(len(frames) - 1, -1, -1):
        if frames[depth].active is block:
            break
    else:
        raise TraceError(
            "a value computed inside a loop body or branch is used outside it "
            f"(now tracing {frames[-1].what}); it only exists inside that body: "
            "return it from the body (as a carry or an output) instead"
        )
    for frame in frames[depth + 1 :]:
        value = frame.capture(value)
    return value
