"""Tracing `rm.fori_loop` / `rm.scan` / `rm.while_loop` / `rm.cond` into raster region ops.

Each primitive traces its Python body once, on placeholders bound to the
arguments of a fresh region block (regions.py turns the body's closures into
explicit captures), and emits one region op (dialects/raster_control.py).
The trip count never enters the trace: 10 steps and 10,000 steps give the
same IR.

Carries are pytrees (tuples, lists, dicts) of arrays. The body must return
the same structure with the same shapes and dtypes; the checks name the
leaf (`carry ['v']`) and the user's line. Weak typing as in JAX: a carry
initialised from a Python number (`0.0`, `0`) takes the dtype the body
gives it (the body is traced a second time with the promoted init), and a
weakly typed value returned for a typed carry is converted to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from xdsl.dialects.builtin import IntegerAttr, TensorType, UnitAttr, i64
from xdsl.ir import Attribute, Block, SSAValue

from raster_mlir.dialects import raster as R
from raster_mlir.dialects.raster_control import INDEX, ConditionOp, ForOp, IfOp, ScanOp, WhileOp, YieldOp
from raster_mlir.dialects.raster_index import ConvertOp
from raster_mlir.errors import DTypeError, RasterError, ShapeError, TraceError, with_location

from .pytree import describe, flatten, leaf_paths, unflatten
from .regions import RegionFrame
from .source import SourceLocation, user_location
from .tracer import FunctionScope, TracedArray, typed_dtype


class _Promote(Exception):
    """The body turned weakly typed carries into these dtypes: trace it again with them."""

    def __init__(self, dtypes: dict[int, str]):
        super().__init__(dtypes)
        self.dtypes = dtypes


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def lift_leaf(scope: FunctionScope, leaf: Any, dtype: str | None, what: str, loc) -> tuple[SSAValue, bool]:
    """(SSA value, weakly typed?) for one leaf of a carry, an xs or an output; `dtype` forces a weak leaf's type."""
    if isinstance(leaf, TracedArray):
        scope.check_owned(leaf)
        value = scope.resolve(leaf.value, loc)
        weak = leaf.weak or leaf.dtype_name == "i64"
        if dtype is not None and dtype != leaf.dtype_name:
            if not weak:
                raise DTypeError(f"{what} is {leaf.dtype_name}, expected {dtype}")
            value = scope.append(ConvertOp.make([value], dtype=dtype), loc).results[0]
        return value, weak
    if isinstance(leaf, (bool, np.bool_)) or leaf is None:
        raise TraceError(f"{what} is {leaf!r}; carries and outputs must be arrays or numbers")
    if isinstance(leaf, (int, float, np.integer, np.floating)):
        own = typed_dtype(leaf)
        if own is not None and dtype is None:
            return scope.lift(leaf, own, loc), False
        weak_dtype = "i64" if _is_int(leaf) else "f64"
        return scope.lift(leaf, dtype or weak_dtype, loc), True
    if isinstance(leaf, (np.ndarray, list, tuple)):
        array = np.asarray(leaf)
        own = typed_dtype(array)
        if array.dtype.kind not in "iuf":
            raise DTypeError(f"{what} has dtype {array.dtype}; use float32 or float64 arrays")
        if own is not None and dtype is not None and own != dtype:
            raise DTypeError(f"{what} is {own}, expected {dtype}")
        return scope.lift(array, own or dtype or "f64", loc), own is None
    raise TraceError(f"{what} is a {type(leaf).__name__}; carries and outputs must be arrays or numbers")


