"""`rm.check_grads`: test compiled gradients against central finite differences.

For each differentiated argument x_i and each of `n_directions` random
directions t (standard normal entries), it compares

    fd = <J_i t, c>   = (g(x_i + eps t) - g(x_i - eps t)) / (2 eps)
    ad = <t, J_i^T c> = sum(t * grad_i)

where g(...) = sum(c * f(...)) with c = 1 for a scalar output and a fixed
random array for an array output, f is evaluated by its compiled forward
function and grad_i comes from the compiled `rm.grad` of g. The check
passes when |fd - ad| <= rtol * max(|fd|, |ad|) + atol for every pair.

Defaults by dtype: f64 eps = 1e-6, rtol = 1e-6; f32 eps = 1e-3, rtol = 1e-2.
`atol` defaults to an estimate of the rounding error of the difference
quotient itself, 64 * machine-eps * max(|g(x+)|, |g(x-)|, 1) / eps, so that
a gradient that is zero does not fail on noise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from raster_mlir import call_variants, ops
from raster_mlir.autodiff_api import grad
from raster_mlir.errors import GradientError
from raster_mlir.jit import JitFunction, jit

_DEFAULTS = {np.dtype(np.float64): (1e-6, 1e-6), np.dtype(np.float32): (1e-3, 1e-2)}


@dataclass(frozen=True)
class DirectionCheck:
    """One comparison: argument `argnum`, direction number `direction`."""

    argnum: int
    direction: int
    fd: float
    ad: float
    tolerance: float

    @property
    def abs_error(self) -> float:
        return abs(self.fd - self.ad)

    @property
    def rel_error(self) -> float:
        scale = max(abs(self.fd), abs(self.ad))
        return self.abs_error / scale if scale > 0 else 0.0

    @property
    def ok(self) -> bool:
        return bool(self.abs_error <= self.tolerance)


@dataclass
class GradCheckReport:
    """The outcome of `check_grads`: one `DirectionCheck` per (argument, direction)."""

    function: str
    eps: float
    rtol: float
    checks: list[DirectionCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def max_rel_error(self) -> float:
        return max((c.rel_error for c in self.checks), default=0.0)

    def __str__(self) -> str:
        lines = [
            f"check_grads({self.function}): {'ok' if self.ok else 'FAILED'} "
            f"(eps={self.eps:g}, rtol={self.rtol:g})",
            f"  {'arg':>3} {'dir':>3} {'finite difference':>22} {'autodiff':>22} {'rel error':>10}",
        ]
        for c in self.checks:
            mark = "" if c.ok else "   <-- mismatch"
            lines.append(
                f"  {c.argnum:>3} {c.direction:>3} {c.fd:>22.14g} {c.ad:>22.14g} {c.rel_error:>10.2e}{mark}"
            )
        return "\n".join(lines)


def check_grads(
    f: Callable,
    *args,
    argnums: int | Sequence[int] | None = None,
    eps: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    n_directions: int = 3,
    seed: int = 0,
) -> GradCheckReport:
    """Compare f's compiled gradient with finite differences; raise GradientError on a mismatch.

    `f` is a function (or `@rm.jit` function) of arrays returning one array;
    `argnums` picks the arguments to check (all by default). Returns the
    report when every check passes. Arguments may be pytrees (tuples, lists, dicts of arrays): every
    leaf of a selected argument is checked, and the report numbers the leaves (in `flatten` order).
    """
    target = jit(f)
    if call_variants.has_containers(args):
        leaves, tree, owners = call_variants.leaves_of(args)
        nums = _argnums(target.name, argnums, len(args))
        leaf_nums = [k for k, owner in enumerate(owners) if owner in nums]
        options = dict(eps=eps, rtol=rtol, atol=atol, n_directions=n_directions, seed=seed)
        return check_grads(target.tree_variant(tree), *leaves, argnums=leaf_nums, **options)
    arrays = _as_arrays(target.name, args)
    nums = _argnums(target.name, argnums, len(arrays))
    dtype = arrays[nums[0]].dtype if nums else np.dtype(np.float64)
    default_eps, default_rtol = _DEFAULTS.get(dtype, _DEFAULTS[np.dtype(np.float64)])
    eps = default_eps if eps is None else float(eps)
    rtol = default_rtol if rtol is None else float(rtol)
    rng = np.random.default_rng(seed)

    out = target(*arrays)
    if isinstance(out, (tuple, list)):
        raise GradientError(f"check_grads({target.name}): the function must return one array, it returns {len(out)}")
    out = np.asarray(out)
    if out.ndim == 0:  # c = 1
        weights, gradients = None, grad(target, argnums=tuple(nums))(*arrays)
    else:  # g(x, c) = sum(c * f(x)), with c an extra (not differentiated) argument
        weights = rng.standard_normal(out.shape).astype(out.dtype)
        gradients = grad(_weighted_sum(target), argnums=tuple(nums))(*arrays, weights)

    def value(xs) -> float:
        y = np.asarray(target(*xs), dtype=np.float64)
        return float(y) if weights is None else float(np.sum(y * weights))

    report = GradCheckReport(target.name, eps, rtol)
    machine_eps = float(np.finfo(dtype).eps) if dtype.kind == "f" else float(np.finfo(np.float64).eps)
    for d in range(n_directions):
        for argnum, g in zip(nums, gradients):
            x = arrays[argnum]
            t = rng.standard_normal(x.shape).astype(x.dtype)
            plus = value(_replace(arrays, argnum, x + x.dtype.type(eps) * t))
            minus = value(_replace(arrays, argnum, x - x.dtype.type(eps) * t))
            fd = (plus - minus) / (2 * eps)
            ad = float(np.sum(np.asarray(g, dtype=np.float64) * t))
            noise = 64 * machine_eps * max(abs(plus), abs(minus), 1.0) / eps
            tol = rtol * max(abs(fd), abs(ad)) + (noise if atol is None else float(atol))
            report.checks.append(DirectionCheck(argnum, d, fd, ad, tol))
    if not report.ok:
        raise GradientError(str(report))
    return report


def _weighted_sum(target: JitFunction) -> Callable:
    def weighted(*xs_and_weights):
        *xs, weights = xs_and_weights
        return ops.sum(ops.multiply(target(*xs), weights))

    weighted.__name__ = f"{target.name}_weighted"
    return weighted


def _as_arrays(name: str, args: Sequence) -> list[np.ndarray]:
    """Arrays as given; Python numbers become 0-d arrays of the arrays' common dtype (f64 if none)."""
    dtypes = {a.dtype for a in args if isinstance(a, np.ndarray)}
    weak = dtypes.pop() if len(dtypes) == 1 else np.dtype(np.float64)
    arrays = []
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray):
            arrays.append(a)
        elif isinstance(a, (float, int, np.floating, np.integer)) and not isinstance(a, (bool, np.bool_)):
            arrays.append(np.asarray(a, dtype=weak))
        else:
            raise GradientError(f"check_grads({name}): argument {i} must be an array or a number, got {type(a).__name__}")
    return arrays


def _argnums(name: str, argnums, n: int) -> list[int]:
    nums = list(range(n)) if argnums is None else [argnums] if isinstance(argnums, int) else list(argnums)
    for i in nums:
        if not isinstance(i, int) or not -n <= i < n:
            raise GradientError(f"check_grads({name}): argnums {argnums!r} out of range for {n} argument(s)")
    return [i % n for i in nums]


def _replace(arrays: list[np.ndarray], index: int, value: np.ndarray) -> list[np.ndarray]:
    out = list(arrays)
    out[index] = np.ascontiguousarray(value)
    return out


__all__ = ["check_grads", "GradCheckReport", "DirectionCheck"]
