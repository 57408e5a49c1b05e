"""erf: a polynomial near zero, a rational erfc times exp(-x^2) beyond (computed in f64).

Algorithm (both halves on every lane, then a select; f32 is widened and rounded once):
    |x| < 1:      erf(x) = x E(x^2)                   E a minimax fit of erf(sqrt z)/sqrt z
    1 <= |x|:     erf(x) = sign(x) (1 - exp(-x^2) R(a)),  a = min(|x|, 6)
                  R = erfc e^(x^2) = P(a - 3.5) / Q(a - 3.5), a near-minimax rational fit
                  on [1, 6] (erfc(6) = 2e-17 is below half an ulp of 1, so erf = 1 beyond)
The rounding of x^2 changes exp(-x^2) by x^2 2^-53 relative, which erfc <= 0.16
shrinks below an ulp of the result. erf(+-inf) = +-1, erf(-0) = -0, NaN stays NaN.
"""

from __future__ import annotations

from .builder import MathBuilder, in_f64
from .coefficients import ERF_F64, ERFC_CENTER, ERFC_P_F64, ERFC_Q_F64
from .exp import emit_exp


def erf_f64(m: MathBuilder, x):
    a = m.abs(x)
    z = m.mul(x, x)
    small = m.mul(x, m.poly(z, ERF_F64))
    # clamp a to [1, 6] (keeping NaN): the rational fit is only valid there
    ac = m.select(m.cmp("<", a, m.const(1.0)), m.const(1.0), a)
    ac = m.select(m.cmp(">", ac, m.const(6.0)), m.const(6.0), ac)
    t = m.sub(ac, m.const(ERFC_CENTER))
    erfc = m.mul(emit_exp(m, m.neg(m.mul(ac, ac))), m.div(m.poly(t, ERFC_P_F64), m.poly(t, ERFC_Q_F64)))
    large = m.copysign(m.sub(m.const(1.0), erfc), x)
    return m.select(m.cmp("<", a, m.const(1.0)), small, large)


def emit_erf(m: MathBuilder, x):
    return in_f64(m, x, erf_f64)
