"""Minimax polynomial fits (the Remez exchange algorithm), for regenerating coefficients.py.

Not imported at run time: `python -m raster_mlir.backend.vmath.fit` uses it
(mpmath required, from the `test` extra).

    remez(target, basis, a, b, weight) -> (coefficients, max_weighted_error)

finds c minimising max over [a, b] of |weight(x) * (target(x) - sum_k c_k basis_k(x))|.
Algorithm: start from n+1 Chebyshev points (n = len(basis)); solve the
linear system p(x_i) + (-1)^i E / weight(x_i) = target(x_i) for c and the
levelled error E; locate the extrema of the error curve on a dense
Chebyshev-spaced grid (refined by golden-section search), keep one extremum
per run of equal sign, the n+1 with the largest errors in alternation, and
repeat until the extrema are level to 1e-4 relative.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import mpmath
from mpmath import mp, mpf


def _chebyshev_points(a, b, count):
    return sorted((a + b) / 2 + (b - a) / 2 * mpmath.cos(mp.pi * i / (count - 1)) for i in range(count))


def _refine(err, lo, hi, steps=40):
    """Golden-section search for the maximum of |err| on [lo, hi]."""
    g = (mpmath.sqrt(5) - 1) / 2
    x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
    f1, f2 = abs(err(x1)), abs(err(x2))
    for _ in range(steps):
        if f1 > f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - g * (hi - lo)
            f1 = abs(err(x1))
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + g * (hi - lo)
            f2 = abs(err(x2))
    return x1 if f1 > f2 else x2


def _alternating_extrema(err, grid):
    """One extremum per run of equal sign of err over grid, in order."""
    values = [err(x) for x in grid]
    runs: list[list[int]] = []
    for i, v in enumerate(values):
        if runs and (v >= 0) == (values[runs[-1][0]] >= 0):
            runs[-1].append(i)
        else:
            runs.append([i])
    extrema = []
    for run in runs:
        i = max(run, key=lambda j: abs(values[j]))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        x = _refine(err, lo, hi) if 0 < i < len(grid) - 1 else grid[i]
        extrema.append((x, err(x)))
    return extrema


def _choose(extrema, count):
    """Drop extrema (keeping alternation) until `count` remain: the smaller end or the smaller of a pair."""
    extrema = list(extrema)
    while len(extrema) > count:
        if len(extrema) == count + 1:
            drop = 0 if abs(extrema[0][1]) < abs(extrema[-1][1]) else len(extrema) - 1
            extrema.pop(drop)
            continue
        # remove the adjacent pair with the smallest errors (keeps the alternation)
        k = min(range(len(extrema) - 1), key=lambda j: abs(extrema[j][1]) + abs(extrema[j + 1][1]))
        del extrema[k : k + 2]
    return extrema


def remez(
    target: Callable,
    basis: Sequence[Callable],
    a,
    b,
    weight: Callable = lambda x: 1,
    grid_points: int = 3000,
    max_iterations: int = 40,
    dps: int = 50,
):
    with mp.workdps(dps):
        a, b = mpf(a), mpf(b)
        n = len(basis)
        grid = _chebyshev_points(a, b, grid_points)
        ref = _chebyshev_points(a, b, n + 1)
        coeffs = None
        best = None
        for _ in range(max_iterations):
            rows = [[phi(x) for phi in basis] + [(-1) ** i / weight(x)] for i, x in enumerate(ref)]
            sol = mpmath.lu_solve(mpmath.matrix(rows), mpmath.matrix([target(x) for x in ref]))
            coeffs = [sol[k] for k in range(n)]

            def err(x, c=coeffs):
                return weight(x) * (target(x) - sum(ck * phi(x) for ck, phi in zip(c, basis)))

            extrema = _alternating_extrema(err, grid)
            if len(extrema) < n + 1:
                break  # at the precision limit: the error curve no longer alternates n+1 times
            extrema = _choose(extrema, n + 1)
            errors = [abs(e) for _, e in extrema]
            best = max(errors)
            ref = [x for x, _ in extrema]
            if best - min(errors) <= best * mpf("1e-4"):
                break
        return coeffs, best


def max_error(poly: Callable, target: Callable, a, b, weight: Callable = lambda x: 1, points: int = 20000, dps: int = 50):
    """max |weight * (target - poly)| on a dense grid (to check coefficients after rounding)."""
    with mp.workdps(dps):
        grid = _chebyshev_points(mpf(a), mpf(b), points)
        return max(abs(weight(x) * (target(x) - poly(x))) for x in grid)


def rational_fit(target: Callable, a, b, num_degree: int, den_degree: int, points: int = 300, iterations: int = 12, lawson: int = 30, dps: int = 60):
    """Near-minimax rational fit P/Q (Q(0) = 1) of `target` on [a, b], relative error.

    Algorithm: Sanathanan-Koerner iteration (least squares of target*Q - P
    weighted by 1/(target*Q_previous) on Chebyshev points, which converges to
    the least-squares relative fit), then Lawson reweighting (weights times
    the pointwise error) pushing the fit toward equioscillation. Returns
    (numerator coefficients, denominator coefficients, max relative error on the points).
    """
    with mp.workdps(dps):
        a, b = mpf(a), mpf(b)
        xs = [(a + b) / 2 + (b - a) / 2 * mpmath.cos(mp.pi * (i + mpf(1) / 2) / points) for i in range(points)]
        fs = [target(x) for x in xs]
        weights = [mpf(1)] * points
        q_previous = [mpf(1)] * points
        best = None
        for it in range(iterations + lawson):
            rows, rhs = [], []
            for x, fx, qp, w in zip(xs, fs, q_previous, weights):
                s = mpmath.sqrt(w) / (fx * qp)
                rows.append([-s * x**k for k in range(num_degree + 1)] + [s * fx * x**k for k in range(1, den_degree + 1)])
                rhs.append(-s * fx)
            sol, _ = mpmath.qr_solve(mpmath.matrix(rows), mpmath.matrix(rhs))
            p = [sol[k] for k in range(num_degree + 1)]
            q = [mpf(1)] + [sol[num_degree + 1 + k] for k in range(den_degree)]
            values_q = [sum(c * x**k for k, c in enumerate(q)) for x in xs]
            errors = [abs(sum(c * x**k for k, c in enumerate(p)) / qx / fx - 1) for x, qx, fx in zip(xs, values_q, fs)]
            q_previous = values_q
            worst = max(errors)
            if best is None or worst < best[2]:
                best = (p, q, worst)
            if it >= iterations:
                total = sum(w * e for w, e in zip(weights, errors))
                weights = [w * e / total * points for w, e in zip(weights, errors)]
        return best
