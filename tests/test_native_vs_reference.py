"""Native code (lower-to-loops + fuse-loops + LLVM) equals the reference interpreter, op by op.

Shapes are drawn by hypothesis from sizes that stress vector remainders
(1, 3, 7, 129 and others) and include batch 1. Elementwise ops agree to rel
1e-12 in f64 and 1e-5 in f32. Everything that reduces is bounded by what it
reduces: a sum of n terms by the rounding error of a reassociated sum on both
sides, 2 (n / 8 + 8) eps sum|x_i| (vector lanes accumulate n / 8 terms each,
then the lanes are combined); a mean by that over n; max exactly; a softmax's
outputs by the error of their logits propagated through exp and log.
"""

import numpy as np
import pytest
from helpers import profile_examples
from hypothesis import given, settings
from hypothesis import strategies as st

import raster_mlir as rm
from raster_mlir import nn

SIZES = st.sampled_from([1, 3, 7, 129]) | st.integers(1, 20)
DTYPES = {"f64": (np.float64, 1e-12), "f32": (np.float32, 1e-5)}


def check(fn, args, dtype, rtol, scale=1.0, atols=None):
    """Native results equal the reference interpreter's: to `rtol` (+ rtol * scale absolute),
    or, when `atols` is given, each result to its own absolute bound (an array or a number)."""
    compiled = rm.compile(fn, *args)
    assert compiled.native is not None
    native = compiled(*args)
    reference = compiled.run_reference(*args)
    natives = native if isinstance(native, tuple) else (native,)
    references = reference if isinstance(reference, tuple) else (reference,)
    for k, (got, want) in enumerate(zip(natives, references)):
        got, want = np.asarray(got), np.asarray(want)
        assert got.shape == want.shape
        if got.ndim:
            assert got.dtype == dtype
        if atols is None:
            np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)
        else:
            bound = np.broadcast_to(atols[k], want.shape)
            excess = np.abs(got.astype(np.float64) - want) > bound
            assert not excess.any(), f"result {k}: {got[excess]} vs {want[excess]} beyond {bound[excess]}"


def sum_error_bound(abs_sum, n, dtype):
    """Rounding error allowed between two reassociations of a sum of n terms whose |terms| sum to abs_sum."""
    return 2.0 * (n / 8 + 8) * np.finfo(dtype).eps * abs_sum


def draw_array(data, shape, dtype, lo=-3.0, hi=3.0):
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(dtype)


