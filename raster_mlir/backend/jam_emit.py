"""Emission of a loop nest accepted by `jam.jam_plan` (mixin of FunctionBodyEmitter).

Algorithm (the transformation itself is described in jam.py): copy u of
the outer body sees the outer induction variable as `i + u`. The emitter
keeps one value map, so after emitting copy u's `pre` ops it saves the
values copy u defined (its environment); before emitting copy u's share of
the inner body and its `post` ops it restores that environment. Values from
outside the nest are the same for all copies and stay in the shared map.
"""

from __future__ import annotations

from llvmlite import ir
from xdsl.ir import Operation

from .jam import JamPlan
from .llvm_types import llvm_type


class JamEmitter:
    """Mixin: needs `builder`, `values`, `value`, `_emit_op`, `_build_loop`, `_emit_for`, `mctx`, `info`."""

    def _emit_jammed(self, outer: Operation, plan: JamPlan, lb=None, ub=None) -> None:
        """Emit the jammed nest; `lb`/`ub` (LLVM values) replace the plan's constant bounds
        (an outlined parallel loop's share of the iterations)."""
        b = self.builder
        U = plan.factor
        outer_iv = outer.body.blocks.first.args[0]
        inner = plan.inner
        inner_block = inner.body.blocks.first
        k = len(inner.iter_args)
        ity = llvm_type(outer_iv.type)

        def inner_body(j, accs):
            carried = []
            for u, env in enumerate(envs):
                self.values.update(env)
                self.values[inner_block.args[0]] = j
                for arg, phi in zip(inner_block.args[1:], accs[u * k : (u + 1) * k]):
                    self.values[arg] = phi
                for op in inner_block.ops:
                    if op.name == "scf.yield":
                        carried.extend(self.value(v) for v in op.operands)
                        break
                    self._emit_op(op)
            return carried

        def outer_body(i, _accs):
            envs.clear()
            for u in range(U):
                self.values[outer_iv] = i if u == 0 else b.add(i, ir.Constant(ity, u), flags=("nsw",))
                for op in plan.pre:
                    self._emit_op(op)
                env = {outer_iv: self.values[outer_iv]}
                env.update((r, self.values[r]) for op in plan.pre for r in op.results)
                envs.append(env)
            inits = []
            for env in envs:
                self.values.update(env)
                inits.extend(self.value(v) for v in inner.iter_args)
            md = self.mctx.loop_metadata(inner, self.info.name)
            bounds = (self.value(inner.lb), self.value(inner.ub), self.value(inner.step))
            results = self._build_loop(*bounds, inits, inner_body, md)
            for u, env in enumerate(envs):
                env.update(zip(inner.results, results[u * k : (u + 1) * k]))
                self.values.update(env)
                for op in plan.post:
                    self._emit_op(op)
            return []

        envs: list[dict] = []
        const = lambda v: ir.Constant(ity, v)  # noqa: E731
        if lb is None and ub is None:
            self._build_loop(const(plan.lb), const(plan.main_end), const(U), [], outer_body)
            if plan.main_end < plan.ub:
                self._emit_for(outer, lb=const(plan.main_end), allow_jam=False)
            return
        lb = const(plan.lb) if lb is None else lb
        ub = const(plan.ub) if ub is None else ub
        main_end = b.add(lb, b.mul(b.sdiv(b.sub(ub, lb), const(U)), const(U)))
        md = self.mctx.sequential_loop_metadata() if outer is self.sequential_loop else None
        self._build_loop(lb, main_end, const(U), [], outer_body, md)
        self._emit_for(outer, lb=main_end, ub=ub, allow_jam=False)