class Carries:
    """The lifted leaves of a carry tree: SSA values, types, weak flags, and the checks on a body's output."""

    def __init__(self, scope: FunctionScope, init: Any, who: str, loc, dtypes: dict[int, str] | None = None):
        self.init, self.who, self.loc = init, who, loc
        leaves, self.tree = flatten(init)
        self.paths = leaf_paths(self.tree)
        self.values: list[SSAValue] = []
        self.weak: list[bool] = []
        for k, leaf in enumerate(leaves):
            forced = (dtypes or {}).get(k)
            value, weak = lift_leaf(scope, leaf, forced, f"{who}: init {self.paths[k]}", loc)
            self.values.append(value)
            self.weak.append(weak and forced is None)

    @property
    def types(self) -> list[Attribute]:
        return [v.type for v in self.values]

    def promoted(self, scope: FunctionScope, dtypes: dict[int, str]) -> Carries:
        return Carries(scope, self.init, self.who, self.loc, dtypes)

    def placeholders(self, scope: FunctionScope, args: Sequence[SSAValue]) -> Any:
        return unflatten(self.tree, [TracedArray(scope, a, weak=w) for a, w in zip(args, self.weak)])

    def results(self, scope: FunctionScope, results: Sequence[SSAValue]) -> Any:
        return unflatten(self.tree, [TracedArray(scope, r, weak=w) for r, w in zip(results, self.weak)])

    def match(self, scope: FunctionScope, out: Any, by: str) -> list[SSAValue]:
        """The body's output as SSA values of the carry types, or an error naming the leaf."""
        leaves, tree = flatten(out)
        if tree != self.tree:
            raise TraceError(
                f"{self.who}: {by} returned a carry of structure {describe(tree)}, but the init has "
                f"structure {describe(self.tree)}; the carry must keep its structure"
            )
        values, promote = [], {}
        for k, (leaf, t, weak) in enumerate(zip(leaves, self.types, self.weak)):
            want = R.dtype_of(t)
            what = f"{self.who}: carry {self.paths[k]} returned by {by}"
            got, leaf_weak = _dtype_and_weakness(leaf)
            if got != want and not (leaf_weak and want != "i64"):
                # A weakly typed carry (init 0.0, 0) meets a typed or float value: retrace with its dtype.
                if weak and (want == "i64" or not leaf_weak):
                    promote[k] = got
                    values.append(None)
                    continue
                raise DTypeError(
                    f"{what} is {got} {_shape(leaf)}, but the init is {want} {R.shape_of(t)}; "
                    "the body must keep each carry's dtype"
                )
            value, _ = lift_leaf(scope, leaf, want, what, self.loc)
            if R.shape_of(value.type) != R.shape_of(t):
                raise ShapeError(
                    f"{what} has shape {R.shape_of(value.type)}, but the init has shape {R.shape_of(t)}; "
                    "the body must keep each carry's shape"
                )
            values.append(value)
        if promote:
            raise _Promote(promote)
        return values


def _dtype_and_weakness(leaf) -> tuple[str, bool]:
    """(dtype name, weakly typed?) of a body output leaf before lifting."""
    if isinstance(leaf, TracedArray):
        return leaf.dtype_name, leaf.weak or leaf.dtype_name == "i64"
    typed = typed_dtype(leaf)
    if typed is not None:
        return typed, False
    if _is_int(leaf):
        return "i64", True
    return "f64", True


def _shape(leaf) -> tuple:
    return tuple(np.shape(leaf)) if not isinstance(leaf, TracedArray) else leaf.shape


def _bound(scope: FunctionScope, bound: Any, name: str, loc) -> SSAValue:
    """A loop bound as a 0-d tensor<i64>: Python ints become constants, traced floats are truncated."""
    if isinstance(bound, TracedArray):
        if bound.shape != ():
            raise ShapeError(f"rm.fori_loop: the {name} bound must be a scalar, got a traced array of shape {bound.shape}")
        value = scope.resolve(bound.value, loc)
        if bound.dtype_name != "i64":  # a float scalar argument (compiled functions take floats): int()
            value = scope.append(ConvertOp.make([value], dtype="i64"), loc).results[0]
        return value
    if isinstance(bound, (float, np.floating)) and not float(bound).is_integer():
        raise TraceError(f"rm.fori_loop: the {name} bound {bound!r} is not an integer")
    if not isinstance(bound, (int, float, np.integer, np.floating)) or isinstance(bound, (bool, np.bool_)):
        raise TraceError(f"rm.fori_loop: the {name} bound must be an integer, got {type(bound).__name__}")
    return scope.append(R.FillOp.make([], value=int(bound), shape=(), dtype="i64"), loc).results[0]


def _properties(reverse: bool = False, checkpoint: int | None = None) -> dict[str, Attribute]:
    props: dict[str, Attribute] = {}
    if reverse:
        props["reverse"] = UnitAttr()
    if checkpoint is not None:
        props["checkpoint"] = IntegerAttr(checkpoint, i64)
    return props


def _with_promotion(scope: FunctionScope, carries: Carries, attempt: Callable[[Carries], Any]) -> Any:
    """attempt(carries), traced again with promoted carries when the body changes a weakly typed one."""
    while True:
        try:
            return attempt(carries)
        except _Promote as p:
            carries = carries.promoted(scope, p.dtypes)


def _in_frame(scope: FunctionScope, frame: RegionFrame, fn: Callable[[], Any]) -> Any:
    scope.frames.append(frame)
    try:
        return fn()
    finally:
        scope.frames.pop()


