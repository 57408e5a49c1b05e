"""`forward-ad`: expand `raster.jvp` into tangent (forward-mode) functions.

Algorithm, for each `raster.jvp @f(primals) tangents(ts) argnums = [...]`:

1. Build a private function `@f_jvp` (`_wrt_0_2` appended when only some
   arguments carry a tangent) taking (primals..., tangents...) and returning
   (f's outputs..., their tangents...).
2. Copy f's body into it, inlining calls to functions without a custom rule
   (a function with `rm.custom_rule` stays a call; if f itself has one, the
   body is a call to f).
3. Walk the ops in block order (a topological order) keeping a map value ->
   tangent. An op none of whose operands has a tangent gets none (so the
   ops that do not depend on a differentiated argument cost nothing); an op
   marked non-differentiable (comparisons, constants) gets none; any other
   op gets its tangent rule from the pass's rule set, whose ops are placed
   right after the primal op. A custom-rule call gets a call to its tangent
   rule function with (inputs, outputs, input tangents, zeros where absent).
4. Return the outputs and their tangents; an output that does not depend on
   a differentiated argument gets `raster.fill 0.0`.
5. Replace the jvp op by a `func.call` of the new function; the next
   `inline` inlines it and canonicalize / CSE / DCE clean up.

Nesting: an AD op (`raster.jvp`, `raster.grad`, `raster.value_and_grad`)
whose callee still contains an AD op waits until that inner one is expanded.
This pass expands both kinds, innermost first, so after `autodiff` (which
expands the gradients it can) it finishes any mix: a Hessian-vector product
`jvp(grad f)` is a jvp of the generated `@f_grad`, `grad(jvp f)` a gradient
of the generated `@f_jvp`. Every generated op takes the location of the
primal op it differentiates; ops without a tangent rule raise a
`GradientError` naming the op and the user's line.

Region ops (loops) reuse step 3 on their bodies with `propagate_tangents`.

Rule sets: option `rules` names a registered `RuleSet`
(`forward-ad{rules=default}`), as for `autodiff`.

Before:
    func.func private @f(%x: tensor<3xf64>) -> tensor<3xf64> {
      %y = raster.exp %x : tensor<3xf64>
      func.return %y : tensor<3xf64>
    }
    func.func @main(%x: tensor<3xf64>, %v: tensor<3xf64>) -> tensor<3xf64> {
      %y, %dy = raster.jvp @f(%x) tangents(%v) argnums = [0] : (tensor<3xf64>), (tensor<3xf64>) -> (tensor<3xf64>, tensor<3xf64>)
      func.return %dy : tensor<3xf64>
    }
After:
    func.func private @f(...) { ... unchanged ... }
    func.func private @f_jvp(%x: tensor<3xf64>, %dx: tensor<3xf64>) -> (tensor<3xf64>, tensor<3xf64>) {
      %y = raster.exp %x : tensor<3xf64>
      %dy = raster.mul %dx, %y : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
      func.return %y, %dy : tensor<3xf64>, tensor<3xf64>
    }
    func.func @main(%x: tensor<3xf64>, %v: tensor<3xf64>) -> tensor<3xf64> {
      %y, %dy = func.call @f_jvp(%x, %v) : (tensor<3xf64>, tensor<3xf64>) -> (tensor<3xf64>, tensor<3xf64>)
      func.return %dy : tensor<3xf64>
    }
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from raster_mlir.dialects import raster as R
from raster_mlir.dialects.raster_tangents_tape import (
    TangentTapeNeeded,
    label_tapes,
    mark_tangent_tapes,
    seed_tangent_tape,
    unlabel_tapes,
)
from raster_mlir.dialects.raster_rules import (
    RuleSet,
    TangentBuilder,
    custom_rule_of,
    custom_tangent_rule_of,
    rule_set,
)
from raster_mlir.passes.autodiff import IS_AD_OP, GradExpander, _error, depends_on_ad_op, inline_plain_calls
from raster_mlir.ir_clone import clone_op
from raster_mlir.ir_walk import walk_ops
from raster_mlir.passes.inline import IS_CALL, functions_of
from raster_mlir.passes.pass_dataclass import pass_dataclass


def propagate_tangents(
    block: Block,
    ops: Sequence[Operation],
    tangents: dict[SSAValue, SSAValue],
    rules: RuleSet,
    functions: dict[str, func.FuncOp],
    what: str,
) -> None:
    """Append `ops` (detached, in order) to `block`, each followed by the ops of its tangent rule.

    `tangents` maps values to their tangents; it starts with the
    differentiated arguments and gains the tangents of the results. `what`
    names the function being differentiated, for errors.
    """
    for op in ops:
        block.add_op(op)
        operand_tangents = [tangents.get(v) for v in op.operands]
        if all(t is None for t in operand_tangents) or rules.is_nondifferentiable(type(op)):
            seed_tangent_tape(block, op, tangents)  # a growable tape marked as varying (made from nothing)
            continue
        if IS_CALL[type(op)]:
            result_tangents = _custom_call_tangents(block, op, operand_tangents, functions)
        else:
            rule = rules.tangent_rule_for(type(op))
            if rule is None:
                raise _error(
                    f"forward-ad: {op.name} has no tangent rule in rule set {rules.name!r} (differentiating {what})",
                    op,
                )
            builder = TangentBuilder(block, op)
            # Region rules (loops, branches) propagate tangents through their bodies with this.
            builder.propagate = lambda body, body_ops, body_tangents: propagate_tangents(
                body, body_ops, body_tangents, rules, functions, what
            )
            result_tangents = list(rule(builder, op, operand_tangents))
        if len(result_tangents) != len(op.results):
            raise _error(
                f"forward-ad: the tangent rule of {op.name} returned {len(result_tangents)} tangent(s) "
                f"for {len(op.results)} result(s)",
                op,
            )
        for result, tangent in zip(op.results, result_tangents):
            if tangent is None:
                continue
            if tangent.type != result.type:
                raise _error(
                    f"forward-ad: the tangent rule of {op.name} returned a tangent of type {tangent.type} "
                    f"for a result of type {result.type}",
                    op,
                )
            tangents[result] = tangent


def _custom_call_tangents(block: Block, call: func.CallOp, operand_tangents, functions) -> list[SSAValue]:
    """Call the user's tangent rule with (inputs, outputs, input tangents)."""
    callee_name = call.callee.root_reference.data
    rule_name = custom_tangent_rule_of(functions[callee_name])
    if rule_name is None:
        raise _error(
            f"forward-ad: @{callee_name} has a custom reverse rule but no tangent rule; forward mode "
            f"(jvp, jacfwd, hessian, hvp) needs one: define it with @{callee_name}.tangent",
            call,
        )
    rule = functions.get(rule_name)
    if rule is None:
        raise _error(f"forward-ad: the tangent rule @{rule_name} of @{callee_name} is missing", call)
    b = TangentBuilder(block, call)
    args = [*call.arguments, *call.results, *b.zeros_for(operand_tangents, call.arguments)]
    if list(rule.function_type.inputs) != [a.type for a in args] or list(rule.function_type.outputs) != [
        r.type for r in call.results
    ]:
        raise _error(
            f"forward-ad: the tangent rule @{rule_name} has type {rule.function_type}, expected "
            f"(inputs, outputs, input tangents) {[str(a.type) for a in args]} -> outputs "
            f"{[str(r.type) for r in call.results]}",
            call,
        )
    return list(b.append(func.CallOp(rule_name, args, list(rule.function_type.outputs))).results)


