"""Regenerate coefficients.py: `python -m raster_mlir.backend.vmath.fit > raster_mlir/backend/vmath/coefficients.py`.

Each kernel is a minimax fit (remez.py) of the function the emitter's
formula needs, rounded to the working precision. Printed beside each set:
the maximum error of the rounded polynomial in units of 2^-53 (f64) or
2^-24 (f32) of the quantity the kernel contributes to; the ulp tables in
docs/vector-math.md measure the whole functions.
Needs mpmath (the `test` extra); takes a few minutes.
"""

from __future__ import annotations

import struct
import sys

import mpmath
from mpmath import mp, mpf

from .remez import max_error, rational_fit, remez

mp.dps = 50
LN2_HALF = mpf("0.3466")  # a little more than ln(2)/2: the reduced argument of exp
S_MAX = (mpmath.sqrt(2) - 1) / (mpmath.sqrt(2) + 1) * mpf("1.001")  # |f/(2+f)| for f in [sqrt2/2-1, sqrt2-1]
PI_4 = mp.pi / 4 * mpf("1.0001")
F_RANGE = (mpmath.sqrt(2) / 2 - 1 - mpf("1e-4"), mpmath.sqrt(2) - 1 + mpf("1e-4"))  # f = m - 1 of log


def _f32(x) -> float:
    return struct.unpack("f", struct.pack("f", float(x)))[0]


def _series(fn, small, x):
    """fn(x), or the series `small(x)` where cancellation would spoil fn at working precision."""
    return small(x) if abs(x) < mpf("1e-12") else fn(x)


def exp_kernel(x):
    """(e^r - 1 - r) / r^2: exp(r) = 1 + r + r^2 P(r)."""
    return _series(lambda r: (mpmath.exp(r) - 1 - r) / r**2, lambda r: mpf(1) / 2 + r / 6 + r**2 / 24, x)


def log_kernel(z):
    """T(z) with log(1+f) = 2s + s z T(z), s = f/(2+f), z = s^2: T = (2 atanh(s)/s - 2)/z."""
    return _series(lambda z: (2 * mpmath.atanh(mpmath.sqrt(z)) / mpmath.sqrt(z) - 2) / z, lambda z: mpf(2) / 3 + 2 * z / 5, z)


def log1p_direct(f):
    """Q(f) with log(1+f) = f + f^2 Q(f) for f in [sqrt(2)/2 - 1, sqrt(2) - 1] (f32: no division)."""
    return _series(lambda f: (mpmath.log1p(f) - f) / f**2, lambda f: -mpf(1) / 2 + f / 3 - f**2 / 4, f)


def sin_kernel(z):
    """S(z) with sin(r) = r + r^3 S(r^2)."""
    return _series(lambda z: (mpmath.sin(mpmath.sqrt(z)) - mpmath.sqrt(z)) / z**1.5, lambda z: -mpf(1) / 6 + z / 120, z)


def cos_kernel(z):
    """C(z) with cos(r) = 1 - r^2/2 + r^4 C(r^2)."""
    return _series(lambda z: (mpmath.cos(mpmath.sqrt(z)) - 1 + z / 2) / z**2, lambda z: mpf(1) / 24 - z / 720, z)


def atan_kernel(z):
    """A(z) with atan(u) = u + u^3 A(u^2)."""
    return _series(lambda z: (mpmath.atan(mpmath.sqrt(z)) - mpmath.sqrt(z)) / z**1.5, lambda z: -mpf(1) / 3 + z / 5, z)


def erf_small(z):
    """E(z) with erf(x) = x E(x^2) for |x| <= 1."""
    return _series(lambda z: mpmath.erf(mpmath.sqrt(z)) / mpmath.sqrt(z), lambda z: 2 / mpmath.sqrt(mp.pi) * (1 - z / 3), z)


# erf(x) = 1 - exp(-x^2) R(x) for 1 <= x <= 6, R = erfc(x) e^(x^2) = P(t)/Q(t), t = x - ERFC_CENTER:
# t >= 0 keeps every term of P and Q positive (centred at 3.5, rounding the coefficients cost 8 bits)
ERFC_CENTER = mpf("1")
ERFC_RANGE = (mpf(1) - ERFC_CENTER, mpf(6) - ERFC_CENTER)


