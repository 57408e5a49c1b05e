"""log and log1p: fdlibm's algorithm, branch-free.

Algorithm (fdlibm e_log.c / s_log1p.c, as musl writes them):
    x = 2^k m, m in [sqrt(2)/2, sqrt(2))     from the bits: t = bits(x) - bits(sqrt(2)/2),
                                             k = t >> p, bits(m) = bits(x) - (t & exponent mask)
    f = m - 1 (exact)
    f64: s = f / (2 + f), z = s^2,
         log(1+f) = f - f^2/2 + s (f^2/2 + z T(z))     T a minimax fit of (2 atanh(s)/s - 2)/z
    f32: log(1+f) = f + f^2 Q(f)             Q a degree-8 minimax fit: no division, which
                                             measured 20% faster in f32; in f64 the direct
                                             polynomial needs degree 19 and is 40% slower
    log(x) = k ln2_hi + (log(1+f) + k ln2_lo)   ln2_hi has trailing zeros: k ln2_hi is exact
Subnormal x is first scaled by 2^(p+2). log1p(x) applies the same reduction
to u = 1 + x and adds c/u, where c is the rounding error of 1 + x (exactly
recoverable), so tiny x gives log1p(x) = x. Special values by selects:
log(x<0) = NaN, log(+-0) = -inf, log(inf) = inf, NaN stays NaN.
Measured accuracy: docs/vector-math.md.
"""

from __future__ import annotations

import math
import struct

from .builder import MathBuilder
from .coefficients import LOG1P_DIRECT_F32, LOG_F64
from .exp import LN2_HI_F64, LN2_LO_F64  # k ln2_hi is exact here too (|k| < 2^11)

LN2_HI_F32 = float.fromhex("0x1.62e3p-1")  # 0x3f317180: 16 bits, k < 2^8
LN2_LO_F32 = math.log(2) - LN2_HI_F32
SQRT_HALF_BITS = {64: 0x3FE6A09E667F3BCD, 32: 0x3F3504F3}


def _ln2(m: MathBuilder):
    return (LN2_HI_F64, LN2_LO_F64) if m.is_f64 else (LN2_HI_F32, LN2_LO_F32)


def _split_exponent(m: MathBuilder, x):
    """(k as a float, f = m - 1) with x = 2^k m, m in [sqrt(2)/2, sqrt(2)), for positive normal x."""
    ix = m.as_int(x)
    t = m.isub(ix, m.iconst(SQRT_HALF_BITS[m.bits]))
    k = m.ashr(t, m.mantissa_bits)
    exponent_mask = -(1 << m.mantissa_bits)  # sign and exponent bits
    mantissa = m.as_float(m.isub(ix, m.iand(t, m.iconst(exponent_mask))))
    return m.int_to_float(k), m.sub(mantissa, m.const(1.0))


def _log1p_parts(m: MathBuilder, f):
    """f64: (hfsq, s (hfsq + R)) for log(1+f) = f - hfsq + s (hfsq + R), |f| <= sqrt(2) - 1."""
    s = m.div(f, m.add(m.const(2.0), f))
    z = m.mul(s, s)
    r = m.mul(z, m.poly(z, LOG_F64))
    hfsq = m.mul(m.mul(m.const(0.5), f), f)
    return hfsq, m.mul(s, m.add(hfsq, r))


def _log1p_direct(m: MathBuilder, f):
    """f32: log(1+f) = f + f^2 Q(f), |f| <= sqrt(2) - 1."""
    return m.mla(m.mul(f, f), m.poly(f, LOG1P_DIRECT_F32), f)


def emit_log(m: MathBuilder, x):
    """log of every x: subnormals scaled first, special values by selects."""
    # Subnormal (and non-positive) x: scale by 2^(p+2) so the bit trick sees a normal number.
    subnormal = m.cmp("<", x, m.const(m.smallest_normal))
    shift = m.mantissa_bits + 2
    x_normal = m.select(subnormal, m.mul(x, m.const(2.0**shift)), x)
    dk, f = _split_exponent(m, x_normal)
    dk = m.sub(dk, m.select(subnormal, m.const(float(shift)), m.const(0.0)))
    return _log_special_values(m, x, _log_reduced(m, dk, f))


def emit_log_positive_normal(m: MathBuilder, x):
    """log of a positive normal finite x (the vectorised fast path; others: emit_log, fallback.py)."""
    return _log_reduced(m, *_split_exponent(m, x))


def _float_bits(m: MathBuilder, value: float) -> int:
    return int.from_bytes(struct.pack("<d" if m.is_f64 else "<f", value), "little")


def not_positive_normal(m: MathBuilder, x):
    """x is zero, subnormal, negative, infinite or NaN: bits(x) - bits(min normal) >= bits(inf) - bits(min normal), unsigned."""
    smallest = _float_bits(m, m.smallest_normal)
    offset = m.isub(m.as_int(x), m.iconst(smallest))
    return m.b.icmp_unsigned(">=", offset, m.iconst(_float_bits(m, math.inf) - smallest))


def _log_reduced(m: MathBuilder, dk, f):
    """log(2^k (1 + f)) for k = dk, |f| <= sqrt(2) - 1."""
    hi, lo = _ln2(m)
    if m.is_f64:
        hfsq, tail = _log1p_parts(m, f)
        # fdlibm's order: k ln2_hi - ((hfsq - (s (hfsq + R) + k ln2_lo)) - f)
        return m.sub(m.mul(dk, m.const(hi)), m.sub(m.sub(hfsq, m.mla(dk, m.const(lo), tail)), f))
    return m.mla(dk, m.const(hi), m.mla(dk, m.const(lo), _log1p_direct(m, f)))


def _log_special_values(m: MathBuilder, u, y):
    """log-like special cases on u (u = x for log, 1 + x for log1p)."""
    y = m.select(m.cmp("==", u, m.const(math.inf)), m.const(math.inf), y)
    y = m.select(m.cmp("==", u, m.const(0.0)), m.const(-math.inf), y)
    return m.select(m.cmp_unordered("<", u, m.const(0.0)), m.const(math.nan), y)


def emit_log1p(m: MathBuilder, x):
    one = m.const(1.0)
    u = m.add(one, x)
    dk, f = _split_exponent(m, u)
    # c = (1 + x) - u, the rounding error of u, over u (musl's log1p); 0 once 2^k outgrows it.
    k_ge_2 = m.cmp(">=", dk, m.const(2.0))
    c = m.select(k_ge_2, m.sub(one, m.sub(u, x)), m.sub(x, m.sub(u, one)))
    c = m.select(m.cmp("<", dk, m.const(float(m.mantissa_bits + 2))), m.div(c, u), m.const(0.0))
    hi, lo = _ln2(m)
    if m.is_f64:
        hfsq, tail = _log1p_parts(m, f)
        # musl's order: s (hfsq + R) + (k ln2_lo + c) - hfsq + f + k ln2_hi
        y = m.add(m.add(m.sub(m.add(tail, m.mla(dk, m.const(lo), c)), hfsq), f), m.mul(dk, m.const(hi)))
    else:
        y = m.mla(dk, m.const(hi), m.add(_log1p_direct(m, f), m.mla(dk, m.const(lo), c)))
    y = _log_special_values(m, u, y)
    return m.select(m.cmp("==", x, m.const(0.0)), x, y)  # log1p(-0) = -0
