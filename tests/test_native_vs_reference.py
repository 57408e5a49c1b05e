"""Native code (lower-to-loops + fuse-loops + LLVM) equals the reference interpreter, op by op.

Shapes are drawn by hypothesis from sizes that stress vector remainders
(1, 3, 7, 129 and others) and include batch 1; f64 to rel 1e-12, f32 to 1e-5
(plus an absolute allowance scaled by the magnitudes a reduction sums).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import raster_mlir as rm
from raster_mlir import nn

SIZES = st.sampled_from([1, 3, 7, 129]) | st.integers(1, 20)
DTYPES = {"f64": (np.float64, 1e-12), "f32": (np.float32, 1e-5)}


def check(fn, args, dtype, rtol, scale=1.0):
    compiled = rm.compile(fn, *args)
    assert compiled.native is not None
    native = compiled(*args)
    reference = compiled.run_reference(*args)
    natives = native if isinstance(native, tuple) else (native,)
    references = reference if isinstance(reference, tuple) else (reference,)
    for got, want in zip(natives, references):
        got, want = np.asarray(got), np.asarray(want)
        assert got.shape == want.shape
        if got.ndim:
            assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)


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
@settings(max_examples=4, deadline=None)
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
@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_reductions(op, dtype_name, data):
    dtype, rtol = DTYPES[dtype_name]
    shape = tuple(data.draw(st.lists(SIZES, min_size=1, max_size=3), label="shape"))
    axis = data.draw(st.sampled_from([None, *range(-len(shape), len(shape))]), label="axis")
    keepdims = data.draw(st.booleans(), label="keepdims")
    x = draw_array(data, shape, dtype)
    fn = {"sum": rm.sum, "mean": rm.mean, "max": rm.max}[op]
    check(lambda x: fn(x, axis=axis, keepdims=keepdims), (x,), dtype, rtol, scale=3.0 * x.size)


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@settings(max_examples=6, deadline=None)
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

    check(model, (W, x, b, y), dtype, rtol, scale=10.0 * n_in * n_out)


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@settings(max_examples=6, deadline=None)
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
