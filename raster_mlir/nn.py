"""Neural-network primitives (the seed's `nn/` namespace).

Each works eagerly on numpy arrays and builds IR inside `@rm.jit`:

>>> nn.dense([[0.1, 0.2], [0.3, 0.4]], [1.0, 2.0], [0.0, 0.0])
array([0.5, 1.1])
"""

from __future__ import annotations

import numpy as np

from raster_mlir import ops
from raster_mlir.dialects import raster as R
from raster_mlir.ops import relu, sigmoid, tanh

__all__ = [
    "dense", "relu", "sigmoid", "tanh", "softmax", "log_softmax",
    "cross_entropy", "softmax_cross_entropy", "mse",
]  # fmt: skip


def dense(W, x, b=None):
    """y = W x + b with W (out, in) and x (in,) or (batch, in); b (out,) defaults to zeros.

    Compiled with the default pipeline, the terms where x is zero are skipped
    (`skip-zero-chunks`; `skip-zero-updates` likewise skips a train step's row
    updates whose factor is zero): exact for finite numbers, but an inf or NaN
    in W facing a zero of x gives a finite result where numpy gives NaN
    (0 * inf). `pipeline=rm.STRICT_PIPELINE` keeps numpy's NaN/inf semantics
    (a per-sample MNIST step is 1.3-2.4x slower; bench/bench_strict_nan.py).
    """
    if b is None:
        out = W.shape[0] if hasattr(W, "shape") else np.shape(W)[0]
        # The zero bias is a Python-number-like operand: it takes W's and x's dtype.
        b = np.zeros((out,), dtype=np.int8)
    return ops.apply(R.DenseOp, [W, x, b])


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) over `axis` (the last by default; an int or a tuple, as in JAX), computed
    stably (the max is subtracted). Over the last axis it is one op (raster.softmax); over others
    exp(x - logsumexp(x, axis, keepdims=True)), whose ops have their own rules."""
    if _is_last_axis(x, axis):
        return ops.apply(R.SoftmaxOp, [x])
    return ops.exp(log_softmax(x, axis))


def log_softmax(x, axis=-1):
    """log(softmax(x)) over `axis` (the last by default; an int or a tuple), computed stably."""
    if _is_last_axis(x, axis):
        return ops.apply(R.LogSoftmaxOp, [x])
    return ops.subtract(x, ops.logsumexp(x, axis=axis, keepdims=True))


def _is_last_axis(x, axis) -> bool:
    """Whether `axis` names only the last axis of `x` (the one raster.softmax normalises over)."""
    ndim = np.ndim(x)
    if isinstance(axis, tuple) and len(axis) == 1:
        axis = axis[0]
    return isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) and axis in (-1, ndim - 1)


def cross_entropy(p, y):
    """-sum(y * log(p)); the batch mean for 2-D inputs. p is clamped to the smallest normal
    number of its dtype, so p = 0 gives a large finite loss, never inf or NaN."""
    return ops.apply(R.CrossEntropyOp, [p, y])


def softmax_cross_entropy(logits, y):
    """(cross_entropy(softmax(logits), y), softmax(logits)) via log_softmax: stable for any logits."""
    return ops.apply(R.SoftmaxCrossEntropyOp, [logits, y])


def mse(pred, target):
    """Mean squared error: mean((pred - target)**2) over all elements."""
    d = ops.subtract(pred, target)
    return ops.mean(ops.multiply(d, d))
