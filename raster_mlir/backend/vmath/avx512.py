"""exp and log of f64 with AVX-512's exponent instructions, which the loop vectoriser cannot produce.

The generic kernels (exp.py, log.py) are scalar code that LLVM vectorises;
they take the exponent apart with integer operations on the bits, because
scalar IR has no other way. AVX-512 has instructions for it:

    vgetexppd x          floor(log2 |x|) as a double (subnormals exact, 0 -> -inf, inf -> inf)
    vgetmantpd x, 0xb    the mantissa normalised to [0.75, 1.5) (NaN for a negative x)
    vscalefpd y, n       y * 2^floor(n) with n a double: no conversion of n to an integer

They exist only as x86 vector intrinsics, so these kernels are built as
explicit vector functions in the VFABI frame of fallback.py: a `noinline`
scalar function (computing lane 0 of a 2-lane vector with the same
instructions, so every element gets the same bits whichever path it takes)
that names the vector variants the loop vectoriser calls.

    log f64 (fdlibm's kernel around one of 7 centres, reduction by the instructions above):
        m = getmant(x) in [0.75, 1.5), k = getexp(x) - getexp(m)   (getexp(m) = -1 when m < 1)
        j = round(8 m) (the low bits of m + 1.5 * 2^49), c = C[j mod 8], log c = L[j mod 8]  (two vpermpd)
        f = m - c (exact), s = f / (m + c), z = s^2, R = z T(z)   (T: degree 3, LOG_TABLE_F64)
        log(m/c) = 2 atanh(s) = f - s (w - R),  w = m - (2 - c) = f + 2c - 2  (both exact)
        log x = k ln2 + ((log c + f) - s (w - R))   (one multiply-add, ln2 rounded to double)
    c_8 = 1 keeps the relative accuracy near x = 1 (f, w and log(1 + f) are fdlibm's there); the
    other centres are chosen near the middle of their eighth so that log c is a multiple of 2^-53
    within 1e-4 ulp (fit.log_centers): log c + f is then exact, and the table adds no rounding.
    |s| <= 0.036 instead of 0.2 lets T drop from 7 coefficients to 4. k ln2 in one part costs
    |k (ln2 - fl(ln2))| <= 0.42 ulp of the result (k != 0 only) and one multiply-add per 8 lanes.
    Special values need no selects: x = +-0 gives k = -inf and so -inf; x = inf gives
    k = inf, so inf; x < 0 gives m = NaN and so NaN; NaN stays NaN; subnormal x is exact
    (getexp and getmant see its true exponent). 1.2 ulp (docs/vector-math.md).

    exp f64 (a table of 16 values in two registers):
        N = round(16 x / ln2) by the shifter trick with 1.5 * 2^48 (its ulp is 1/16): z = N/16 + shift
        r = x - (N/16) ln2 (Cody-Waite, two parts), |r| <= ln2/32, expm1(r) = r + r^2 P(r), P of degree 4
        exp x = 2^floor(N/16) * (t + t expm1(r)),  t = 2^((N mod 16)/16) = vpermi2pd(table, bits(z))
    (vpermi2pd reads only the low 4 bits of each index lane: N mod 16 sits there), 2^floor
    by vscalefpd on N/16 itself. 10 multiply-adds per 8 lanes where the generic kernel
    (degree 11, no table) has 14: 18 vector instructions per 8 lanes instead of 24.5 (1.08 ulp).

Used when the host has AVX-512F and AVX-512VL (the 128- and 256-bit forms);
elsewhere the generic kernels run. Accuracy: docs/vector-math.md.
"""

from __future__ import annotations

import math

from llvmlite import ir

from ..fast_builder import FastBuilder
from ..llvm_ops import _suffix
from .builder import MathBuilder
from .coefficients import EXP2_SIXTEENTHS_F64, EXP_TABLE_F64, LOG_CENTRES_F64, LOG_OF_CENTRES_F64, LOG_TABLE_F64
from .exp import LN2_HI_F64, LN2_LO_F64, _clamp, _limit
from .fallback import add_vector_variants

_ROUND_CURRENT = 4  # _MM_FROUND_CUR_DIRECTION
_MANT_075_15_SIGN_NAN = 0b1011  # interval [0.75, 1.5) | sign control "NaN for negative"
_I32 = ir.IntType(32)
_SIXTEENTHS_SHIFT = 1.5 * 2.0**48  # adding it rounds |v| < 2^47 to a multiple of 1/16 (its ulp)
_EIGHTHS_SHIFT = 1.5 * 2.0**49  # adding it rounds |v| < 2^48 to a multiple of 1/8 (its ulp)
_TABLE = EXP2_SIXTEENTHS_F64


def uses_avx512_kernel(target, ty: ir.Type) -> bool:
    """The host has the instructions, and `ty` is double or a vector of 2, 4 or 8 of them."""
    lane, count = (ty.element, ty.count) if isinstance(ty, ir.VectorType) else (ty, 1)
    return isinstance(lane, ir.DoubleType) and count in (1, 2, 4, 8) and {"avx512f", "avx512vl"} <= target.feature_set


def _x86(m: MathBuilder, stem: str, *args):
    """llvm.x86.avx512.mask.<stem>.pd.<bits>(args..., passthrough, all lanes, current rounding)."""
    vty = m.ty
    bits = vty.count * 64
    tail = [ir.Constant(vty, None), ir.Constant(ir.IntType(8), -1), ir.Constant(_I32, _ROUND_CURRENT)]
    operands = list(args) + (tail if bits == 512 else tail[:2])  # 128/256-bit forms take no rounding
    return m.call(f"llvm.x86.avx512.mask.{stem}.pd.{bits}", vty, operands)


