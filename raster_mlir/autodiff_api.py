"""`rm.grad` and `rm.value_and_grad`: emit `raster.grad` ops; the autodiff pass expands them.

Both return a `JitFunction`, so calling them on numpy arrays compiles per
signature like any `@rm.jit` function, and calling them inside a traced
function emits the op into that trace (gradients compose with user code).

`argnums` follows JAX: None differentiates every argument and returns a tuple
of gradients; an int returns one gradient; a tuple returns a tuple. An argument
may be a pytree (tuples, lists, dicts of arrays): its gradient has its structure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from raster_mlir import call_variants
from raster_mlir.custom_rule import keep_alive_during_trace
from raster_mlir.dialects import raster as R
from raster_mlir.errors import GradientError, with_location
from raster_mlir.frontend.pytree import flatten, unflatten
from raster_mlir.frontend.source import user_location
from raster_mlir.frontend.tracer import TracedArray, active_scope
from raster_mlir.jit import JitFunction, jit


def _normalize_argnums(name: str, argnums, n_args: int) -> tuple[int, ...]:
    nums = tuple(range(n_args)) if argnums is None else (argnums,) if isinstance(argnums, int) else tuple(argnums)
    out = []
    for i in nums:
        if not isinstance(i, int) or not -n_args <= i < n_args:
            raise GradientError(f"{name}: argnums {argnums!r} out of range for {n_args} argument(s)")
        out.append(i % n_args)
    if len(set(out)) != len(out):
        raise GradientError(f"{name}: argnums {argnums!r} repeats an argument")
    return tuple(out)


def _emit(op_cls: type, f: JitFunction, argnums, args: Sequence, kwargs: dict, wrapper: Callable):
    """Trace f (as a private callee) and emit grad / value_and_grad on the current trace. Keyword
    arguments are passed to f and not differentiated (as in JAX): f's keyword variant takes their
    values after the positional arguments."""
    scope = active_scope()
    keep_alive_during_trace(scope.trace, f, f.fn, wrapper)
    loc = user_location()
    where = loc
    try:
        nums = _normalize_argnums(op_cls.name, argnums, len(args))
    except GradientError as e:
        raise with_location(e, where) from None
    if kwargs:
        f = f.keyword_variant(tuple(args), kwargs)
        keep_alive_during_trace(scope.trace, f, f.fn)
        args = (*args, *kwargs.values())
    callee, leaves, leaf_nums = f, args, nums
    if call_variants.has_containers(args):  # (pytrees of arrays: differentiate every leaf of the selected ones)
        leaves, tree, owners = call_variants.leaves_of(args)
        callee = f.tree_variant(tree)
        keep_alive_during_trace(scope.trace, callee, callee.fn)
        leaf_nums = tuple(k for i in nums for k, owner in enumerate(owners) if owner == i)
    values = scope.lift_args(leaves, loc)
    symbol, _ = callee.trace_into(scope, [v.type for v in values])  # a custom-rule callee carries its rule
    outputs = list(scope.trace.function(symbol).function_type.outputs)
    if len(outputs) != 1 or R.shape_of(outputs[0]) != ():  # one scalar, maybe nested: grad(grad(f))
        shapes = [R.shape_of(t) for t in outputs]
        raise with_location(
            GradientError(
                f"{op_cls.name}: {f.name} must return one scalar to be differentiated, "
                f"it returns shape(s) {shapes}"
            ),
            where,
        )
    op = op_cls.make(symbol, values, leaf_nums, outputs[0])
    scope.append(op, loc)
    results = [TracedArray(scope, r) for r in op.results]
    if callee is f:
        return results
    # One gradient per selected argument, of its structure (the op's results follow leaf_nums).
    n_values = len(results) - len(leaf_nums)
    grads = iter(results[n_values:])
    regrouped = []
    for i in nums:
        arg_leaves, arg_tree = flatten(args[i])
        regrouped.append(unflatten(arg_tree, [next(grads) for _ in arg_leaves]))
    return results[:n_values] + regrouped


def value_and_grad(f: Callable, argnums: int | Sequence[int] | None = None, has_aux: bool = False) -> JitFunction:
    """A function returning (f(*args), gradients of f w.r.t. the arguments in argnums). With
    `has_aux=True` (JAX's convention) f returns `(scalar, aux)`, aux any pytree of arrays, and the
    function returns `((value, aux), gradients)`."""
    target = jit(f)
    differentiated = _first_output(target) if has_aux else target

    def value_and_grad_fn(*args, **kwargs):
        results = _emit(R.ValueAndGradOp, differentiated, argnums, args, kwargs, value_and_grad_fn)
        grads = results[1:]
        grads = grads[0] if isinstance(argnums, int) else tuple(grads)
        return ((results[0], _aux(target, args, kwargs)) if has_aux else results[0]), grads

    return JitFunction(value_and_grad_fn, name=f"value_and_grad_{target.name}")


def grad(f: Callable, argnums: int | Sequence[int] | None = None, has_aux: bool = False) -> JitFunction:
    """A function returning the gradients of scalar f w.r.t. the arguments in argnums; with
    `has_aux=True` f returns `(scalar, aux)` and the function `(gradients, aux)`."""
    target = jit(f)
    differentiated = _first_output(target) if has_aux else target

    def grad_fn(*args, **kwargs):
        grads = _emit(R.GradOp, differentiated, argnums, args, kwargs, grad_fn)
        grads = grads[0] if isinstance(argnums, int) else tuple(grads)
        return (grads, _aux(target, args, kwargs)) if has_aux else grads

    return JitFunction(grad_fn, name=f"grad_{target.name}")


def _split_aux(target: JitFunction, out):
    """`(value, aux)` from what a `has_aux=True` function returned, or a GradientError naming it."""
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        error = GradientError(
            f"{target.name} was differentiated with has_aux=True, so it must return a pair (scalar, aux); "
            f"it returns {type(out).__name__}{f' of {len(out)} values' if isinstance(out, (tuple, list)) else ''}"
        )
        raise with_location(error, user_location())
    return out


def _first_output(target: JitFunction) -> JitFunction:
    """The scalar a `has_aux=True` function returns first, as the function to differentiate. The
    auxiliary outputs come from a second call of `target` in the same trace (`_aux`): after inlining,
    cse merges the two copies of the forward computation."""
    return JitFunction(lambda *args, **kwargs: _split_aux(target, target(*args, **kwargs))[0], name=target.name)


def _aux(target: JitFunction, args, kwargs):
    return _split_aux(target, target(*args, **kwargs))[1]
