"""`rm.custom_rule`: give your own function a reverse rule (JAX's custom_vjp, Raster's rrules).

    @rm.custom_rule
    def softplus(x):
        return rm.log(1.0 + rm.exp(x))

    @softplus.rule
    def softplus_rule(x, y, ct):           # primal inputs, primal output, output cotangent
        return (ct * rm.sigmoid(x),)       # one cotangent per input (None: no gradient)

    @softplus.tangent
    def softplus_tangent(x, y, tangents):  # primal inputs, primal output, one tangent per input
        (dx,) = tangents
        return dx * rm.sigmoid(x)          # the output's tangent (nested like the output)

`softplus` is an `@rm.jit` function: it runs eagerly and can be called from
other traced functions. When a gradient flows through a call to it, the
compiler calls the rule instead of differentiating the body; forward mode
(`rm.jvp`, `jacfwd`, `hessian`, `hvp`) calls the tangent rule. The tangent
rule is optional, but forward mode through a function with a custom reverse
rule and no tangent rule is an error (as JAX's custom_vjp): differentiating
the body instead could silently disagree with the user's rule.

The rule is called as `rule(*inputs, outputs, cotangents)`, where `outputs`
and `cotangents` have the nesting of what the function returns (an array,
or a tuple of arrays); a cotangent of an output the loss does not use is an
array of zeros. It returns a tuple with one entry per input: a traced array
of exactly that input's shape and dtype, or None for "no gradient". A
function with a single input may return the array itself instead of a
1-tuple. The rule is traced like any `@rm.jit` function, so it may use every
primitive and call other jit functions.

The tangent rule is called as `tangent(*inputs, outputs, tangents)`, where
`tangents` is a tuple with one tangent per input (zeros for an input that
does not vary); it returns the outputs' tangents nested like the outputs,
each of its output's shape and dtype, or None for a zero tangent. It must
be linear in the tangents.

How it works: when a call to `softplus` is traced, its body becomes a
private `func.func` as usual, the rule is traced into a second function
`(inputs, outputs, cotangents) -> (cotangents of the inputs that have one)`,
and the first carries the attributes `raster.rrule = @softplus_rule` and
`raster.rrule_inputs` (the input positions the rule returns cotangents
for); a tangent rule is traced into a third function `(inputs, outputs,
input tangents) -> output tangents`, named by `raster.tangent_rule`. The
inline pass keeps such calls while an AD op remains; the autodiff pass emits
a call to the rule function for their cotangents, forward-ad one to the
tangent rule for their tangents; the second inline pass then inlines
everything.
"""

from __future__ import annotations

import linecache
from collections.abc import Callable, Sequence
from typing import Any

from xdsl.dialects import func

from raster_mlir.dialects import raster as R
from raster_mlir.dialects.raster_rules import attach_custom_rule, attach_custom_tangent_rule, custom_rule_of
from raster_mlir.errors import GradientError, with_location
from raster_mlir.frontend.pytree import flatten, unflatten
from raster_mlir.frontend.source import SourceLocation, user_location
from raster_mlir.frontend.tracer import FunctionScope, TracedArray, active_scope
from raster_mlir.jit import JitFunction


def keep_alive_during_trace(trace, *objects) -> None:
    """Hold `objects` as long as the module trace lives.

    The trace shares traced callees by `id(fn)`; a function freed during the
    trace (a lambda, the wrapper of a one-off `rm.grad(f)`) could hand its
    id to the next one, which would then be mistaken for it.
    """
    held = trace.__dict__.setdefault("_raster_keep_alive", [])
    held.extend(objects)