def getexp(m: MathBuilder, x):
    return _x86(m, "getexp", x)


def getmant(m: MathBuilder, x):
    return _x86(m, "getmant", x, ir.Constant(_I32, _MANT_075_15_SIGN_NAN))


def scalef(m: MathBuilder, y, n):
    return _x86(m, "scalef", y, n)


def emit_log_avx512(m: MathBuilder, x):
    mantissa = getmant(m, x)
    dk = m.sub(getexp(m, x), getexp(m, mantissa))
    eighths = m.as_int(m.add(mantissa, m.const(_EIGHTHS_SHIFT)))  # low bits: round(8 m)
    c = _lookup(m, LOG_CENTRES_F64, eighths)
    log_c = _lookup(m, LOG_OF_CENTRES_F64, eighths)
    f = m.sub(mantissa, c)
    s = m.div(f, m.add(mantissa, c))
    w = m.sub(mantissa, m.sub(m.const(2.0), c))  # f + 2c - 2
    z = m.mul(s, s)
    w_minus_r = m.mla(m.neg(z), m.poly(z, LOG_TABLE_F64), w)
    log_m = m.mla(m.neg(s), w_minus_r, m.add(log_c, f))  # log c + f - s (w - R): the sum is exact
    return m.mla(dk, m.const(math.log(2)), log_m)


def _sixteenths(m: MathBuilder, n_bits):
    """2^(j/16) for j = n mod 16 (the low 4 bits of each lane of `n_bits`), from EXP2_SIXTEENTHS_F64."""
    return _lookup(m, _TABLE, n_bits)


def _lookup(m: MathBuilder, table, index_bits):
    """table[i mod len(table)] for the low bits i of each lane of `index_bits` (8 or 16 entries).

    8 entries: one `vpermpd` (it reads the index's low 3 bits); 16: one `vpermi2pd` from the
    table held in two registers (low 4 bits). Narrower vectors (the 4-lane variant, the scalar
    function's 2 lanes) are widened to 8 lanes for it and narrowed back, so every path reads the
    same values, and the table is in no global variable (which a module split could not share
    between its parts).
    """
    wide = ir.VectorType(m.lane, 8)
    index = index_bits
    if m.count != 8:
        index = m.b.shuffle_vector(index_bits, index_bits, _lanes([k % m.count for k in range(8)]))
    parts = [ir.Constant(wide, [ir.Constant(m.lane, v) for v in table[k : k + 8]]) for k in range(0, len(table), 8)]
    if len(parts) == 1:
        t = m.call("llvm.x86.avx512.permvar.df.512", wide, [parts[0], index])
    else:
        t = m.call("llvm.x86.avx512.vpermi2var.pd.512", wide, [parts[0], index, parts[1]])
    if m.count != 8:
        t = m.b.shuffle_vector(t, t, _lanes(list(range(m.count))))
    return t


def _lanes(indices: list[int]) -> ir.Constant:
    """A shufflevector mask."""
    return ir.Constant(ir.VectorType(_I32, len(indices)), indices)


def emit_exp_avx512(m: MathBuilder, x):
    x = _clamp(m, x, -_limit(m), _limit(m))
    shift = m.const(_SIXTEENTHS_SHIFT)
    z = m.mla(x, m.const(1 / math.log(2)), shift)  # x / ln2 rounded to a multiple of 1/16: N/16 + shift
    k = m.sub(z, shift)
    r = m.mla(k, m.const(-LN2_HI_F64), x)  # exact: k has 15 significant bits, LN2_HI_F64 33
    r = m.mla(k, m.const(-LN2_LO_F64), r)
    p = m.mla(m.mul(r, r), m.poly(r, EXP_TABLE_F64), r)  # expm1(r), |r| <= ln2/32
    t = _sixteenths(m, m.as_int(z))  # the low bits of z are N's
    return scalef(m, m.mla(t, p, t), k)  # 2^floor(N/16) 2^((N mod 16)/16) exp(r)


AVX512_F64 = {"math.log": emit_log_avx512, "math.exp": emit_exp_avx512}


def _define(mctx, name: str, ty: ir.Type, inline: bool) -> tuple[ir.Function, ir.IRBuilder]:
    fn = ir.Function(mctx.llmod, ir.FunctionType(ty, [ty]), name=mctx.symbol(name))
    mctx.set_target_attributes(fn)
    fn.attributes.add("alwaysinline" if inline else "noinline")
    return fn, FastBuilder(fn.append_basic_block("entry"))


def define_avx512_function(mctx, op_name: str, ty: ir.Type, variants) -> ir.Function:
    """`@rm.vm.<fn>.<ty>` computed by AVX-512 instructions: a vector variant, or the scalar
    function naming `variants`."""
    emitter = AVX512_F64[op_name]
    stem = f"rm.vm.{op_name.removeprefix('math.')}"
    if isinstance(ty, ir.VectorType):
        fn, b = _define(mctx, f"{stem}.{_suffix(ty)}", ty, inline=True)  # external: kept until vectorised
        b.ret(emitter(MathBuilder.for_module(b, mctx, ty), fn.args[0]))
        return fn
    fn, b = _define(mctx, f"{stem}.{_suffix(ty)}", ty, inline=False)
    fn.linkage = "internal"
    fn.attributes.add("readnone")
    pair = ir.VectorType(ty, 2)
    zero = ir.Constant(_I32, 0)
    lanes = b.insert_element(ir.Constant(pair, None), fn.args[0], zero)
    b.ret(b.extract_element(emitter(MathBuilder.for_module(b, mctx, pair), lanes), zero))
    add_vector_variants(fn, variants)
    return fn
