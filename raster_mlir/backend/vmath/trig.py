"""sin, cos, tan: Cody-Waite reduction by pi/2 and fdlibm-style kernels; libm for huge arguments.

Algorithm (in f64; f32 arguments are widened, computed and rounded once):
    n = round(x * 2/pi)                 shifter trick, the quadrant q = n mod 4 in the low bits
    r = x - n*P1 - n*P2 - n*P3 - n*P4   pi/2 = P1+P2+P3+P4, P1..P3 of 33 bits (fdlibm's
                                        pio2_1, pio2_2, pio2_3 and the tail pio2_3t), so
                                        every n*Pk (k<=3) is exact for n < 2^20 and the
                                        cancellation near multiples of pi/2 loses nothing
    sin r = r + r^3 S(r^2), cos r = w + ((1 - w) - r^2/2 + r^4 C(r^2)) with w = 1 - r^2/2
                                        (fdlibm's k_cos correction), |r| <= pi/4
    sin x = (+sin r, +cos r, -sin r, -cos r)[q], cos x = sin with q + 1,
    tan x = sin r / cos r for even q, -cos r / sin r for odd q
This holds for |x| <= MEDIUM (about 1.6e6, n < 2^20). Larger arguments need
Payne-Hanek reduction with ~1100 bits of 2/pi; they are rare, so lanes with
|x| > MEDIUM call libm instead (fallback.py arranges it without stopping
the loop vectoriser). NaN stays NaN, +-inf gives NaN (from libm), sin(-0) = -0.
"""

from __future__ import annotations

import math

from .builder import MathBuilder, in_f64
from .coefficients import COS_F64, SIN_F64

MEDIUM = 1.6e6
PIO2 = (
    float.fromhex("0x1.921fb54400000p+0"),
    float.fromhex("0x1.0b4611a600000p-34"),
    float.fromhex("0x1.3198a2e000000p-69"),
    float.fromhex("0x1.b839a252049c1p-104"),
)


def _reduce(m: MathBuilder, x):
    """(r, q) with x = q*pi/2 + r, |r| <= pi/4 (q as integer bits)."""
    shift = m.const(m.round_shift())
    z = m.mla(x, m.const(2 / math.pi), shift)
    n = m.sub(z, shift)
    q = m.isub(m.as_int(z), m.as_int(shift))
    r = x
    for part in PIO2:
        r = m.mla(n, m.const(-part), r)
    return r, q


def _sin_cos_kernels(m: MathBuilder, r):
    z = m.mul(r, r)
    s = m.mla(m.mul(r, z), m.poly(z, SIN_F64), r)
    hz = m.mul(m.const(0.5), z)
    w = m.sub(m.const(1.0), hz)
    c = m.add(w, m.mla(m.mul(z, z), m.poly(z, COS_F64), m.sub(m.sub(m.const(1.0), w), hz)))
    return s, c


def _bit(m: MathBuilder, q, mask: int):
    return m.icmp("!=", m.iand(q, m.iconst(mask)), m.iconst(0))


def _sin_quadrant(m: MathBuilder, s, c, q):
    y = m.select(_bit(m, q, 1), c, s)
    return m.select(_bit(m, q, 2), m.neg(y), y)


def _keep_zero(m: MathBuilder, x, y):
    """x where x is +-0 (the kernels' r + r^3 S would turn -0 into +0), else y."""
    return m.select(m.cmp("==", x, m.const(0.0)), x, y)


def sin_medium(m: MathBuilder, x):
    r, q = _reduce(m, x)
    s, c = _sin_cos_kernels(m, r)
    return _keep_zero(m, x, _sin_quadrant(m, s, c, q))


def cos_medium(m: MathBuilder, x):
    r, q = _reduce(m, x)
    s, c = _sin_cos_kernels(m, r)
    return _sin_quadrant(m, s, c, m.iadd(q, m.iconst(1)))


def tan_medium(m: MathBuilder, x):
    r, q = _reduce(m, x)
    s, c = _sin_cos_kernels(m, r)
    odd = _bit(m, q, 1)
    return _keep_zero(m, x, m.div(m.select(odd, m.neg(c), s), m.select(odd, s, c)))


def emit_sin(m: MathBuilder, x):
    return in_f64(m, x, sin_medium)


def emit_cos(m: MathBuilder, x):
    return in_f64(m, x, cos_medium)


def emit_tan(m: MathBuilder, x):
    return in_f64(m, x, tan_medium)