class CustomRuleFunction(JitFunction):
    """A jit function whose gradient comes from a user-given reverse rule (see the module docstring)."""

    def __init__(
        self, fn: Callable, rule: Callable | None = None, *, tangent: Callable | None = None, name: str | None = None
    ):
        super().__init__(fn, name=name)
        self.rule_fn = rule
        self.tangent_fn = tangent
        self._tracing_rule: set[tuple] = set()

    def rule(self, rule_fn: Callable) -> Callable:
        """Decorator: use `rule_fn(*inputs, outputs, cotangents)` as this function's reverse rule.

        A new rule applies to what is compiled afterwards; functions already
        compiled keep the rule they were traced with (as jit caches do).
        """
        if isinstance(rule_fn, JitFunction):
            rule_fn = rule_fn.fn
        if not callable(rule_fn):
            raise GradientError(f"{self.name}.rule: expected a function, got {type(rule_fn).__name__}")
        self.rule_fn = rule_fn
        return rule_fn

    def tangent(self, tangent_fn: Callable) -> Callable:
        """Decorator: use `tangent_fn(*inputs, outputs, tangents)` as this function's tangent rule."""
        if isinstance(tangent_fn, JitFunction):
            tangent_fn = tangent_fn.fn
        if not callable(tangent_fn):
            raise GradientError(f"{self.name}.tangent: expected a function, got {type(tangent_fn).__name__}")
        self.tangent_fn = tangent_fn
        return tangent_fn

    # -- tracing (JitFunction.__call__ -> call_traced -> trace_into) ---------------------
    def trace_into(self, scope: FunctionScope, arg_types: Sequence) -> tuple[str, Any]:
        """Trace the function (once per signature) and its rule into scope's module; (symbol, output tree)."""
        if self.rule_fn is None:
            loc = user_location()
            raise with_location(
                GradientError(
                    f"{self.name} is declared with @rm.custom_rule but has no rule; "
                    f"define one with @{self.name}.rule"
                ),
                loc,
            )
        types = tuple(arg_types)
        keep_alive_during_trace(scope.trace, self, self.fn, self.rule_fn)
        key = ("custom_rule", id(self.fn), types)
        symbol, tree = scope.trace.trace_function(self.fn, self.name, list(types), key=key)
        callee = scope.trace.function(symbol)
        rule_key = (id(scope.trace), key)
        if custom_rule_of(callee) is None and rule_key not in self._tracing_rule:
            # The rule may call this function itself; the guard stops the recursion.
            self._tracing_rule.add(rule_key)
            try:
                rule_symbol, positions = self._trace_rule(scope, callee, tree)
                attach_custom_rule(callee, rule_symbol, positions)
                if self.tangent_fn is not None:
                    keep_alive_during_trace(scope.trace, self.tangent_fn)
                    attach_custom_tangent_rule(callee, self._trace_tangent_rule(scope, callee, tree))
            finally:
                self._tracing_rule.discard(rule_key)
        return symbol, tree

    def _trace_rule(self, scope: FunctionScope, callee: func.FuncOp, tree) -> tuple[str, tuple[int, ...]]:
        inputs = list(callee.function_type.inputs)
        outputs = list(callee.function_type.outputs)
        n_in, n_out = len(inputs), len(outputs)
        rule_fn, name = self.rule_fn, self.name
        positions: list[int] = []

        def rule_body(*flat):
            xs = flat[:n_in]
            ys = unflatten(tree, list(flat[n_in : n_in + n_out]))
            cts = unflatten(tree, list(flat[n_in + n_out :]))
            out = rule_fn(*xs, ys, cts)
            try:
                return check(out)
            except GradientError as e:
                raise with_location(e, _definition_site(rule_fn)) from None

        def check(out):
            if n_in == 1 and not isinstance(out, (tuple, list)):
                out = (out,)
            if not isinstance(out, (tuple, list)) or len(out) != n_in:
                got = f"{len(out)} value(s)" if isinstance(out, (tuple, list)) else type(out).__name__
                raise GradientError(
                    f"the rule of {name} must return a tuple of {n_in} cotangent(s) (one per input, "
                    f"None for no gradient), it returned {got}"
                )
            kept = []
            for i, (ct, t) in enumerate(zip(out, inputs)):
                if ct is None:
                    continue
                _check_result(f"the rule of {name}", ct, t, f"input {i}", "a cotangent must have its input's")
                positions.append(i)
                kept.append(ct)
            # A rule with no gradient at all still needs one result to be a function.
            return tuple(kept) if kept else 0.0

        rule_types = inputs + outputs + outputs
        # One rule function per traced callee (the key only makes it private and unique).
        rule_key = ("custom_rule.rule", id(callee))
        symbol, _ = scope.trace.trace_function(rule_body, f"{name}_rule", rule_types, key=rule_key)
        return symbol, tuple(positions)


    def _trace_tangent_rule(self, scope: FunctionScope, callee: func.FuncOp, tree) -> str:
        """Trace the tangent rule into `(inputs, outputs, input tangents) -> output tangents`."""
        inputs = list(callee.function_type.inputs)
        outputs = list(callee.function_type.outputs)
        n_in, n_out = len(inputs), len(outputs)
        tangent_fn, name = self.tangent_fn, self.name

        def tangent_body(*flat):
            xs = flat[:n_in]
            ys = unflatten(tree, list(flat[n_in : n_in + n_out]))
            out = tangent_fn(*xs, ys, tuple(flat[n_in + n_out :]))
            try:
                return check(out)
            except GradientError as e:
                raise with_location(e, _definition_site(tangent_fn)) from None

        def check(out):
            leaves, _ = flatten(out)
            if len(leaves) != n_out:
                raise GradientError(
                    f"the tangent rule of {name} must return {n_out} tangent(s) nested like {name}'s output, "
                    f"it returned {len(leaves)}"
                )
            kept = []
            for i, (t, out_type) in enumerate(zip(leaves, outputs)):
                if t is None:  # a zero tangent
                    zero = R.FillOp.make([], value=0.0, shape=R.shape_of(out_type), dtype=R.dtype_of(out_type))
                    t = TracedArray(active_scope(), active_scope().append(zero, None).results[0])
                _check_result(f"the tangent rule of {name}", t, out_type, f"output {i}", "a tangent must have its output's")
                kept.append(t)
            return tuple(kept)

        key = ("custom_rule.tangent", id(callee))
        symbol, _ = scope.trace.trace_function(tangent_body, f"{name}_tangent", inputs + outputs + inputs, key=key)
        return symbol


