"""`MathBuilder`: IEEE arithmetic on one float type (f32/f64, scalar or vector) for the vmath emitters.

Every vmath function is written once against this class and works on
`float`, `double` and `<N x float|double>` alike: constants are splatted,
integer views have the matching `<N x i32|i64>` type. Instructions carry no
fast-math flags (the approximations rely on exact Cody-Waite steps and on
the order of their additions, which `reassoc` or `contract` could undo);
`mla` is `llvm.fmuladd`, fused where the host has FMA (this CPU), a multiply
and an add elsewhere, and the approximations are accurate either way.
"""

from __future__ import annotations

import math

from llvmlite import ir

from ..llvm_ops import _suffix
from ..llvm_types import splat_constant


class MathBuilder:
    def __init__(self, builder: ir.IRBuilder, declare, ty: ir.Type, scalef: bool = False):
        self.b = builder
        self._declare = declare
        self.ty = ty
        self.scalef = scalef  # the host has AVX-512's vscalefpd/ps (see ldexp)
        self.count = ty.count if isinstance(ty, ir.VectorType) else None
        self.lane = ty.element if self.count else ty
        self.is_f64 = isinstance(self.lane, ir.DoubleType)
        self.bits = 64 if self.is_f64 else 32
        self.mantissa_bits = 52 if self.is_f64 else 23
        self.bias = 1023 if self.is_f64 else 127
        lane_int = ir.IntType(self.bits)
        self.ity = ir.VectorType(lane_int, self.count) if self.count else lane_int

    @classmethod
    def for_module(cls, builder: ir.IRBuilder, mctx, ty: ir.Type) -> "MathBuilder":
        """A builder for a function of the module being emitted (its host decides `scalef`)."""
        return cls(builder, mctx.declare, ty, scalef=mctx.options.target.has_avx512f)

    # ---- constants -------------------------------------------------------

    def _splat(self, ty, value):
        if self.count:
            return splat_constant(ty, value)
        return ir.Constant(ty, value)

    def const(self, value: float) -> ir.Constant:
        return self._splat(self.ty, value)

    def iconst(self, value: int) -> ir.Constant:
        return self._splat(self.ity, value)

    def for_type(self, ty: ir.Type) -> "MathBuilder":
        """A builder on the same insertion point for another float type (f32 computed in f64)."""
        return MathBuilder(self.b, self._declare, ty, self.scalef)

    # ---- float arithmetic (no fast-math flags) ---------------------------

    def add(self, a, b):
        return self.b.fadd(a, b)

    def sub(self, a, b):
        return self.b.fsub(a, b)

    def mul(self, a, b):
        return self.b.fmul(a, b)

    def div(self, a, b):
        return self.b.fdiv(a, b)

    def neg(self, a):
        return self.b.fneg(a)

    def intrinsic(self, stem: str, *args, ret=None):
        ty = args[0].type
        fn = self._declare(f"{stem}.{_suffix(ty)}", ret or ty, [a.type for a in args])
        return self.b.call(fn, list(args))

    def call(self, name: str, ret: ir.Type, args: list):
        """A call of the function or intrinsic `name` (declared once), e.g. an x86 one."""
        return self.b.call(self._declare(name, ret, [a.type for a in args]), args)

    def mla(self, a, b, c):
        """a*b + c, fused where the host has FMA."""
        return self.intrinsic("llvm.fmuladd", a, b, c)

    def poly(self, x, coefficients):
        """c0 + c1 x + c2 x^2 + ... by Horner's rule (coefficients lowest first)."""
        acc = self.const(coefficients[-1])
        for c in reversed(coefficients[:-1]):
            acc = self.mla(acc, x, self.const(c))
        return acc

    def abs(self, x):
        return self.intrinsic("llvm.fabs", x)

    def copysign(self, magnitude, sign):
        return self.intrinsic("llvm.copysign", magnitude, sign)

    # ---- comparisons and selection ---------------------------------------

    def cmp(self, op: str, a, b):
        """Ordered comparison (false when either side is NaN)."""
        return self.b.fcmp_ordered(op, a, b)

    def cmp_unordered(self, op: str, a, b):
        """Unordered comparison (true when either side is NaN)."""
        return self.b.fcmp_unordered(op, a, b)

    def is_nan(self, x):
        return self.b.fcmp_unordered("uno", x, x)

    def select(self, cond, a, b):
        return self.b.select(cond, a, b)

    def or_(self, a, b):
        return self.b.or_(a, b)

    # ---- integer views -----------------------------------------------------

    def as_int(self, x):
        return self.b.bitcast(x, self.ity)

    def as_float(self, i):
        return self.b.bitcast(i, self.ty)

    def iadd(self, a, b):
        return self.b.add(a, b)

    def isub(self, a, b):
        return self.b.sub(a, b)

    def iand(self, a, b):
        return self.b.and_(a, b)

    def shl(self, a, bits: int):
        return self.b.shl(a, self.iconst(bits))

    def ashr(self, a, bits: int):
        return self.b.ashr(a, self.iconst(bits))

    def icmp(self, op: str, a, b):
        return self.b.icmp_signed(op, a, b)

    def int_to_float(self, i):
        return self.b.sitofp(i, self.ty)

    # ---- building blocks shared by several functions -----------------------

    def round_shift(self):
        """1.5 * 2^p: adding it rounds |v| < 2^(p-1) to an integer held in the low mantissa bits."""
        return 1.5 * 2.0 ** self.mantissa_bits

    def pow2(self, n_bits):
        """2^n as a float from integer n (as the low bits of `n_bits`), valid for normal exponents."""
        return self.as_float(self.shl(self.iadd(n_bits, self.iconst(self.bias)), self.mantissa_bits))

    def ldexp(self, y, n_bits):
        """y * 2^n (n as integer bits, |n| < 2^(p-1)), rounded once, overflow and subnormal results included.

        With AVX-512, `llvm.ldexp` is one `vscalefpd` (after a `vcvtqq2pd` of
        n): 2 instructions where splitting 2^n into two normal factors takes 8
        (and the exp loop is bound by its count of vector instructions).
        Elsewhere LLVM may make it a libm call per lane: callers check `scalef`.
        """
        assert self.scalef, "ldexp needs AVX-512 (MathBuilder.scalef)"
        name = f"llvm.ldexp.{_suffix(self.ty)}.{_suffix(self.ity)}"
        return self.b.call(self._declare(name, self.ty, [self.ty, self.ity]), [y, n_bits])

    @property
    def smallest_normal(self) -> float:
        return 2.0 ** (1 - self.bias)


def in_f64(m: MathBuilder, x, compute):
    """compute(m64, x64) in double precision, rounded back to x's type when that is f32.

    `x` may be a tuple of arguments (then compute gets the tuple, widened)."""
    if m.is_f64:
        return compute(m, x)
    ty64 = ir.VectorType(ir.DoubleType(), m.count) if m.count else ir.DoubleType()
    m64 = m.for_type(ty64)
    wide = tuple(m.b.fpext(v, ty64) for v in x) if isinstance(x, tuple) else m.b.fpext(x, ty64)
    return m.b.fptrunc(compute(m64, wide), m.ty)
