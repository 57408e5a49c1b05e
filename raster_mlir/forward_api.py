"""Forward mode and higher-order derivatives: `rm.jvp`, `vjp`, `linearize`, `hvp`, `jacfwd`, `jacrev`, `hessian`.

    out, t = rm.jvp(f, (x,), (v,))          # f(x) and J v, one native function
    out, vjp_fn = rm.vjp(f, x); (ct_x,) = vjp_fn(ct)   # vjp_fn is compiled too
    out, f_jvp = rm.linearize(f, x); t = f_jvp(v)
    (hv,) = rm.hvp(loss, (W, b), (dW, db)) # Hessian-vector product, forward-over-reverse
    J = rm.jacfwd(f)(x); J = rm.jacrev(f)(x); H = rm.hessian(f)(x)

JAX's names and conventions: `primals` and `tangents` are tuples (or lists)
with one pytree of arrays per argument of f, and f may return a pytree.
`jacfwd` / `jacrev` / `hessian` take `argnums` (default 0, as in JAX) and
give arrays of shape `out.shape + arg.shape` (nested per output leaf and,
for a tuple of argnums, per argument). `hvp`'s `argnums` (default: every
argument) selects what the Hessian is taken with respect to; the others
(data, labels) are held constant and take no tangent.

Each of them is a `JitFunction` traced once per signature, so everything is
one native function: `raster.jvp` ops (expanded by the `forward-ad` pass)
and `raster.grad` ops (the `autodiff` pass), nested as the user nests
them. Inside a traced function they emit those ops into the trace, so they
compose: `rm.jacfwd(rm.jacrev(f))`, `rm.jvp(rm.grad(f), ...)`,
`rm.grad(rm.grad(f))` for scalar f.

`vjp` pairs f's outputs with the cotangent (sum(out * ct)) and takes the
gradient of that scalar; its `vjp_fn` recomputes f's forward pass on each
call (it stores the primals, not the intermediate values). `linearize`'s
function likewise reruns f with the tangent.

`jacfwd` emits one jvp per element of the differentiated arguments (a
one-hot tangent), `jacrev` one gradient per output element; CSE shares the
primal computation among them after inlining. That suits Jacobians and
Hessians of small systems (up to `MAX_UNROLLED` elements); beyond that they
raise a GradientError naming `rm.jvp` / `rm.vjp` / `rm.hvp`, which cost
one pass each whatever the size.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from raster_mlir import array_ops, ops
from raster_mlir.autodiff_api import _normalize_argnums, grad
from raster_mlir.call_variants import tree_key
from raster_mlir.custom_rule import keep_alive_during_trace
from raster_mlir.dialects import raster as R
from raster_mlir.errors import GradientError, with_location
from raster_mlir.frontend.pytree import flatten, unflatten
from raster_mlir.frontend.source import user_location
from raster_mlir.frontend.trace_state import TRACES_OPEN
from raster_mlir.frontend.tracer import TracedArray, active_scope
from raster_mlir.jit import JitFunction, jit
from raster_mlir.runtime.native import MISS

# The most derivatives jacfwd / jacrev unroll into one function (one per input / output element).
MAX_UNROLLED = 128


# ---------------------------------------------------------------------------
# Pytrees and the per-function cache of compiled transforms


def _flat_tree(n: int):
    return (tuple, [None] * n)


def _as_tuple(name: str, what: str, value) -> tuple:
    if not isinstance(value, (tuple, list)):
        raise GradientError(f"{name}: {what} must be a tuple or list with one entry per argument, got {type(value).__name__}")
    return tuple(value)


class _MethodTransforms:
    """The view of a function's transforms table for one bound method: keys carry the instance.

    `obj.method` is a new object at every access, so the table lives on the
    function; the compiled transforms hold the method, hence the instance, so
    its id is not reused while they exist.
    """

    def __init__(self, table: dict, instance_id: int):
        self.table, self.instance_id = table, instance_id

    def get(self, key):
        return self.table.get((self.instance_id, key))

    def __setitem__(self, key, value):
        self.table[(self.instance_id, key)] = value

    def keys(self):
        return [k[1] for k in self.table if isinstance(k, tuple) and k[0] == self.instance_id]


def _transforms_of(f):
    """The compiled transforms of `f` (jvp, vjp...), kept on f so they live as long as f does.

    `functools.update_wrapper` copies attributes between wrappers, so the
    table records whose it is. A bound method keeps its table on its function.
    """
    if inspect.ismethod(f):
        return _MethodTransforms(_transforms_of(f.__func__), id(f.__self__))
    entry = getattr(f, "_raster_transforms", None)
    if entry is not None and entry[0] == id(f):
        return entry[1]
    table: dict = {}
    try:
        f._raster_transforms = (id(f), table)
    except (AttributeError, TypeError):  # an object without attributes: compiled per use
        pass
    return table


def _cached(f, key: tuple, build: Callable[[], JitFunction]) -> JitFunction:
    table = _transforms_of(f)
    fn = table.get(key)
    if fn is None:
        fn = table[key] = build()
    return fn


def _call_flat(target: JitFunction, tree, leaves: Sequence):
    """f applied to the arguments rebuilt from `leaves` (a jit call when they are flat already)."""
    if tree == _flat_tree(len(leaves)):
        return target(*leaves)
    return target.fn(*unflatten(tree, list(leaves)))


def _trace_flat(scope, target: JitFunction, tree, types: Sequence) -> tuple[str, Any]:
    """Trace f as a function of the flat leaves of its arguments; (symbol, output tree)."""
    if tree == _flat_tree(len(types)):
        return target.trace_into(scope, types)

    def flat(*leaves):
        return target.fn(*unflatten(tree, list(leaves)))

    keep_alive_during_trace(scope.trace, flat)
    key = ("flat-arguments", id(target.fn), tree_key(tree), tuple(types))
    return scope.trace.trace_function(flat, target.name, list(types), key=key)


# ---------------------------------------------------------------------------
# Emitting raster.jvp into the current trace


def _emit_jvp(target: JitFunction, tree, primals: Sequence, tangents: Sequence, leaf_argnums: Sequence[int]):
    """(outputs, output tangents) of f at `primals` along `tangents` (one per leaf in `leaf_argnums`)."""
    scope = active_scope()
    keep_alive_during_trace(scope.trace, target, target.fn)
    loc = user_location()
    values = scope.lift_args(list(primals), loc)
    tangent_values = []
    for i, t in zip(leaf_argnums, tangents):
        value = scope.lift(t, R.dtype_of(values[i].type), loc)
        if value.type != values[i].type:
            error = GradientError(
                f"raster.jvp: the tangent of argument {i} of {target.name} has shape {R.shape_of(value.type)} "
                f"{R.dtype_of(value.type)}, but the argument has shape {R.shape_of(values[i].type)} "
                f"{R.dtype_of(values[i].type)}; a tangent must have its primal's shape and dtype"
            )
            raise with_location(error, loc)
        tangent_values.append(value)
    symbol, out_tree = _trace_flat(scope, target, tree, [v.type for v in values])
    outputs = list(scope.trace.function(symbol).function_type.outputs)
    op = R.JvpOp.make(symbol, values, tangent_values, tuple(leaf_argnums), outputs)
    scope.append(op, loc)

    def wrap(results):
        return unflatten(out_tree, [TracedArray(scope, r) for r in results])

    return wrap(op.outputs()), wrap(op.output_tangents())


def _check_same_structure(name: str, tree, other_tree, what: str) -> None:
    if tree_key(tree) != tree_key(other_tree):
        raise with_location(
            GradientError(f"{name}: {what} must have the same nesting as the primals (one array per array)"),
            user_location(),
        )


# ---------------------------------------------------------------------------
# jvp, linearize, vjp, hvp


def jvp(f: Callable, primals, tangents):
    """(f(*primals), J_f(primals) @ tangents): outputs and their tangents, in f's output nesting."""
    fast = _run_flat_fast(f, ("flat", "jvp"), primals, tangents)
    if fast is not MISS:
        return fast
    primals = _as_tuple("rm.jvp", "primals", primals)
    tangents = _as_tuple("rm.jvp", "tangents", tangents)
    p_leaves, tree = flatten(primals)
    t_leaves, t_tree = flatten(tangents)
    _check_same_structure("rm.jvp", tree, t_tree, "tangents")
    n = len(p_leaves)

    def build():
        target = jit(f)

        def jvp_fn(*leaves):
            return _emit_jvp(target, tree, leaves[:n], leaves[n:], range(n))

        return JitFunction(jvp_fn, name=f"jvp_{target.name}")

    fn = _cached(f, ("jvp", tree_key(tree)), build)
    if tree == _flat_tree(n):
        _remember_flat(f, ("flat", "jvp"), n, n, fn)
    return fn(*p_leaves, *t_leaves)


