"""Loops and branches: `rm.fori_loop`, `rm.scan`, `rm.while_loop`, `rm.cond`, `rm.checkpoint`.

JAX's names and semantics. Inside `@rm.jit` (or `rm.grad`...) each call
traces its body once into one region op, compiled to a real loop: the
compile time does not grow with the trip count, unlike a Python `for`,
which the tracer unrolls. Outside any trace they run eagerly on numpy
arrays as plain Python loops (the loop index is then a Python int).

Carries are pytrees (tuples, lists, dicts) of arrays or numbers; the body
must keep their structure, shapes and dtypes. Reverse mode differentiates
through all four (passes/autodiff_loops.py): a loop stores its carries on a
tape, one per iteration, and runs the body's adjoint in a reverse loop;
`checkpoint=` (or `rm.checkpoint(body)`) stores only some of them and
recomputes the rest.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from raster_mlir.errors import RasterError, ShapeError, TraceError, with_location
from raster_mlir.frontend import trace_control as T
from raster_mlir.frontend.pytree import describe, flatten, unflatten
from raster_mlir.frontend.source import user_location
from raster_mlir.frontend.tracer import TracedArray, active_scope

# ---------------------------------------------------------------------------
# Checkpointing policies


class Checkpointed:
    """A loop body marked by `rm.checkpoint`: reverse mode keeps every K-th carry and recomputes the rest."""

    def __init__(self, fn: Callable, every: int | str = "sqrt"):
        self.fn = fn
        self.every = every
        self.__name__ = getattr(fn, "__name__", "body")
        self.__wrapped__ = fn

    def __call__(self, *args):
        return self.fn(*args)


def checkpoint(fn: Callable | None = None, *, every: int | str = "sqrt"):
    """Mark a loop body for checkpointed reverse mode (usable as a decorator, with or without `every=`).

    `rm.fori_loop(0, n, rm.checkpoint(body), x0)`: the gradient stores the
    carry every `every` steps (`"sqrt"`: about sqrt(n) steps, so about
    2 sqrt(n) carries in memory at once) and recomputes the steps in between.
    The value is unchanged. Outside a loop, `rm.checkpoint(f)(x)` is `f(x)`:
    a straight-line function keeps its intermediate values in the compiled
    function's workspace either way.
    """
    if fn is None:
        return lambda f: Checkpointed(f, every)
    return Checkpointed(fn, every)


def checkpoint_steps(policy: int | str | None, trip_count: int | None, who: str) -> int | None:
    """Steps per stored carry for a policy (None: store every carry)."""
    if policy is None or policy is False:
        return None
    if isinstance(policy, str):
        if policy != "sqrt":
            raise TraceError(f"{who}: unknown checkpoint policy {policy!r} (use an int K or 'sqrt')")
        if trip_count is None:
            raise TraceError(f"{who}: checkpoint='sqrt' needs a trip count known while tracing (static bounds)")
        return sqrt_segment(trip_count)
    if isinstance(policy, bool) or not isinstance(policy, (int, np.integer)) or policy < 1:
        raise TraceError(f"{who}: checkpoint must be a positive int (steps per stored carry) or 'sqrt', got {policy!r}")
    if trip_count is None:
        raise TraceError(
            f"{who}: checkpoint={policy!r} needs a trip count known while tracing (static bounds); a loop "
            "with a run-time trip count keeps every carry on a tape that grows while it runs"
        )
    return int(policy)


def sqrt_segment(n: int) -> int:
    """The segment length K that minimises the carries stored at once, (ceil(n/K) - 1) + (K - 1)."""
    if n <= 1:
        return 1
    best = min(range(1, math.isqrt(n) + 2), key=lambda k: (math.ceil(n / k) - 1 + k - 1, k))
    return best


def _policy(body: Callable, checkpoint_arg) -> tuple[Callable, Any]:
    if isinstance(body, Checkpointed):
        return body, (checkpoint_arg if checkpoint_arg is not None else body.every)
    return body, checkpoint_arg


def _static_int(x) -> int | None:
    if isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)):
        return int(x)
    if isinstance(x, (float, np.floating)) and float(x).is_integer():
        return int(x)
    return None


# ---------------------------------------------------------------------------
# The primitives


def fori_loop(lower, upper, body: Callable, init, *, checkpoint=None):
    """for i in range(lower, upper): val = body(i, val); returns val.

    `lower`/`upper` are Python ints or traced scalars (a traced bound is a
    run-time trip count; a float scalar is truncated like int()). In a trace,
    `i` is a traced integer: `i * dt`, `i + 1`, `xs[i]`, `x.at[i].set(v)`.
    `checkpoint=K` or `'sqrt'` (or a body wrapped in `rm.checkpoint`) bounds
    the tape of reverse mode; it needs static bounds.
    """
    body, policy = _policy(body, checkpoint)
    scope = active_scope()
    if scope is None and not _any_traced(lower, upper, init):
        return _eager_fori(lower, upper, body, init)
    scope = scope or _scope_of(lower, upper, init)
    lo, hi = _static_int(lower), _static_int(upper)
    trips = max(hi - lo, 0) if lo is not None and hi is not None else None
    try:
        steps = checkpoint_steps(policy, trips, "rm.fori_loop")
    except RasterError as e:
        raise with_location(e, user_location()) from None
    return T.trace_fori_loop(scope, lower, upper, body, init, steps)


def scan(f: Callable, init, xs=None, length: int | None = None, reverse: bool = False, *, checkpoint=None):
    """carry, ys = scan(f, init, xs): for each x in xs, (carry, y) = f(carry, x); ys stacked along axis 0.

    `xs` is a pytree of arrays sharing their leading axis (or None with
    `length=`); `f` returns (new carry, y) where y is a pytree (or None).
    `reverse=True` walks xs from the end (ys[k] still pairs with xs[k]).
    `checkpoint=K` / `'sqrt'`: reverse mode stores every K-th carry.
    """
    f, policy = _policy(f, checkpoint)
    scope = active_scope()
    if scope is None and not _any_traced(init, xs):
        return _eager_scan(f, init, xs, length, reverse)
    scope = scope or _scope_of(init, xs)
    n = length
    if n is None and xs is not None:
        leaves, _ = flatten(xs)
        n = int(np.shape(leaves[0])[0]) if leaves and np.ndim(leaves[0]) else None
    try:
        steps = checkpoint_steps(policy, n, "rm.scan")
    except RasterError as e:
        raise with_location(e, user_location()) from None
    return T.trace_scan(scope, f, init, xs, length, reverse, steps)


def while_loop(cond_fun: Callable, body_fun: Callable, init):
    """while cond_fun(val): val = body_fun(val); returns val.

    `cond_fun` returns a scalar (non-zero continues: a mask from `>` works).
    Reverse mode works too (unlike JAX): the trip count is recorded at run
    time and the carries go to a tape that grows as needed.
    """
    scope = active_scope()
    if scope is None and not _any_traced(init):
        return _eager_while(cond_fun, body_fun, init)
    return T.trace_while_loop(scope or _scope_of(init), cond_fun, body_fun, init)


def cond(pred, true_fn: Callable, false_fn: Callable, *operands):
    """true_fn(*operands) if pred else false_fn(*operands), with a scalar `pred` (non-zero = true).

    Traced, both branches are traced (they must return the same structure,
    shapes and dtypes) and only the taken one runs; reverse mode
    differentiates the taken branch. A Python bool or number as `pred`
    chooses the branch while tracing.
    """
    if isinstance(pred, TracedArray):
        return T.trace_cond(pred.scope if active_scope() is None else active_scope(), pred, true_fn, false_fn, operands)
    if np.ndim(pred) != 0:
        error = ShapeError(
            f"rm.cond: the predicate must be a scalar (a 0-d array), got shape {np.shape(pred)}; "
            "use rm.where to select elementwise"
        )
        raise with_location(error, user_location())
    return true_fn(*operands) if bool(np.asarray(pred)) else false_fn(*operands)


# ---------------------------------------------------------------------------
# Eager versions (numpy arrays, outside any trace)


def _any_traced(*trees) -> bool:
    return any(isinstance(leaf, TracedArray) for tree in trees for leaf in flatten(tree)[0])


def _scope_of(*trees):
    for tree in trees:
        for leaf in flatten(tree)[0]:
            if isinstance(leaf, TracedArray):
                return leaf.scope
    raise TraceError("no traced value")  # unreachable: callers check _any_traced first


def _check_structure(who: str, init_tree, out) -> None:
    _, tree = flatten(out)
    if tree != init_tree:
        error = TraceError(
            f"{who}: the body returned a carry of structure {describe(tree)}, but the init has "
            f"structure {describe(init_tree)}; the carry must keep its structure"
        )
        raise with_location(error, user_location())


def _eager_int(x, who: str) -> int:
    value = _static_int(x)
    if value is None:
        if np.ndim(x) == 0 and isinstance(np.asarray(x).item(), (int, float)):
            return int(np.asarray(x).item())  # a float bound: truncated, as when traced
        raise with_location(TraceError(f"{who}: a bound must be an integer, got {x!r}"), user_location())
    return value


def _eager_fori(lower, upper, body, init):
    lo, hi = _eager_int(lower, "rm.fori_loop"), _eager_int(upper, "rm.fori_loop")
    _, tree = flatten(init)
    val = init
    for i in range(lo, hi):
        val = body(i, val)
        _check_structure("rm.fori_loop", tree, val)
    return val


def _eager_scan(f, init, xs, length, reverse):
    x_leaves, x_tree = flatten(xs) if xs is not None else ([], None)
    arrays = [np.asarray(x) for x in x_leaves]

    def x_at(k):
        return unflatten(x_tree, [a[k] for a in arrays]) if xs is not None else None

    n = length if length is not None else (arrays[0].shape[0] if arrays else None)
    if n is None:
        raise with_location(TraceError("rm.scan: give xs or length= (the number of steps)"), user_location())
    if any(a.ndim == 0 or a.shape[0] != n for a in arrays):
        error = ShapeError(f"rm.scan: the xs leading axes and length= disagree: {[a.shape for a in arrays]}, length {n}")
        raise with_location(error, user_location())
    _, carry_tree = flatten(init)
    carry, ys = init, []
    y_tree = None
    for k in (range(n - 1, -1, -1) if reverse else range(n)):
        out = f(carry, x_at(k))
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise with_location(TraceError("rm.scan: the body must return a pair (carry, y); y may be None"), user_location())
        carry, y = out
        _check_structure("rm.scan", carry_tree, carry)
        y_leaves, y_tree = flatten(y) if y is not None else ([], None)
        ys.append([np.asarray(v) for v in y_leaves])
    if reverse:
        ys.reverse()
    if n == 0:  # the ys' shapes come from one evaluation of the body, as when tracing
        dummy = unflatten(x_tree, [np.zeros(a.shape[1:], a.dtype) for a in arrays]) if xs is not None else None
        _, y = f(init, dummy)
        y_leaves, y_tree = flatten(y) if y is not None else ([], None)
        stacked = [np.zeros((0, *np.shape(v)), np.asarray(v).dtype) for v in y_leaves]
    else:
        stacked = [np.stack(column) for column in zip(*ys)] if ys[0] else []
    if y_tree is None and not stacked:
        return carry, None
    return carry, unflatten(y_tree, stacked)


def _eager_while(cond_fun, body_fun, init):
    _, tree = flatten(init)
    val = init
    while True:
        p = cond_fun(val)
        if np.ndim(p) != 0:
            error = ShapeError(f"rm.while_loop: cond_fun must return a scalar (a 0-d array), got shape {np.shape(p)}")
            raise with_location(error, user_location())
        if not bool(np.asarray(p)):
            return val
        val = body_fun(val)
        _check_structure("rm.while_loop", tree, val)


__all__ = ["fori_loop", "scan", "while_loop", "cond", "checkpoint", "Checkpointed"]
