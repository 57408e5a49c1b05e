"""tanh from expm1, without cancellation near zero, in half-scaled form.

Algorithm: with a = |x| and e = expm1(-2a) in (-1, 0],
    tanh(a) = (1 - e^-2a) / (1 + e^-2a) = -e / (e + 2) = u / (1 - u),  u = -e/2 in [0, 1/2)
(1 - u lies in (1/2, 1], so nothing cancels, and for tiny a, u = a to full
relative accuracy gives tanh = a). tanh(x) = copysign(tanh(a), x): odd, keeps
-0, and saturates to +-1 because u saturates to 1/2. NaN stays NaN.

u is exp.py's expm1 reduction carried out on a instead of -2a, everything
scaled by -1/2 (powers of two, so every rounding is the same):
    n = round(-2a / ln2)          shifter trick with 1.5*2^p + bias, so the low bits of z
                                  are n + bias and 2^n = bits(z) << p (one shift)
    rho = a + n ln2_hi/2 + n ln2_lo/2  = -r/2 (exact Cody-Waite steps)
    q = rho - rho^2 Q(rho)         = -expm1(r)/2, Q(rho) = 2 P(-2 rho) (EXP_F32/F64 scaled)
    u = 2^n q + (1 - 2^n)/2        = -e/2
This is the old -e/(e+2) kernel without its multiply by -2, its negation and
the bias add of 2^n: 18 vector instructions per 16 floats instead of 21.
"""

from __future__ import annotations

import math

from .builder import MathBuilder
from .coefficients import EXP_F32, EXP_F64
from .exp import _expm1_low, _ln2


def _half_scaled_poly(coefficients):
    """-Q with Q(rho) = 2 P(-2 rho), coefficient by coefficient (exact: powers of two)."""
    return tuple(-2.0 * c * (-2.0) ** k for k, c in enumerate(coefficients))


def emit_tanh(m: MathBuilder, x):
    a = m.abs(x)
    high = -_expm1_low(m) / 2  # beyond it expm1(-2a) rounds to -1: u = 1/2, tanh = 1
    a = m.select(m.cmp(">", a, m.const(high)), m.const(high), a)  # keeps NaN
    shift = m.const(m.round_shift() + m.bias)
    z = m.mla(a, m.const(-2 / math.log(2)), shift)
    n = m.sub(z, shift)
    scale = m.as_float(m.shl(m.as_int(z), m.mantissa_bits))  # 2^n: n + bias sits in z's low bits
    hi, lo = _ln2(m)
    rho = m.mla(n, m.const(hi / 2), a)
    rho = m.mla(n, m.const(lo / 2), rho)
    minus_q_poly = m.poly(rho, _half_scaled_poly(EXP_F64 if m.is_f64 else EXP_F32))
    q = m.mla(m.mul(rho, rho), minus_q_poly, rho)
    u = m.mla(scale, q, m.mla(scale, m.const(-0.5), m.const(0.5)))
    return m.copysign(m.div(u, m.sub(m.const(1.0), u)), x)