def linearize(f: Callable, *primals):
    """(f(*primals), f_jvp) where f_jvp(*tangents) is the jvp at these primals (compiled; reruns f)."""
    out = _value_fn(f, primals)(*flatten(primals)[0])

    def f_jvp(*tangents):
        return jvp(f, primals, tangents)[1]

    return out, f_jvp


def _value_fn(f: Callable, primals: tuple) -> JitFunction:
    _, tree = flatten(primals)

    def build():
        target = jit(f)
        return JitFunction(lambda *leaves: _call_flat(target, tree, leaves), name=target.name)

    return _cached(f, ("value", tree_key(tree)), build)


def vjp(f: Callable, *primals):
    """(f(*primals), vjp_fn): vjp_fn(ct) gives one cotangent per primal (a tuple), compiled."""
    p_leaves, tree = flatten(primals)
    n = len(p_leaves)
    out = _value_fn(f, primals)(*p_leaves)
    _, out_tree = flatten(out)

    def vjp_fn(ct):
        c_leaves, c_tree = flatten(ct)
        _check_same_structure("vjp_fn", out_tree, c_tree, "the cotangent (nested like f's output)")
        fn = _cached(f, ("vjp", tree_key(tree), tree_key(c_tree)), lambda: _vjp_function(f, tree, n))
        return unflatten(tree, list(fn(*p_leaves, *c_leaves)))

    return out, vjp_fn


