"""atan2(y, x): octant reduction to |u| <= tan(pi/8), one polynomial, one division (computed in f64).

Algorithm, with a = |y|, b = |x|, num = min(a, b), den = max(a, b):
    t = num / den in [0, 1]; when t > tan(pi/8):  u = (num - den) / (num + den),
    atan t = pi/4 + atan u, else u = t. atan u = u + u^3 A(u^2) (minimax fit).
    Then atan2 = copysign(k pi/4 + s atan u, y), where k in {0..4} and s = +-1
    follow from the octant: a > b reflects (pi/2 - .), x < 0 (sign bit, so
    -0 too) reflects (pi - .). k pi/4 is added as hi + lo with k*hi exact.
Special cases fall out of the same formulas with u = 0 where t is 0/0 or
inf/inf (both zero: 0 or pi; both infinite: pi/4 or 3pi/4); NaN in, NaN out.
num and den are scaled by 1/4 when huge so num + den cannot overflow.
"""

from __future__ import annotations

import math

from .builder import MathBuilder, in_f64
from .coefficients import ATAN_F64

TAN_PI_8 = math.sqrt(2.0) - 1.0
PI_4_HI = float.fromhex("0x1.921fb54442d00p-1")  # pi/4 to 45 bits: k * PI_4_HI is exact
PI_4_LO = math.pi / 4 - PI_4_HI


def atan2_f64(m: MathBuilder, y, x):
    a, b = m.abs(y), m.abs(x)
    big = m.cmp(">", a, b)
    num = m.select(big, b, a)
    den = m.select(big, a, b)
    scale = m.select(m.cmp(">", den, m.const(2.0**1000)), m.const(0.25), m.const(1.0))
    num, den = m.mul(num, scale), m.mul(den, scale)
    both_inf = m.cmp("==", num, m.const(math.inf))
    reduce = m.or_(m.cmp(">", num, m.mul(den, m.const(TAN_PI_8))), both_inf)
    u = m.div(m.select(reduce, m.sub(num, den), num), m.select(reduce, m.add(num, den), den))
    u = m.select(m.or_(both_inf, m.cmp("==", den, m.const(0.0))), m.const(0.0), u)
    z = m.mul(u, u)
    atan_u = m.mla(m.mul(u, z), m.poly(z, ATAN_F64), u)
    x_negative = m.icmp("<", m.as_int(x), m.iconst(0))
    k = m.select(reduce, m.const(1.0), m.const(0.0))
    k = m.select(big, m.sub(m.const(2.0), k), k)
    k = m.select(x_negative, m.sub(m.const(4.0), k), k)
    flip = m.b.xor(big, x_negative)
    signed = m.select(flip, m.neg(atan_u), atan_u)
    theta = m.mla(k, m.const(PI_4_HI), m.mla(k, m.const(PI_4_LO), signed))
    theta = m.copysign(theta, y)
    return m.select(m.or_(m.is_nan(x), m.is_nan(y)), m.add(x, y), theta)


def emit_atan2(m: MathBuilder, y, x):
    return in_f64(m, (y, x), lambda m64, args: atan2_f64(m64, *args))
