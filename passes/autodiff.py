"""`autodiff`: expand `raster.grad` / `raster.value_and_grad` into gradient functions.

Algorithm, for each grad op `raster.grad @f(args) argnums = [...]`:

1. Build a private function `@f_grad` (`@f_value_and_grad`; `_wrt_0_2` is
   appended when only some arguments are differentiated) with f's signature.
2. Forward: copy f's body into it. Calls in the copy to functions without a
   custom rule are inlined into it (the pipeline's `inline` normally removed
   them already); a call to a function with a custom rule (`rm.custom_rule`)
   stays a call. If f itself has a custom rule, the forward is a call to f.
3. Prune: the block's op order is already a topological order, so two
   linear sweeps (no recursion) find the ops on a path from the
   differentiated arguments to the output — forward: values that depend on
   a differentiated argument (results of ops marked non-differentiable do
   not); backward: values the output depends on.
4. Backward: seed the output's cotangent with `raster.fill 1.0`, walk the
   pruned ops in reverse order and apply each op's reverse rule from the
   pass's rule set. Cotangents of a value used more than once are summed
   with `raster.add`. A multi-result op gets None for a result nobody used;
   a custom-rule call gets a `raster.fill 0.0` there (only where needed).
   For a custom-rule call the rule function is called with (inputs,
   outputs, output cotangents).
5. Return (value,) + one gradient per differentiated argument; an argument
   the output does not depend on gets `raster.fill 0.0`.
6. Replace the grad op by a `func.call` of the new function. The next
   `inline` inlines it; canonicalize / CSE / DCE remove what is unused
   (e.g. the forward value in `@f_grad`).

Every generated op takes the location of the primal op it differentiates.
A grad op whose callee contains another AD op (a gradient of a gradient)
is expanded after that inner one; one whose callee holds a `raster.jvp`
is left to the `forward-ad` pass, which expands both kinds innermost first. Ops on the path without a rule raise a
`GradientError` naming the op and the user's line.

Rule sets: the option `rules` names a registered `RuleSet`
(`autodiff{rules=default}`; see `raster_mlir.dialects.raster_rules`), and a
subclass may override `rule_set()` instead.

Before:
    func.func private @f(%x: tensor<3xf64>) -> tensor<f64> {
      %0 = raster.relu %x : tensor<3xf64>
      %1 = raster.sum %0 : tensor<3xf64> -> tensor<f64>
      func.return %1 : tensor<f64>
    }
    func.func @main(%x: tensor<3xf64>) -> tensor<3xf64> {
      %g = raster.grad @f(%x) argnums = [0] : (tensor<3xf64>) -> tensor<3xf64>
      func.return %g : tensor<3xf64>
    }
After:
    func.func private @f(...)  { ... unchanged ... }
    func.func private @f_grad(%x: tensor<3xf64>) -> tensor<3xf64> {
      %0 = raster.relu %x : tensor<3xf64>
      %1 = raster.sum %0 : tensor<3xf64> -> tensor<f64>
      %2 = raster.fill 1.000000e+00 : f64 : tensor<f64>
      %3 = raster.broadcast_to %2 : tensor<f64> -> tensor<3xf64>
      %4 = raster.fill 0.000000e+00 : f64 : tensor<f64>
      %5 = raster.greater %x, %4 : tensor<3xf64>, tensor<f64> -> tensor<3xf64>
      %6 = raster.mul %3, %5 : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
      func.return %6 : tensor<3xf64>
    }
    func.func @main(%x: tensor<3xf64>) -> tensor<3xf64> {
      %g = func.call @f_grad(%x) : (tensor<3xf64>) -> tensor<3xf64>
      func.return %g : tensor<3xf64>
    }
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import FileLineColLoc, ModuleOp
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from raster_mlir.dialects import raster as R
from raster_mlir.dialects.raster_rules_index import accumulate
from raster_mlir.dialects.raster_tape import growable_tapes_read, growable_tapes_written
from raster_mlir.dialects.raster_rules import (
    ReverseBuilder,
    RuleSet,
    custom_rule_of,
    describe_location,
    rule_set,
)
from raster_mlir.errors import GradientError, with_location
from raster_mlir.ir_clone import clone_op
from raster_mlir.ir_walk import walk_ops
from raster_mlir.passes.inline import IS_CALL, functions_of, inline_call
from raster_mlir.passes.pass_dataclass import pass_dataclass
from raster_mlir.per_class import subclass_test

GRAD_OPS = (R.GradOp, R.ValueAndGradOp)
# isinstance against these, answered per op class (the walks ask it of every op of the module)
IS_GRAD_OP, IS_AD_OP, IS_JVP = map(subclass_test, (GRAD_OPS, R.AD_OPS, R.JvpOp))


def _error(message: str, op: Operation | None) -> GradientError:
    where = describe_location(op) if op is not None else None
    return with_location(GradientError(message), where)


def has_custom_rule(call: func.CallOp, functions: dict[str, func.FuncOp]) -> bool:
    callee = functions.get(call.callee.root_reference.data)
    return callee is not None and custom_rule_of(callee) is not None


def inline_plain_calls(block: Block, functions: dict[str, func.FuncOp], name: str, where: Operation, pass_name: str):
    """Inline the calls in `block` to functions without a custom rule, until none is left.

    `name` is the function being differentiated and `where` the AD op, for errors.
    """
    for _ in range(len(functions) + 1):
        calls = [op for op in block.ops if IS_CALL[type(op)] and not has_custom_rule(op, functions)]
        if not calls:
            return
        for call in calls:
            callee = functions.get(call.callee.root_reference.data)
            if callee is None or not callee.body.blocks:
                raise _error(
                    f"{pass_name}: cannot differentiate through the call to @{call.callee.root_reference.data}: "
                    "it has neither a body nor a custom rule",
                    call,
                )
            inline_call(call, callee)
    raise _error(f"{pass_name}: @{name} calls itself recursively", where)


def depends_on_ad_op(name: str, functions: dict[str, func.FuncOp]) -> bool:
    """True when function `name`, or a function it calls (custom-rule callees aside), holds an AD op."""
    todo = [name]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        function = functions.get(name)
        if name in seen or function is None or custom_rule_of(function) is not None:
            continue
        seen.add(name)
        for op in walk_ops(function):
            if IS_AD_OP[type(op)]:
                return True
            if IS_CALL[type(op)]:
                todo.append(op.callee.root_reference.data)
    return False


class GradientFunctionBuilder:
    """Builds the body of one gradient function (steps 2-5 of the module docstring)."""

    def __init__(self, rules: RuleSet, functions: dict[str, func.FuncOp], grad_op: R.GradOp | R.ValueAndGradOp):
        self.rules = rules
        self.functions = functions
        self.grad_op = grad_op
        self.callee_name = grad_op.callee.root_reference.data
        self.callee = functions[self.callee_name]
        self.argnums = grad_op.argnum_values()
        self.with_value = isinstance(grad_op, R.ValueAndGradOp)

    # -- entry point ------------------------------------------------------------
    def build(self, name: str) -> func.FuncOp:
        inputs = list(self.callee.function_type.inputs)
        block = Block(arg_types=inputs)
        for new, old in zip(block.args, self.callee.body.block.args):
            new.name_hint = old.name_hint
        output, output_loc = self._forward(block)
        wrt = [block.args[i] for i in self.argnums]

        def seed():
            op = R.FillOp.make([], value=1.0, shape=R.shape_of(output.type), dtype=R.dtype_of(output.type))
            op.location = output_loc
            block.add_op(op)
            return op.results[0]

        cotangents, (output,) = self.adjoint(block, wrt, [output], [seed])

        grads = []
        for arg in wrt:
            ct = cotangents.get(arg)
            if ct is None:  # the output does not depend on this argument
                zero = R.FillOp.make([], value=0.0, shape=R.shape_of(arg.type), dtype=R.dtype_of(arg.type))
                zero.location = self.grad_op.location
                block.add_op(zero)
                ct = zero.results[0]
            grads.append(ct)
        results = ([output] if self.with_value else []) + grads
        ret = func.ReturnOp(*results)
        ret.location = self.grad_op.location
        block.add_op(ret)
        return func.FuncOp(name, (inputs, [r.type for r in results]), Region(block), visibility="private")

    # -- forward ----------------------------------------------------------------
    def _forward(self, block: Block) -> tuple[SSAValue, object]:
        """Copy (or call) the callee into `block`; returns its output value and the return's location."""
        if custom_rule_of(self.callee) is not None:
            call = func.CallOp(self.callee_name, list(block.args), list(self.callee.function_type.outputs))
            call.location = self.grad_op.location
            block.add_op(call)
            return call.results[0], self.grad_op.location
        value_map = dict(zip(self.callee.body.block.args, block.args))
        for op in self.callee.body.block.ops:
            block.add_op(clone_op(op, value_map))
        ret = block.last_op
        if not isinstance(ret, func.ReturnOp):
            raise _error(f"autodiff: @{self.callee_name} does not end with func.return", self.grad_op)
        self._inline_plain_calls(block)
        output, loc = ret.arguments[0], ret.location
        block.erase_op(ret)
        if not isinstance(loc, FileLineColLoc):
            loc = self.grad_op.location
        return output, loc

    def _inline_plain_calls(self, block: Block) -> None:
        inline_plain_calls(block, self.functions, self.callee_name, self.grad_op, "autodiff")

    def _has_custom_rule(self, call: func.CallOp) -> bool:
        return has_custom_rule(call, self.functions)

    # -- the reverse sweep of one block -------------------------------------------
    def adjoint(self, block: Block, wrt: Sequence[SSAValue], outputs: Sequence[SSAValue], output_cts) -> tuple[dict, list]:
        """Append to `block` the reverse sweep of its ops, from `outputs` back to `wrt`.

        `output_cts[k]` is the cotangent of `outputs[k]` (None: none; a callable
        makes it on demand, when the output depends on `wrt` at all). Ops on
        the path whose rule has an `augment` step (loops: they record a tape)
        are first replaced by their augmented form. Returns (the cotangent of
        every value reached, the outputs after augmentation). Used for a
        gradient function's body and, by the loop and branch rules
        (dialects/raster_rules_control.py), for the bodies of region ops.
        """
        path, varied = self._ops_on_path(list(block.ops), wrt, outputs)
        outputs = self._augment(path, varied, list(outputs))
        cotangents: dict[SSAValue, SSAValue] = {}
        for output, ct in zip(outputs, output_cts):
            if output in varied and ct is not None:
                ct = ct() if callable(ct) else ct
                self._accumulate(block, cotangents, output, ct, self.grad_op)
        for op in path:
            result_cts = [cotangents.get(r) for r in op.results]
            if all(ct is None for ct in result_cts):
                continue
            needs = [v in varied for v in op.operands]
            contributions = self._reverse(block, op, result_cts, needs)
            for operand, ct, need in zip(op.operands, contributions, needs):
                if ct is not None and need:
                    self._accumulate(block, cotangents, operand, ct, op)
        return cotangents, outputs

    def _augment(self, path: list[Operation], varied: set[SSAValue], outputs: list[SSAValue]) -> list[SSAValue]:
        """Replace each op of `path` whose rule has an `augment` step by what it returns (in place)."""
        replaced: dict[SSAValue, SSAValue] = {}
        for k in range(len(path) - 1, -1, -1):  # forward order
            op = path[k]
            augment = getattr(self.rules.rule_for(type(op)), "augment", None)
            if augment is None:
                continue
            new = augment(self, op)  # inserted before `op`, with whatever it needs
            for old, result in zip(op.results, new.results):
                replaced[old] = result
                if old in varied:
                    varied.add(result)
            for old, result in zip(op.results, new.results):
                old.replace_all_uses_with(result)
            op.detach()
            op.erase()
            path[k] = new
        return [replaced.get(o, o) for o in outputs]

    # -- pruning ------------------------------------------------------------------
    def _ops_on_path(self, ops: Sequence[Operation], wrt: Sequence[SSAValue], outputs: Sequence[SSAValue]):
        """(ops from `wrt` to `outputs`, in reverse order; the set of varied values).

        Only float values vary: traced integers (loop indices) carry no gradient.
        """
        varied: set[SSAValue] = set(wrt)
        for op in ops:  # block order is topological
            if self.rules.is_nondifferentiable(type(op)):
                continue
            if any(v in varied for v in op.operands):
                varied.update(r for r in op.results if R.is_float_type(r.type))
                varied.update(growable_tapes_written(op))  # a tape's rows vary with what was pushed
        useful: set[SSAValue] = set(outputs)
        inputs = set(wrt)
        path = []
        for op in reversed(ops):
            results = op.results
            if results and all(r in inputs for r in results):
                continue  # it makes the values differentiated with respect to: the sweep stops there
            if any(r in useful for r in results):
                useful.update(op.operands)
                if any(r in varied for r in results):
                    path.append(op)
        for op in path:
            if any(t in varied for t in growable_tapes_read(op)):
                raise _error(
                    "autodiff: reverse mode over the reverse pass of a loop with a run-time trip count "
                    "(rm.while_loop, or rm.fori_loop with traced bounds) is not supported: its growable tape "
                    "has no cotangent. Use static bounds (rm.fori_loop with Python ints, rm.scan) for a "
                    f"gradient of such a gradient (differentiating @{self.callee_name})",
                    op,
                )
        return path, varied

    # -- backward -----------------------------------------------------------------
    def _reverse(self, block: Block, op: Operation, cts, needs) -> Sequence[SSAValue | None]:
        if IS_CALL[type(op)]:
            return self._reverse_custom_call(block, op, cts, needs)
        rule = self.rules.rule_for(type(op))
        if rule is None:
            raise _error(
                f"autodiff: {op.name} has no reverse rule in rule set {self.rules.name!r} "
                f"(differentiating @{self.callee_name})",
                op,
            )
        builder = ReverseBuilder(block, op, needs)
        builder.sweep = self  # region rules differentiate their bodies with `adjoint`
        out = list(rule(builder, op, cts))
        if len(out) != len(op.operands):
            raise _error(
                f"autodiff: the reverse rule of {op.name} returned {len(out)} cotangent(s) "
                f"for {len(op.operands)} operand(s)",
                op,
            )
        return out

    def _reverse_custom_call(self, block: Block, call: func.CallOp, cts, needs):
        """Call the user's rule function with (inputs, outputs, output cotangents)."""
        callee = self.functions[call.callee.root_reference.data]
        rule_name, positions = custom_rule_of(callee)
        rule = self.functions.get(rule_name)
        if rule is None:
            raise _error(f"autodiff: the custom rule @{rule_name} of @{callee.sym_name.data} is missing", call)
        b = ReverseBuilder(block, call, needs)
        full_cts = [ct if ct is not None else b.zeros_like(r) for ct, r in zip(cts, call.results)]
        args = [*call.arguments, *call.results, *full_cts]
        if list(rule.function_type.inputs) != [a.type for a in args]:
            raise _error(
                f"autodiff: the custom rule @{rule_name} takes {[str(t) for t in rule.function_type.inputs]}, "
                f"expected (inputs, outputs, cotangents) {[str(a.type) for a in args]}",
                call,
            )
        rule_call = b.append(func.CallOp(rule_name, args, list(rule.function_type.outputs)))
        out: list[SSAValue | None] = [None] * len(call.arguments)
        for result, position in zip(rule_call.results, positions):
            out[position] = result
        return out

    def _accumulate(self, block, cotangents, value: SSAValue, ct: SSAValue, op: Operation) -> None:
        if ct.type != value.type:
            raise _error(
                f"autodiff: the reverse rule of {op.name} returned a cotangent of type {ct.type} "
                f"for an operand of type {value.type}",
                op,
            )
        previous = cotangents.get(value)
        if previous is None:
            cotangents[value] = ct
        else:  # a value used more than once: sum its cotangents
            cotangents[value] = accumulate(ReverseBuilder(block, op, ()), previous, ct)