class TangentFunctionBuilder:
    """Builds the body of one tangent function (steps 1-4 of the module docstring)."""

    def __init__(self, rules: RuleSet, functions: dict[str, func.FuncOp], jvp_op: R.JvpOp):
        self.rules = rules
        self.functions = functions
        self.jvp_op = jvp_op
        self.callee_name = jvp_op.callee.root_reference.data
        self.callee = functions[self.callee_name]
        self.argnums = jvp_op.argnum_values()

    def build(self, name: str) -> func.FuncOp:
        """The tangent function, built again with a tangent tape for each growable tape found to need one."""
        seeded: set[int] = set()
        while True:
            try:
                return self._build(name, seeded)
            except TangentTapeNeeded as need:
                if need.tape in seeded:  # a seeded tape has a tangent: its pushes cannot ask again
                    raise
                seeded.add(need.tape)

    def _build(self, name: str, seeded_tapes: set[int]) -> func.FuncOp:
        inputs = list(self.callee.function_type.inputs)
        outputs = list(self.callee.function_type.outputs)
        tangent_inputs = [inputs[i] for i in self.argnums]
        block = Block(arg_types=inputs + tangent_inputs)
        primal_args, tangent_args = block.args[: len(inputs)], block.args[len(inputs) :]
        for new, old in zip(primal_args, self.callee.body.block.args):
            new.name_hint = old.name_hint
        for i, tangent in zip(self.argnums, tangent_args):
            hint = self.callee.body.block.args[i].name_hint
            tangent.name_hint = f"d{hint}" if hint else None

        staging = Block()
        returned = self._copy_body(staging, primal_args)
        ops = list(staging.ops)
        tapes = label_tapes(staging)
        for op in ops:
            staging.detach_op(op)
        tangents = {primal_args[i]: t for i, t in zip(self.argnums, tangent_args)}
        mark_tangent_tapes(tapes, seeded_tapes)
        propagate_tangents(block, ops, tangents, self.rules, self.functions, f"@{self.callee_name}")
        unlabel_tapes(block)

        results = list(returned.arguments)
        location = returned.location
        returned.erase()  # never in a block: drop its uses, or the values it returned keep a user outside the IR
        for value in list(results):
            tangent = tangents.get(value)
            if tangent is None:  # an output that does not depend on a differentiated argument
                zero = R.FillOp.make([], value=0.0, shape=R.shape_of(value.type), dtype=R.dtype_of(value.type))
                zero.location = self.jvp_op.location
                block.add_op(zero)
                tangent = zero.results[0]
            results.append(tangent)
        ret = func.ReturnOp(*results)
        ret.location = location
        block.add_op(ret)
        return func.FuncOp(name, (block.arg_types, outputs + outputs), Region(block), visibility="private")

    def _copy_body(self, staging: Block, args: Sequence[SSAValue]) -> func.ReturnOp:
        """The callee's body (or a call to it, if it has a custom rule) in `staging`; returns its return op.

        The return op is not in `staging`.
        """
        if custom_rule_of(self.callee) is not None:
            call = func.CallOp(self.callee_name, list(args), list(self.callee.function_type.outputs))
            call.location = self.jvp_op.location
            staging.add_op(call)
            returned = func.ReturnOp(*call.results)
            returned.location = self.jvp_op.location
            return returned
        value_map = dict(zip(self.callee.body.block.args, args))
        for op in self.callee.body.block.ops:
            staging.add_op(clone_op(op, value_map))
        returned = staging.last_op
        if not isinstance(returned, func.ReturnOp):
            raise _error(f"forward-ad: @{self.callee_name} does not end with func.return", self.jvp_op)
        staging.detach_op(returned)
        inline_plain_calls(staging, self.functions, self.callee_name, self.jvp_op, "forward-ad")
        return returned


