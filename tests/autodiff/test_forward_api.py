"""rm.jvp / vjp / linearize / hvp / jacfwd / jacrev / hessian: pytrees, composition, jit, IR, errors.

Numbers are checked against closed forms here; test_vs_torch compares with
torch.func and test_op_tangents checks every op's rule.
"""

from __future__ import annotations

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir import nn
from raster_mlir.forward_api import MAX_UNROLLED

X = np.array([0.3, -1.2, 2.0])
V = np.array([1.0, 0.5, -2.0])


def cubic(x):
    return rm.sum(x * x * x)


def exp_times(x, w):
    return rm.exp(x) * w


def test_jvp_of_plain_and_jit_functions():
    w = np.array([2.0, -1.0, 0.5])
    out, t = rm.jvp(exp_times, (X, w), (V, np.zeros(3)))
    np.testing.assert_allclose(out, np.exp(X) * w, rtol=1e-14)
    np.testing.assert_allclose(t, np.exp(X) * w * V, rtol=1e-14)
    jitted = rm.jit(exp_times)
    _, t2 = rm.jvp(jitted, [X, w], [np.zeros(3), V])  # lists work as tuples
    np.testing.assert_allclose(t2, np.exp(X) * V, rtol=1e-14)


def test_jvp_on_pytrees_and_python_numbers():
    def f(params, x):
        (a, b), scale = params
        return {"not": "a tree"} if False else (a * x + b, rm.sum(a) * scale)

    a, b = np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.5, 0.5])
    (y, s), (dy, ds) = rm.jvp(f, (((a, b), 2.0), X), (((V, np.ones(3)), 1.0), np.zeros(3)))
    np.testing.assert_allclose(y, a * X + b)
    np.testing.assert_allclose(dy, V * X + 1.0)
    assert s == pytest.approx(12.0) and ds == pytest.approx(2 * V.sum() + 6.0)


def test_vjp_function_is_compiled_and_matches_the_transpose():
    def f(x, w):
        return rm.tanh(x) * w, rm.sum(x * w)

    w = np.array([0.5, 1.5, -1.0])
    (y, s), vjp_fn = rm.vjp(f, X, w)
    ct = (np.array([1.0, -2.0, 0.5]), 3.0)
    dx, dw = vjp_fn(ct)
    np.testing.assert_allclose(dx, ct[0] * w * (1 - np.tanh(X) ** 2) + 3.0 * w, rtol=1e-14)
    np.testing.assert_allclose(dw, ct[0] * np.tanh(X) + 3.0 * X, rtol=1e-14)
    compiled = rm.forward_api._transforms_of(f)
    assert any(key[0] == "vjp" for key in compiled)
    assert all(isinstance(fn, rm.JitFunction) for fn in compiled.values())


def test_bound_methods_compile_once_per_instance():
    class Model:
        def __init__(self, scale):
            self.scale = scale

        def loss(self, x):
            return rm.sum(rm.exp(x) * self.scale)

    a, b = Model(2.0), Model(3.0)
    (ha,) = rm.hvp(a.loss, (X,), (V,))
    (hb,) = rm.hvp(b.loss, (X,), (V,))
    np.testing.assert_allclose(ha, 2 * np.exp(X) * V)
    np.testing.assert_allclose(hb, 3 * np.exp(X) * V)
    table = rm.forward_api._transforms_of(a.loss)
    first = table.get(next(iter(table.keys())))
    rm.hvp(a.loss, (X,), (V,))
    assert table.get(next(iter(table.keys()))) is first and len(first._compiled) == 1


def test_linearize():
    out, f_jvp = rm.linearize(rm.exp, X)
    np.testing.assert_allclose(out, np.exp(X))
    np.testing.assert_allclose(f_jvp(V), np.exp(X) * V)


