"""numpy semantics of every raster op: the oracle for tests, eager mode and the interpreter.

`KERNELS[op_name](*arrays, **params)` computes an op on numpy arrays, where
`params` are the op's properties as Python values (`op.params()`). Results
have the operands' dtype. Eager calls (`nn.relu(np_array)`) and the
reference interpreter both go through this table, so they cannot disagree.

Numerical choices:
- softmax subtracts the row max before exp (no overflow for logits of 1e4);
- log_softmax is x - max - log(sum(exp(x - max)));
- cross_entropy clamps p to the smallest normal number of its dtype
  (`np.finfo(dtype).tiny`), so p = 0 contributes y * 708 (f64) or y * 87 (f32)
  instead of inf; 0 * log(tiny) is 0, never NaN;
- softmax_cross_entropy goes through log_softmax, so it is finite for any
  finite logits and does not suffer from the clamp;
- sigmoid uses the form that never exponentiates a large positive number.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def _sigmoid(x):
    # exp(-|x|) <= 1 never overflows; pick the algebraically equal branch per sign.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype)


def _softmax(x):
    shifted = x - np.max(x, axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=-1, keepdims=True)


def _log_softmax(x):
    shifted = x - np.max(x, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _cross_entropy(p, y):
    # A 2-D input gives the mean over the batch rows.
    tiny = np.finfo(p.dtype).tiny
    terms = y * np.log(np.maximum(p, tiny))
    total = -np.sum(terms)
    return total / p.shape[0] if p.ndim == 2 else total


def _softmax_cross_entropy(z, y):
    logp = _log_softmax(z)
    total = -np.sum(y * logp)
    loss = total / z.shape[0] if z.ndim == 2 else total
    return loss, np.exp(logp)


def _dense(w, x, b):
    return x @ w.T + b


def _reduce(fn):
    def kernel(x, axis=None, keepdims=False):
        return fn(x, axis=axis, keepdims=keepdims)

    return kernel


# Creation ops: built in float64, cast to the op's dtype by run_kernel.
def _fill(value=0.0, shape=()):
    return np.full(shape, value)


def _constant(value=None, shape=()):
    return np.asarray(value, dtype=np.float64).reshape(shape)


KERNELS: dict[str, Callable[..., np.ndarray | tuple[np.ndarray, ...]]] = {
    "raster.neg": np.negative,
    "raster.exp": np.exp,
    "raster.log": np.log,
    "raster.tanh": np.tanh,
    "raster.sigmoid": _sigmoid,
    "raster.sqrt": np.sqrt,
    "raster.relu": lambda x: np.maximum(x, x.dtype.type(0)),
    "raster.add": np.add,
    "raster.sub": np.subtract,
    "raster.mul": np.multiply,
    "raster.div": np.divide,
    "raster.pow": np.power,
    "raster.maximum": np.maximum,
    "raster.greater": lambda a, b: np.greater(a, b).astype(np.result_type(a, b)),
    "raster.equal": lambda a, b: np.equal(a, b).astype(np.result_type(a, b)),
    "raster.dense": _dense,
    "raster.softmax": _softmax,
    "raster.log_softmax": _log_softmax,
    "raster.cross_entropy": _cross_entropy,
    "raster.softmax_cross_entropy": _softmax_cross_entropy,
    "raster.sum": _reduce(np.sum),
    "raster.mean": _reduce(np.mean),
    "raster.max": _reduce(np.max),
    "raster.matmul": np.matmul,
    "raster.transpose": lambda x, perm=(): np.transpose(x, perm),
    "raster.reshape": lambda x, shape=(): np.reshape(x, shape),
    "raster.broadcast_to": lambda x, shape=(): np.broadcast_to(x, shape).copy(),
    "raster.fill": _fill,
    "raster.constant": _constant,
}


# ---------------------------------------------------------------------------
# More maths (dialects/raster_maths.py) and static slicing (dialects/raster_array.py)


def _mask_of(compare):
    return lambda a, b: compare(a, b).astype(np.result_type(a, b))


def _softplus(x):
    # max(x, 0) + log1p(exp(-|x|)): exp never overflows.
    return np.maximum(x, x.dtype.type(0)) + np.log1p(np.exp(-np.abs(x)))


# numpy has no erf; Python's math.erf is accurate to an ulp (f32 inputs are computed in f64).
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _logsumexp(x, axis=None, keepdims=False):
    peak = np.max(x, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0).astype(x.dtype)  # as JAX: all -inf gives -inf
    total = np.log(np.sum(np.exp(x - peak), axis=axis, keepdims=True)) + peak
    return total if keepdims else (total.reshape(()) if axis is None else np.squeeze(total, axis))


def _cumsum(x, axis=0, reverse=False):
    if reverse:
        return np.flip(np.cumsum(np.flip(x, axis), axis=axis), axis)
    return np.cumsum(x, axis=axis)


def _box(start, step, count):
    """The index tuple of a strided box (stop computed so negative steps may reach index 0)."""
    return tuple(slice(s, s + n * t if s + n * t >= 0 else None, t) for s, t, n in zip(start, step, count))


def _slice(x, start=(), step=(), shape=()):
    return x[_box(start, step, shape)]


def _insert_slice(source, dest, start=(), step=()):
    out = dest.copy()
    out[_box(start, step, source.shape)] = source
    return out


KERNELS.update(
    {
        "raster.sin": np.sin,
        "raster.cos": np.cos,
        "raster.tan": np.tan,
        "raster.exp2": np.exp2,
        "raster.log1p": np.log1p,
        "raster.expm1": np.expm1,
        "raster.abs": np.abs,
        "raster.sign": np.sign,
        "raster.floor": np.floor,
        "raster.ceil": np.ceil,
        "raster.trunc": np.trunc,
        "raster.rint": np.rint,
        "raster.erf": _erf,
        "raster.softplus": _softplus,
        "raster.minimum": np.minimum,
        "raster.atan2": np.arctan2,
        "raster.less": _mask_of(np.less),
        "raster.less_equal": _mask_of(np.less_equal),
        "raster.greater_equal": _mask_of(np.greater_equal),
        "raster.not_equal": _mask_of(np.not_equal),
        "raster.where": lambda p, a, b: np.where(p != 0, a, b),
        "raster.min": _reduce(np.min),
        "raster.prod": _reduce(np.prod),
        "raster.logsumexp": _logsumexp,
        "raster.cumsum": _cumsum,
        "raster.slice": _slice,
        "raster.insert_slice": _insert_slice,
        "raster.concatenate": lambda *xs, axis=0: np.concatenate(xs, axis=axis),
    }
)

from .reference_index import INDEX_KERNELS  # noqa: E402  (traced integers: convert, dynamic_index...)

KERNELS.update(INDEX_KERNELS)


def run_kernel(name: str, arrays, params: dict, dtype: np.dtype) -> tuple[np.ndarray, ...]:
    """Apply one op; always returns a tuple of arrays of `dtype`, each C-contiguous."""
    with np.errstate(all="ignore"):  # log(0) = -inf etc. follow numpy, without warnings
        out = KERNELS[name](*arrays, **params)
    outs = out if isinstance(out, tuple) else (out,)
    return tuple(np.asarray(o, dtype=dtype, order="C") for o in outs)
