"""Functions of several blocks: the `cf` dialect's branches (after `convert-scf-to-cf`).

Algorithm (a mixin of `FunctionBodyEmitter`):
1. Order the blocks of the function's region in reverse post-order of the
   control-flow graph from the entry block, so every block comes after the
   blocks that dominate it and each SSA value is translated before its uses
   (MLIR's block order need not be a dominance order). Blocks not reachable
   from the entry are not emitted.
2. Create one LLVM basic block per reachable block up front, with one `phi`
   per block argument (branches may jump forward to blocks not yet emitted).
3. Emit the blocks in that order. `cf.br ^bb(args)` becomes `br`, adding
   `args` as the phis' incoming values from the LLVM block the builder is in
   (the end of any loop the xDSL block contains); `cf.cond_br` becomes
   `br i1`; `cf.switch` becomes `switch`. When one terminator reaches the
   same block twice (`cf.cond_br %c, ^bb1(%a), ^bb1(%b)`), the repeated edge
   goes through its own small block, because a phi takes one value per
   predecessor.

    ^bb0: cf.br ^bb1(%c0 : index)                 entry ─► bb1
    ^bb1(%i: index):                              bb1: %i = phi [0, entry], [%n, bb2]
      cf.cond_br %lt, ^bb2, ^bb3                       br %lt, bb2, bb3
    ^bb2: ... cf.br ^bb1(%n : index)              bb2: ... br bb1
    ^bb3: func.return                             bb3: ret void

A function of one block is emitted straight (no phis, no ordering).
"""

from __future__ import annotations

from collections.abc import Sequence

from llvmlite import ir
from xdsl.ir import Block, Operation, Region, SSAValue

from ..cfg import reverse_postorder
from ..errors import CompileError
from .fast_builder import FastBuilder
from .llvm_types import llvm_type


class BranchEmitter:
    """cf.br / cf.cond_br / cf.switch and multi-block function bodies (module docstring)."""

    def _emit_region_body(self, region: Region) -> None:
        blocks = list(region.blocks)
        if len(blocks) == 1:
            self._emit_block(blocks[0])
            return
        entry = blocks[0]
        order = reverse_postorder(entry)
        self._llvm_blocks: dict[Block, ir.Block] = {entry: self.builder.block}
        self._phis: dict[Block, list[ir.PhiInstr]] = {entry: []}
        for block in order[1:]:
            bb = self.llfn.append_basic_block("bb")
            phi_builder = FastBuilder(bb)
            self._llvm_blocks[block] = bb
            self._phis[block] = [phi_builder.phi(llvm_type(arg.type)) for arg in block.args]
            for arg, phi in zip(block.args, self._phis[block]):
                self.values[arg] = phi
        for block in order:
            self.builder.position_at_end(self._llvm_blocks[block])
            self._emit_block(block)
            if not self.builder.block.is_terminated:
                raise CompileError(
                    f"@{self.info.name}: a block ends with {block.last_op.name if block.last_op else 'nothing'}, "
                    "not a terminator (cf.br, cf.cond_br, cf.switch or func.return)"
                )

    def _edge(self, op: Operation, target: Block, args: Sequence[SSAValue], used: set[Block]) -> ir.Block:
        """The LLVM block a branch of `op` jumps to for `target(args)`, with the phis' incoming values set."""
        bb = self._llvm_blocks.get(target)
        if bb is None or target is op.parent_block().parent_region().blocks.first:
            raise CompileError(f"@{self.info.name}: {op.name} jumps to the entry block or out of the function")
        values = [self.value(v) for v in args]
        source = self.builder.block
        if target in used:  # a second edge to the same block: through a block of its own
            source = self.llfn.append_basic_block("edge")
            FastBuilder(source).branch(bb)
            bb_for_branch = source
        else:
            bb_for_branch = bb
        used.add(target)
        for phi, value in zip(self._phis[target], values, strict=True):
            phi.add_incoming(value, source)
        return bb_for_branch

    def _emit_br(self, op: Operation) -> None:
        self.builder.branch(self._edge(op, op.successor, op.arguments, set()))

    def _emit_cond_br(self, op: Operation) -> None:
        used: set[Block] = set()
        then_bb = self._edge(op, op.then_block, op.then_arguments, used)
        else_bb = self._edge(op, op.else_block, op.else_arguments, used)
        self.builder.cbranch(self.value(op.cond), then_bb, else_bb)

    def _emit_switch(self, op: Operation) -> None:
        used: set[Block] = set()
        flag = self.value(op.flag)
        default = self._edge(op, op.default_block, op.default_operands, used)
        cases = []
        if op.case_values is not None:
            for value, block, operands in zip(op.case_values.get_values(), op.case_blocks, op.case_operand):
                cases.append((ir.Constant(flag.type, value), self._edge(op, block, operands, used)))
        switch = self.builder.switch(flag, default)
        for value, bb in cases:
            switch.add_case(value, bb)

    BRANCH_HANDLERS = {"cf.br": _emit_br, "cf.cond_br": _emit_cond_br, "cf.switch": _emit_switch}