def _vjp_function(f: Callable, tree, n: int) -> JitFunction:
    """A function (primal leaves, cotangent leaves) -> the primal leaves' cotangents."""
    target = jit(f)

    def pairing(*leaves):  # <f(primals), ct>, whose gradient in the primals is J^T ct
        outs, _ = flatten(_call_flat(target, tree, leaves[:n]))
        total = None
        for out, ct in zip(outs, leaves[n:]):
            term = ops.sum(ops.multiply(out, ct))
            total = term if total is None else total + term
        return total

    gradient = grad(pairing, argnums=tuple(range(n)))
    return JitFunction(lambda *leaves: gradient(*leaves), name=f"vjp_{target.name}")


def hvp(f: Callable, primals, tangents, argnums: int | Sequence[int] | None = None):
    """The Hessian of scalar f w.r.t. the primals in `argnums` (default all) times `tangents`.

    `tangents` has one entry per selected primal; the result is nested like
    them (one array for an int `argnums`). Forward-over-reverse: the jvp of
    the gradient, one native function.
    """
    # Fast path (a solver calls this in its inner loop): flat arrays, already compiled.
    flat_key = ("flat", "hvp", argnums if argnums is None or type(argnums) is int else tuple(argnums))
    hv = _run_flat_fast(f, flat_key, primals, tangents)
    if hv is not MISS:
        return hv[0] if type(argnums) is int else hv
    primals = _as_tuple("rm.hvp", "primals", primals)
    nums = _normalize_argnums("rm.hvp", argnums, len(primals))
    tangents = _as_tuple("rm.hvp", "tangents", tangents)
    p_leaves, tree = flatten(primals)
    t_leaves, t_tree = flatten(tangents)
    selected_tree = flatten(tuple(primals[i] for i in nums))[1]
    _check_same_structure("rm.hvp", selected_tree, t_tree, "tangents (one per argnum)")
    leaf_argnums = _leaves_of(primals, nums)
    n = len(p_leaves)

    def build():
        target = jit(f)

        def flat_f(*leaves):
            return _call_flat(target, tree, leaves)

        gradient = grad(flat_f, argnums=leaf_argnums)

        def hvp_fn(*leaves):
            _, hv = _emit_jvp(jit(gradient), _flat_tree(n), leaves[:n], leaves[n:], leaf_argnums)
            return hv

        return JitFunction(hvp_fn, name=f"hvp_{target.name}")

    fn = _cached(f, ("hvp", tree_key(tree), nums), build)
    if tree == _flat_tree(n) and t_tree == _flat_tree(len(t_leaves)):
        _remember_flat(f, flat_key, n, len(t_leaves), fn)
    hv = fn(*p_leaves, *t_leaves)
    selected = unflatten(selected_tree, list(hv))
    return selected[0] if isinstance(argnums, int) else selected


