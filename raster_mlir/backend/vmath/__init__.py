"""Vector maths: transcendental `math` ops as straight-line LLVM IR that the loop vectoriser vectorises.

x86's lowering of `llvm.exp` & co. on vectors is one scalar libm call per
lane, so a loop calling them runs at scalar speed. Instead, for each
(op, type) a module uses, the backend defines one small internal function

    define internal <T> @rm.vm.<fn>.<T>(<T> %x) alwaysinline { ...no branches... }

(T = float, double or a vector of them) whose body is a polynomial
approximation with branch-free range reduction and special cases by
`select` (the emitters in this package; their algorithms are in each
module's docstring). LLVM inlines it early, so the loop vectoriser sees
plain arithmetic and vectorises it at the host's width together with
whatever else the fused loop computes (a softmax's exp pass and its sum,
a sigmoid inside an elementwise chain, the log of a cross-entropy). No
library is needed, so this works on every host; `EmitOptions(vector_math=False)`
(`compile_module(..., vector_math=False)`) goes back to the libm calls.

Why not a vector library: docs/vector-math.md compares this with Intel
SVML (from the intel-cmplr-lib-rt wheel) on this machine.
"""

from __future__ import annotations

from collections.abc import Callable

from llvmlite import ir

from ..fast_builder import FastBuilder
from ..llvm_ops import _suffix
from .atan import emit_atan2
from .avx512 import AVX512_F64, define_avx512_function, uses_avx512_kernel
from .builder import MathBuilder
from .erf import emit_erf
from .exp import emit_exp, emit_exp2, emit_expm1
from .fallback import FullBeyond, LibmBeyond, define_scalar, define_variant, variant_widths
from .hyperbolic import emit_tanh
from .log import emit_log, emit_log1p, emit_log_positive_normal, not_positive_normal
from .trig import MEDIUM, emit_cos, emit_sin, emit_tan

# op name -> (emitter(m, *args) -> value, arity)
FUNCTIONS: dict[str, tuple[Callable, int]] = {
    "math.exp": (emit_exp, 1),
    "math.exp2": (emit_exp2, 1),
    "math.expm1": (emit_expm1, 1),
    "math.log": (emit_log_positive_normal, 1),
    "math.log1p": (emit_log1p, 1),
    "math.tanh": (emit_tanh, 1),
    "math.erf": (emit_erf, 1),
    "math.atan2": (emit_atan2, 2),
    "math.sin": (emit_sin, 1),
    "math.cos": (emit_cos, 1),
    "math.tan": (emit_tan, 1),
}
# ops whose fast path (FUNCTIONS) holds for common arguments only: how the rare lanes are computed (fallback.py)
RARE_PATHS = {
    "math.sin": LibmBeyond("sin", MEDIUM),
    "math.cos": LibmBeyond("cos", MEDIUM),
    "math.tan": LibmBeyond("tan", MEDIUM),
    "math.log": FullBeyond(emit_log, not_positive_normal),
}
VECTOR_MATH_OPS = frozenset(FUNCTIONS)


def math_function(mctx, op_name: str, ty: ir.Type) -> ir.Function:
    """The module's `@rm.vm.<fn>.<T>` for `op_name` on `ty`, defined on first use."""
    cache = mctx.vector_math_functions
    fn = cache.get((op_name, str(ty)))
    if fn is not None:
        return fn
    emitter, arity = FUNCTIONS[op_name]
    stem = f"rm.vm.{op_name.removeprefix('math.')}"
    if op_name in AVX512_F64 and uses_avx512_kernel(mctx.options.target, ty):
        is_scalar = not isinstance(ty, ir.VectorType)
        widths = variant_widths(mctx, ty) if is_scalar else []
        variants = [math_function(mctx, op_name, ir.VectorType(ty, w)) for w in widths]
        fn = define_avx512_function(mctx, op_name, ty, variants)
    elif op_name in RARE_PATHS:
        rare = RARE_PATHS[op_name]
        if isinstance(ty, ir.VectorType):
            fn = define_variant(mctx, stem, ty, emitter, rare)
        else:
            variants = [math_function(mctx, op_name, ir.VectorType(ty, w)) for w in variant_widths(mctx, ty)]
            fn = define_scalar(mctx, stem, ty, emitter, rare, variants)
    else:
        fn = ir.Function(mctx.llmod, ir.FunctionType(ty, [ty] * arity), name=mctx.symbol(f"{stem}.{_suffix(ty)}"))
        fn.linkage = "internal"
        mctx.set_target_attributes(fn)
        fn.attributes.add("alwaysinline")
        builder = FastBuilder(fn.append_basic_block("entry"))
        builder.ret(emitter(MathBuilder.for_module(builder, mctx, ty), *fn.args))
    cache[(op_name, str(ty))] = fn
    return fn


def vector_math_handlers(fallbacks: dict) -> dict:
    """Op handlers for the body emitter: the vmath function, or `fallbacks[name]` when disabled."""

    def make(fallback):
        def handler(self, op):
            if not self.mctx.options.vector_math:
                return fallback(self, op)
            args = [self.value(v) for v in op.operands]
            fn = math_function(self.mctx, op.name, args[0].type)
            self.define(op, self.builder.call(fn, args))

        return handler

    return {name: make(fallbacks[name]) for name in FUNCTIONS}
