"""API basics: rm.compile / rm.jit results, IR inspection, output packaging, caching, dtype policy."""

from __future__ import annotations

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir import nn
from raster_mlir.compiler import TENSOR_PIPELINE


def mlp_loss(W1, b1, W2, b2, x, y):
    h = nn.relu(nn.dense(W1, x, b1))
    p = nn.softmax(nn.dense(W2, h, b2))
    return nn.cross_entropy(p, y)


def mlp_args(dtype=np.float64, batch=None, seed=0):
    rng = np.random.default_rng(seed)
    x_shape = (4,) if batch is None else (batch, 4)
    y = np.zeros((3,) if batch is None else (batch, 3))
    y[..., 1] = 1.0
    return tuple(
        a.astype(dtype)
        for a in (rng.normal(size=(5, 4)), rng.normal(size=5), rng.normal(size=(3, 5)), rng.normal(size=3),
                  rng.normal(size=x_shape), y)
    )  # fmt: skip


def numpy_mlp_loss(W1, b1, W2, b2, x, y):
    W1, b1, W2, b2, x, y = (np.asarray(a, dtype=np.float64) for a in (W1, b1, W2, b2, x, y))
    h = np.maximum(np.einsum("oi,...i->...o", W1, x) + b1, 0)
    z = np.einsum("oi,...i->...o", W2, h) + b2
    p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    rows = -(y * np.log(p)).sum(axis=-1)
    return float(rows.mean())


def test_ir_returns_module_text_with_func_func():
    c = rm.compile(mlp_loss, *mlp_args())
    text = c.ir()
    assert isinstance(text, str)
    assert text.startswith("builtin.module") and "func.func @mlp_loss(" in text
    traced = c.ir("traced")
    assert "func.func @mlp_loss(%W1: tensor<5x4xf64>, %b1: tensor<5xf64>" in traced
    assert "raster.dense" in traced and "raster.cross_entropy" in traced
    assert c.stages[0] == "traced" and "after:inline" in c.stages


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("batch", [None, 7], ids=["1d", "batched"])
def test_jit_equals_eager_equals_numpy(dtype, batch):
    args = mlp_args(dtype, batch)
    jitted = rm.jit(mlp_loss)(*args)
    eager = mlp_loss(*args)
    assert type(jitted) is float
    assert np.asarray(eager).dtype == dtype
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    assert jitted == pytest.approx(float(eager), rel=rtol)
    assert jitted == pytest.approx(numpy_mlp_loss(*args), rel=rtol)
    assert rm.compile(mlp_loss, *args).run_reference(*args) == pytest.approx(jitted, rel=rtol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_scalar_outputs_are_python_floats(dtype):
    x = np.arange(1.0, 5.0, dtype=dtype)
    c = rm.compile(lambda a: rm.sum(a * a), x)
    for result in (c(x), c.run_reference(x), rm.jit(lambda a: rm.mean(a))(x)):
        assert type(result) is float
    assert c(x) == 30.0


def test_array_outputs_are_numpy_arrays_of_the_input_dtype():
    for dtype in (np.float32, np.float64):
        x = np.ones((2, 3), dtype=dtype)
        out = rm.jit(lambda a: nn.softmax(a) * 2.0)(x)
        assert isinstance(out, np.ndarray) and out.dtype == dtype and out.shape == (2, 3)
        np.testing.assert_allclose(out, np.full((2, 3), 2.0 / 3.0), rtol=1e-6)


def test_tuple_outputs_keep_nesting():
    def f(x):
        return rm.sum(x), (x * 2.0, [rm.max(x), -x]), nn.softmax(x)

    x = np.array([1.0, 3.0, 2.0])
    c = rm.compile(f, x)
    for out in (c(x), c.run_reference(x), rm.jit(f)(x)):
        assert isinstance(out, tuple) and len(out) == 3
        s, (doubled, [m, neg]), p = out
        assert isinstance(out[1], tuple) and isinstance(out[1][1], list)
        assert type(s) is float and s == 6.0
        assert type(m) is float and m == 3.0
        np.testing.assert_array_equal(doubled, 2 * x)
        np.testing.assert_array_equal(neg, -x)
        np.testing.assert_allclose(p, np.exp(x) / np.exp(x).sum(), rtol=1e-15)


def test_single_element_tuple_stays_a_tuple():
    out = rm.jit(lambda a: (a + 1.0,))(np.zeros(2))
    assert isinstance(out, tuple) and len(out) == 1
    np.testing.assert_array_equal(out[0], [1.0, 1.0])


def test_returning_an_input_and_a_constant():
    def f(x):
        return x, 2.5

    x = np.array([1.0, 2.0])
    a, b = rm.jit(f)(x)
    np.testing.assert_array_equal(a, x)
    assert b == 2.5


def test_jit_compiles_once_per_signature():
    jf = rm.jit(lambda a: a * 2.0)
    x3, y3 = np.ones(3), np.zeros(3)
    assert jf.lower(x3) is jf.lower(y3)
    assert jf.lower(x3) is not jf.lower(np.ones(4))
    assert jf.lower(x3) is not jf.lower(x3.astype(np.float32))
    assert "tensor<4xf64>" in jf.lower(np.ones(4)).ir("traced")
    np.testing.assert_array_equal(jf(np.ones(4)), np.full(4, 2.0))


def test_jit_decorator_forms_and_metadata():
    @rm.jit
    def plain(x):
        """Doc."""
        return x + 1.0

    @rm.jit(pipeline=TENSOR_PIPELINE)
    def configured(x):
        return x - 1.0

    assert plain.__name__ == "plain" and plain.__doc__ == "Doc."
    assert isinstance(plain, rm.JitFunction) and rm.jit(plain) is plain
    x = np.array([1.0, 2.0])
    np.testing.assert_array_equal(plain(x), x + 1)
    np.testing.assert_array_equal(configured(x), x - 1)
    assert isinstance(rm.compile(plain, x), rm.CompiledFunction)


def test_python_scalars_as_jit_arguments():
    f = rm.jit(lambda x, lr: x - lr * x)
    out = f(np.array([2.0, 4.0], dtype=np.float32), 0.5)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [1.0, 2.0])
    assert f(3.0, 0.5) == 1.5  # all-scalar call: float64 0-d in, Python float out