def _run_flat_fast(f, key: tuple, primals, tangents):
    """The transform compiled for flat tuples of arrays run natively on them, or MISS.

    The hot path of a solver's inner loop (~0.3 us of Python here): one table
    lookup, then the compiled function's own fast call, whose native check
    accepts only the arrays of its signature. Anything else (a nested tree, a
    Python number, another signature, a bad array, a call inside a trace)
    gives MISS and the caller takes the general path, which handles it or
    raises the precise error.
    """
    if type(primals) is not tuple or type(tangents) is not tuple:
        return MISS
    entry = getattr(f, "_raster_transforms", None)
    table = entry[1] if entry is not None and entry[0] == id(f) else _transforms_of(f)
    fn = table.get((*key, len(primals), len(tangents)))
    if fn is None or fn._fast is None or TRACES_OPEN.value:  # (active_scope() without its thread-local read)
        return MISS
    return fn._fast(primals + tangents)


def _remember_flat(f, key: tuple, n_primals: int, n_tangents: int, fn: JitFunction) -> None:
    _transforms_of(f)[(*key, n_primals, n_tangents)] = fn


def _leaves_of(args: Sequence, nums: Sequence[int]) -> tuple[int, ...]:
    """The flat leaf positions of the arguments `nums` of `args`."""
    positions, start = [], 0
    for i, a in enumerate(args):
        count = len(flatten(a)[0])
        if i in nums:
            positions.extend(range(start, start + count))
        start += count
    return tuple(positions)


# ---------------------------------------------------------------------------
# Jacobians and Hessians


def _one_hot(like: TracedArray, shape: Sequence[int], index: int) -> TracedArray:
    """A traced array of `shape` (like's dtype) with a 1 at flat position `index`: a 1 padded with zeros."""
    unit = array_ops.full_like(like, 1.0, (1,) * len(shape))
    if int(np.prod(shape, dtype=np.int64)) == 1:
        return unit
    position = np.unravel_index(index, tuple(shape))
    return array_ops.pad(unit, [(int(p), n - int(p) - 1) for p, n in zip(position, shape)])


def _check_unrolled(name: str, what: str, count: int) -> None:
    if count > MAX_UNROLLED:
        raise with_location(
            GradientError(
                f"{name}: {what} has {count} elements; {name} unrolls one derivative per element "
                f"(at most {MAX_UNROLLED}); use rm.jvp / rm.vjp / rm.hvp, which cost one pass each"
            ),
            user_location(),
        )


def _assemble(parts: Sequence[TracedArray], outer: Sequence[int], inner: Sequence[int], parts_inner: bool):
    """The array of shape outer + inner whose slices are `parts`, stacked.

    parts_inner: part k is the slice at (flat) inner index k, of shape outer;
    otherwise part k is the slice at (flat) outer index k, of shape inner.
    """
    outer, inner = tuple(outer), tuple(inner)
    if len(parts) == 1:
        return ops.reshape(parts[0], outer + inner)
    stacked = array_ops.stack(list(parts), axis=len(outer) if parts_inner else 0)
    return ops.reshape(stacked, outer + inner)


def _per_output(out_tree, n_outputs: int, nums, argnums, blocks):
    """Nest `blocks[leaf][k]` as f's output, with a tuple over argnums unless argnums is an int."""
    leaves = [blocks[o][0] if isinstance(argnums, int) else tuple(blocks[o]) for o in range(n_outputs)]
    return unflatten(out_tree, leaves)


