"""numpy: the forward pass, the backward pass and the SGD update written by hand.

What a careful numpy programmer writes: buffers allocated once per
configuration, BLAS through `np.dot(..., out=)`, the learning rate folded into
the output error, the error sent back through a layer before that layer's
weights change, and each weight update done in place by BLAS, with no
gradient array: `W -= delta h^T` is one rank-one `?ger` (one sample) or one
`?gemm` with beta = 1 (a batch) on W's memory, through scipy.linalg.blas
(given W.T, which is Fortran-ordered, so scipy works in place). Without scipy
it falls back to `np.dot` into a gradient buffer and a subtraction (slower:
about 92 against 128 us per 784-128-10 f64 step). It updates every row of a
weight matrix, also those whose unit was inactive (zero gradient), and reads
every pixel, also the zeros: no sparsity tricks.
"""

from __future__ import annotations

import numpy as np

from bench.workloads import Contender, Implementation, cycling

try:
    from scipy.linalg import blas as scipy_blas
except ImportError:  # the fallback: np.dot into a gradient buffer, then a subtraction
    scipy_blas = None
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
        self.scale = dtype(LR / (batch or 1))
        if scipy_blas is not None:
            self.ger, self.gemm = scipy_blas.get_blas_funcs(("ger", "gemm"), (self.W[0],))
        else:
            self.dW = [np.empty(W.shape, dtype) for W in self.W]

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
            self._update(k, W, delta, h)
            self.b[k] -= delta if self.batch is None else delta.sum(axis=0)
        return loss

    def _update(self, k, W, delta, h):
        """W -= delta h^T (one sample) or delta^T h (a batch), in place."""
        if scipy_blas is not None:
            # W.T is Fortran-ordered: BLAS updates W.T += -1 * h delta^T directly in W's memory.
            if self.batch is None:
                self.ger(-1.0, h, delta, a=W.T, overwrite_a=True)
            else:
                self.gemm(-1.0, h, delta, beta=1.0, c=W.T, trans_a=True, overwrite_c=True)
        elif self.batch is None:
            np.dot(delta[:, None], h[None, :], out=self.dW[k])  # BLAS: faster than np.multiply.outer here
            W -= self.dW[k]
        else:
            np.dot(delta.T, h, out=self.dW[k])
            W -= self.dW[k]


class NumpyMLP(Implementation):
    key = "numpy"
    label = "numpy"

    def check(self):
        # scipy loads an OpenBLAS of its own after the harness limited the BLAS threads: limit it too.
        if self.threads and scipy_blas is not None:
            try:
                from threadpoolctl import threadpool_limits
            except ImportError:
                return
            threadpool_limits(limits=self.threads, user_api="blas")

    def details(self):
        update = (
            "in place: scipy.linalg.blas ?ger (one sample) / ?gemm with beta=1 (a batch) on W.T"
            if scipy_blas is not None
            else "np.dot into a gradient buffer, then W -= dW (scipy not installed)"
        )
        try:
            from threadpoolctl import threadpool_info
        except ImportError:
            return {"threads": "BLAS default (threadpoolctl not installed)", "weight update": update}
        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        threads = sorted({i["num_threads"] for i in blas})
        return {"threads": threads[0] if len(threads) == 1 else threads or "unknown", "weight update": update}

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
