"""Tracing Python functions into the raster dialect.

A `ModuleTrace` builds one `builtin.module`. Tracing a function opens a
`FunctionScope` (one `func.func`), calls the Python function with
`TracedArray` placeholders for its arguments, and appends one raster op per
primitive the function applies. A call to another `@rm.jit` function from
inside a trace becomes a `func.call` to a separately traced `func.func`
(traced once per signature), so inlining stays a real pass.

Python control flow sees only shapes and dtypes: `if traced > 0:` raises a
`TraceError` naming the line, because the branch would depend on data the
trace does not have.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import FileLineColLoc, IntAttr, ModuleOp, StringAttr, TensorType
from xdsl.ir import Block, Operation, Region, SSAValue

from raster_mlir.dialects import raster as R
from raster_mlir.dialects.raster_index import ConvertOp
from raster_mlir.dialects.shapes import same_dtype
from raster_mlir.errors import DTypeError, RasterError, TraceError, UnsupportedAttributeError, with_location

from .pytree import flatten, unflatten
from .regions import RegionFrame, resolve
from .source import SourceLocation, user_location
from .trace_state import DTYPES, NUMPY_DTYPES, Traced, active_scope, pop_scope, push_scope, typed_dtype


def location_attr(loc: SourceLocation | None):
    if loc is None:
        return None
    return _location_attr(loc.filename, loc.line, loc.column)


@functools.lru_cache(maxsize=4096)
def _location_attr(filename: str, line: int, column: int) -> FileLineColLoc:
    # Immutable: the ops traced from one source line (a loop body run many times) share it.
    return FileLineColLoc(StringAttr(filename), IntAttr(line), IntAttr(column))


class FunctionScope:
    """One `func.func` under construction: its entry block and the values defined in it.

    Ops go to the active block of the innermost `RegionFrame` (regions.py):
    the entry block, or the body of a loop or branch being traced.
    """

    def __init__(self, trace: ModuleTrace, name: str, arg_types: Sequence[TensorType]):
        self.trace = trace
        self.name = name
        self.block = Block(arg_types=list(arg_types))
        self.frames: list[RegionFrame] = [RegionFrame([self.block], f"@{name}")]

    def append(self, op: Operation, loc: SourceLocation | None) -> Operation:
        attr = location_attr(loc)
        if attr is not None:
            op.location = attr
        self.frames[-1].active.add_op(op)
        return op

    def resolve(self, value: SSAValue, loc: SourceLocation | None = None) -> SSAValue:
        """`value` usable in the block being traced (a closure becomes a capture; regions.py)."""
        try:
            return resolve(self.frames, value)
        except TraceError as e:
            raise with_location(e, loc or user_location()) from None

    # -- building ops -------------------------------------------------------

    def emit(self, op_cls: type[R.RasterOp], operands: Sequence[Any], params: dict) -> Any:
        """Append `op_cls(operands)`; Python scalars and arrays become fill / constant ops."""
        loc = user_location()
        dtype, weak = self._common_dtype(op_cls, operands, loc)
        values = [self.lift(o, dtype, loc) for o in operands]
        try:
            params = op_cls.canonical_params([R.shape_of(v.type) for v in values], **params)
            op = op_cls.make(values, dtype=dtype, **params)
        except RasterError as e:
            raise with_location(e, loc) from None
        self.append(op, loc)
        results = tuple(TracedArray(self, r, weak=weak) for r in op.results)
        return results[0] if len(results) == 1 else results

    def _common_dtype(self, op_cls, operands, loc) -> tuple[str, bool]:
        """(the dtype the op computes in, whether its result is weakly typed).

        Traced values and float numpy arrays/scalars are typed: mixing float32 and
        float64 among them is a DTypeError, as in eager mode. Weakly typed operands
        adopt the typed operands' dtype (JAX's rule): Python numbers, integer arrays,
        traced integers (`tensor<i64>`, the loop index) and floats computed only from
        those (`i * dt`). Without a typed operand, integers stay integers for the ops
        that compute on them (`i + 1`), and anything with a float is float64.
        """
        typed, weak_floats, anything_float = [], [], False
        for o in operands:
            if isinstance(o, TracedArray):
                self.check_owned(o)
                if o.dtype_name == "i64":
                    continue
                anything_float = True
                (weak_floats if o.weak else typed).append(o.dtype_name)
            else:
                dtype = typed_dtype(o)
                if dtype is not None:
                    typed.append(dtype)
                elif isinstance(o, (float, np.floating)) or np.asarray(o).dtype.kind == "f":
                    anything_float = True
        if typed:
            try:
                return same_dtype(op_cls.name, typed), False  # the verifier's rule: mixing is refused
            except DTypeError as err:
                raise with_location(err, loc) from None
        if weak_floats:
            return ("f64" if "f64" in weak_floats else "f32"), True
        if not anything_float and op_cls.INTEGER_OK and any(isinstance(o, TracedArray) for o in operands):
            return "i64", True
        return "f64", True

    def check_owned(self, value: TracedArray) -> None:
        if value.scope is not self:
            error = TraceError(
                f"a traced value of {value.scope.name!r} is used inside {self.name!r}: "
                "values from an enclosing traced function or from a finished trace cannot be "
                "captured; pass them as arguments"
            )
            raise with_location(error, user_location())

    def lift_args(self, args: Sequence[Any], loc: SourceLocation | None) -> list[SSAValue]:
        """SSA values for a call's arguments; Python numbers take the typed traced arguments' dtype.

        Traced arguments keep their own type (the callee is traced per signature).
        """
        dtypes = {a.dtype_name for a in args if isinstance(a, TracedArray) and not a.weak and a.dtype_name != "i64"}
        dtype = dtypes.pop() if len(dtypes) == 1 else "f64"
        return [self.resolve(a.value, loc) if isinstance(a, TracedArray) else self.lift(a, dtype, loc) for a in args]

    def lift(self, value: Any, dtype: str, loc: SourceLocation | None) -> SSAValue:
        """An SSA value for an operand: traced values as they are (converted to `dtype` when weakly
        typed, captured when they come from an enclosing block), constants materialised."""
        if isinstance(value, TracedArray):
            resolved = self.resolve(value.value, loc)
            if value.dtype_name != dtype and (value.weak or value.dtype_name == "i64"):
                return self.append(ConvertOp.make([resolved], dtype=dtype), loc).results[0]
            return resolved
        if isinstance(value, (bool, np.bool_)):
            raise with_location(TraceError(f"a bool ({value!r}) is not an array operand"), loc)
        if isinstance(value, (int, float, np.integer, np.floating)):
            op = R.FillOp.make([], value=value, shape=(), dtype=dtype)
            return self.append(op, loc).results[0]
        if isinstance(value, (np.ndarray, list, tuple)):
            array = np.asarray(value)
            if array.dtype.kind not in "iuf":
                err = DTypeError(f"cannot use an array of dtype {array.dtype} as a constant")
                raise with_location(err, loc)
            op = R.ConstantOp.make([], value=array, shape=array.shape, dtype=dtype)
            return self.append(op, loc).results[0]
        err = TraceError(
            f"cannot use an object of type {type(value).__name__} in a traced function; "
            "operands must be arrays, traced values or Python numbers"
        )
        raise with_location(err, loc)


class ModuleTrace:
    """A module under construction; traced callees are shared per (function, signature)."""

    def __init__(self):
        self.module = ModuleOp([])
        self._functions: dict[tuple, tuple[str, Any]] = {}
        self._in_progress: set[tuple] = set()
        self._names: set[str] = set()
        self._keepalive: list[Callable] = []

    def unique_name(self, base: str) -> str:
        name = re.sub(r"[^A-Za-z0-9_]", "_", base) or "fn"
        candidate, n = name, 1
        while candidate in self._names:
            candidate, n = f"{name}_{n}", n + 1
        self._names.add(candidate)
        return candidate

    def trace_function(
        self, fn: Callable, name: str, arg_types: Sequence[TensorType], key: tuple | None = None
    ) -> tuple[str, Any]:
        """Trace `fn` on placeholders of `arg_types` into a new func.func; returns (symbol, output tree).

        With a `key`, a second request for the same key returns the first function.
        """
        if key is not None and key in self._functions:
            return self._functions[key]
        if key is not None:
            # Keys hold id(fn): keep fn alive for the whole trace so its id cannot be reused.
            self._keepalive.append(fn)
        if key is not None and key in self._in_progress:
            raise TraceError(
                f"{name} calls itself: recursion cannot be traced (shapes would have to stop it)"
            )
        symbol = self.unique_name(name)
        scope = FunctionScope(self, symbol, arg_types)
        for arg, hint in zip(scope.block.args, _parameter_names(fn)):
            arg.name_hint = hint  # `%W1` in the IR instead of `%0`
        args = [TracedArray(scope, a) for a in scope.block.args]
        _check_arity(name, fn, args)
        if key is not None:
            self._in_progress.add(key)
        push_scope(scope)
        try:
            out = fn(*args)
        finally:
            pop_scope()
            if key is not None:
                self._in_progress.discard(key)
        leaves, tree = flatten(out)
        if not leaves:
            raise TraceError(f"{name} returns no array; a traced function must return arrays")
        loc = user_location()
        results = []
        for leaf in leaves:
            if isinstance(leaf, TracedArray):
                scope.check_owned(leaf)
                results.append(scope.resolve(leaf.value, loc))
            else:
                dtypes = {a.dtype_name for a in args}
                dtype = dtypes.pop() if len(dtypes) == 1 else "f64"
                results.append(scope.lift(leaf, dtype, loc))
        scope.append(func.ReturnOp(*results), loc)
        function = func.FuncOp(
            symbol,
            (list(arg_types), [r.type for r in results]),
            Region(scope.block),
            # Callees are private, so inlining may delete them once no call is left.
            visibility="private" if key is not None else None,
        )
        self.module.body.block.add_op(function)
        entry = (symbol, tree)
        if key is not None:
            self._functions[key] = entry
        return entry

    def function(self, symbol: str) -> func.FuncOp:
        for op in self.module.body.block.ops:
            if isinstance(op, func.FuncOp) and op.sym_name.data == symbol:
                return op
        raise KeyError(symbol)


def _refuse_numpy_options(method: str, options: dict) -> None:
    """numpy's reduction options other than their defaults (None) have no traced equivalent: say so."""
    given = sorted(k for k, v in options.items() if v is not None)
    if given:
        error = TraceError(
            f"np.{method} / x.{method}() on a traced array: option(s) {', '.join(given)} are not supported "
            f"inside @rm.jit (results are always new arrays of the input's dtype); use rm.{method}(x, axis=..., "
            "keepdims=...)"
        )
        raise with_location(error, user_location())


