"""tanh from expm1, without cancellation near zero.

Algorithm: with a = |x| and e = expm1(-2a) in (-1, 0],
    tanh(a) = (1 - e^-2a) / (1 + e^-2a) = -e / (e + 2)
(e + 2 lies in (1, 2], so nothing cancels, and for tiny a, e = -2a to full
relative accuracy gives tanh = a). tanh(x) = copysign(tanh(a), x): odd, keeps
-0, and saturates to +-1 because expm1 saturates to -1. NaN stays NaN.
"""

from __future__ import annotations

from .builder import MathBuilder
from .exp import expm1_nonpositive


def emit_tanh(m: MathBuilder, x):
    a = m.abs(x)
    e = expm1_nonpositive(m, m.mul(a, m.const(-2.0)))
    t = m.div(m.neg(e), m.add(e, m.const(2.0)))
    return m.copysign(t, x)
