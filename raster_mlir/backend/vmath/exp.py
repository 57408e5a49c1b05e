"""exp, exp2, expm1 (and the expm1 core of tanh): one reduction, one polynomial.

Algorithm (as in fdlibm and ARM's optimized-routines, without tables):
    n = round(x / ln2)              by the shifter trick: z = x*log2(e) + 1.5*2^p,
                                    n = z - 1.5*2^p, and the integer n sits in
                                    the low bits of z (no float->int conversion)
    r = x - n*ln2_hi - n*ln2_lo     Cody-Waite: ln2_hi has trailing zero bits,
                                    so n*ln2_hi and the first subtraction are exact
    p = r + r^2 * P(r)              = expm1(r), P a minimax fit (coefficients.py),
                                    |r| <= ln2/2
    exp(x) = 2^n (1 + p)            computed as (s1 + s1*p) * s2 with 2^n = s1*s2,
                                    n1 = n >> 1: both factors are normal numbers for
                                    every n in range, so results that overflow or
                                    are subnormal round correctly without a branch
Out-of-range arguments are clamped first (|x| beyond where exp is 0 or inf;
the clamp keeps NaN), so every lane runs the same straight-line code.
exp2 uses n = round(x), r = (x - n) * ln2 (x - n is exact); expm1 returns
2^n p + (2^n - 1), which keeps the relative accuracy of p near zero.
Measured accuracy: docs/vector-math.md.
"""

from __future__ import annotations

import math

from .builder import MathBuilder
from .coefficients import EXP_F32, EXP_F64

# ln 2 = LN2_HI + LN2_LO; LN2_HI has 32 (f64) / 16 (f32) significant bits.
LN2_HI_F64 = float.fromhex("0x1.62e42fee00000p-1")
LN2_LO_F64 = float.fromhex("0x1.a39ef35793c76p-33")
LN2_HI_F32 = float.fromhex("0x1.62e4p-1")
LN2_LO_F32 = float.fromhex("0x1.7f7d1cp-20")


def _ln2(m: MathBuilder):
    return (LN2_HI_F64, LN2_LO_F64) if m.is_f64 else (LN2_HI_F32, LN2_LO_F32)


def _clamp(m: MathBuilder, x, lo: float, hi: float):
    """min(max(x, lo), hi), NaN kept (ordered compares are false on NaN)."""
    x = m.select(m.cmp("<", x, m.const(lo)), m.const(lo), x)
    return m.select(m.cmp(">", x, m.const(hi)), m.const(hi), x)


def _round_to_integer(m: MathBuilder, v):
    """(n as a float, n as the low bits of an integer) for |v| < 2^(p-2)."""
    shift = m.const(m.round_shift())
    z = m.add(v, shift)
    return m.sub(z, shift), m.isub(m.as_int(z), m.as_int(shift))


def expm1_reduced(m: MathBuilder, r):
    """expm1(r) = r + r^2 P(r) for |r| <= ln2/2."""
    return m.mla(m.mul(r, r), m.poly(r, EXP_F64 if m.is_f64 else EXP_F32), r)


def _reduce(m: MathBuilder, x):
    """(n float, n integer bits, r) with x = n ln2 + r."""
    shift = m.const(m.round_shift())
    z = m.mla(x, m.const(1 / math.log(2)), shift)
    n = m.sub(z, shift)
    n_bits = m.isub(m.as_int(z), m.as_int(shift))
    hi, lo = _ln2(m)
    r = m.mla(n, m.const(-hi), x)
    r = m.mla(n, m.const(-lo), r)
    return n, n_bits, r


def _limit(m: MathBuilder) -> float:
    """|x| beyond which exp(x) is inf or 0 in every rounding: (bias + mantissa + 3) * ln2."""
    return (m.bias + m.mantissa_bits + 3) * math.log(2)


def _scale_split(m: MathBuilder, p, n_bits):
    """2^n (1 + p): ldexp(1 + p, n) with AVX-512 (one rounding), else (s1 + s1 p) s2 with 2^n = s1 s2."""
    if m.scalef:
        return m.ldexp(m.add(m.const(1.0), p), n_bits)
    n1 = m.ashr(n_bits, 1)
    s1 = m.pow2(n1)
    s2 = m.pow2(m.isub(n_bits, n1))
    return m.mul(m.mla(p, s1, s1), s2)


def emit_exp(m: MathBuilder, x):
    x = _clamp(m, x, -_limit(m), _limit(m))
    _, n_bits, r = _reduce(m, x)
    return _scale_split(m, expm1_reduced(m, r), n_bits)


def emit_exp2(m: MathBuilder, x):
    limit = float(m.bias + m.mantissa_bits + 3)
    x = _clamp(m, x, -limit, limit)
    n, n_bits = _round_to_integer(m, x)
    r = m.mul(m.sub(x, n), m.const(math.log(2)))
    return _scale_split(m, expm1_reduced(m, r), n_bits)


def _expm1_low(m: MathBuilder) -> float:
    """Below -(p+4) ln2, expm1 rounds to -1 (and 2^n stays a normal number down there)."""
    return -(m.mantissa_bits + 4) * math.log(2)


def expm1_nonpositive(m: MathBuilder, x):
    """expm1(x) for x <= 0 or NaN (tanh's argument): no overflow to guard against."""
    x = m.select(m.cmp("<", x, m.const(_expm1_low(m))), m.const(_expm1_low(m)), x)
    _, n_bits, r = _reduce(m, x)
    scale = m.pow2(n_bits)
    return m.mla(expm1_reduced(m, r), scale, m.sub(scale, m.const(1.0)))


def expm1_core(m: MathBuilder, x):
    """expm1(x) for every x; the sign of a zero result is not kept (emit_expm1 does)."""
    # at (bias+1.25) ln2 it overflows, and n = bias + 1
    high = (m.bias + 1.25) * math.log(2)
    x = _clamp(m, x, _expm1_low(m), high)
    _, n_bits, r = _reduce(m, x)
    p = expm1_reduced(m, r)
    # 2^n itself overflows for n = bias + 1 (x in (ln(max)-ln2/2, ln(max)]): use 2^(n-1) and double.
    big = m.icmp(">", n_bits, m.iconst(m.bias))
    n_bits = m.isub(n_bits, m.b.zext(big, m.ity))
    scale = m.pow2(n_bits)
    y = m.mla(p, scale, m.sub(scale, m.const(1.0)))
    return m.mul(y, m.select(big, m.const(2.0), m.const(1.0)))


def emit_expm1(m: MathBuilder, x):
    return m.select(m.cmp("==", x, m.const(0.0)), x, expm1_core(m, x))