def _check_result(rule: str, value, expected, slot: str, requirement: str) -> None:
    """A GradientError unless `value` is a traced array of type `expected`."""
    if not isinstance(value, TracedArray) or value.value.type != expected:
        what = f"{value.shape} {value.dtype_name}" if isinstance(value, TracedArray) else type(value).__name__
        raise GradientError(
            f"{rule} returned {what} for {slot}, which is {R.shape_of(expected)} {R.dtype_of(expected)}; "
            f"{requirement} shape and dtype"
        )


def _definition_site(fn: Callable) -> str | None:
    """`file.py:12: def my_rule(...)` for a Python function, None if unknown."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    line = code.co_firstlineno  # the first decorator's line; step to the `def`
    for candidate in range(line, line + 10):
        if linecache.getline(code.co_filename, candidate).lstrip().startswith(("def ", "async def ")):
            line = candidate
            break
    return str(SourceLocation(code.co_filename, line, 0))


def custom_rule(fn: Callable | None = None, *, rule: Callable | None = None, tangent: Callable | None = None):
    """Decorator: make `fn` a jit function with a custom reverse rule (and optionally a tangent rule).

    Give the rules with `@fn.rule` and `@fn.tangent` (or
    `rm.custom_rule(fn, rule=my_rule, tangent=my_tangent)`); see the module
    docstring for their signatures.
    """
    if fn is None:
        return lambda f: custom_rule(f, rule=rule, tangent=tangent)
    if isinstance(fn, JitFunction):
        fn = fn.fn
    return CustomRuleFunction(fn, rule, tangent=tangent, name=getattr(fn, "__name__", "fn"))


__all__ = ["custom_rule", "CustomRuleFunction"]