def erfcx_centered(t):
    x = t + ERFC_CENTER
    return mpmath.erfc(x) * mpmath.exp(x * x)


def log_centers(grid: float = 2.0**-40, candidates: int = 20001, stride: int = 997):
    """The centres c_j and log(c_j) of avx512.py's log, indexed by j mod 8 (what `vpermpd` reads).

    Region j (= round(8 m), ties to even) holds the m in [j/8 - 1/16, j/8 + 1/16] within
    getmant's [0.75, 1.5], j = 6..12. c_8 = 1, so that log x keeps its relative accuracy near
    x = 1. Each other c_j is searched among multiples of `grid` near the region's geometric
    centre for the one whose log is closest to a multiple of 2^-53: then log c_j + (m - c_j) is
    exact (both are multiples of 2^-53, the sum below 1/2), and the table's rounding error is
    below 1e-4 ulp instead of up to 0.5. Returns (centres, logs, max |s|), s = (m - c)/(m + c).
    """
    centres, logs, s_max = [0.0] * 8, [0.0] * 8, mpf(0)
    for j in range(6, 13):
        lo, hi = max(mpf("0.75"), (mpf(j) - mpf("0.5")) / 8), min(mpf("1.5"), (mpf(j) + mpf("0.5")) / 8)
        if j == 8:
            c, log_c = 1.0, 0.0
        else:
            base = round(float(mpmath.sqrt(lo * hi)) / grid)

            def miss(c):
                exact = mpmath.log(mpf(c)) * 2**53
                return abs(exact - mpmath.nint(exact))

            c = min(((base + i * stride) * grid for i in range(-(candidates // 2), candidates // 2 + 1)), key=miss)
            log_c = float(mpmath.nint(mpmath.log(mpf(c)) * 2**53) / 2**53)
        centres[j % 8], logs[j % 8] = c, log_c
        s_max = max(s_max, (mpf(c) - lo) / (mpf(c) + lo), (hi - mpf(c)) / (hi + mpf(c)))
    return centres, logs, s_max


LOG_TABLE_S_MAX = mpf("0.035764")  # log_centers()[2], rounded up (main checks it)

# name -> (target, (a, b), degree f64, degree f32, weight)
KERNELS = {
    "EXP": (exp_kernel, (-LN2_HALF, LN2_HALF), 9, 4, lambda r: (r**2 + mpf("1e-3")) / mpmath.exp(r)),
    # avx512.py's exp: r = x - (N/16) ln2, |r| <= ln2/32
    "EXP_TABLE": (exp_kernel, (-LN2_HALF / 16, LN2_HALF / 16), 4, None, lambda r: (r**2 + mpf("1e-6")) / mpmath.exp(r)),
    "LOG": (log_kernel, (0, S_MAX**2), 6, None, lambda z: 1 / log_kernel(z)),
    # avx512.py's log: s = (m - c)/(m + c) with c the centre of m's eighth (log_centers): |s| <= LOG_TABLE_S_MAX
    "LOG_TABLE": (log_kernel, (0, (LOG_TABLE_S_MAX * mpf("1.001")) ** 2), 3, None, lambda z: 1 / log_kernel(z)),
    # the error of f + f^2 Q relative to log(1+f) ~ f is |f| dQ: weight |f| (+0.01 keeps it positive)
    "LOG1P_DIRECT": (log1p_direct, F_RANGE, None, 8, lambda f: abs(f) + mpf("0.01")),
    "SIN": (sin_kernel, (0, PI_4**2), 6, None, lambda z: 1 / sin_kernel(z)),
    "COS": (cos_kernel, (0, PI_4**2), 5, None, lambda z: 1 / cos_kernel(z)),
    "ATAN": (atan_kernel, (0, (mpmath.sqrt(2) - 1) ** 2 * mpf("1.001")), 10, None, lambda z: 1 / atan_kernel(z)),
    "ERF": (erf_small, (0, 1), 11, None, lambda z: 1 / erf_small(z)),
}


def fit(name, target, interval, degree, weight, rounding):
    basis = [lambda x, k=k: x**k for k in range(degree + 1)]
    coeffs, _ = remez(target, basis, interval[0], interval[1], weight)
    rounded = [rounding(c) for c in coeffs]
    err = max_error(lambda x: sum(mpf(c) * x**k for k, c in enumerate(rounded)), target, *interval, weight, points=4000)
    return rounded, err


def main(out=sys.stdout):
    print('"""Polynomial coefficients of the vmath kernels (lowest degree first), generated by fit.py.', file=out)
    print("", file=out)
    print("Regenerate with `python -m raster_mlir.backend.vmath.fit > raster_mlir/backend/vmath/coefficients.py`.", file=out)
    print('"""', file=out)
    print("", file=out)
    print("# fmt: off", file=out)
    for name, (target, interval, d64, d32, weight) in KERNELS.items():
        for suffix, degree, rounding, unit in (("F64", d64, float, 53), ("F32", d32, _f32, 24)):  # None: not used
            if degree is None:
                continue
            coeffs, err = fit(name, target, interval, degree, weight, rounding)
            bits = mpmath.nstr(-mpmath.log(err, 2), 4)
            print(f"# {name}_{suffix}: degree {degree}, max weighted error 2^-{bits}", file=out)
            print(f"{name}_{suffix} = (", file=out)
            for c in coeffs:
                print(f"    float.fromhex({float(c).hex()!r}),", file=out)
            print(")", file=out)
            print(f"  {name}_{suffix} unit 2^-{unit}: error {float(err) * 2.0**unit:.3g}", file=sys.stderr)
    centres, logs, s_max = log_centers()
    assert s_max <= LOG_TABLE_S_MAX, s_max
    for name, values, what in (("LOG_CENTRES_F64", centres, "c_j"), ("LOG_OF_CENTRES_F64", logs, "log(c_j), multiples of 2^-53")):
        print(f"# {name}: {what} of avx512.py's log, index round(8 m) mod 8 (fit.log_centers)", file=out)
        print(f"{name} = (", file=out)
        for v in values:
            print(f"    float.fromhex({float(v).hex()!r}),", file=out)
        print(")", file=out)
    print("# EXP2_SIXTEENTHS_F64: 2^(j/16), j = 0..15, rounded to nearest", file=out)
    print("EXP2_SIXTEENTHS_F64 = (", file=out)
    for j in range(16):
        print(f"    float.fromhex({float(mpf(2) ** (mpf(j) / 16)).hex()!r}),", file=out)
    print(")", file=out)
    p, q, _ = rational_fit(erfcx_centered, *ERFC_RANGE, 8, 8)
    p, q = [float(c) for c in p], [float(c) for c in q]

    def rational(t):
        return sum(mpf(c) * t**k for k, c in enumerate(p)) / sum(mpf(c) * t**k for k, c in enumerate(q))

    err = max_error(rational, erfcx_centered, *ERFC_RANGE, lambda t: 1 / erfcx_centered(t), points=2000)
    bits = mpmath.nstr(-mpmath.log(err, 2), 4)
    print(f"# ERFC_F64: erfc(x) exp(x^2) = P(x - {ERFC_CENTER}) / Q(x - {ERFC_CENTER}) on [1, 6], max relative error 2^-{bits}", file=out)
    print("# (after rounding the coefficients)", file=out)
    print(f"ERFC_CENTER = {float(ERFC_CENTER)!r}", file=out)
    for name, coeffs in (("ERFC_P_F64", p), ("ERFC_Q_F64", q)):
        print(f"{name} = (", file=out)
        for c in coeffs:
            print(f"    float.fromhex({float(c).hex()!r}),", file=out)
        print(")", file=out)
    print(f"  ERFC rational: 2^-{bits}", file=sys.stderr)
    print("# fmt: on", file=out)


if __name__ == "__main__":
    main()
