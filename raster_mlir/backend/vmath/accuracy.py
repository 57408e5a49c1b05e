"""Measure the vmath functions: maximum ulp error against a correctly rounded reference (mpmath).

Used by the test suite (tests/backend/test_vector_math_accuracy.py, a few
thousand samples) and by `python -m raster_mlir.backend.vmath.accuracy`
(the table in docs/vector-math.md, many more). Needs mpmath (the `test` extra).

The error of a result y for input x is |y - f(x)| / ulp(f(x)), with f(x)
computed by mpmath at 3x the working precision and ulp the spacing of the
tested format at f(x) (fixed at the smallest subnormal below the normal
range). A reference that rounds to +-inf wants exactly +-inf; a NaN reference
wants a NaN. Inputs come from samplers over the whole range (random exponents
and mantissas, subnormals included), over the interesting range of each
function, and around its thresholds (overflow, underflow, saturation).
The native code runs with gradual underflow (flush-to-zero off) so that
subnormal results are measured too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

NP = {"f64": np.float64, "f32": np.float32}


def _mp():
    import mpmath

    return mpmath


# ---- references ----------------------------------------------------------


def _log(x):
    mp = _mp()
    return mp.mpf("nan") if x < 0 else mp.log(x)


def _log1p(x):
    mp = _mp()
    return mp.mpf("nan") if x < -1 else mp.log1p(x)


def _sigmoid(x):
    mp = _mp()
    return 1 / (1 + mp.exp(-x))


def _tanh(x):
    mp = _mp()
    if mp.isinf(x):
        return mp.sign(x)
    return mp.tanh(x)


def _erf(x):
    mp = _mp()
    if mp.isinf(x):
        return mp.sign(x)
    return mp.erf(x)


def _trig(name):
    def ref(x):
        mp = _mp()
        if mp.isinf(x):
            return mp.mpf("nan")
        return getattr(mp, name)(x)

    return ref


def _atan2(y, x):
    """C99 atan2 on the special values (mpmath has no signed zero), mpmath elsewhere."""
    mp = _mp()
    if mp.isnan(x) or mp.isnan(y):
        return mp.mpf("nan")
    if mp.isinf(y):
        angle = mp.pi / 2 if not mp.isinf(x) else (mp.pi / 4 if x > 0 else 3 * mp.pi / 4)
        return angle if y > 0 else -angle
    if mp.isinf(x):
        return (mp.mpf(0) if x > 0 else mp.pi) * math.copysign(1.0, y)
    if x == 0 and y != 0:
        return mp.pi / 2 if y > 0 else -mp.pi / 2
    if y == 0:  # atan2(+-0, x) = +-0 for x > 0 or x = +0, +-pi for x < 0 or x = -0
        return (mp.mpf(0) if math.copysign(1.0, x) > 0 else mp.pi) * math.copysign(1.0, y)
    return mp.atan2(y, x)


REFERENCES: dict[str, Callable] = {
    "math.exp": lambda x: _mp().exp(x),
    "math.exp2": lambda x: _mp().power(2, x),
    "math.expm1": lambda x: _mp().expm1(x),
    "math.log": _log,
    "math.log1p": _log1p,
    "math.tanh": _tanh,
    "math.sin": _trig("sin"),
    "math.cos": _trig("cos"),
    "math.tan": _trig("tan"),
    "math.erf": _erf,
    "math.atan2": _atan2,
    "sigmoid": _sigmoid,
}


# ---- ulp error -------------------------------------------------------------


@dataclass(frozen=True)
class Format:
    precision: int  # significand bits, the implicit one included
    min_exponent: int  # exponent of the smallest normal number
    max_value: float

    @classmethod
    def of(cls, T: str) -> "Format":
        info = np.finfo(NP[T])
        return cls(info.nmant + 1, int(info.minexp), float(info.max))


def ulp_error(fmt: Format, got: float, ref) -> float:
    """|got - ref| in ulps of ref in `fmt` (0 for matching NaN/inf)."""
    mp = _mp()
    if mp.isnan(ref):
        return 0.0 if math.isnan(got) else math.inf
    if math.isnan(got):
        return math.inf
    # Where the reference rounds to infinity the answer must be infinity.
    top = mp.mpf(fmt.max_value) * (1 + mp.mpf(2) ** (-fmt.precision))
    if mp.isinf(ref) or abs(ref) >= top:
        return 0.0 if math.isinf(got) and (got > 0) == (ref > 0) else math.inf
    if math.isinf(got):
        return math.inf
    exponent = max(int(mp.floor(mp.log(abs(ref), 2))) if ref != 0 else fmt.min_exponent, fmt.min_exponent)
    ulp = mp.mpf(2) ** (exponent - fmt.precision + 1)
    return float(abs(mp.mpf(got) - ref) / ulp)


def max_ulp_error(name: str, T: str, inputs: tuple[np.ndarray, ...], got: np.ndarray):
    """(max error, the inputs where it occurs) for results `got` of `name` on `inputs`."""
    mp = _mp()
    fmt = Format.of(T)
    ref_fn = REFERENCES[name]
    worst, where = 0.0, None
    with mp.workprec(3 * fmt.precision + 20):
        for k in range(len(got)):
            args = [float(a[k]) for a in inputs]  # floats: the references see signed zeros
            err = ulp_error(fmt, float(got[k]), ref_fn(*args))
            if err > worst or where is None:
                worst, where = max(err, worst), tuple(float(a[k]) for a in inputs)
    return worst, where


# ---- samplers --------------------------------------------------------------


def log_uniform(rng, n: int, lo_exp: float, hi_exp: float, T: str, signs=(1, -1)) -> np.ndarray:
    """|x| = 2^U(lo_exp, hi_exp) with random sign: every binade in the range equally often."""
    mag = np.exp2(rng.uniform(lo_exp, hi_exp, n))
    sign = rng.choice(np.array(signs, dtype=np.float64), n)
    with np.errstate(over="ignore", under="ignore"):
        return (sign * mag).astype(NP[T])


def uniform(rng, n: int, a: float, b: float, T: str) -> np.ndarray:
    return rng.uniform(a, b, n).astype(NP[T])


def around(values, T: str, ulps: int = 3) -> np.ndarray:
    """Each value and its neighbours up to `ulps` steps away."""
    out = []
    dt = NP[T]
    for v in values:
        lo = hi = dt(v)
        out.append(lo)
        with np.errstate(over="ignore"):
            for _ in range(ulps):
                lo = np.nextafter(lo, dt(-np.inf))
                hi = np.nextafter(hi, dt(np.inf))
                out += [lo, hi]
    return np.array(out, dtype=dt)


def specials(T: str) -> np.ndarray:
    info = np.finfo(NP[T])
    smallest_subnormal = float(info.smallest_subnormal)
    values = [0.0, -0.0, np.inf, -np.inf, np.nan, smallest_subnormal, -smallest_subnormal,
              float(info.tiny), -float(info.tiny), float(info.max), -float(info.max), 1.0, -1.0]  # fmt: skip
    return np.array(values, dtype=NP[T])


def _thresholds(name: str, T: str) -> list[float]:
    """Arguments where `name` overflows, underflows or saturates (and their neighbours get tested)."""
    info = np.finfo(NP[T])
    ln_max = math.log(float(info.max))
    ln_tiny = math.log(float(info.tiny))
    ln_sub = math.log(float(info.smallest_subnormal))
    p = info.nmant + 1
    return {
        "math.exp": [ln_max, ln_tiny, ln_sub, ln_sub + math.log(0.5), -(2.0**-p), 2.0**-p],
        "math.exp2": [float(info.maxexp), float(info.minexp), float(info.minexp - p), -float(info.minexp - p + 1)],
        "math.expm1": [ln_max, -p * math.log(2), -(p + 2) * math.log(2), 2.0**-p],
        # ..., and the edges of avx512.py's regions (round(8 m), m in [0.75, 1.5)) in three binades
        "math.log": [1.0, float(info.tiny), 2.0 ** (info.minexp - 1), float(info.max)]
        + [e * (j + 0.5) / 8 for j in range(6, 12) for e in (0.5, 1.0, 2.0)],
        "math.log1p": [-1.0 + float(info.eps), 2.0**-p, -(2.0**-p), float(info.max)],
        "math.tanh": [p * math.log(2) / 2, 2.0**-p, 0.55, 20.0],
        "math.sin": [math.pi, math.pi / 2, 1e5, 1e15],
        "math.cos": [math.pi, math.pi / 2, 1e5, 1e15],
        "math.tan": [math.pi / 2, math.pi / 4, 1e5, 1e15],
        "math.erf": [0.84375, 1.25, 2.857, 6.0, 4.0, 2.0**-p],
        "sigmoid": [-ln_tiny, -ln_sub, ln_tiny, ln_sub, 2.0**-p],
    }.get(name, [])


def unary_samples(name: str, T: str, n: int, seed: int = 0) -> np.ndarray:
    """n random inputs for `name` spread over its whole domain, plus thresholds and specials."""
    rng = np.random.default_rng(seed)
    info = np.finfo(NP[T])
    lo_exp = float(info.minexp - info.nmant - 1)  # the smallest subnormal
    hi_exp = float(info.maxexp)
    near = {
        "math.exp": (-(info.maxexp + info.nmant + 3) * 0.7, info.maxexp * 0.7),
        "math.exp2": (-(info.maxexp + info.nmant + 3.0), float(info.maxexp)),
        "math.expm1": (-(info.nmant + 4) * 0.7, info.maxexp * 0.7),
        "math.log": (0.0, 4.0),
        "math.log1p": (-1.0, 4.0),
        "math.tanh": (-(info.nmant + 2) * 0.35, (info.nmant + 2) * 0.35),
        "math.sin": (-10.0, 10.0),
        "math.cos": (-10.0, 10.0),
        "math.tan": (-10.0, 10.0),
        "math.erf": (-6.0, 6.0),
        "sigmoid": (-(info.maxexp + info.nmant) * 0.7, 40.0),
    }[name]
    parts = [
        log_uniform(rng, n // 2, lo_exp, hi_exp, T),
        uniform(rng, n - n // 2, near[0], near[1], T),
        around(_thresholds(name, T), T),
        specials(T),
    ]
    return np.concatenate([np.asarray(p, dtype=NP[T]) for p in parts])


def binary_samples(name: str, T: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """atan2: n random (y, x) pairs over the whole range, plus every pair of specials."""
    rng = np.random.default_rng(seed)
    info = np.finfo(NP[T])
    lo_exp = float(info.minexp - info.nmant - 1)
    y = np.concatenate([log_uniform(rng, n // 2, lo_exp, info.maxexp, T), uniform(rng, n - n // 2, -3, 3, T)])
    x = np.concatenate([log_uniform(rng, n // 2, lo_exp, info.maxexp, T), uniform(rng, n - n // 2, -3, 3, T)])
    sy, sx = np.meshgrid(specials(T), specials(T))
    return np.concatenate([y, sy.ravel()]), np.concatenate([x, sx.ravel()])


# ---- running the native code -------------------------------------------------

_UNARY = """builtin.module {{
  func.func @f(%x: memref<{n}x{T}>, %y: memref<{n}x{T}>) {{
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %n = arith.constant {n} : index
    scf.for %i = %c0 to %n step %c1 {{
      %v = memref.load %x[%i] : memref<{n}x{T}>
      %r = {op} %v : {T}
      memref.store %r, %y[%i] : memref<{n}x{T}>
    }}
    func.return
  }}
}}"""

_BINARY = """builtin.module {{
  func.func @f(%a: memref<{n}x{T}>, %b: memref<{n}x{T}>, %y: memref<{n}x{T}>) {{
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %n = arith.constant {n} : index
    scf.for %i = %c0 to %n step %c1 {{
      %u = memref.load %a[%i] : memref<{n}x{T}>
      %v = memref.load %b[%i] : memref<{n}x{T}>
      %r = {op} %u, %v : {T}
      memref.store %r, %y[%i] : memref<{n}x{T}>
    }}
    func.return
  }}
}}"""


def loop_program(op: str, T: str, n: int, arity: int = 1):
    """The loop-level module `y[i] = op(x[i])` (or `op(a[i], b[i])`) as an xDSL ModuleOp."""
    from xdsl.context import Context
    from xdsl.dialects import arith, builtin, func, math as math_dialect, memref, scf
    from xdsl.parser import Parser

    ctx = Context()
    for dialect in (builtin.Builtin, func.Func, scf.Scf, arith.Arith, math_dialect.Math, memref.MemRef):
        ctx.load_dialect(dialect)
    text = (_UNARY if arity == 1 else _BINARY).format(n=n, T=T, op=op)
    return Parser(ctx, text).parse_module()


def run_native(name: str, T: str, *inputs: np.ndarray, flush_denormal: bool = False, **options) -> np.ndarray:
    """`name` applied elementwise by compiled code (compile_module options pass through)."""
    from raster_mlir.backend import compile_module
    from raster_mlir.backend.fp_mode import get_flush_denormal, set_flush_denormal

    n = len(inputs[0])
    out = np.empty(n, dtype=NP[T])
    if name == "sigmoid":
        import raster_mlir as rm

        f = rm.jit(rm.sigmoid)
    else:
        f = compile_module(loop_program(name, T, n, len(inputs)), "f", **options)
    before = get_flush_denormal()
    set_flush_denormal(flush_denormal)
    try:
        if name == "sigmoid":
            return np.asarray(f(inputs[0]))
        f(*[np.ascontiguousarray(a, dtype=NP[T]) for a in inputs], out)
    finally:
        set_flush_denormal(before)
    return out


def measure(name: str, T: str, n: int, seed: int = 0, **options):
    """(max ulp error, worst input) of `name` in precision T over n sampled inputs (+ thresholds, specials)."""
    inputs = binary_samples(name, T, n, seed) if name == "math.atan2" else (unary_samples(name, T, n, seed),)
    return max_ulp_error(name, T, inputs, run_native(name, T, *inputs, **options))


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100_000, help="random inputs per function and precision")
    parser.add_argument("--functions", nargs="*", default=sorted(REFERENCES))
    parser.add_argument("--libm", action="store_true", help="measure the libm calls instead (vector_math=False)")
    args = parser.parse_args(argv)
    options = {"vector_math": False} if args.libm else {}
    print("| function | f32 max ulp (worst input) | f64 max ulp (worst input) |")
    print("| --- | --- | --- |")
    for name in args.functions:
        cells = []
        for T in ("f32", "f64"):
            err, where = measure(name, T, args.samples, **options)
            cells.append(f"{err:.2f} ({', '.join(f'{w:.17g}' for w in where)})")
        print(f"| {name.removeprefix('math.')} | {cells[0]} | {cells[1]} |", flush=True)


if __name__ == "__main__":
    main()