def _located(fn):
    """Run a tracing routine; RasterErrors raised inside get the user's line (the innermost one wins)."""

    def wrapper(scope, *args, **kwargs):
        loc = user_location()
        try:
            return fn(scope, loc, *args, **kwargs)
        except RasterError as e:
            raise with_location(e, loc) from None

    return wrapper


@_located
def trace_fori_loop(scope: FunctionScope, loc, lower, upper, body: Callable, init, checkpoint: int | None):
    lb = _bound(scope, lower, "lower", loc)
    ub = _bound(scope, upper, "upper", loc)
    def attempt(carries: Carries):
        block = Block(arg_types=[INDEX, *carries.types])
        block.args[0].name_hint = "i"
        frame = RegionFrame([block], "the body of rm.fori_loop")

        def trace():
            out = body(TracedArray(scope, block.args[0]), carries.placeholders(scope, block.args[1:]))
            return carries.match(scope, out, "the body")

        block.add_op(YieldOp(*_in_frame(scope, frame, trace)))
        op = ForOp(lb, ub, carries.values, frame.capture_values, block, _properties(checkpoint=checkpoint))
        scope.append(op, loc)
        return carries.results(scope, op.res)

    return _with_promotion(scope, Carries(scope, init, "rm.fori_loop", loc), attempt)


@_located
def trace_scan(scope: FunctionScope, loc, f: Callable, init, xs, length: int | None, reverse: bool, checkpoint):
    x_leaves, x_tree = flatten(xs) if xs is not None else ([], None)
    x_paths = leaf_paths(x_tree)
    x_values = []
    for k, leaf in enumerate(x_leaves):
        value, _ = lift_leaf(scope, leaf, None, f"rm.scan: xs {x_paths[k]}", loc)
        if R.shape_of(value.type) == ():
            raise ShapeError(f"rm.scan: xs {x_paths[k]} is 0-d; each xs leaf needs a leading axis to scan over")
        x_values.append(value)
    lengths = {R.shape_of(v.type)[0] for v in x_values}
    if length is not None:
        lengths.add(int(length))
    if len(lengths) > 1:
        raise ShapeError(f"rm.scan: the xs leading axes and length= disagree: {sorted(lengths)}")
    if not lengths:
        raise TraceError("rm.scan: give xs or length= (the number of steps)")
    n = lengths.pop()
    slice_types = [ScanOp.slice_type(v.type) for v in x_values]
    def attempt(carries: Carries):
        block = Block(arg_types=[INDEX, *carries.types, *slice_types])
        frame = RegionFrame([block], "the body of rm.scan")
        ys_info = {}

        def trace():
            x_args = block.args[1 + len(carries.values) :]
            x = unflatten(x_tree, [TracedArray(scope, a) for a in x_args]) if xs is not None else None
            out = f(carries.placeholders(scope, block.args[1 : 1 + len(carries.values)]), x)
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                raise TraceError("rm.scan: the body must return a pair (carry, y); y may be None")
            new_carry = carries.match(scope, out[0], "the body")
            y_leaves, ys_info["tree"] = flatten(out[1]) if out[1] is not None else ([], None)
            y_paths = leaf_paths(ys_info["tree"])
            ys = [lift_leaf(scope, y, None, f"rm.scan: y {y_paths[k]}", loc) for k, y in enumerate(y_leaves)]
            ys_info["weak"] = [w for _, w in ys]
            return new_carry + [v for v, _ in ys]

        outs = _in_frame(scope, frame, trace)
        block.add_op(YieldOp(*outs))
        ys_types = [ScanOp.stacked_type(v.type, n) for v in outs[len(carries.values) :]]
        op = ScanOp(n, carries.values, x_values, frame.capture_values, ys_types, block, _properties(reverse, checkpoint))
        scope.append(op, loc)
        carry = carries.results(scope, op.carry_results())
        if not ys_info["weak"] and ys_info["tree"] is None:
            return carry, None  # the body's y was None: no ys
        ys = unflatten(ys_info["tree"], [TracedArray(scope, r, weak=w) for r, w in zip(op.ys_results(), ys_info["weak"])])
        return carry, ys

    return _with_promotion(scope, Carries(scope, init, "rm.scan", loc), attempt)


