"""Second derivatives of programs the forward-mode work was not designed around, in f64.

Each Hessian (or Hessian-vector product) is checked three ways: against
central differences of our own gradient (rtol 1e-6), and between the
compositions that must agree to rounding (hessian, i.e. jacfwd(jacrev),
against jacrev(jacrev); symmetric). The programs mix loops, slices, where, cumsum,
integer // and %, dynamic and static functional updates (x.at[...]),
tuple-axis reductions and masks.

Growable tapes (loops with a run-time trip count) have tangents (a tangent
tape, dialects/raster_tangents_tape.py): hvp, jacfwd and jvp of the gradient
of such a loop are checked against JAX (the loop unrolled) and differences of
the gradient. They have no cotangent: reverse over that reverse pass is a
clear GradientError, never silently dropped second-order terms.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import raster_mlir as rm
from raster_mlir import nn


def _rng(seed):
    return np.random.default_rng(seed)


def gradient_differences(f, x, eps=1e-5):
    """d/dx of rm.grad(f) by central differences, one column per element of x (shape (x.size, x.size))."""
    g = rm.grad(f)
    cols = []
    for e in np.eye(x.size):
        e = e.reshape(x.shape)
        cols.append(((g(x + eps * e)[0] - g(x - eps * e)[0]) / (2 * eps)).ravel())
    return np.stack(cols)


def check_hessian(f, x):
    n = x.size
    h = rm.hessian(f)(x).reshape(n, n)
    np.testing.assert_allclose(h, gradient_differences(f, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(h, h.T, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(rm.jacrev(rm.jacrev(f))(x).reshape(n, n), h, rtol=1e-11, atol=1e-12)


def slices_where_cumsum(x):
    c = rm.cumsum(x * x[::-1], axis=0)
    y = rm.where(x > 0.1, c, x**3)
    return rm.sum(y[1:-1] * y[:-2]) + rm.sum(rm.exp(-x[::2]))


def tuple_axis_reductions(x):
    inner = rm.sin(rm.logsumexp(x * x, axis=(0, 2))) * rm.prod(x, axis=(0, 2))
    return rm.sum(inner * rm.sum(rm.max(x, axis=(2, 1), keepdims=True))) + rm.sum(rm.min(x, axis=(0, 1)) ** 2)


def index_arithmetic_in_a_loop(x):
    def body(i, c):
        return c + rm.where((i % 2) == 0, rm.sin(c), c * c * 0.1) * (i // 2 + 1)

    return rm.sum(rm.fori_loop(0, 6, body, x))


def dynamic_updates_in_a_loop(x):
    return rm.sum(rm.fori_loop(0, 3, lambda i, c: c.at[i].set(rm.sin(c[i]) * c[(i + 1) % 3]), x) ** 2)


def scan_and_cond(x):
    c, ys = rm.scan(lambda c, r: (rm.tanh(c * r), c * r), x[0], x)
    return rm.cond(c > 0.0, lambda a: rm.sum(rm.exp(a) * a), lambda a: rm.sum(a**3), ys) + c


def static_functional_updates(x):
    y = x.at[1:-1].set(rm.sin(x[2:]) * x[:-2])
    z = rm.at_add(y, slice(0, 3), rm.exp(y[3:]))
    z = z.at[::2].set(z[::2] * z[1::2])
    return rm.sum(z**3)


@pytest.mark.parametrize(
    "f, shape",
    [
        (slices_where_cumsum, (7,)),
        (tuple_axis_reductions, (2, 1, 3)),
        (index_arithmetic_in_a_loop, (3,)),
        (dynamic_updates_in_a_loop, (3,)),
        (scan_and_cond, (4,)),
        (static_functional_updates, (6,)),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_hessian_of_unusual_programs(f, shape):
    x = _rng(1).standard_normal(shape)
    if f is tuple_axis_reductions:  # max / min away from ties
        x = (_rng(2).permutation(x.size) * 0.25 - 2.0 + _rng(3).uniform(0, 0.05, x.size)).reshape(shape) / 3
    check_hessian(f, x)


def rk4_spring(y0, k):
    def rhs(y):
        return rm.stack([y[1], -k[0] * y[0] - 0.1 * y[1] + 0.05 * y[0] ** 3])

    def step(i, y):
        h = 0.01
        a = rhs(y)
        b = rhs(y + 0.5 * h * a)
        c = rhs(y + 0.5 * h * b)
        d = rhs(y + h * c)
        return y + h / 6 * (a + 2 * b + 2 * c + d)

    return rm.fori_loop(0, 50, step, y0)


def test_jacfwd_of_an_ode_integrator():
    y0, k = np.array([1.0, 0.2]), np.array([2.0])
    j_fwd = rm.jacfwd(rk4_spring, argnums=(0, 1))(y0, k)
    j_rev = rm.jacrev(rk4_spring, argnums=(0, 1))(y0, k)
    for a, b in zip(j_fwd, j_rev):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-14)
    f, eps = rm.jit(rk4_spring), 1e-6
    np.testing.assert_allclose(j_fwd[1][:, 0], (f(y0, k + eps) - f(y0, k - eps)) / (2 * eps), rtol=1e-7)
    second = rm.jacfwd(rm.jacrev(rk4_spring, argnums=1), argnums=1)(y0, k)[:, 0, 0]
    jac = rm.jacrev(rk4_spring, argnums=(0, 1))  # compiled above
    fd = (jac(y0, k + eps)[1] - jac(y0, k - eps)[1])[:, 0] / (2 * eps)
    np.testing.assert_allclose(second, fd, rtol=1e-6)


def masked_cross_entropy(w, x, y, mask):
    log_p = nn.log_softmax(x @ w)
    return -rm.sum(mask * rm.sum(y * log_p, axis=1)) / rm.sum(mask)


def test_hvp_of_a_masked_softmax_cross_entropy_against_torch():
    torch = pytest.importorskip("torch")
    from torch.func import grad as t_grad, jvp as t_jvp

    rng = _rng(4)
    w, x = rng.standard_normal((5, 4)), rng.standard_normal((6, 5))
    y, mask = np.eye(4)[rng.integers(0, 4, 6)], (rng.random(6) > 0.3).astype(float)
    mask[0] = 1.0
    v = rng.standard_normal((5, 4))
    ours = rm.hvp(masked_cross_entropy, (w, x, y, mask), (v,), argnums=0)

    def t_loss(w):
        log_p = torch.log_softmax(torch.tensor(x) @ w, dim=-1)
        m = torch.tensor(mask)
        return -(m * (torch.tensor(y) * log_p).sum(1)).sum() / m.sum()

    _, expected = t_jvp(t_grad(t_loss), (torch.tensor(w),), (torch.tensor(v),))
    np.testing.assert_allclose(ours, expected.numpy(), rtol=1e-10, atol=1e-14)


def while_program(x, n):
    return rm.sum(rm.while_loop(lambda s: s[1] < n, lambda s: (rm.tanh(s[0]) * x, s[1] + 1.0), (x, 0.0))[0])


def fori_traced_bounds(x, n):
    return rm.sum(rm.fori_loop(0, n, lambda i, c: rm.sin(c) * x, x))


def jax_unrolled(step):
    """The JAX twin of while_program / fori_traced_bounds for a trip count known in Python."""
    jnp = pytest.importorskip("jax.numpy")

    def f(x, n):
        c = x
        for _ in range(n):
            c = step(jnp, c) * x
        return jnp.sum(c)

    return f


GROWABLE = {
    "while": (while_program, float, jax_unrolled(lambda jnp, c: jnp.tanh(c))),
    "fori": (fori_traced_bounds, int, jax_unrolled(lambda jnp, c: jnp.sin(c))),
}


@pytest.mark.parametrize("name", sorted(GROWABLE))
@settings(deadline=None)
@given(size=st.integers(1, 3), trips=st.integers(0, 5), seed=st.integers(0, 2**16))
def test_hvp_through_growable_tapes_against_jax_and_differences(name, size, trips, seed):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    f, number, jf = GROWABLE[name]
    rng = _rng(seed)
    x, v = rng.uniform(-1.0, 1.0, size), rng.standard_normal(size)
    n = number(trips)  # a run-time trip count: one compiled function for every n
    hv = rm.hvp(f, (x, n), (v,), argnums=0)
    expected = jax.jvp(jax.grad(lambda x: jf(x, trips)), (x,), (v,))[1]
    np.testing.assert_allclose(hv, expected, rtol=1e-10, atol=1e-12)
    g, eps = rm.grad(f), 1e-6
    fd = (g(x + eps * v, n)[0] - g(x - eps * v, n)[0]) / (2 * eps)
    np.testing.assert_allclose(hv, fd, rtol=1e-5, atol=1e-7)


def test_hessian_jacfwd_and_jvp_of_gradients_through_growable_tapes():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    x, v = _rng(8).uniform(-1.0, 1.0, (2, 3))
    (f, _, jf), (g, _, jg) = GROWABLE["while"], GROWABLE["fori"]
    H_f, H_g = (jax.hessian(lambda x: j(x, 4))(x) for j in (jf, jg))
    np.testing.assert_allclose(rm.hessian(f)(x, 4.0), H_f, rtol=1e-10, atol=1e-12)  # jacfwd(jacrev(f))
    np.testing.assert_allclose(rm.jacfwd(rm.grad(g))(x, 4)[0], H_g, rtol=1e-10, atol=1e-12)
    grad_x, tangent = rm.jvp(rm.grad(f), (x, 4.0), (v, 0.0))
    np.testing.assert_allclose(grad_x[0], jax.grad(lambda x: jf(x, 4))(x), rtol=1e-10)
    np.testing.assert_allclose(tangent[0], H_f @ v, rtol=1e-10, atol=1e-12)


def test_hvp_through_nested_growable_tapes():
    # Tapes made inside loop bodies (a while in a static fori; a while in a while): each copy
    # of the body the tangent rules propagate makes its own tangent tape.
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    jax.config.update("jax_enable_x64", True)
    x, w, v = _rng(9).uniform(-1.0, 1.0, (3, 3))

    def in_fori(x, w, n):
        def outer(i, c):
            s, _ = rm.while_loop(lambda s: s[1] < n, lambda s: (rm.sin(s[0]) * x + w, s[1] + 1.0), (c, 0.0))
            return s * 0.5

        return rm.sum(rm.fori_loop(0, 2, outer, x) ** 2)

    def in_while(x, n, m):
        def body(s):
            inner, _ = rm.while_loop(lambda t: t[1] < m, lambda t: (rm.sin(t[0]) * x, t[1] + 1.0), (s[0], 0.0))
            return inner * 0.9, s[1] + 1.0

        return rm.sum(rm.while_loop(lambda s: s[1] < n, body, (x, 0.0))[0])

    def j_in_fori(x, w):
        c = x
        for _ in range(2):
            for _ in range(3):
                c = jnp.sin(c) * x + w
            c = c * 0.5
        return jnp.sum(c**2)

    def j_in_while(x):
        c = x
        for _ in range(2):
            for _ in range(3):
                c = jnp.sin(c) * x
            c = c * 0.9
        return jnp.sum(c)

    got = rm.hvp(in_fori, (x, w, 3.0), (v, v), argnums=(0, 1))
    expected = jax.jvp(jax.grad(j_in_fori, argnums=(0, 1)), (x, w), (v, v))[1]
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    got = rm.hvp(in_while, (x, 2.0, 3.0), (v,), argnums=0)
    np.testing.assert_allclose(got, jax.jvp(jax.grad(j_in_while), (x,), (v,))[1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("f, n", [(while_program, 3.0), (fori_traced_bounds, 3)], ids=["while", "fori"])
def test_reverse_over_reverse_through_growable_tapes_is_refused(f, n):
    x = _rng(5).standard_normal(3)
    with pytest.raises(rm.GradientError, match="reverse mode over the reverse pass of a loop with a run-time trip count"):
        rm.grad(lambda x, n: rm.sum(rm.grad(f)(x, n)[0]))(x, n)


def test_growable_tape_that_does_not_vary_is_a_constant():
    # The outer derivative is in w only; the tape records carries that depend on x alone.
    def outer(x, w, n):
        return rm.sum(rm.grad(lambda x, w, n: while_program(x, n) * rm.sum(w * w))(x, w, n)[0])

    rng = _rng(6)
    x, w = rng.standard_normal(3), rng.standard_normal(3)
    g = rm.grad(outer, argnums=1)(x, w, 3.0)
    f, eps = rm.jit(outer), 1e-6
    fd = np.array([(f(x, w + eps * e, 3.0) - f(x, w - eps * e, 3.0)) / (2 * eps) for e in np.eye(3)])
    np.testing.assert_allclose(g, fd, rtol=1e-7)


@pytest.mark.parametrize("x", [[0.8, 0.0, -1.2], [0.0, 0.0, -1.2], [0.0, 0.0, 0.0], [0.8, 0.5, -1.2]], ids=str)
def test_hessian_of_prod_with_zeros_against_torch(x):
    # prod's slope at a zero is the product of the others; its derivative must move with the zeros
    torch = pytest.importorskip("torch")
    x = np.array(x)
    expected = torch.func.hessian(torch.prod)(torch.tensor(x)).numpy()
    np.testing.assert_allclose(rm.hessian(rm.prod)(x), expected, atol=1e-15)
    np.testing.assert_allclose(rm.jacrev(rm.jacrev(rm.prod))(x), expected, atol=1e-15)


def test_hvp_through_loops_is_one_function_and_every_ad_stage_prints():
    def loss(x, w):
        y = rm.fori_loop(0, 5, lambda i, c: rm.tanh(c * w + i * 0.1), x)
        c, ys = rm.scan(lambda c, row: (c * 0.9 + row * w, c * row), y, rm.stack([x, w, x * w]))
        return rm.sum(c * c) + rm.sum(ys)

    x, w, v = _rng(7).standard_normal((3, 3))
    c = rm.compile(lambda x, w, v: rm.hvp(loss, (x, w), (v, v)), x, w, v)
    assert "raster.grad" in c.ir("traced") and "raster.jvp" in c.ir("traced")
    assert "raster.grad" not in c.ir("after:autodiff") and "raster.jvp" in c.ir("after:autodiff")
    assert "raster.jvp" not in c.ir("after:forward-ad") and "raster.for" in c.ir("after:forward-ad")
    tensor_ir = c.ir("after:dce")
    assert tensor_ir.count("func.func") == 1 and "func.call" not in tensor_ir
    eps, g = 1e-6, rm.grad(loss)
    for got, p, m in zip(c(x, w, v), g(x + eps * v, w + eps * v), g(x - eps * v, w - eps * v)):
        np.testing.assert_allclose(got, (p - m) / (2 * eps), rtol=1e-6, atol=1e-8)
