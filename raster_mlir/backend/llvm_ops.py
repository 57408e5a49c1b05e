"""Scalar `arith` and `math` ops -> one LLVM instruction or intrinsic call each.

Algorithm: a table from op name to a small method; every method reads its
operands from the value map, builds one instruction and defines the op's
result. Float arithmetic carries the fast-math flags of the module options
(default `reassoc contract`, see `llvm_emit.EmitOptions`) united with the
op's own `fastmath<...>` attribute, so a pass can ask for more on one op;
an op with the unit attribute `raster.exact` gets neither `reassoc` nor
`contract`, so that LLVM computes it the same way wherever it stands
(skip-zero-chunks' masked partial chunks and its chunk loop must round alike).

Maths goes to LLVM intrinsics (`llvm.exp.f64`, `llvm.tanh.f64` - LLVM 19+
has `llvm.tanh`, which x86 lowers to a libm call - `llvm.maximum` for
`arith.maximumf`, whose NaN-propagating semantics match). The few math ops
without an intrinsic call the C library directly (`log1p`, `expm1`, `erf`,
`cbrt`, with an `f` suffix for f32); MCJIT resolves them in the process,
where Python has already loaded libm.
"""

from __future__ import annotations

import functools

from llvmlite import ir
from xdsl.ir import Operation

from ..errors import CompileError
from .llvm_types import llvm_type, shared_constant

EXACT_FP = "raster.exact"  # unit attribute: no reassoc or contract on this op (module docstring)

# math/arith op -> LLVM intrinsic stem, by arity.
UNARY_INTRINSICS = {
    "math.exp": "llvm.exp",
    "math.exp2": "llvm.exp2",
    "math.log": "llvm.log",
    "math.log2": "llvm.log2",
    "math.log10": "llvm.log10",
    "math.tanh": "llvm.tanh",
    "math.sinh": "llvm.sinh",
    "math.cosh": "llvm.cosh",
    "math.sin": "llvm.sin",
    "math.cos": "llvm.cos",
    "math.tan": "llvm.tan",
    "math.atan": "llvm.atan",
    "math.asin": "llvm.asin",
    "math.acos": "llvm.acos",
    "math.sqrt": "llvm.sqrt",
    "math.absf": "llvm.fabs",
    "math.floor": "llvm.floor",
    "math.ceil": "llvm.ceil",
    "math.trunc": "llvm.trunc",
    "math.round": "llvm.round",
    "math.roundeven": "llvm.roundeven",
}
BINARY_INTRINSICS = {
    "math.powf": "llvm.pow",
    "math.atan2": "llvm.atan2",
    "math.copysign": "llvm.copysign",
    "arith.maximumf": "llvm.maximum",
    "arith.minimumf": "llvm.minimum",
    "arith.maxnumf": "llvm.maxnum",
    "arith.minnumf": "llvm.minnum",
}
INT_BINARY_INTRINSICS = {
    "arith.maxsi": "llvm.smax",
    "arith.minsi": "llvm.smin",
    "arith.maxui": "llvm.umax",
    "arith.minui": "llvm.umin",
}
LIBM_FUNCTIONS = {"math.log1p": "log1p", "math.expm1": "expm1", "math.erf": "erf", "math.cbrt": "cbrt"}

# Ops whose x86 lowering is a scalar libm call even inside a vector loop.
LIBM_OPS = frozenset(
    {
        "math.exp",
        "math.exp2",
        "math.log",
        "math.log2",
        "math.log10",
        "math.tanh",
        "math.sinh",
        "math.cosh",
        "math.sin",
        "math.cos",
        "math.tan",
        "math.atan",
        "math.asin",
        "math.acos",
        "math.powf",
        "math.atan2",
        *LIBM_FUNCTIONS,
    }
)

FLOAT_BINOPS = {"arith.addf": "fadd", "arith.subf": "fsub", "arith.mulf": "fmul", "arith.divf": "fdiv"}
INT_BINOPS = {
    "arith.addi": "add",
    "arith.subi": "sub",
    "arith.muli": "mul",
    "arith.divsi": "sdiv",
    "arith.divui": "udiv",
    "arith.remsi": "srem",
    "arith.remui": "urem",
    "arith.andi": "and_",
    "arith.ori": "or_",
    "arith.xori": "xor",
    "arith.shli": "shl",
    "arith.shrsi": "ashr",
    "arith.shrui": "lshr",
}