def _predicate(scope: FunctionScope, pred: Any, who: str, loc) -> SSAValue:
    if isinstance(pred, TracedArray):
        if pred.shape != ():
            raise ShapeError(
                f"{who}: the predicate must be a scalar (a 0-d array), got shape {pred.shape}; "
                "reduce it first (rm.max, rm.sum) or select elementwise with rm.where"
            )
        return scope.resolve(pred.value, loc)
    if isinstance(pred, (bool, np.bool_, int, float, np.integer, np.floating)):
        return scope.lift(float(pred), "f64", loc)
    if isinstance(pred, np.ndarray):
        if pred.shape != ():
            raise ShapeError(f"{who}: the predicate must be a scalar (a 0-d array), got shape {pred.shape}")
        return scope.lift(float(pred), "f64", loc)
    raise TraceError(f"{who}: the predicate is a {type(pred).__name__}; it must be a scalar array or number")


@_located
def trace_while_loop(scope: FunctionScope, loc, cond_fun: Callable, body_fun: Callable, init):
    def attempt(carries: Carries):
        cond_block = Block(arg_types=carries.types)
        body_block = Block(arg_types=carries.types)
        frame = RegionFrame([cond_block, body_block], "rm.while_loop")

        def trace():
            pred = _predicate(scope, cond_fun(carries.placeholders(scope, cond_block.args)), "rm.while_loop: cond_fun", loc)
            cond_block.add_op(ConditionOp(pred))
            frame.activate(body_block)
            frame.what = "the body of rm.while_loop"
            out = body_fun(carries.placeholders(scope, body_block.args[: len(carries.values)]))
            return carries.match(scope, out, "body_fun")

        body_block.add_op(YieldOp(*_in_frame(scope, frame, trace)))
        op = WhileOp(carries.values, frame.capture_values, cond_block, body_block)
        scope.append(op, loc)
        return carries.results(scope, op.res)

    return _with_promotion(scope, Carries(scope, init, "rm.while_loop", loc), attempt)


@_located
def trace_cond(scope: FunctionScope, loc, pred, true_fn: Callable, false_fn: Callable, operands: Sequence[Any]):
    pred_value = _predicate(scope, pred, "rm.cond", loc)
    then_block, else_block = Block(), Block()
    frame = RegionFrame([then_block, else_block], "the true branch of rm.cond")

    def branch(block: Block, fn: Callable, name: str):
        frame.activate(block)
        frame.what = f"the {name} branch of rm.cond"
        leaves, tree = flatten(fn(*operands))
        paths = leaf_paths(tree)
        lifted = [lift_leaf(scope, leaf, None, f"rm.cond: output {paths[k]} of the {name} branch", loc) for k, leaf in enumerate(leaves)]
        return tree, [v for v, _ in lifted], [w for _, w in lifted]

    def trace():
        t_tree, t_values, t_weak = branch(then_block, true_fn, "true")
        f_tree, f_values, f_weak = branch(else_block, false_fn, "false")
        if t_tree != f_tree:
            raise TraceError(
                f"rm.cond: the branches return different structures: {describe(t_tree)} (true) "
                f"and {describe(f_tree)} (false)"
            )
        paths = leaf_paths(t_tree)
        weak = []
        for k in range(len(t_values)):
            t, f = t_values[k].type, f_values[k].type
            if R.shape_of(t) != R.shape_of(f):
                raise ShapeError(
                    f"rm.cond: output {paths[k]} has shape {R.shape_of(t)} in the true branch and "
                    f"{R.shape_of(f)} in the false branch"
                )
            if t != f:  # a weakly typed side adopts the other side's dtype
                if t_weak[k] and not (f_weak[k] and R.dtype_of(f) == "i64"):
                    frame.activate(then_block)
                    t_values[k] = scope.append(ConvertOp.make([t_values[k]], dtype=R.dtype_of(f)), loc).results[0]
                elif f_weak[k]:
                    frame.activate(else_block)
                    f_values[k] = scope.append(ConvertOp.make([f_values[k]], dtype=R.dtype_of(t)), loc).results[0]
                else:
                    raise DTypeError(
                        f"rm.cond: output {paths[k]} is {R.dtype_of(t)} in the true branch and "
                        f"{R.dtype_of(f)} in the false branch"
                    )
            weak.append(t_weak[k] and f_weak[k])
        return t_tree, t_values, f_values, weak

    tree, t_values, f_values, weak = _in_frame(scope, frame, trace)
    then_block.add_op(YieldOp(*t_values))
    else_block.add_op(YieldOp(*f_values))
    op = IfOp(pred_value, frame.capture_values, [v.type for v in t_values], then_block, else_block)
    scope.append(op, loc)
    return unflatten(tree, [TracedArray(scope, r, weak=w) for r, w in zip(op.res, weak)])


__all__ = ["trace_fori_loop", "trace_scan", "trace_while_loop", "trace_cond", "lift_leaf", "Carries"]