class TracedArray(Traced):
    """A placeholder for an array inside a trace: shape and dtype known, values not.

    Python operators, static indexing (`x[1:-1]`, `x[..., None]`) and numpy
    functions (`np.sin(x)`, `np.sum(x, axis=0)`) build raster ops. Anything
    that would need the values (`bool(x)`, `float(x)`, `np.asarray(x)`)
    raises a TraceError.
    """

    __array_priority__ = 1000

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """numpy ufuncs on traced values (`np.exp(x)`, `ndarray + x`) become raster ops."""
        name = _UFUNC_OPS.get(ufunc.__name__)
        if method == "__call__" and not kwargs and name is not None:
            return getattr(_ops(), name)(*inputs)
        logical = _UFUNC_LOGICAL.get(ufunc.__name__)
        if method == "__call__" and not kwargs and logical is not None:
            return getattr(_logical(), logical)(*inputs)
        error = TraceError(
            f"numpy's {ufunc.__name__} ({method}{', with ' + ', '.join(kwargs) if kwargs else ''}) is not "
            f"supported on traced arrays; supported ufuncs: {', '.join(sorted([*_UFUNC_OPS, *_UFUNC_LOGICAL]))}"
        )
        raise with_location(error, user_location())

    def __array_function__(self, func, types, args, kwargs):
        """numpy functions on traced values (`np.sum(x, axis=0)`, `np.where(m, x, 0)`) become raster ops."""
        from raster_mlir.numpy_interop import array_function

        return array_function(func, args, kwargs)

    def __init__(self, scope: FunctionScope, value: SSAValue, weak: bool = False):
        self.scope = scope
        self.value = value
        # Weakly typed (a float computed only from Python numbers and traced integers,
        # `i * dt`): it adopts the dtype of the typed operands it meets, like a Python float.
        self.weak = weak and R.is_float_type(value.type)

    # -- metadata -----------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return R.shape_of(self.value.type)

    @property
    def dtype_name(self) -> str:
        return R.dtype_of(self.value.type)

    @property
    def dtype(self) -> np.dtype:
        return NUMPY_DTYPES[self.dtype_name]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        if not self.shape:
            raise TraceError("len() of a 0-d traced array")
        return self.shape[0]

    def __repr__(self) -> str:
        return f"TracedArray(shape={self.shape}, dtype={self.dtype_name})"

    # -- operators (implemented in raster_mlir.ops, imported on first use: ops imports this package) --
    def __add__(self, other):
        return _ops().add(self, other)

    def __radd__(self, other):
        return _ops().add(other, self)

    def __sub__(self, other):
        return _ops().subtract(self, other)

    def __rsub__(self, other):
        return _ops().subtract(other, self)

    def __mul__(self, other):
        return _ops().multiply(self, other)

    def __rmul__(self, other):
        return _ops().multiply(other, self)

    def __truediv__(self, other):
        return _ops().divide(self, other)

    def __rtruediv__(self, other):
        return _ops().divide(other, self)

    def __floordiv__(self, other):
        """Python's // on traced integers (a loop index): `i // 2`."""
        return _indexing().floor_divide(self, other)

    def __rfloordiv__(self, other):
        return _indexing().floor_divide(other, self)

    def __mod__(self, other):
        """Python's % on traced integers: `i % 2`."""
        return _indexing().mod(self, other)

    def __rmod__(self, other):
        return _indexing().mod(other, self)

    def __pow__(self, other):
        return _ops().power(self, other)

    def __rpow__(self, other):
        return _ops().power(other, self)

    def __matmul__(self, other):
        return _ops().matmul(self, other)

    def __rmatmul__(self, other):
        return _ops().matmul(other, self)

    def __neg__(self):
        return _ops().negative(self)

    def __pos__(self):
        return self

    # Comparisons give float masks (1.0 where true, else 0.0) of the operands' dtype:
    # usable in arithmetic and rm.where, not in `if`.
    def __gt__(self, other):
        return _ops().greater(self, other)

    def __lt__(self, other):
        return _ops().less(self, other)

    def __ge__(self, other):
        return _ops().greater_equal(self, other)

    def __le__(self, other):
        return _ops().less_equal(self, other)

    def __eq__(self, other):
        return _ops().equal(self, other)

    def __ne__(self, other):
        return _ops().not_equal(self, other)

    def __abs__(self):
        return _ops().abs(self)

    # Logical operations on masks (`(x > 0) & (x < 1)`): non-zero = true (raster_mlir/logical_ops.py).
    def __and__(self, other):
        return _logical().logical_and(self, other)

    def __rand__(self, other):
        return _logical().logical_and(other, self)

    def __or__(self, other):
        return _logical().logical_or(self, other)

    def __ror__(self, other):
        return _logical().logical_or(other, self)

    def __xor__(self, other):
        return _logical().logical_xor(self, other)

    def __rxor__(self, other):
        return _logical().logical_xor(other, self)

    def __invert__(self):
        return _logical().logical_not(self)

    def __getitem__(self, key):
        """numpy basic indexing with static indices: ints, slices, `...`, None (see frontend/indexing.py);
        with a traced integer (the loop index), x[i] reads at a run-time position (raster_mlir/indexing.py)."""
        return _array_ops().getitem(self, key)

    def __setitem__(self, key, value):
        error = TraceError(
            "x[key] = v on a traced array: traced arrays are immutable (numpy's in-place assignment is not "
            "supported); write x = x.at[key].set(v) (or rm.at_set(x, key, v); .add(v) for +=)"
        )
        raise with_location(error, user_location())

    def __iter__(self):
        """Iterating gives x[0], x[1], ... (a static number of slices, like iterating in JAX)."""
        if not self.shape:
            error = TraceError(f"iteration over a 0-d traced array ({self.dtype_name})")
            raise with_location(error, user_location())
        return (self[i] for i in range(self.shape[0]))

    # -- methods numpy users reach for --------------------------------------
    @property
    def T(self):
        return _ops().transpose(self)

    def transpose(self, *axes):
        return _ops().transpose(self, axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else (axes or None))

    def reshape(self, *shape):
        return _ops().reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    # numpy's np.sum(x) / np.mean(x) / np.max(x) call these methods with dtype=None, out=None.
    def sum(self, axis=None, keepdims=False, **numpy_options):
        _refuse_numpy_options("sum", numpy_options)
        return _ops().sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False, **numpy_options):
        _refuse_numpy_options("mean", numpy_options)
        return _ops().mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False, **numpy_options):
        _refuse_numpy_options("max", numpy_options)
        return _ops().max(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False, **numpy_options):
        _refuse_numpy_options("min", numpy_options)
        return _ops().min(self, axis=axis, keepdims=keepdims)

    def prod(self, axis=None, keepdims=False, **numpy_options):
        _refuse_numpy_options("prod", numpy_options)
        return _ops().prod(self, axis=axis, keepdims=keepdims)

    def var(self, axis=None, ddof=0, keepdims=False, **numpy_options):
        _refuse_numpy_options("var", numpy_options)
        return _moments().var(self, axis=axis, ddof=ddof, keepdims=keepdims)

    def std(self, axis=None, ddof=0, keepdims=False, **numpy_options):
        _refuse_numpy_options("std", numpy_options)
        return _moments().std(self, axis=axis, ddof=ddof, keepdims=keepdims)

    def cumsum(self, axis=None, **numpy_options):
        _refuse_numpy_options("cumsum", numpy_options)
        return _ops().cumsum(self, axis=axis)

    def clip(self, a_min=None, a_max=None):
        return _ops().clip(self, a_min, a_max)

    def round(self, decimals=0):
        return _ops().round(self, decimals)

    __round__ = round  # (Python's round(x))

    def dot(self, other):
        return _ops().dot(self, other)

    def squeeze(self, axis=None):
        return _array_ops().squeeze(self, axis)

    def flatten(self):
        return _array_ops().ravel(self)

    def ravel(self):
        return _array_ops().ravel(self)

    def swapaxes(self, axis1, axis2):
        perm = list(range(self.ndim))
        perm[axis1], perm[axis2] = perm[axis2], perm[axis1]
        return _ops().transpose(self, perm)

    def copy(self):
        return self  # traced values are immutable: a copy is the value itself

    def astype(self, dtype):
        """Only to the array's own dtype (raster_mlir has no conversion op between f32 and f64)."""
        if np.dtype(dtype) != self.dtype:
            error = DTypeError(
                f"astype({np.dtype(dtype)}) of a traced {self.dtype_name} array: converting between "
                "dtypes inside a compiled function is not supported; convert the arguments instead"
            )
            raise with_location(error, user_location())
        return self

    # -- what needs concrete values ----------------------------------------
    def _needs_values(self, construct: str, error_class: type[TraceError] = TraceError):
        error = error_class(
            f"{construct} needs the values of a traced array {self.shape} {self.dtype_name}, "
            "which are not known while tracing; data-dependent Python control flow and "
            "conversions are not supported inside @rm.jit (use rm.maximum, masks or "
            "move the decision outside the compiled function)"
        )
        raise with_location(error, user_location())

    def __bool__(self):
        error = TraceError(
            f"bool() of a traced array {self.shape} {self.dtype_name} (an `if`, `while`, `and`/`or` or "
            "`not` on a traced value): its value is not known while tracing. Use "
            "rm.cond(pred, true_fn, false_fn, *operands) for a branch, rm.where(mask, a, b) "
            "elementwise, or rm.while_loop(cond_fn, body_fn, init) for a data-dependent loop"
        )
        raise with_location(error, user_location())

    def __float__(self):
        self._needs_values("float()")

    def __int__(self):
        self._needs_values("int()")

    def __index__(self):
        self._needs_values("using a traced value as an index")

    def __array__(self, *args, **kwargs):
        self._needs_values("converting to a numpy array (np.asarray / a numpy function)")

    def __getattr__(self, name: str):
        """Only for names normal lookup did not find: a numpy array's attribute that traced arrays lack
        gets an error naming it and the user's line (an AttributeError too); others a plain AttributeError."""
        if name.startswith("_") or not hasattr(np.ndarray, name):
            raise AttributeError(f"'TracedArray' object has no attribute {name!r}")
        if hasattr(TracedArray, name):
            # One of our properties raised an AttributeError (Python then asks here): raise that
            # error again rather than calling the attribute unsupported.
            return object.__getattribute__(self, name)
        if name in _NEEDS_VALUES:
            self._needs_values(f"x.{name}()", UnsupportedAttributeError)
        methods = sorted(n for n in dir(TracedArray) if not n.startswith("_"))
        error = UnsupportedAttributeError(
            f"ndarray.{name} is not supported on traced arrays ({self.shape} {self.dtype_name}); "
            f"they have: {', '.join(methods)}"
        )
        raise with_location(error, user_location())

    @property
    def at(self):
        """Functional updates as in JAX: `x.at[i].set(v)`, `x.at[i].add(v)` (i traced or a Python int)."""
        return _indexing().AtIndexer(self)

    __hash__ = object.__hash__  # identity: `==` builds a mask instead of comparing objects