# arith.cmpf predicate -> (ordered?, llvmlite operator)
CMPF = {
    "oeq": (True, "=="),
    "ogt": (True, ">"),
    "oge": (True, ">="),
    "olt": (True, "<"),
    "ole": (True, "<="),
    "one": (True, "!="),
    "ord": (True, "ord"),
    "ueq": (False, "=="),
    "ugt": (False, ">"),
    "uge": (False, ">="),
    "ult": (False, "<"),
    "ule": (False, "<="),
    "une": (False, "!="),
    "uno": (False, "uno"),
}
CMPF_NAMES = [
    "false",
    "oeq",
    "ogt",
    "oge",
    "olt",
    "ole",
    "one",
    "ord",
    "ueq",
    "ugt",
    "uge",
    "ult",
    "ule",
    "une",
    "uno",
    "true",
]
CMPI_NAMES = ["eq", "ne", "slt", "sle", "sgt", "sge", "ult", "ule", "ugt", "uge"]
CMPI = {
    "eq": (True, "=="),
    "ne": (True, "!="),
    "slt": (True, "<"),
    "sle": (True, "<="),
    "sgt": (True, ">"),
    "sge": (True, ">="),
    "ult": (False, "<"),
    "ule": (False, "<="),
    "ugt": (False, ">"),
    "uge": (False, ">="),
}


@functools.lru_cache(maxsize=256)
def _fastmath_flags(module_flags: tuple[str, ...], own: tuple, exact: bool) -> tuple[str, ...]:
    """The module's flags united with an op's own (`FastMathFlag`s), less `reassoc`/`contract` on an exact op
    (cached: it was computed again for every float op)."""
    flags = set(module_flags)
    flags.update(f.value for f in own)
    if exact:
        flags.difference_update(("reassoc", "contract"))
    return tuple(sorted(flags))


def _suffix(t: ir.Type) -> str:
    """The type part of an overloaded intrinsic's name: f64, f32, i32, v16f32..."""
    if isinstance(t, ir.VectorType):
        return f"v{t.count}{_suffix(t.element)}"
    if isinstance(t, ir.DoubleType):
        return "f64"
    if isinstance(t, ir.FloatType):
        return "f32"
    if isinstance(t, ir.IntType):
        return f"i{t.width}"
    raise CompileError(f"no intrinsic overload for type {t}")


