"""`scf.while` -> LLVM basic blocks (a mixin of FunctionBodyEmitter; `scf.for`/`scf.if` are in llvm_body.py).

    pre ─► while.cond: arg_k = phi [init_k, pre], [yield_k, latch]
                       <the `before` region's ops>
                       br %condition, while.body, while.exit
           while.body: <the `after` region's ops, its arguments = the
                       scf.condition's extra operands>  br while.cond
           while.exit: the op's results are the scf.condition's extra operands

The condition's values are computed in the header, which dominates both
the body and the exit, so they need no phis of their own.
"""

from __future__ import annotations

from xdsl.ir import Operation

from ..errors import CompileError


class ControlTranslator:
    """Mixin for `FunctionBodyEmitter`: structured loops other than scf.for."""

    def _emit_while(self, op: Operation) -> None:
        b = self.builder
        before, after = op.regions[0].blocks.first, op.regions[1].blocks.first
        pre = b.block
        header = self.llfn.append_basic_block("while.cond")
        body = self.llfn.append_basic_block("while.body")
        exit_ = self.llfn.append_basic_block("while.exit")
        b.branch(header)

        b.position_at_end(header)
        phis = []
        for arg, init in zip(before.args, op.operands, strict=True):
            phi = b.phi(self.value(init).type, name="carry")
            phi.add_incoming(self.value(init), pre)
            self.values[arg] = phi
            phis.append(phi)
        condition = before.last_op
        if condition is None or condition.name != "scf.condition":
            raise CompileError(f"@{self.info.name}: the before region of scf.while must end with scf.condition")
        for inner in before.ops:
            if inner is condition:
                break
            self._emit_op(inner)
        forwarded = [self.value(v) for v in condition.operands[1:]]
        b.cbranch(self.value(condition.operands[0]), body, exit_)

        b.position_at_end(body)
        for arg, value in zip(after.args, forwarded, strict=True):
            self.values[arg] = value
        yielded = self._emit_block(after) or []
        for phi, value in zip(phis, yielded, strict=True):
            phi.add_incoming(value, b.block)
        b.branch(header)

        b.position_at_end(exit_)
        self.define(op, *forwarded)

    CONTROL_HANDLERS = {"scf.while": _emit_while}