# numpy ufunc name -> raster_mlir.ops function with the same meaning.
_UFUNC_OPS = {
    "add": "add", "subtract": "subtract", "multiply": "multiply", "divide": "divide",
    "true_divide": "divide", "power": "power", "negative": "negative", "exp": "exp", "log": "log",
    "tanh": "tanh", "sqrt": "sqrt", "maximum": "maximum", "minimum": "minimum", "matmul": "matmul",
    "sin": "sin", "cos": "cos", "tan": "tan", "exp2": "exp2", "log1p": "log1p", "expm1": "expm1",
    "absolute": "abs", "fabs": "abs", "sign": "sign", "square": "square", "reciprocal": "reciprocal",
    "arctan2": "arctan2", "greater": "greater", "greater_equal": "greater_equal", "less": "less",
    "less_equal": "less_equal", "equal": "equal", "not_equal": "not_equal", "floor": "floor",
    "ceil": "ceil", "trunc": "trunc", "rint": "rint",
}  # fmt: skip
# ndarray methods that would hand the values to Python (TracedArray.__getattr__).
_NEEDS_VALUES = frozenset({"item", "tolist", "tobytes", "tofile", "dump", "dumps", "itemset"})
# On masks (0/1 values) numpy's bitwise ufuncs (`bool_array & traced`) agree with the logical ones.
_UFUNC_LOGICAL = {
    "logical_and": "logical_and", "logical_or": "logical_or", "logical_xor": "logical_xor",
    "logical_not": "logical_not", "bitwise_and": "logical_and", "bitwise_or": "logical_or",
    "bitwise_xor": "logical_xor", "invert": "logical_not",
}  # fmt: skip


def _check_arity(name: str, fn: Callable, args: Sequence) -> None:
    """A DTypeError (a TypeError) naming the function and the missing or extra argument, if `fn` cannot
    take `args` (every transform traces through here: jit, grad, jvp, train steps)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # Python cannot tell (a builtin): the call itself will say
    try:
        signature.bind(*args)
    except TypeError as e:
        raise DTypeError(f"{name}: called with {len(args)} argument(s): {e}") from None


def _parameter_names(fn: Callable) -> list[str]:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _ops():
    from raster_mlir import ops

    return ops


def _logical():
    from raster_mlir import logical_ops

    return logical_ops


def _moments():
    from raster_mlir import moments

    return moments


def _array_ops():
    from raster_mlir import array_ops

    return array_ops


def _indexing():
    from raster_mlir import indexing

    return indexing


# DTYPES, NUMPY_DTYPES and typed_dtype are re-exported from trace_state for existing importers.
__all__ = [
    "ModuleTrace", "FunctionScope", "TracedArray", "active_scope", "flatten", "unflatten",
    "DTYPES", "NUMPY_DTYPES", "typed_dtype",
]  # fmt: skip