class OpTranslator:
    """Mixin for `FunctionBodyEmitter`: the scalar-op half of the translation."""

    def fastmath(self, op: Operation) -> tuple[str, ...]:
        own = op.properties.get("fastmath")
        return _fastmath_flags(self.mctx.options.fastmath, own.data if own is not None else (), EXACT_FP in op.attributes)

    def _result_type(self, op: Operation) -> ir.Type:
        return llvm_type(op.results[0].type)

    def _emit_constant(self, op: Operation) -> None:
        attr = op.value
        ty = self._result_type(op)
        raw = getattr(attr, "value", None)
        data = getattr(raw, "data", None)
        if isinstance(ty, ir.IntType):
            if not isinstance(data, int):
                raise CompileError(f"unsupported integer constant {attr}")
            value = int(bool(data)) if ty.width == 1 else data
            self.define(op, shared_constant(ty, value))
        elif isinstance(ty, (ir.DoubleType, ir.FloatType)):
            if not isinstance(data, (int, float)):
                raise CompileError(f"unsupported float constant {attr}")
            self.define(op, shared_constant(ty, float(data)))
        else:
            raise CompileError(f"unsupported constant {attr}")

    def _emit_float_binop(self, op: Operation) -> None:
        lhs, rhs = op.operands
        method = getattr(self.builder, FLOAT_BINOPS[op.name])
        self.define(op, method(self.value(lhs), self.value(rhs), flags=self.fastmath(op)))

    def _emit_int_binop(self, op: Operation) -> None:
        lhs, rhs = (self.value(v) for v in op.operands)
        self.define(op, getattr(self.builder, INT_BINOPS[op.name])(lhs, rhs))

    def _emit_negf(self, op: Operation) -> None:
        self.define(op, self.builder.fneg(self.value(op.operands[0]), flags=self.fastmath(op)))

    def _call_intrinsic(self, op: Operation, stem: str, args, flags=()) -> None:
        ty = args[0].type
        fn = self.mctx.declare(f"{stem}.{_suffix(ty)}", ty, [ty] * len(args))
        self.define(op, self.builder.call(fn, args, fastmath=flags))

    def _emit_unary_intrinsic(self, op: Operation) -> None:
        self._call_intrinsic(op, UNARY_INTRINSICS[op.name], [self.value(op.operands[0])], self.fastmath(op))

    def _emit_binary_intrinsic(self, op: Operation) -> None:
        args = [self.value(v) for v in op.operands]
        self._call_intrinsic(op, BINARY_INTRINSICS[op.name], args, self.fastmath(op))

    def _emit_int_intrinsic(self, op: Operation) -> None:
        self._call_intrinsic(op, INT_BINARY_INTRINSICS[op.name], [self.value(v) for v in op.operands])

    def _emit_fma(self, op: Operation) -> None:
        self._call_intrinsic(op, "llvm.fma", [self.value(v) for v in op.operands], self.fastmath(op))

    def _emit_rsqrt(self, op: Operation) -> None:
        x = self.value(op.operands[0])
        flags = self.fastmath(op)
        fn = self.mctx.declare(f"llvm.sqrt.{_suffix(x.type)}", x.type, [x.type])
        root = self.builder.call(fn, [x], fastmath=flags)
        self.define(op, self.builder.fdiv(ir.Constant(x.type, 1.0), root, flags=flags))

    def _emit_libm(self, op: Operation) -> None:
        x = self.value(op.operands[0])
        name = LIBM_FUNCTIONS[op.name] + ("f" if isinstance(x.type, ir.FloatType) else "")
        fn = self.mctx.declare(name, x.type, [x.type])
        self.define(op, self.builder.call(fn, [x], fastmath=self.fastmath(op)))

    def _emit_cmpf(self, op: Operation) -> None:
        lhs, rhs = (self.value(v) for v in op.operands)
        pred = CMPF_NAMES[op.predicate.value.data]
        if pred in ("false", "true"):
            self.define(op, ir.Constant(ir.IntType(1), int(pred == "true")))
            return
        ordered, cmpop = CMPF[pred]
        # Only the op's own flags: `reassoc`/`contract` mean nothing on a
        # compare, and `nnan` must never be added behind the user's back.
        own = op.properties.get("fastmath")
        flags = tuple(sorted(f.value for f in own.data)) if own is not None else ()
        method = self.builder.fcmp_ordered if ordered else self.builder.fcmp_unordered
        self.define(op, method(cmpop, lhs, rhs, flags=flags))

    def _emit_cmpi(self, op: Operation) -> None:
        lhs, rhs = (self.value(v) for v in op.operands)
        signed, cmpop = CMPI[CMPI_NAMES[op.predicate.value.data]]
        method = self.builder.icmp_signed if signed else self.builder.icmp_unsigned
        self.define(op, method(cmpop, lhs, rhs))

    def _emit_select(self, op: Operation) -> None:
        cond, a, b = (self.value(v) for v in op.operands)
        self.define(op, self.builder.select(cond, a, b))

    def _emit_int_resize(self, op: Operation) -> None:
        x = self.value(op.operands[0])
        ty = self._result_type(op)
        if ty.width == x.type.width:
            self.define(op, x)
        elif ty.width < x.type.width:
            self.define(op, self.builder.trunc(x, ty))
        elif op.name in ("arith.index_castui", "arith.extui"):
            self.define(op, self.builder.zext(x, ty))
        else:
            self.define(op, self.builder.sext(x, ty))

    def _emit_conversion(self, op: Operation) -> None:
        method = {
            "arith.sitofp": "sitofp",
            "arith.uitofp": "uitofp",
            "arith.fptosi": "fptosi",
            "arith.fptoui": "fptoui",
            "arith.extf": "fpext",
            "arith.truncf": "fptrunc",
        }[op.name]
        self.define(op, getattr(self.builder, method)(self.value(op.operands[0]), self._result_type(op)))


def _handler_table() -> dict:
    t = OpTranslator
    table = {
        "arith.constant": t._emit_constant,
        "arith.negf": t._emit_negf,
        "arith.cmpf": t._emit_cmpf,
        "arith.cmpi": t._emit_cmpi,
        "arith.select": t._emit_select,
        "math.fma": t._emit_fma,
        "math.rsqrt": t._emit_rsqrt,
    }
    table.update(dict.fromkeys(FLOAT_BINOPS, t._emit_float_binop))
    table.update(dict.fromkeys(INT_BINOPS, t._emit_int_binop))
    table.update(dict.fromkeys(UNARY_INTRINSICS, t._emit_unary_intrinsic))
    table.update(dict.fromkeys(BINARY_INTRINSICS, t._emit_binary_intrinsic))
    table.update(dict.fromkeys(INT_BINARY_INTRINSICS, t._emit_int_intrinsic))
    table.update(dict.fromkeys(LIBM_FUNCTIONS, t._emit_libm))
    resize = ("arith.index_cast", "arith.index_castui", "arith.extsi", "arith.extui", "arith.trunci")
    table.update(dict.fromkeys(resize, t._emit_int_resize))
    conversions = ("arith.sitofp", "arith.uitofp", "arith.fptosi", "arith.fptoui", "arith.extf", "arith.truncf")
    table.update(dict.fromkeys(conversions, t._emit_conversion))
    return table


OpTranslator.HANDLERS = _handler_table()
