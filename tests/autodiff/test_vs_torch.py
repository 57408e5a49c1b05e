"""Forward mode and higher-order derivatives against PyTorch's torch.func, in float64 (rel 1e-10).

The same function is written with raster_mlir ops and with torch ops; every
transform (jvp, vjp, jacfwd, jacrev, hessian, and hvp as torch's
jvp(grad)) is compiled to native code and compared with torch.func on:
the seed's MLP (4 -> 8 -> 3 and 784 -> 128 -> 10), every elementwise,
reduction and NN op, Rosenbrock's function (2 and 100 dimensions) and the
right-hand sides of two small ODEs (Lotka-Volterra, a reaction-diffusion
equation).

To keep compile time down, each op's transforms are traced into one
function (`all_transforms`) run by the reference interpreter after the
tensor-level pipeline (the AD passes' output, without LLVM); the MLPs and
the scientific functions run native code. jacfwd / jacrev / hessian unroll
one derivative per element, so their arguments stay small here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import zlib

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir import nn
from raster_mlir.compiler import TENSOR_PIPELINE

torch = pytest.importorskip("torch")
tf = torch.func

RTOL = 1e-10


def to_torch(a):
    return torch.tensor(np.asarray(a, dtype=np.float64))


def assert_close(ours, theirs, rtol=RTOL):
    """Relative to the largest entry of the reference (entries near 0 compared at that scale)."""
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    ours = np.asarray(ours, dtype=np.float64)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    scale = max(np.max(np.abs(theirs), initial=0.0), 1e-300)
    err = np.max(np.abs(ours - theirs), initial=0.0) / scale
    assert err <= rtol, f"relative error {err:.3g} > {rtol:.0e}"


def assert_tree_close(ours, theirs, rtol=RTOL):
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, (tuple, list)) and len(ours) == len(theirs)
        for o, t in zip(ours, theirs):
            assert_tree_close(o, t, rtol)
    else:
        assert_close(ours, theirs, rtol)


# ---------------------------------------------------------------------------
# Every op: jvp, vjp, jacfwd, jacrev, and the Hessian / hvp of <op(x), c>


@dataclass(frozen=True)
class OpCase:
    name: str
    ours: Callable
    theirs: Callable
    args: Callable  # rng -> list of arrays


def normal(*shape):
    return lambda rng: rng.standard_normal(shape)


def positive(*shape):
    return lambda rng: rng.uniform(0.5, 2.0, shape)


def distinct(*shape):
    size = int(np.prod(shape))
    return lambda rng: (rng.permutation(size) * 0.3 + rng.uniform(0, 0.05, size)).reshape(shape) - 0.15 * size


def unary(name, ours, theirs, values=normal(2, 3)):
    return OpCase(name, ours, theirs, lambda rng: [values(rng)])


def binary(name, ours, theirs, lhs=normal(2, 3), rhs=normal(3)):
    return OpCase(name, ours, theirs, lambda rng: [lhs(rng), rhs(rng)])


OP_CASES = [
    unary("neg", lambda x: -x, lambda x: -x),
    unary("exp", rm.exp, torch.exp),
    unary("log", rm.log, torch.log, positive(2, 3)),
    unary("tanh", rm.tanh, torch.tanh),
    unary("sigmoid", rm.sigmoid, torch.sigmoid),
    unary("sqrt", rm.sqrt, torch.sqrt, positive(2, 3)),
    unary("relu", nn.relu, torch.relu, distinct(2, 3)),
    unary("softmax", nn.softmax, lambda x: torch.softmax(x, -1)),
    unary("log_softmax", nn.log_softmax, lambda x: torch.log_softmax(x, -1)),
    unary("sum", rm.sum, torch.sum),
    unary("sum_axis0", lambda x: rm.sum(x, axis=0), lambda x: torch.sum(x, 0)),
    unary("mean_axis1_keepdims", lambda x: rm.mean(x, axis=1, keepdims=True), lambda x: torch.mean(x, 1, keepdim=True)),
    unary("max", rm.max, torch.amax, distinct(2, 3)),
    unary("max_axis1", lambda x: rm.max(x, axis=1), lambda x: torch.amax(x, 1), distinct(2, 3)),
    unary("transpose", lambda x: rm.transpose(x) * x.T, lambda x: x.T * x.T),
    unary("reshape", lambda x: rm.reshape(x, (3, 2)) ** 2.0, lambda x: x.reshape(3, 2) ** 2),
    binary("add", lambda a, b: a + b, lambda a, b: a + b),
    binary("sub", lambda a, b: a - b, lambda a, b: a - b),
    binary("mul", lambda a, b: a * b, lambda a, b: a * b),
    binary("div", lambda a, b: a / b, lambda a, b: a / b, rhs=positive(3)),
    binary("pow", rm.power, torch.pow, lhs=positive(2, 3), rhs=normal(3)),
    binary("maximum", rm.maximum, torch.maximum, lhs=distinct(2, 3), rhs=lambda rng: rng.uniform(-0.1, 0.1, 3)),
    binary("broadcast_to", lambda a, b: rm.broadcast_to(b, (2, 3)) * a, lambda a, b: b.expand(2, 3) * a),
    binary("matmul", lambda a, b: rm.matmul(a, b), lambda a, b: a @ b, rhs=normal(3, 2)),
    unary(
        "maths",
        lambda x: rm.stack([rm.sin(x), rm.cos(x), rm.tan(0.4 * x), rm.exp2(0.4 * x), rm.log1p(rm.abs(x)), rm.expm1(0.4 * x),
                            rm.abs(x), rm.erf(x), rm.softplus(3.0 * x), rm.square(x), rm.reciprocal(2.0 + x), rm.sign(x) * x]),
        lambda x: torch.stack([torch.sin(x), torch.cos(x), torch.tan(0.4 * x), torch.exp2(0.4 * x), torch.log1p(torch.abs(x)),
                               torch.expm1(0.4 * x), torch.abs(x), torch.erf(x), torch.nn.functional.softplus(3.0 * x),
                               torch.square(x), torch.reciprocal(2.0 + x), torch.sign(x) * x]),
        distinct(2, 3),
    ),
    unary(
        "reductions",
        lambda x: rm.concatenate([rm.min(x, axis=1), rm.prod(x, axis=0), rm.logsumexp(x, axis=1), rm.cumsum(x, axis=1).ravel(),
                                  rm.reshape(rm.norm(x), (1,)), rm.reshape(rm.logsumexp(x), (1,))]),
        lambda x: torch.cat([torch.amin(x, 1), torch.prod(x, 0), torch.logsumexp(x, 1), torch.cumsum(x, 1).ravel(),
                             torch.linalg.norm(x).reshape(1), torch.logsumexp(x, (0, 1)).reshape(1)]),
        distinct(2, 3),
    ),
    unary(
        "layout",
        lambda x: rm.concatenate([x[:, 1:].ravel(), x[::-1, 0], rm.flip(x, 1).ravel(), rm.roll(x, 1, 1).ravel(),
                                  rm.pad(x, ((1, 0), (0, 2))).ravel(), rm.diff(x, axis=1).ravel(), x.T.ravel()]) ** 2.0,
        lambda x: torch.cat([x[:, 1:].ravel(), x.flip(0)[:, 0], x.flip(1).ravel(), torch.roll(x, 1, 1).ravel(),
                             torch.nn.functional.pad(x, (0, 2, 1, 0)).ravel(), torch.diff(x, dim=1).ravel(), x.T.ravel()]) ** 2,
    ),
    binary(
        "binary_maths",
        lambda a, b: rm.stack([rm.minimum(a, b), rm.arctan2(a, b + 3.0), rm.clip(a, -0.5, 0.5) * b, rm.where(a > b, a * b, a - b)]),
        lambda a, b: torch.stack([torch.minimum(a, b), torch.arctan2(a, b + 3.0), torch.clip(a, -0.5, 0.5) * b,
                                  torch.where(a > b, a * b, a - b)]),
        lhs=distinct(2, 3), rhs=lambda rng: rng.uniform(-0.1, 0.1, 3),
    ),
    unary(
        "tuple_axes",
        lambda x: rm.concatenate([rm.sum(x, axis=(0, 2)), rm.mean(x, axis=(2, 0)), rm.max(x, axis=(0, 2)), rm.min(x, axis=(1, 2)),
                                  rm.prod(x, axis=(0, 2)), rm.logsumexp(x, axis=(0, 2)), rm.var(x, axis=(0, 2)),
                                  rm.std(x, axis=(1, 2)), rm.outer(x[0, 0], x[1, 1]).ravel()]),
        lambda x: torch.cat([torch.sum(x, (0, 2)), torch.mean(x, (2, 0)), torch.amax(x, (0, 2)), torch.amin(x, (1, 2)),
                             torch.prod(torch.prod(x, 2), 0), torch.logsumexp(x, (0, 2)), torch.var(x, (0, 2), correction=0),
                             torch.std(x, (1, 2), correction=0), torch.outer(x[0, 0], x[1, 1]).ravel()]),
        distinct(2, 3, 2),
    ),
    OpCase("dense", nn.dense, lambda w, x, b: x @ w.T + b, lambda rng: [rng.standard_normal((3, 4)), rng.standard_normal((2, 4)), rng.standard_normal(3)]),
    OpCase("cross_entropy", nn.cross_entropy, lambda p, y: -torch.sum(y * torch.log(p)) / p.shape[0], lambda rng: [rng.uniform(0.1, 1, (2, 3)), rng.uniform(0, 1, (2, 3))]),
    OpCase(
        "softmax_cross_entropy",
        lambda z, y: nn.softmax_cross_entropy(z, y)[0] + rm.sum(nn.softmax_cross_entropy(z, y)[1] ** 2.0),
        lambda z, y: -torch.sum(y * torch.log_softmax(z, -1)) / z.shape[0] + torch.sum(torch.softmax(z, -1) ** 2),
        lambda rng: [rng.standard_normal((2, 3)), rng.uniform(0, 1, (2, 3))],
    ),
]  # fmt: skip


def transforms_of(ours, k, out_shape):
    """One traced function computing jvp, vjp, jacfwd, jacrev, hessian and hvp of `ours`."""
    argnums = tuple(range(k))

    def scalar(*xs):  # <f(x), c>: a scalar whose Hessian involves f's second derivative
        return rm.sum(ours(*xs[:k]) * xs[k])

    def all_transforms(*leaves):
        xs, vs, w, c = leaves[:k], leaves[k : 2 * k], leaves[2 * k], leaves[2 * k + 1]
        _, tangent = rm.jvp(ours, xs, vs)
        _, vjp_fn = rm.vjp(ours, *xs)
        jf = rm.jacfwd(ours, argnums)(*xs)
        jr = rm.jacrev(ours, argnums)(*xs)
        hessian = rm.hessian(scalar, argnums)(*xs, c)
        hv = rm.hvp(scalar, (*xs, c), vs, argnums=argnums)
        return tangent, vjp_fn(w), jf, jr, hessian, hv

    return all_transforms


def torch_transforms(theirs, xs, vs, w, c):
    k = len(xs)
    argnums = tuple(range(k))

    def scalar(*args):
        return torch.sum(theirs(*args[:k]) * args[k])

    _, tangent = tf.jvp(theirs, tuple(xs), tuple(vs))
    _, vjp_fn = tf.vjp(theirs, *xs)
    jf = tf.jacfwd(theirs, argnums)(*xs)
    jr = tf.jacrev(theirs, argnums)(*xs)
    hessian = tf.hessian(scalar, argnums)(*xs, c)
    _, hv = tf.jvp(lambda *p: tf.grad(scalar, argnums)(*p, c), tuple(xs), tuple(vs))
    return tangent, vjp_fn(w), jf, jr, hessian, hv


@pytest.mark.parametrize("case", OP_CASES, ids=lambda c: c.name)
def test_op_against_torch_func(case):
    rng = np.random.default_rng(zlib.crc32(case.name.encode()))
    xs = case.args(rng)
    k = len(xs)
    out_shape = np.shape(case.ours(*xs))
    vs = [rng.standard_normal(x.shape) for x in xs]
    w, c = rng.standard_normal(out_shape), rng.standard_normal(out_shape)
    ours = rm.compile(transforms_of(case.ours, k, out_shape), *xs, *vs, w, c, pipeline=TENSOR_PIPELINE).run_reference(*xs, *vs, w, c)
    theirs = torch_transforms(case.theirs, *[[to_torch(a) for a in group] for group in (xs, vs)], to_torch(w), to_torch(c))
    assert_tree_close(ours, theirs)


# ---------------------------------------------------------------------------
# The seed's MLP


def mlp_probs(W1, b1, W2, b2, x):
    return nn.softmax(nn.dense(W2, nn.relu(nn.dense(W1, x, b1)), b2))


def mlp_loss(W1, b1, W2, b2, x, y):
    return nn.cross_entropy(mlp_probs(W1, b1, W2, b2, x), y)


def torch_probs(W1, b1, W2, b2, x):
    return torch.softmax(torch.relu(x @ W1.T + b1) @ W2.T + b2, -1)


def torch_loss(W1, b1, W2, b2, x, y):
    p = torch_probs(W1, b1, W2, b2, x)
    return -torch.sum(y * torch.log(p)) / (x.shape[0] if x.dim() == 2 else 1)


def mlp_data(sizes, batch=None, seed=0):
    rng = np.random.default_rng(seed)
    n_in, hidden, n_out = sizes
    params = [rng.normal(0, 1 / np.sqrt(n_in), (hidden, n_in)), rng.normal(0, 0.1, hidden),
              rng.normal(0, 1 / np.sqrt(hidden), (n_out, hidden)), rng.normal(0, 0.1, n_out)]  # fmt: skip
    shape = (n_in,) if batch is None else (batch, n_in)
    x = rng.uniform(0, 1, shape) * (rng.random(shape) < 0.3)  # sparse, like MNIST
    labels = rng.integers(0, n_out, () if batch is None else batch)
    y = np.eye(n_out)[labels]
    directions = [rng.standard_normal(p.shape) for p in params]
    return params, x, y, directions


@pytest.mark.parametrize("batch", [None, 2])
def test_small_mlp_every_transform(batch):
    params, x, y, dirs = mlp_data((4, 8, 3), batch)
    P = [to_torch(p) for p in params]
    X, Y, D = to_torch(x), to_torch(y), [to_torch(d) for d in dirs]
    rng = np.random.default_rng(1)
    ct = rng.standard_normal(np.shape(mlp_probs(*params, x)))

    def ours(W1, b1, W2, b2, x, y, dW1, db1, dW2, db2, ct):
        p = (W1, b1, W2, b2)
        d = (dW1, db1, dW2, db2)
        _, t = rm.jvp(mlp_loss, (*p, x, y), (*d, x * 0.0, y * 0.0))
        _, vjp_fn = rm.vjp(mlp_probs, *p, x)
        hv = rm.hvp(mlp_loss, (*p, x, y), d, argnums=(0, 1, 2, 3))
        jf = rm.jacfwd(mlp_probs, (1, 4))(*p, x)
        jr = rm.jacrev(mlp_probs, (0, 4))(*p, x)
        h = rm.hessian(mlp_loss, (3, 4))(*p, x, y)
        return t, vjp_fn(ct), hv, jf, jr, h

    got = rm.jit(ours)(*params, x, y, *dirs, ct)
    _, t = tf.jvp(torch_loss, (*P, X, Y), (*D, X * 0, Y * 0))
    _, vjp_fn = tf.vjp(torch_probs, *P, X)
    _, hv = tf.jvp(lambda *q: tf.grad(torch_loss, (0, 1, 2, 3))(*q, X, Y), tuple(P), tuple(D))
    jf = tf.jacfwd(torch_probs, (1, 4))(*P, X)
    jr = tf.jacrev(torch_probs, (0, 4))(*P, X)
    h = tf.hessian(torch_loss, (3, 4))(*P, X, Y)
    assert_tree_close(got, (t, vjp_fn(to_torch(ct)), hv, jf, jr, h))


def test_mnist_sized_mlp():
    params, x, y, dirs = mlp_data((784, 128, 10))
    P = [to_torch(p) for p in params]
    X, Y, D = to_torch(x), to_torch(y), [to_torch(d) for d in dirs]
    ct = np.random.default_rng(2).standard_normal(10)

    def ours(W1, b1, W2, b2, x, y, dW1, db1, dW2, db2, ct):
        p, d = (W1, b1, W2, b2), (dW1, db1, dW2, db2)
        _, t = rm.jvp(mlp_loss, (*p, x, y), (*d, x * 0.0, y * 0.0))
        _, vjp_fn = rm.vjp(mlp_probs, *p, x)
        hv = rm.hvp(mlp_loss, (*p, x, y), d, argnums=(0, 1, 2, 3))
        jr = rm.jacrev(mlp_probs, 4)(*p, x)  # 10 x 784: ten gradients
        jf = rm.jacfwd(mlp_probs, 3)(*p, x)  # 10 x 10: ten jvps
        h = rm.hessian(mlp_loss, 3)(*p, x, y)
        return t, vjp_fn(ct), hv, jr, jf, h

    got = rm.jit(ours)(*params, x, y, *dirs, ct)
    _, t = tf.jvp(torch_loss, (*P, X, Y), (*D, X * 0, Y * 0))
    _, vjp_fn = tf.vjp(torch_probs, *P, X)
    _, hv = tf.jvp(lambda *q: tf.grad(torch_loss, (0, 1, 2, 3))(*q, X, Y), tuple(P), tuple(D))
    jr = tf.jacrev(torch_probs, 4)(*P, X)
    jf = tf.jacfwd(torch_probs, 3)(*P, X)
    h = tf.hessian(torch_loss, 3)(*P, X, Y)
    assert_tree_close(got, (t, vjp_fn(to_torch(ct)), hv, jr, jf, h))


# ---------------------------------------------------------------------------
# Scientific functions


def rosenbrock(x):
    return rm.sum(100.0 * (x[1:] - x[:-1] ** 2.0) ** 2.0 + (1.0 - x[:-1]) ** 2.0)


def torch_rosenbrock(x):
    return torch.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


# n = 100: the Hessian unrolls 100 jvps of the gradient into one function (~10 s of compilation, most of it LLVM's)
@pytest.mark.parametrize("n", [2, pytest.param(100, marks=pytest.mark.slow)])
def test_rosenbrock(n):
    rng = np.random.default_rng(n)
    x, v = rng.uniform(-1.5, 1.5, n), rng.standard_normal(n)
    f = rosenbrock
    X, Vt = to_torch(x), to_torch(v)

    def ours(x, v):
        g = rm.grad(f, argnums=0)(x)
        _, t = rm.jvp(f, (x,), (v,))
        (hv,) = rm.hvp(f, (x,), (v,))
        _, gg = rm.jvp(rm.grad(f, argnums=0), (x,), (v,))
        return g, t, hv, gg

    got = rm.jit(ours)(x, v)
    g = tf.grad(torch_rosenbrock)(X)
    _, t = tf.jvp(torch_rosenbrock, (X,), (Vt,))
    _, hv = tf.jvp(tf.grad(torch_rosenbrock), (X,), (Vt,))
    assert_tree_close(got, (g, t, hv, hv))
    H = tf.hessian(torch_rosenbrock)(X)
    assert_close(rm.hessian(f)(x), H)
    assert_close(rm.jacfwd(rm.jacrev(f))(x), H)


def lotka_volterra(u, v, a, b, c, d):
    """Predators v and prey u of several species: du = a u - b u v, dv = -c v + d u v (a..d scalars)."""
    return a * u - b * u * v, d * u * v - c * v


def reaction_diffusion(n):
    """du/dt = D L u + u (1 - u) with L the 1-D Laplacian (Dirichlet ends)."""
    laplacian = -2.0 * np.eye(n) + np.eye(n, k=1) + np.eye(n, k=-1)

    def f(u):
        return 0.1 * (laplacian @ u) + u * (1.0 - u)

    return f, laplacian


def test_ode_right_hand_sides():
    rng = np.random.default_rng(7)
    u, v = rng.uniform(0.5, 2, 3), rng.uniform(0.5, 2, 3)
    params = [np.array(p) for p in (1.1, 0.4, 0.4, 0.1)]
    tangents = [rng.standard_normal(3), rng.standard_normal(3), *[np.array(t) for t in rng.standard_normal(4)]]
    wu, wv = rng.standard_normal(3), rng.standard_normal(3)
    primals = (u, v, *params)
    everything = (0, 1, 2, 3, 4, 5)

    def ours(*leaves):
        xs, ts, (wu, wv) = leaves[:6], leaves[6:12], leaves[12:]
        _, t = rm.jvp(lotka_volterra, xs, ts)
        _, vjp_fn = rm.vjp(lotka_volterra, *xs)
        return t, vjp_fn((wu, wv)), rm.jacfwd(lotka_volterra, everything)(*xs), rm.jacrev(lotka_volterra, everything)(*xs)

    got = rm.jit(ours)(*primals, *tangents, wu, wv)
    X, Tn = tuple(map(to_torch, primals)), tuple(map(to_torch, tangents))
    _, t = tf.jvp(lotka_volterra, X, Tn)
    _, vjp_fn = tf.vjp(lotka_volterra, *X)
    jf = tf.jacfwd(lotka_volterra, everything)(*X)
    jr = tf.jacrev(lotka_volterra, everything)(*X)
    assert_tree_close(got, (t, vjp_fn((to_torch(wu), to_torch(wv))), jf, jr))

    def paired(*leaves):  # <f(u, v, a..d), (wu, wv)>: the Hessian and hvp of the right-hand side
        du, dv = lotka_volterra(*leaves[:6])
        return rm.sum(du * leaves[6]) + rm.sum(dv * leaves[7])

    def torch_paired(*leaves):
        du, dv = lotka_volterra(*leaves[:6])
        return torch.sum(du * leaves[6]) + torch.sum(dv * leaves[7])

    W = (to_torch(wu), to_torch(wv))
    assert_tree_close(rm.hessian(paired, everything)(*primals, wu, wv), tf.hessian(torch_paired, everything)(*X, *W))
    _, hv = tf.jvp(lambda *p: tf.grad(torch_paired, everything)(*p, *W), X, Tn)
    assert_tree_close(rm.hvp(paired, (*primals, wu, wv), tuple(tangents), argnums=everything), hv)

    f, laplacian = reaction_diffusion(6)
    x = rng.uniform(0, 1, 6)
    L = to_torch(laplacian)
    g = lambda u: 0.1 * (L @ u) + u * (1 - u)  # noqa: E731
    assert_close(rm.jacfwd(f)(x), tf.jacfwd(g)(to_torch(x)))
    assert_close(rm.jacrev(f)(x), tf.jacrev(g)(to_torch(x)))
    assert_close(np.diag(rm.jacfwd(f)(x)) + 0.2, 1 - 2 * x, rtol=1e-13)