def test_hvp_with_respect_to_some_arguments():
    def loss(W, b, x, y):
        return nn.cross_entropy(nn.softmax(nn.dense(W, x, b)), y)

    rng = np.random.default_rng(0)
    W, b, x = rng.normal(size=(3, 4)), rng.normal(size=3), rng.normal(size=4)
    y = np.array([0.0, 1.0, 0.0])
    dW, db = rng.normal(size=(3, 4)), rng.normal(size=3)
    hW, hb = rm.hvp(loss, (W, b, x, y), (dW, db), argnums=(0, 1))
    # Against central differences of the gradient along (dW, db).
    gradient = rm.grad(loss, argnums=(0, 1))
    eps = 1e-5
    plus = gradient(W + eps * dW, b + eps * db, x, y)
    minus = gradient(W - eps * dW, b - eps * db, x, y)
    np.testing.assert_allclose(hW, (plus[0] - minus[0]) / (2 * eps), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(hb, (plus[1] - minus[1]) / (2 * eps), rtol=1e-6, atol=1e-9)
    single = rm.hvp(loss, (W, b, x, y), (db,), argnums=1)
    np.testing.assert_allclose(single, rm.hvp(loss, (W, b, x, y), (np.zeros_like(W), db), argnums=(0, 1))[1], rtol=1e-12)


def test_grad_of_grad_is_exact():
    def f(x):
        return rm.sum(rm.tanh(x) ** 3.0)

    x = np.array(0.7)
    t = np.tanh(0.7)
    (second,) = rm.grad(rm.grad(f))(x)
    # d/dx 3 t^2 (1 - t^2) = 6 t (1 - t^2)^2 - 6 t^3 (1 - t^2)
    assert second == pytest.approx(6 * t * (1 - t**2) ** 2 - 6 * t**3 * (1 - t**2), rel=1e-13)
    (third,) = rm.grad(rm.grad(rm.grad(f)))(x)
    eps = 1e-5
    fd = (rm.grad(rm.grad(f))(x + eps)[0] - rm.grad(rm.grad(f))(x - eps)[0]) / (2 * eps)
    assert third == pytest.approx(fd, rel=1e-7)


def test_compositions_agree():
    hessian = np.diag(6 * X)
    np.testing.assert_allclose(rm.hessian(cubic)(X), hessian, rtol=1e-14)
    np.testing.assert_allclose(rm.jacfwd(rm.jacrev(cubic))(X), hessian, rtol=1e-14)
    np.testing.assert_allclose(rm.jacrev(rm.jacfwd(cubic))(X), hessian, rtol=1e-14)
    np.testing.assert_allclose(rm.jacrev(rm.grad(cubic, argnums=0))(X), hessian, rtol=1e-14)
    (_,), (hv,) = rm.jvp(rm.grad(cubic), (X,), (V,))
    np.testing.assert_allclose(hv, 6 * X * V, rtol=1e-14)
    (hv2,) = rm.hvp(cubic, (X,), (V,))
    np.testing.assert_allclose(hv2, 6 * X * V, rtol=1e-14)


def test_jacobians_with_several_arguments_and_outputs():
    def f(x, w):
        return x * w, rm.sum(x)

    w = np.array([2.0, 3.0, 4.0])
    for jac in (rm.jacfwd, rm.jacrev):
        (jxw_x, jxw_w), (js_x, js_w) = jac(f, argnums=(0, 1))(X, w)
        np.testing.assert_allclose(jxw_x, np.diag(w))
        np.testing.assert_allclose(jxw_w, np.diag(X))
        np.testing.assert_allclose(js_x, np.ones(3))
        np.testing.assert_allclose(js_w, np.zeros(3))
        single = jac(f, argnums=1)(X, w)
        np.testing.assert_allclose(single[0], np.diag(X))

    def g(x, w):
        return rm.sum(x * x * w)

    (hxx, hxw), (hwx, hww) = rm.hessian(g, argnums=(0, 1))(X, w)
    np.testing.assert_allclose(hxx, np.diag(2 * w))
    np.testing.assert_allclose(hxw, np.diag(2 * X))
    np.testing.assert_allclose(hwx, np.diag(2 * X))
    np.testing.assert_allclose(hww, np.zeros((3, 3)))


def test_matrix_arguments_give_stacked_shapes():
    A = np.arange(6.0).reshape(2, 3) / 5

    def f(A):
        return rm.tanh(A) @ X

    J = rm.jacfwd(f)(A)
    assert J.shape == (2, 2, 3)
    np.testing.assert_allclose(J, rm.jacrev(f)(A), rtol=1e-14)
    # out_i = sum_j tanh(A_ij) x_j, so J[i, k, j] = [i == k] (1 - tanh(A_kj)^2) x_j
    np.testing.assert_allclose(J, np.einsum("ik,kj->ikj", np.eye(2), (1 - np.tanh(A) ** 2) * X), rtol=1e-14)


def test_inside_jit_and_f32():
    @rm.jit
    def newton_step(x):
        g = rm.grad(cubic, argnums=0)(x)
        _, hv = rm.jvp(rm.grad(cubic, argnums=0), (x,), (g,))
        return x - g * g / rm.sum(g * hv) * 0.0 + hv

    np.testing.assert_allclose(newton_step(X), X + 6 * X * 3 * X**2, rtol=1e-13)
    x32 = X.astype(np.float32)
    out, t = rm.jvp(rm.tanh, (x32,), (V.astype(np.float32),))
    assert out.dtype == np.float32 and t.dtype == np.float32
    np.testing.assert_allclose(t, (1 - np.tanh(X) ** 2) * V, rtol=1e-5)
    H = rm.hessian(cubic)(x32)
    assert H.dtype == np.float32
    np.testing.assert_allclose(H, np.diag(6 * X), rtol=1e-5)


def test_composite_is_one_native_function_and_every_stage_prints():
    c = rm.compile(rm.hessian(cubic), X)
    assert "raster.jvp" in c.ir("traced") and "raster.grad" in c.ir("traced")
    assert "raster.grad" not in c.ir("after:autodiff") and "raster.jvp" in c.ir("after:autodiff")
    assert "raster.jvp" not in c.ir("after:forward-ad")
    tensor_ir = c.ir("after:dce")
    assert tensor_ir.count("func.func") == 1 and "func.call" not in tensor_ir
    np.testing.assert_allclose(c(X), np.diag(6 * X))


def test_custom_rule_with_tangent_rule():
    @rm.custom_rule
    def softplus(x):
        return rm.log(1.0 + rm.exp(x))

    @softplus.rule
    def softplus_rule(x, y, ct):
        return (ct * rm.sigmoid(x),)

    with pytest.raises(rm.GradientError, match="no tangent rule.*@softplus.tangent"):
        rm.jvp(softplus, (X,), (V,))

    @softplus.tangent
    def softplus_tangent(x, y, tangents):
        return tangents[0] * rm.sigmoid(x)

    _, t = rm.jvp(lambda x: softplus(x) * 1.0, (X,), (V,))
    np.testing.assert_allclose(t, V / (1 + np.exp(-X)), rtol=1e-14)
    (hv,) = rm.hvp(lambda x: rm.sum(softplus(x)), (X,), (V,))
    s = 1 / (1 + np.exp(-X))
    np.testing.assert_allclose(hv, s * (1 - s) * V, rtol=1e-14)


def test_custom_tangent_rule_zero_and_bad_results():
    @rm.custom_rule(rule=lambda x, y, ct: (ct[0] * 2.0,), tangent=lambda x, y, ts: (ts[0] * 2.0, None))
    def two(x):
        return x * 2.0, rm.sum(x) * 0.0

    (_, _), (t, zero) = rm.jvp(two, (X,), (V,))
    np.testing.assert_allclose(t, 2 * V)
    assert zero == 0.0

    @rm.custom_rule(rule=lambda x, y, ct: (ct,), tangent=lambda x, y, ts: rm.sum(ts[0]))
    def wrong_shape(x):
        return x * 1.0

    with pytest.raises(rm.GradientError, match=r"tangent rule of wrong_shape returned \(\) f64 for output 0"):
        rm.jvp(wrong_shape, (X,), (V,))


def test_errors_name_the_problem():
    with pytest.raises(rm.GradientError, match="primals must be a tuple"):
        rm.jvp(rm.exp, X, V)
    with pytest.raises(rm.GradientError, match="same nesting as the primals"):
        rm.jvp(exp_times, (X, X), (V,))
    with pytest.raises(rm.GradientError, match=r"tangent of argument 0 .* shape \(2,\) f64, but the argument has shape \(3,\)"):
        rm.jvp(rm.exp, (X,), (np.ones(2),))
    big = np.zeros(MAX_UNROLLED + 1)
    with pytest.raises(rm.GradientError, match="unrolls one derivative per element.*rm.jvp / rm.vjp / rm.hvp"):
        rm.jacfwd(rm.exp)(big)
    with pytest.raises(rm.GradientError, match="must return one scalar"):
        rm.grad(rm.grad(lambda x: rm.sum(x * x)))(X)


def test_dict_pytrees():
    # dicts nest like tuples (keys in sorted order): primals, tangents and outputs
    x, v = np.arange(3.0), np.ones(3)
    p, t = {"w": x, "b": np.float64(2.0)}, {"w": v, "b": np.float64(0.5)}

    def f(p):
        return {"a": rm.sin(p["w"]) * p["b"], "b": rm.sum(p["w"] ** 2)}

    out, tangent = rm.jvp(f, (p,), (t,))
    np.testing.assert_allclose(out["a"], np.sin(x) * 2.0)
    np.testing.assert_allclose(tangent["a"], np.cos(x) * v * 2.0 + np.sin(x) * 0.5)
    np.testing.assert_allclose(tangent["b"], np.sum(2 * x * v))
    _, vjp_fn = rm.vjp(f, p)
    (ct,) = vjp_fn({"a": v, "b": np.float64(1.0)})
    np.testing.assert_allclose(ct["w"], np.cos(x) * 2.0 + 2 * x)
    np.testing.assert_allclose(ct["b"], np.sum(np.sin(x)))
    (hv,) = rm.hvp(lambda p: rm.sum(rm.sin(p["w"]) * p["b"]), (p,), (t,))
    np.testing.assert_allclose(hv["w"], -np.sin(x) * 2.0 * v + np.cos(x) * 0.5)
    with pytest.raises(rm.GradientError, match="tangents"):
        rm.jvp(f, (p,), ({"w": v},))


def test_dict_primals_after_flat_ones_take_the_pytree_path():
    # The flat fast path of jvp / hvp (arrays only) must not take a dict argument as an array.
    x, y = np.arange(1.0, 4.0), np.ones(3)

    def f(a, y):
        w = a["w"] if isinstance(a, dict) else a
        return rm.sum(w * y * w)

    _, flat = rm.jvp(f, (x, y), (x, y))
    _, nested = rm.jvp(f, ({"w": x}, y), ({"w": x}, y))
    np.testing.assert_allclose(nested, flat)
    (hv_flat,) = rm.hvp(f, (x, y), (x,), argnums=(0,))
    (hv_nested,) = rm.hvp(f, ({"w": x}, y), ({"w": x},), argnums=(0,))
    np.testing.assert_allclose(hv_nested["w"], hv_flat)


def test_flat_fast_path_declines_what_it_cannot_run():
    # After a flat call has been compiled, another shape, a bad tangent, a Python number
    # and a call inside a trace all take the general path (compile, raise, or trace).
    def f(w, s):
        return rm.sum(rm.sin(w) * w) * s

    def hv_expected(w, v, s):
        return (2 * np.cos(w) - w * np.sin(w)) * v * s

    x, v = np.arange(1.0, 4.0), np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(rm.hvp(f, (x, np.float64(2.0)), (v,), argnums=0), hv_expected(x, v, 2.0))
    x5, v5 = np.linspace(0.1, 1.0, 5), np.ones(5)
    np.testing.assert_allclose(rm.hvp(f, (x5, np.float64(2.0)), (v5,), argnums=0), hv_expected(x5, v5, 2.0))
    np.testing.assert_allclose(rm.hvp(f, (x, 3.0), (v,), argnums=0), hv_expected(x, v, 3.0))
    with pytest.raises(rm.GradientError, match=r"tangent of argument 0 .* shape \(2,\)"):
        rm.hvp(f, (x, np.float64(2.0)), (np.ones(2),), argnums=0)

    @rm.jit
    def inside(w, v):
        return rm.hvp(f, (w, np.float64(2.0)), (v,), argnums=0) * 1.0

    np.testing.assert_allclose(inside(x, v), hv_expected(x, v, 2.0))
    _, t = rm.jvp(f, (x, np.float64(2.0)), (v, np.float64(0.0)))
    np.testing.assert_allclose(t, np.sum((np.cos(x) * x + np.sin(x)) * v) * 2.0)
    with pytest.raises(rm.GradientError, match="tangent of argument 1"):
        rm.jvp(f, (x, np.float64(2.0)), (v, np.ones(2)))


def test_flat_calls_once_compiled_take_the_fast_path(monkeypatch):
    # A solver's inner loop: after the first call, flat tuples of arrays go straight to the native
    # call (no pytree work); the general path would call forward_api.flatten.
    from raster_mlir import forward_api

    def f(w, s):
        return rm.sum(rm.sin(w) * w) * s

    x, v, s = np.arange(1.0, 4.0), np.array([0.5, -1.0, 2.0]), np.float64(2.0)
    s_array = np.asarray(s)
    first_hv = rm.hvp(f, (x, s_array), (v,), argnums=0)
    first_t = rm.jvp(f, (x, s_array), (v, np.zeros(())))[1]

    def no_pytree_work(tree):
        raise AssertionError("the general path ran")

    monkeypatch.setattr(forward_api, "flatten", no_pytree_work)
    np.testing.assert_array_equal(rm.hvp(f, (x, s_array), (v,), argnums=0), first_hv)
    np.testing.assert_array_equal(rm.jvp(f, (x, s_array), (v, np.zeros(())))[1], first_t)