class ForwardExpander:
    """Expands every AD op of a module, innermost first: jvps here, gradients with `GradExpander`."""

    def __init__(self, module: ModuleOp, rules: RuleSet):
        self.module = module
        self.rules = rules
        self.gradients = GradExpander(module, rules)
        self.generated: dict[tuple[str, tuple[int, ...]], str] = {}

    def run(self) -> None:
        while True:
            ad_ops = [op for op in walk_ops(self.module) if IS_AD_OP[type(op)]]
            if not ad_ops:
                return
            functions = functions_of(self.module)
            ready = [op for op in ad_ops if not depends_on_ad_op(op.callee.root_reference.data, functions)]
            if not ready:
                raise _error("forward-ad: differentiated functions depend on each other's derivatives in a cycle", ad_ops[0])
            for op in ready:
                if isinstance(op, R.JvpOp):
                    self.expand(op, functions)
                else:
                    self.gradients.expand(op, functions)

    def expand(self, jvp_op: R.JvpOp, functions: dict[str, func.FuncOp]) -> None:
        callee = jvp_op.callee.root_reference.data
        if callee not in functions:
            raise _error(f"{jvp_op.name}: no function named @{callee}", jvp_op)
        argnums = jvp_op.argnum_values()
        key = (callee, argnums)
        name = self.generated.get(key)
        if name is None:
            name = self._unique_name(callee, argnums, len(functions[callee].function_type.inputs))
            function = TangentFunctionBuilder(self.rules, functions, jvp_op).build(name)
            Rewriter.insert_op(function, InsertPoint.after(functions[callee]))
            functions[name] = function
            self.generated[key] = name
        call = func.CallOp(name, [*jvp_op.primals, *jvp_op.tangents], [r.type for r in jvp_op.res])
        call.location = jvp_op.location
        Rewriter.replace_op(jvp_op, call)

    def _unique_name(self, callee: str, argnums: tuple[int, ...], n_args: int) -> str:
        base = f"{callee}_jvp"
        if argnums != tuple(range(n_args)):
            base += "_wrt_" + "_".join(map(str, argnums))
        taken = set(functions_of(self.module))
        name, n = base, 1
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        return name


@pass_dataclass
class ForwardADPass(ModulePass):
    """Replace each raster.jvp by a call to a generated tangent function (and finish nested gradients).

    Option `rules`: the name of the registered rule set to differentiate with.
    """

    name = "forward-ad"

    rules: str = "default"

    def rule_set(self) -> RuleSet:
        """The rule set this pass uses; a research pass may override this method."""
        return rule_set(self.rules)

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        ForwardExpander(op, self.rule_set()).run()