class GradExpander:
    """Expands every grad op of a module, innermost gradients first."""

    def __init__(self, module: ModuleOp, rules: RuleSet):
        self.module = module
        self.rules = rules
        self.generated: dict[tuple[str, bool, tuple[int, ...]], str] = {}

    def run(self) -> None:
        while True:
            grad_ops = [op for op in walk_ops(self.module) if IS_GRAD_OP[type(op)]]
            if not grad_ops:
                return
            functions = functions_of(self.module)
            ready = [g for g in grad_ops if not self._needs_inner_expansion(g, functions)]
            if not ready and any(IS_JVP[type(op)] for op in walk_ops(self.module)):
                return  # gradients of forward-mode results: forward-ad expands both, innermost first
            if not ready:
                raise _error("autodiff: differentiated functions depend on each other's gradients in a cycle", grad_ops[0])
            for grad_op in ready:
                self.expand(grad_op, functions)

    def _needs_inner_expansion(self, grad_op, functions) -> bool:
        """True when a function whose body the gradient copies still contains an AD op."""
        return depends_on_ad_op(grad_op.callee.root_reference.data, functions)

    def expand(self, grad_op, functions) -> None:
        """Replace one grad op (whose callee holds no AD op any more) by a call to its gradient function."""
        callee = grad_op.callee.root_reference.data
        if callee not in functions:
            raise _error(f"{grad_op.name}: no function named @{callee}", grad_op)
        with_value = isinstance(grad_op, R.ValueAndGradOp)
        argnums = grad_op.argnum_values()
        key = (callee, with_value, argnums)
        name = self.generated.get(key)
        if name is None:
            name = self._unique_name(callee, with_value, argnums, len(functions[callee].function_type.inputs))
            function = GradientFunctionBuilder(self.rules, functions, grad_op).build(name)
            Rewriter.insert_op(function, InsertPoint.after(functions[callee]))
            functions[name] = function
            self.generated[key] = name
        call = func.CallOp(name, list(grad_op.args), [r.type for r in grad_op.res])
        call.location = grad_op.location
        Rewriter.replace_op(grad_op, call)

    def _unique_name(self, callee: str, with_value: bool, argnums: tuple[int, ...], n_args: int) -> str:
        base = f"{callee}_{'value_and_grad' if with_value else 'grad'}"
        if argnums != tuple(range(n_args)):
            base += "_wrt_" + "_".join(map(str, argnums))
        taken = set(functions_of(self.module))
        name, n = base, 1
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        return name


@pass_dataclass
class AutodiffPass(ModulePass):
    """Replace each raster.grad / raster.value_and_grad by a call to a generated gradient function.

    Option `rules`: the name of the registered rule set to differentiate with.
    """

    name = "autodiff"

    rules: str = "default"

    def rule_set(self) -> RuleSet:
        """The rule set this pass uses; a research pass may override this method."""
        return rule_set(self.rules)

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        GradExpander(op, self.rule_set()).run()
