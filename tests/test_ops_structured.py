"""Reductions, linear algebra, layout and nn ops against plain numpy.

Each op runs eagerly and through `rm.compile(f, *args).run_reference(*args)`
for hypothesis-chosen shapes (sizes from {1, 2, 3, 7, 129} and others) and
values, in f64 (rel 1e-12) and f32 (rel 1e-5). Sums and products compare
with a tolerance scaled by the sum of magnitudes (cancellation makes a pure
relative bound meaningless). Expected values are independent numpy
expressions (einsum instead of matmul, exp/sum without max-shifting...).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import raster_mlir as rm
from raster_mlir import nn
from raster_mlir.compiler import TENSOR_PIPELINE

DTYPES = [np.float64, np.float32]
RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}
SIZES = st.sampled_from([1, 2, 3, 7, 129]) | st.integers(1, 10)
SMALL = st.sampled_from([1, 2, 3, 7]) | st.integers(1, 5)


def shapes(min_rank=0, max_rank=2, sizes=SIZES):
    return st.lists(sizes, min_size=min_rank, max_size=max_rank).map(tuple)


def any_shape(min_rank=0):
    """Rank <= 2 with any size, or rank 3 with small sizes (keeps arrays small)."""
    return shapes(min_rank, 2) | shapes(3, 3, SMALL)


def arrays(dtype, shape, lo=-10.0, hi=10.0):
    width = 32 if np.dtype(dtype) == np.float32 else 64
    return hnp.arrays(dtype, shape, elements=st.floats(lo, hi, width=width, allow_subnormal=False))


def assert_close(got, want, dtype, scale=0.0):
    """|got - want| <= rtol * (|want| + scale) + tiny elementwise; shapes must agree.

    `tiny` (the smallest normal number of dtype) only matters for results in
    the subnormal range, which no float arithmetic gets to relative accuracy.
    """
    got64 = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got64.shape == want.shape, f"shape {got64.shape} != expected {want.shape}"
    tol = RTOL[np.dtype(dtype)] * (np.abs(want) + scale) + np.finfo(dtype).tiny
    ok = (got64 == want) | (np.abs(got64 - want) <= tol)
    assert ok.all(), f"max abs error {np.max(np.abs(got64 - want))}\ngot  {got64}\nwant {want}"


def check_result_type(result, dtype, want_shape):
    if want_shape == ():
        assert np.ndim(result) == 0
    else:
        assert isinstance(result, np.ndarray) and result.dtype == dtype and result.flags.c_contiguous


def run_both(fn, args, want, dtype, scale=0.0):
    """fn eagerly and through the traced IR + reference interpreter, both against `want`."""
    want_shape = np.shape(want)
    eager = fn(*args)
    check_result_type(eager, dtype, want_shape)
    if want_shape == ():
        assert np.asarray(eager).dtype == dtype  # eager scalars keep the dtype (numpy scalars)
    assert_close(eager, want, dtype, scale)
    compiled = compile_ref(fn, *args)
    ref = compiled.run_reference(*args)
    check_result_type(ref, dtype, want_shape)
    if want_shape == ():
        assert type(ref) is float  # compiled scalar outputs are Python floats
    assert_close(ref, want, dtype, scale)
    return compiled


def compile_ref(fn, *args):
    """rm.compile at tensor level: run_reference needs no native code, so skip its compile time."""
    return rm.compile(fn, *args, pipeline=TENSOR_PIPELINE)


def f64(a):
    return np.asarray(a, dtype=np.float64)


def dtype_ids():
    return pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])


# ---------------------------------------------------------------------------
# Reductions


@st.composite
def axis_for(draw, shape):
    """None, 0, -1 (the cases the issue names) or any other valid axis, positive or negative."""
    rank = len(shape)
    if rank == 0:
        return None
    return draw(st.sampled_from([None, 0, -1]) | st.integers(-rank, rank - 1))


def _reduce(over_last_axis, x, axis, keepdims):
    """Apply a reduction of the last axis to `axis` of x (all of x when axis is None)."""
    if axis is None:
        r = over_last_axis(x.reshape(-1))
        return np.reshape(r, (1,) * x.ndim) if keepdims else r
    axis %= x.ndim
    r = over_last_axis(np.moveaxis(x, axis, -1))
    return np.expand_dims(r, axis) if keepdims else r


def _sum_last(v):
    return np.einsum("...i->...", v)


def _mean_last(v):
    return np.einsum("...i->...", v) / v.shape[-1]


def _max_last(v):
    return np.sort(v, axis=-1)[..., -1]


REDUCTIONS = {
    # name: (rm function, method name, reduction of the last axis, scale of the rounding error)
    "sum": (rm.sum, "sum", _sum_last, lambda v: _sum_last(np.abs(v))),
    "mean": (rm.mean, "mean", _mean_last, lambda v: _mean_last(np.abs(v))),
    "max": (rm.max, "max", _max_last, lambda v: np.zeros(v.shape[:-1])),
}


@dtype_ids()
@pytest.mark.parametrize("name", list(REDUCTIONS))
@given(data=st.data())
def test_reduction(name, dtype, data):
    fn, method, expected, scale = REDUCTIONS[name]
    shape = data.draw(any_shape(), label="shape")
    axis = data.draw(axis_for(shape), label="axis")
    keepdims = data.draw(st.booleans(), label="keepdims")
    x = data.draw(arrays(dtype, shape), label="x")
    x64 = f64(x)
    want = _reduce(expected, x64, axis, keepdims)
    s = _reduce(scale, x64, axis, keepdims)
    run_both(lambda a: fn(a, axis=axis, keepdims=keepdims), [x], want, dtype, s)
    # The method form on a traced value (x.sum(axis=...)).
    compiled = compile_ref(lambda a: getattr(a, method)(axis=axis, keepdims=keepdims), x)
    assert f"raster.{name}" in compiled.ir("traced")
    assert_close(compiled.run_reference(x), want, dtype, s)


def test_reduction_axis_is_stored_normalised():
    """A negative axis is resolved at trace time (the verifier only accepts [0, rank))."""
    compiled = compile_ref(lambda a: rm.sum(a, axis=-1, keepdims=True), np.ones((3, 4)))
    assert "raster.sum %a axis = 1 : i64 keepdims : tensor<3x4xf64> -> tensor<3x1xf64>" in compiled.ir("traced")


# ---------------------------------------------------------------------------
# matmul: all 1-D / 2-D combinations


@st.composite
def matmul_operands(draw, dtype):
    m, k, n = draw(SIZES), draw(SIZES), draw(SIZES)
    lhs_2d, rhs_2d = draw(st.booleans()), draw(st.booleans())
    a = draw(arrays(dtype, (m, k) if lhs_2d else (k,), -3, 3))
    b = draw(arrays(dtype, (k, n) if rhs_2d else (k,), -3, 3))
    return a, b


def _einsum_matmul(a, b):
    spec = {(2, 2): "mk,kn->mn", (2, 1): "mk,k->m", (1, 2): "k,kn->n", (1, 1): "k,k->"}[(a.ndim, b.ndim)]
    return np.einsum(spec, a, b)


@dtype_ids()
@given(data=st.data())
def test_matmul(dtype, data):
    a, b = data.draw(matmul_operands(dtype), label="a, b")
    want = _einsum_matmul(f64(a), f64(b))
    scale = _einsum_matmul(np.abs(f64(a)), np.abs(f64(b)))
    run_both(rm.matmul, [a, b], want, dtype, scale)
    compiled = compile_ref(lambda x, y: x @ y, a, b)
    assert "raster.matmul" in compiled.ir("traced")
    assert_close(compiled.run_reference(a, b), want, dtype, scale)


@dtype_ids()
def test_matmul_with_constant_on_the_left(dtype):
    """`ndarray @ traced` uses __rmatmul__."""
    A = np.arange(6, dtype=dtype).reshape(2, 3)
    x = np.array([1.0, -1.0, 2.0], dtype=dtype)
    compiled = compile_ref(lambda v: A @ v, x)
    assert_close(compiled.run_reference(x), np.einsum("mk,k->m", f64(A), f64(x)), dtype)


# ---------------------------------------------------------------------------
# Layout


@dtype_ids()
@given(data=st.data())
def test_transpose(dtype, data):
    shape = data.draw(any_shape(), label="shape")
    x = data.draw(arrays(dtype, shape), label="x")
    rank = len(shape)
    perm = data.draw(st.none() | st.permutations(range(rank)).map(tuple), label="perm")
    if perm is not None and rank and data.draw(st.booleans(), label="negative axes"):
        perm = tuple(p - rank for p in perm)
    want = f64(x).transpose(*(() if perm is None else [p % rank for p in perm]))
    run_both(lambda a: rm.transpose(a, perm), [x], want, dtype)
    if rank == 2:
        compiled = compile_ref(lambda a: a.T, x)
        assert "raster.transpose" in compiled.ir("traced")
        assert_close(compiled.run_reference(x), f64(x).T, dtype)


def _reshape_targets(shape):
    n = int(np.prod(shape))
    targets = [(n,), (-1,), (1, n), (n, 1), tuple(reversed(shape)), shape + (1,), (1,) + shape]
    if len(shape) >= 1:
        targets.append((shape[0], -1))
    if len(shape) >= 2:
        targets.append((-1, shape[-1]))
    return targets


@dtype_ids()
@given(data=st.data())
def test_reshape(dtype, data):
    shape = data.draw(any_shape(), label="shape")
    x = data.draw(arrays(dtype, shape), label="x")
    new = data.draw(st.sampled_from(_reshape_targets(shape)), label="new shape")
    want = f64(x).ravel().reshape(new)
    run_both(lambda a: rm.reshape(a, new), [x], want, dtype)
    compiled = compile_ref(lambda a: a.reshape(new), x)
    assert_close(compiled.run_reference(x), want, dtype)


def test_reshape_accepts_an_int():
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(rm.reshape(x, 6), np.arange(6.0))
    np.testing.assert_array_equal(compile_ref(lambda a: rm.reshape(a, 6), x).run_reference(x), np.arange(6.0))


@st.composite
def broadcast_source_and_target(draw):
    target = draw(shapes(0, 2) | shapes(3, 3, SMALL))
    keep = draw(st.integers(0, len(target)))
    source = tuple(d if draw(st.booleans()) else 1 for d in target[len(target) - keep :])
    return source, target


@dtype_ids()
@given(data=st.data())
def test_broadcast_to(dtype, data):
    source, target = data.draw(broadcast_source_and_target(), label="source, target")
    x = data.draw(arrays(dtype, source), label="x")
    # Independent: adding zeros of the target shape broadcasts the same way.
    want = f64(x) + np.zeros(target)
    run_both(lambda a: rm.broadcast_to(a, target), [x], want, dtype)


# ---------------------------------------------------------------------------
# nn


@st.composite
def dense_operands(draw, dtype, batched=None):
    out_, in_ = draw(SIZES), draw(SIZES)
    batched = draw(st.booleans()) if batched is None else batched
    W = draw(arrays(dtype, (out_, in_), -3, 3))
    x = draw(arrays(dtype, (draw(SIZES), in_) if batched else (in_,), -3, 3))
    b = draw(arrays(dtype, (out_,), -3, 3))
    return W, x, b


@dtype_ids()
@pytest.mark.parametrize("batched", [False, True], ids=["1d", "batched"])
@given(data=st.data())
def test_dense(dtype, batched, data):
    W, x, b = data.draw(dense_operands(dtype, batched), label="W, x, b")
    W64, x64, b64 = f64(W), f64(x), f64(b)
    want = np.einsum("oi,...i->...o", W64, x64) + b64
    scale = np.einsum("oi,...i->...o", np.abs(W64), np.abs(x64)) + np.abs(b64)
    compiled = run_both(nn.dense, [W, x, b], want, dtype, scale)
    assert "raster.dense" in compiled.ir("traced")
    # Without a bias: b defaults to zeros of W's dtype.
    want0 = np.einsum("oi,...i->...o", W64, x64)
    run_both(lambda w, v: nn.dense(w, v), [W, x], want0, dtype, scale)


def _probabilities(draw, dtype, shape):
    raw = draw(arrays(dtype, shape, 2.0**-7, 1.0))
    return (raw / raw.sum(axis=-1, keepdims=True)).astype(dtype)


@dtype_ids()
@given(data=st.data())
def test_softmax(dtype, data):
    x = data.draw(arrays(dtype, data.draw(any_shape(min_rank=1), label="shape")), label="x")
    e = np.exp(f64(x))  # |x| <= 10: no shift needed for the expected value
    run_both(nn.softmax, [x], e / e.sum(axis=-1, keepdims=True), dtype)


@dtype_ids()
@given(data=st.data())
def test_log_softmax(dtype, data):
    x = data.draw(arrays(dtype, data.draw(any_shape(min_rank=1), label="shape")), label="x")
    x64 = f64(x)
    want = x64 - np.log(np.exp(x64).sum(axis=-1, keepdims=True))
    run_both(nn.log_softmax, [x], want, dtype, scale=np.abs(x64).max() + 1.0)


@dtype_ids()
@pytest.mark.parametrize("rank", [1, 2])
@given(data=st.data())
def test_cross_entropy(dtype, rank, data):
    shape = data.draw(shapes(rank, rank), label="shape")
    p = _probabilities(data.draw, dtype, shape)
    y = data.draw(arrays(dtype, shape, 0.0, 1.0), label="y")
    p64, y64 = f64(p), f64(y)
    rows = -(y64 * np.log(p64)).sum(axis=-1)
    want = rows if rank == 1 else rows.mean()  # 2-D: mean over the batch
    # log is computed to an absolute (not relative) accuracy near p = 1: hence the + 1.
    scale = (y64 * (np.abs(np.log(p64)) + 1.0)).sum() / (1 if rank == 1 else shape[0])
    run_both(nn.cross_entropy, [p, y], want, dtype, scale)


@dtype_ids()
@pytest.mark.parametrize("rank", [1, 2])
@given(data=st.data())
def test_softmax_cross_entropy(dtype, rank, data):
    shape = data.draw(shapes(rank, rank), label="shape")
    z = data.draw(arrays(dtype, shape), label="logits")
    y = data.draw(arrays(dtype, shape, 0.0, 1.0), label="y")
    z64, y64 = f64(z), f64(y)
    lse = np.log(np.exp(z64).sum(axis=-1, keepdims=True))
    rows = -(y64 * (z64 - lse)).sum(axis=-1)
    want_loss = rows if rank == 1 else rows.mean()
    want_p = np.exp(z64) / np.exp(z64).sum(axis=-1, keepdims=True)
    # log-sum-exp has an absolute error of order eps * (|z| + |lse| + 1).
    scale = (y64 * (np.abs(z64) + np.abs(lse) + 1.0)).sum() / (1 if rank == 1 else shape[0])

    loss, p = nn.softmax_cross_entropy(z, y)
    assert np.asarray(loss).dtype == dtype and p.dtype == dtype
    assert_close(loss, want_loss, dtype, scale)
    assert_close(p, want_p, dtype)

    compiled = compile_ref(nn.softmax_cross_entropy, z, y)
    assert "raster.softmax_cross_entropy" in compiled.ir("traced")
    out = compiled.run_reference(z, y)
    assert isinstance(out, tuple) and len(out) == 2
    assert type(out[0]) is float and out[1].dtype == dtype
    assert_close(out[0], want_loss, dtype, scale)
    assert_close(out[1], want_p, dtype)


@dtype_ids()
@given(data=st.data())
def test_mse(dtype, data):
    # Rank >= 1: the 0-d f32 case loses its dtype eagerly (see test_eager_mse_of_0d_float32_keeps_float32).
    shape = data.draw(any_shape(min_rank=1), label="shape")
    a = data.draw(arrays(dtype, shape), label="pred")
    b = data.draw(arrays(dtype, shape), label="target")
    d = f64(a) - f64(b)
    want = np.dot(d.ravel(), d.ravel()) / d.size
    compiled = run_both(nn.mse, [a, b], want, dtype, scale=0.0)
    assert "raster.mean" in compiled.ir("traced")


# ---------------------------------------------------------------------------
# Every op class is reachable from the public API


def test_every_raster_op_is_reachable_from_the_public_api():
    from raster_mlir.dialects import raster as R

    x = np.linspace(0.1, 1.0, 12).reshape(3, 4)
    y = np.full((3, 4), 0.25)

    def everything(a, t):  # a, t: (3, 4)
        v = rm.exp(a) + rm.log(a) - rm.tanh(a) * rm.sqrt(a) / nn.sigmoid(a)
        v = rm.maximum(v, -a) ** 2.0 + rm.greater(a, 0.5) + rm.equal(a, t) + nn.relu(v)
        v = v + np.ones(4)  # a captured array becomes raster.constant
        s = rm.sum(v, axis=0) + rm.mean(v)  # (4,)
        m = rm.matmul(rm.transpose(a), rm.broadcast_to(rm.max(a, axis=1, keepdims=True), (3, 4)))  # (4, 4)
        h = nn.dense(m, rm.reshape(rm.reshape(a, (12,)), (3, 4)), s)  # (3, 4)
        loss, p = nn.softmax_cross_entropy(h, t)
        return loss + nn.cross_entropy(nn.softmax(h), t) + rm.sum(nn.log_softmax(h)) + rm.sum(p)

    compiled = compile_ref(everything, x, y)
    traced = compiled.ir("traced")
    # The ops of raster_maths.py / raster_array.py: see test_array_api.py; of raster_rounding.py: test_newuser_rounding.py.
    newer = {*R.MATHS_OPS, *R.ARRAY_OPS, *R.ROUNDING_OPS}
    missing = [op.name for op in R.RASTER_OPS if op not in newer and f"{op.name} " not in traced]
    assert not missing, f"ops not produced by the public API: {missing}"
    result = compiled.run_reference(x, y)
    assert type(result) is float and np.isfinite(result)
    np.testing.assert_allclose(result, everything(x, y), rtol=1e-12)


# ---------------------------------------------------------------------------
# Bigger shapes (seeded random values; hypothesis picks shapes and seeds)


@pytest.mark.slow
@dtype_ids()
@given(data=st.data())
def test_mlp_layer_on_large_shapes(dtype, data):
    out_, in_, batch = (data.draw(st.sampled_from([7, 129, 200]), label=n) for n in ("out", "in", "batch"))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    W = rng.uniform(-1, 1, (out_, in_)).astype(dtype)
    x = rng.uniform(-1, 1, (batch, in_)).astype(dtype)
    b = rng.uniform(-1, 1, out_).astype(dtype)
    y = np.eye(out_, dtype=dtype)[rng.integers(0, out_, batch)]

    def f(W, x, b, y):
        z = nn.dense(W, x, b)
        return nn.cross_entropy(nn.softmax(z), y), rm.sum(nn.relu(z), axis=0), rm.max(z @ W, axis=-1)

    W64, x64, b64, y64 = f64(W), f64(x), f64(b), f64(y)
    z = np.einsum("oi,bi->bo", W64, x64) + b64
    e = np.exp(z)
    loss = np.mean(-np.log((e * y64).sum(axis=1) / e.sum(axis=1)))
    zw = np.einsum("bo,oi->bi", z, W64)
    want = (loss, np.where(z > 0, z, 0).sum(axis=0), np.sort(zw, axis=-1)[:, -1])
    # Worst-case rounding: z is a length-`in` dot product (|z| <= in + 1); the relu sum adds `batch`
    # of them; z @ W adds `out` of them.
    scales = (in_ + 1.0, (in_ + 1.0) * batch, (in_ + 1.0) * out_)
    for got in (f(W, x, b, y), compile_ref(f, W, x, b, y).run_reference(W, x, b, y)):
        for g, w, scale in zip(got, want, scales, strict=True):
            assert_close(g, w, dtype, scale)