def jacfwd(f: Callable, argnums: int | Sequence[int] = 0) -> JitFunction:
    """The Jacobian of f by forward mode: one jvp per element of the arguments in argnums."""
    target = jit(f)

    def jacfwd_fn(*args):
        scope = active_scope()
        nums = _normalize_argnums("rm.jacfwd", argnums, len(args))
        types = [v.type for v in scope.lift_args(list(args), user_location())]
        blocks: dict[int, list] = {}
        out_tree = None
        for a in nums:
            shape = R.shape_of(types[a])
            size = int(np.prod(shape, dtype=np.int64))
            _check_unrolled("rm.jacfwd", f"argument {a} of {target.name}", size)
            columns = []
            for k in range(size):
                e = _one_hot(args[a], shape, k)
                _, tangent = _emit_jvp(target, _flat_tree(len(args)), args, [e], [a])
                leaves, out_tree = flatten(tangent)
                columns.append(leaves)
            for o, out_type in enumerate(_output_types(columns)):
                parts = [column[o] for column in columns]
                blocks.setdefault(o, []).append(_assemble(parts, out_type, shape, parts_inner=True))
        return _per_output(out_tree, len(blocks), nums, argnums, blocks)

    return JitFunction(jacfwd_fn, name=f"jacfwd_{target.name}")


def _output_types(columns) -> list[tuple[int, ...]]:
    return [leaf.shape for leaf in columns[0]]


def jacrev(f: Callable, argnums: int | Sequence[int] = 0) -> JitFunction:
    """The Jacobian of f by reverse mode: one gradient per element of f's output."""
    target = jit(f)

    def jacrev_fn(*args):
        scope = active_scope()
        nums = _normalize_argnums("rm.jacrev", argnums, len(args))
        loc = user_location()
        values = scope.lift_args(list(args), loc)
        types = [v.type for v in values]
        symbol, out_tree = target.trace_into(scope, types)
        outputs = list(scope.trace.function(symbol).function_type.outputs)
        blocks: dict[int, list] = {}
        for o, out_type in enumerate(outputs):
            out_shape = R.shape_of(out_type)
            size = int(np.prod(out_shape, dtype=np.int64))
            _check_unrolled("rm.jacrev", f"output {o} of {target.name}", size)
            pairing = _pairing_function(scope, target, o, types, out_type)
            rows = []
            for i in range(size):
                ct = _one_hot(args[0], out_shape, i).value
                op = R.GradOp.make(pairing, [*values, ct], nums, R.tensor((), R.dtype_of(out_type)))
                scope.append(op, loc)
                rows.append([TracedArray(scope, r) for r in op.results])
            blocks[o] = [
                _assemble([row[k] for row in rows], out_shape, R.shape_of(types[a]), parts_inner=False)
                for k, a in enumerate(nums)
            ]
        return _per_output(out_tree, len(outputs), nums, argnums, blocks)

    return JitFunction(jacrev_fn, name=f"jacrev_{target.name}")


def _pairing_function(scope, target: JitFunction, output: int, types, out_type) -> str:
    """The symbol of (args..., ct) -> sum(f(args)[output] * ct), traced once per output."""

    def pairing(*leaves):
        outs, _ = flatten(target(*leaves[:-1]))
        return ops.sum(ops.multiply(outs[output], leaves[-1]))

    keep_alive_during_trace(scope.trace, target, target.fn, pairing)
    key = ("jacrev-pairing", id(target.fn), output, tuple(types))
    symbol, _ = scope.trace.trace_function(pairing, f"{target.name}_pairing", [*types, out_type], key=key)
    return symbol


def hessian(f: Callable, argnums: int | Sequence[int] = 0) -> JitFunction:
    """The Hessian of scalar f: jacfwd(jacrev(f)), one native function."""
    return jacfwd(jacrev(f, argnums), argnums)


__all__ = ["jvp", "vjp", "linearize", "hvp", "jacfwd", "jacrev", "hessian", "MAX_UNROLLED"]