ELEMENTWISE = {
    "exp": (lambda a, b: rm.exp(a) * b, (-3.0, 3.0)),
    "log": (lambda a, b: rm.log(a) - b, (0.1, 3.0)),
    "tanh-sigmoid": (lambda a, b: rm.tanh(a) + nn.sigmoid(b), (-3.0, 3.0)),
    "sqrt-div": (lambda a, b: rm.sqrt(a) / (b * b + 1.0), (0.1, 3.0)),
    "relu-max": (lambda a, b: nn.relu(a) + rm.maximum(a, b) - rm.minimum(a, b), (-3.0, 3.0)),
    "pow": (lambda a, b: a**b, (0.1, 3.0)),
    "masks": (lambda a, b: rm.greater(a, b) + rm.equal(a, a) - a, (-3.0, 3.0)),
}


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("name", list(ELEMENTWISE))
@settings(max_examples=profile_examples(4), deadline=None)
@given(data=st.data())
def test_elementwise_with_broadcasting(name, dtype_name, data):
    dtype, rtol = DTYPES[dtype_name]
    fn, (lo, hi) = ELEMENTWISE[name]
    rows, cols = data.draw(SIZES, label="rows"), data.draw(SIZES, label="cols")
    b_shape = data.draw(st.sampled_from([(rows, cols), (cols,), (rows, 1), ()]), label="b shape")
    a = draw_array(data, (rows, cols), dtype, lo, hi)
    b = draw_array(data, b_shape, dtype, lo, hi)
    check(fn, (a, b), dtype, rtol, scale=10.0)


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("op", ["sum", "mean", "max"])
@settings(max_examples=profile_examples(3), deadline=None)
@given(data=st.data())
def test_reductions(op, dtype_name, data):
    dtype, rtol = DTYPES[dtype_name]
    shape = tuple(data.draw(st.lists(SIZES, min_size=1, max_size=3), label="shape"))
    axis = data.draw(st.sampled_from([None, *range(-len(shape), len(shape))]), label="axis")
    keepdims = data.draw(st.booleans(), label="keepdims")
    x = draw_array(data, shape, dtype)
    fn = {"sum": rm.sum, "mean": rm.mean, "max": rm.max}[op]
    n = x.size if axis is None else shape[axis]
    abs_sum = np.sum(np.abs(x.astype(np.float64)), axis=axis, keepdims=keepdims)
    atol = {"sum": sum_error_bound(abs_sum, n, dtype), "mean": sum_error_bound(abs_sum, n, dtype) / n, "max": 0.0}[op]
    check(lambda x: fn(x, axis=axis, keepdims=keepdims), (x,), dtype, rtol, atols=[atol])


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@settings(max_examples=profile_examples(3), deadline=None)
@given(data=st.data())
def test_dense_softmax_cross_entropy(dtype_name, data):
    dtype, rtol = DTYPES[dtype_name]
    n_in, n_out = data.draw(SIZES, label="in"), data.draw(SIZES, label="out")
    batch = data.draw(st.sampled_from([None, 1]) | SIZES, label="batch")
    x_shape = (n_in,) if batch is None else (batch, n_in)
    W, x, b = (draw_array(data, s, dtype) for s in [(n_out, n_in), x_shape, (n_out,)])
    y_shape = (n_out,) if batch is None else (batch, n_out)
    y = draw_array(data, y_shape, dtype, 0.0, 1.0)

    def model(W, x, b, y):
        z = nn.dense(W, x, b)
        loss, p = nn.softmax_cross_entropy(z, y)
        return loss, p, nn.log_softmax(z), nn.cross_entropy(nn.softmax(z), y)

    # Error of the logits z = W x + b (a sum of n_in + 1 terms), the largest of each sample's row:
    # it moves log p by at most twice that, and p by p times that.
    W64, x64, b64, y64 = (a.astype(np.float64) for a in (W, x, b, y))
    dz = sum_error_bound(np.abs(x64) @ np.abs(W64).T + np.abs(b64), n_in + 1, dtype)
    dz_row = dz.max(axis=-1, keepdims=True)
    eps = np.finfo(dtype).eps
    log_p = model(W64, x64, b64, y64)[2]
    d_log_p = 2 * dz_row + 16 * eps * (1 + np.abs(log_p))
    d_loss = np.sum(np.abs(y64) * d_log_p, axis=-1)
    d_loss = d_loss.mean() if batch is not None else d_loss
    d_loss = d_loss + 16 * eps * abs(float(model(W64, x64, b64, y64)[0]))
    # Native code flushes subnormal results to zero (rm.set_flush_denormal): a probability below the
    # smallest normal number may come back as 0.
    d_p = np.exp(log_p) * d_log_p + np.finfo(dtype).tiny
    check(model, (W, x, b, y), dtype, rtol, atols=[d_loss, d_p, d_log_p, d_loss])


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@settings(max_examples=profile_examples(3), deadline=None)
@given(data=st.data())
def test_matmul_transpose_reshape_broadcast(dtype_name, data):
    dtype, rtol = DTYPES[dtype_name]
    m, k, n = (data.draw(SIZES, label=name) for name in "mkn")
    lhs_shape = data.draw(st.sampled_from([(m, k), (k,)]), label="lhs")
    rhs_shape = data.draw(st.sampled_from([(k, n), (k,)]), label="rhs")
    a, b = draw_array(data, lhs_shape, dtype), draw_array(data, rhs_shape, dtype)

    def layout(a, b):
        c = rm.matmul(a, b)
        flat = rm.reshape(c, (-1,))
        return c, rm.transpose(rm.reshape(flat, (1, -1))), rm.broadcast_to(rm.reshape(flat, (-1, 1)), (flat.shape[0], 3))

    check(layout, (a, b), dtype, rtol, scale=10.0 * k)


def test_dense_128x784_f64_uses_512_bit_vectors():
    from raster_mlir.backend import host_target

    if "+avx512f" not in host_target().features:
        pytest.skip("the host has no AVX-512")
    rng = np.random.default_rng(0)
    c = rm.compile(nn.dense, rng.normal(size=(128, 784)), rng.normal(size=784), rng.normal(size=128))
    assert "<8 x double>" in c.llvm_ir_optimized


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("n_out, n_in, batch", [(4, 4, 4), (13, 30, 9), (128, 784, 5), (5, 3, 129), (3, 7, 6)])
def test_batched_dense_tiles_and_remainders(n_out, n_in, batch, dtype_name):
    """Batched dense runs 4x4 tiles of (rows of W) x (samples), then the remaining rows and samples."""
    dtype, rtol = DTYPES[dtype_name]
    rng = np.random.default_rng(n_out * 1000 + batch)
    W, b = rng.normal(size=(n_out, n_in)).astype(dtype), rng.normal(size=n_out).astype(dtype)
    x = rng.normal(size=(batch, n_in)).astype(dtype)
    check(lambda W, x, b: nn.relu(nn.dense(W, x, b)), (W, x, b), dtype, rtol, scale=10.0 * n_in)
    want = x.astype(np.float64) @ W.T.astype(np.float64) + b
    np.testing.assert_allclose(rm.compile(nn.dense, W, x, b)(W, x, b), want, rtol=50 * rtol, atol=50 * rtol * n_in)