def test_traced_methods_and_properties():
    def f(W, x):
        assert W.shape == (3, 4) and W.ndim == 2 and W.size == 12 and len(W) == 3
        assert W.dtype == np.float64 and x.shape == (4,)
        return W.T.reshape(12).sum() + (W @ x).max() + W.transpose(1, 0).mean(axis=0).sum()

    W = np.arange(12.0).reshape(3, 4)
    x = np.ones(4)
    want = W.sum() + (W @ x).max() + W.T.mean(axis=0).sum()
    assert rm.jit(f)(W, x) == pytest.approx(want, rel=1e-14)


def test_inputs_are_not_modified():
    args = mlp_args()
    copies = [a.copy() for a in args]
    rm.jit(mlp_loss)(*args)
    rm.compile(mlp_loss, *args).run_reference(*args)
    for a, c in zip(args, copies):
        np.testing.assert_array_equal(a, c)


# -- dtype policy: eager and traced agree ---------------------------------------------------


def test_eager_float32_scalars_stay_float32():
    a, b = np.array(1.0, np.float32), np.array(3.0, np.float32)
    assert "-> tensor<f32>" in rm.compile(nn.mse, a, b, pipeline=TENSOR_PIPELINE).ir("traced")  # compiled: f32
    assert np.asarray(nn.mse(a, b)).dtype == np.float32
    x = np.array([1.0, 2.0], dtype=np.float32)
    assert np.asarray(rm.exp(rm.sum(x))).dtype == np.float32
    assert np.asarray(rm.exp(np.float32(1.0))).dtype == np.float32


def test_traced_mixing_with_a_captured_float64_array_is_refused():
    x = np.ones(3, dtype=np.float32)
    c64 = np.ones(3)
    with pytest.raises(rm.DTypeError):
        rm.add(x, c64)  # eager: refused
    with pytest.raises(rm.DTypeError):
        rm.compile(lambda a: a + c64, x, pipeline=TENSOR_PIPELINE)


def test_dense_default_bias_follows_the_input_dtype():
    x = np.ones(2, dtype=np.float32)
    traced = rm.jit(lambda v: nn.dense([[1.0, 2.0]], v))(x)
    assert traced.dtype == np.float32
    np.testing.assert_array_equal(traced, [3.0])
    eager = nn.dense([[1.0, 2.0]], x)
    assert eager.dtype == np.float32
    np.testing.assert_array_equal(eager, [3.0])


def test_python_scalars_are_weakly_typed_in_both_modes():
    x = np.ones(3, dtype=np.float32)
    assert rm.multiply(x, 2.0).dtype == np.float32
    assert rm.jit(lambda a: a * 2.0)(x).dtype == np.float32
    assert "tensor<f32>" in rm.compile(lambda a: a * 2.0, x).ir("traced")


# -- @rm.jit (the default, native path) agrees with eager for every public op -------------------

_RNG = np.random.default_rng(1234)
_A = _RNG.uniform(0.5, 2.0, (3, 7))
_B = _RNG.uniform(-2.0, 2.0, (7,))
_C = _RNG.uniform(-2.0, 2.0, (3, 1))
_P = _A / _A.sum(axis=1, keepdims=True)
_Y = np.eye(7)[[0, 3, 6]]
_W = _RNG.uniform(-1.0, 1.0, (5, 7))
_V = _RNG.uniform(-1.0, 1.0, (5,))

