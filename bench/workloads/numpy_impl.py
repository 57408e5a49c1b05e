"""numpy: the forward pass, the backward pass and the SGD update written by hand.

What a careful numpy programmer writes: buffers allocated once per
configuration, BLAS through `np.dot(..., out=)` (the outer product too), the
learning rate folded into the output error so that each weight update is one
outer product (or one matrix product for a batch) and one subtraction, and
the error sent back through a layer before that layer's weights change. It
updates every row of a weight matrix, also those whose unit was inactive
(zero gradient): no sparsity tricks.
"""

from __future__ import annotations

import numpy as np

from bench.workloads import Contender, Implementation, cycling
from bench.workloads.model import LR, aligned_copy


class _MLP:
    """Preallocated buffers and the hand-written step for one spec and input shape."""

    def __init__(self, params, sizes, batch: int | None, dtype):
        self.W = params[0::2]
        self.b = params[1::2]
        self.batch = batch
        shape = (lambda n: (n,)) if batch is None else (lambda n: (batch, n))
        self.acts = [np.empty(shape(n), dtype) for n in sizes[1:]]  # layer outputs (relu'd; last: logits)
        self.errors = [np.empty(shape(n), dtype) for n in sizes[1:]]  # lr-scaled d loss / d pre-activation
        self.dW = [np.empty(W.shape, dtype) for W in self.W]
        self.scale = dtype(LR / (batch or 1))

    def forward(self, x):
        h = x
        last = len(self.W) - 1
        for k, (W, b, z) in enumerate(zip(self.W, self.b, self.acts)):
            if self.batch is None:
                np.dot(W, h, out=z)
            else:
                np.dot(h, W.T, out=z)
            z += b
            if k < last:
                np.maximum(z, 0, out=z)
            h = z
        return h

    def predict(self, x):
        z = self.forward(x)
        z -= z.max(axis=-1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=-1, keepdims=True)
        return z

    def step(self, x, y):
        z = self.forward(x)
        # softmax and cross-entropy: loss = sum(y) * logsumexp(z) - y . z (per sample)
        z -= z.max(axis=-1, keepdims=True)
        e = self.errors[-1]
        np.exp(z, out=e)
        total = e.sum(axis=-1, keepdims=True)
        y_sum = y.sum(axis=-1, keepdims=True)
        per_sample = np.log(total) * y_sum - (y * z).sum(axis=-1, keepdims=True)
        loss = float(per_sample.mean())
        # d loss / d logits = softmax * sum(y) - y, times lr / batch
        e *= y_sum / total
        e -= y
        e *= self.scale
        for k in range(len(self.W) - 1, -1, -1):
            W, delta = self.W[k], self.errors[k]
            h = x if k == 0 else self.acts[k - 1]
            if k > 0:  # send the error back before W changes
                back = self.errors[k - 1]
                np.dot(delta, W, out=back)
                back *= h > 0
            if self.batch is None:
                np.dot(delta[:, None], h[None, :], out=self.dW[k])  # BLAS: faster than np.multiply.outer here
                self.b[k] -= delta
            else:
                np.dot(delta.T, h, out=self.dW[k])
                self.b[k] -= delta.sum(axis=0)
            W -= self.dW[k]
        return loss


class NumpyMLP(Implementation):
    key = "numpy"
    label = "numpy"

    def details(self):
        try:
            from threadpoolctl import threadpool_info
        except ImportError:
            return {"threads": "BLAS default (threadpoolctl not installed)"}
        blas = [i for i in threadpool_info() if i.get("user_api") == "blas" and "numpy" in i.get("filepath", "")]
        return {"threads": blas[0]["num_threads"] if blas else "unknown", "outer product": "np.dot of (n, 1) and (1, m)"}

    def _mlp(self, spec, params, xs):
        batch = xs.shape[1] if xs.ndim == 3 else None
        return _MLP([aligned_copy(p) for p in params], spec.sizes, batch, spec.np_dtype)

    def train_step(self, spec, params, xs, ys):
        mlp = self._mlp(spec, params, xs)
        return Contender(cycling(mlp.step, list(zip(xs, ys))), lambda: _flat(mlp))

    def predictor(self, spec, params, xs):
        mlp = self._mlp(spec, params, xs)
        return Contender(cycling(mlp.predict, [(x,) for x in xs]))


def _flat(mlp: _MLP) -> list[np.ndarray]:
    return [p for pair in zip(mlp.W, mlp.b) for p in pair]


class _WrongMLP(_MLP):
    """The injected bug: the first layer's bias is never updated."""

    def step(self, x, y):
        b0 = self.b[0].copy()
        loss = super().step(x, y)
        self.b[0][...] = b0
        return loss


class WrongNumpyMLP(NumpyMLP):
    """A contender the correctness gate must refuse (`--inject-wrong`, for the harness's test)."""

    key = "numpy_wrong"
    label = "numpy, injected bug"

    def _mlp(self, spec, params, xs):
        batch = xs.shape[1] if xs.ndim == 3 else None
        return _WrongMLP([aligned_copy(p) for p in params], spec.sizes, batch, spec.np_dtype)