PUBLIC_OPS = {
    # name: (function, arguments)
    "negative": (rm.negative, (_B,)),
    "unary minus": (lambda a: -a, (_A,)),
    "exp": (rm.exp, (_B,)),
    "log": (rm.log, (_A,)),
    "tanh": (rm.tanh, (_C,)),
    "sqrt": (rm.sqrt, (_A,)),
    "sigmoid": (nn.sigmoid, (_B,)),
    "relu": (nn.relu, (_A - 1.0,)),
    "add": (lambda a, b: a + b, (_A, _B)),
    "subtract": (lambda a, b: a - b, (_C, _B)),
    "multiply": (lambda a, b: a * b, (_A, _C)),
    "divide": (lambda a, b: a / b, (_B, _A)),
    "power": (lambda a, b: a**b, (_A, _B)),
    "scalars": (lambda a: 2.0 * a - 1.0 / (a + 3.0) + a**2, (_A,)),
    "maximum": (rm.maximum, (_A - 1.0, _B)),
    "minimum": (rm.minimum, (_C, _B)),
    "greater": (rm.greater, (_A, _C + 1.0)),
    "equal": (rm.equal, (_A, rm.max(_A, axis=1, keepdims=True))),
    "sum": (lambda a: rm.sum(a), (_A,)),
    "sum axis 0": (lambda a: rm.sum(a, axis=0), (_A,)),
    "mean axis -1 keepdims": (lambda a: rm.mean(a, axis=-1, keepdims=True), (_A,)),
    "max": (lambda a: rm.max(a), (_B,)),
    "max axis 0 keepdims": (lambda a: rm.max(a, axis=0, keepdims=True), (_A,)),
    "matmul 2d@2d": (rm.matmul, (_A, _A.T.copy())),
    "matmul 2d@1d": (rm.matmul, (_A, _B)),
    "matmul 1d@2d": (rm.matmul, (_B, _A.T.copy())),
    "matmul 1d@1d": (rm.matmul, (_B, _B)),
    "transpose": (rm.transpose, (_A,)),
    "reshape": (lambda a: rm.reshape(a, (7, -1)), (_A,)),
    "broadcast_to": (lambda a: rm.broadcast_to(a, (3, 7)), (_C,)),
    "dense 1d": (nn.dense, (_W, _B, _V)),
    "dense batched": (nn.dense, (_W, _A, _V)),
    "softmax": (nn.softmax, (_A,)),
    "log_softmax": (nn.log_softmax, (_A,)),
    "cross_entropy 1d": (nn.cross_entropy, (_P[0], _Y[0])),
    "cross_entropy 2d": (nn.cross_entropy, (_P, _Y)),
    "softmax_cross_entropy 1d": (nn.softmax_cross_entropy, (_B, _Y[1])),
    "softmax_cross_entropy 2d": (nn.softmax_cross_entropy, (_A, _Y)),
    "mse": (nn.mse, (_A, _A[::-1].copy())),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", list(PUBLIC_OPS))
def test_jit_equals_eager_for_every_public_op(name, dtype):
    fn, args = PUBLIC_OPS[name]
    args = tuple(np.asarray(a, dtype=dtype) for a in args)
    eager = fn(*args)
    jitted = rm.jit(fn)(*args)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    eager_leaves = eager if isinstance(eager, tuple) else (eager,)
    jit_leaves = jitted if isinstance(jitted, tuple) else (jitted,)
    assert len(eager_leaves) == len(jit_leaves)
    for e, j in zip(eager_leaves, jit_leaves):
        if np.ndim(e) == 0:
            assert type(j) is float
        else:
            assert isinstance(j, np.ndarray) and j.dtype == dtype and j.shape == e.shape
        np.testing.assert_allclose(j, e, rtol=rtol, atol=rtol)


def test_the_hot_path_keeps_the_output_nesting():
    """Second and later calls take the native hot path; results keep their structure there too."""
    one = rm.jit(lambda a: (a + 1.0,))
    pair = rm.jit(lambda a: (rm.sum(a), a * 2.0))
    bare = rm.jit(lambda a: rm.sum(a))
    x = np.arange(3.0)
    for _ in range(3):
        out = one(x)
        assert isinstance(out, tuple) and len(out) == 1
        s, d = pair(x)
        assert type(s) is float and s == 3.0
        np.testing.assert_array_equal(d, 2 * x)
        assert type(bare(x)) is float
    c = rm.compile(lambda a: (a + 1.0,), x)
    assert isinstance(c(x), tuple) and isinstance(c(x), tuple)
