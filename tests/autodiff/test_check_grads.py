"""`rm.check_grads`: passes on correct gradients, fails loudly (with a readable report) on wrong ones."""

from __future__ import annotations

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir import nn


@rm.custom_rule
def wrong_tanh(x):
    return rm.tanh(x)


@wrong_tanh.rule
def wrong_tanh_rule(x, y, ct):
    return (ct * (1.0 - y * y) * 1.01,)  # 1% off


X = np.array([0.3, -0.7, 1.1])


def test_report_of_a_correct_gradient():
    def f(W, x):
        return rm.sum(nn.tanh(rm.matmul(W, x)))

    rng = np.random.default_rng(0)
    report = rm.check_grads(f, rng.standard_normal((2, 3)), X, n_directions=4)
    assert report.ok and isinstance(report, rm.GradCheckReport)
    assert len(report.checks) == 8 and {c.argnum for c in report.checks} == {0, 1}
    assert report.max_rel_error < 1e-8
    text = str(report)
    assert "check_grads(f): ok" in text and "finite difference" in text and "autodiff" in text


def test_a_wrong_rule_fails_with_a_report_per_argument():
    def f(x, w):
        return rm.sum(wrong_tanh(x) * w)

    with pytest.raises(rm.GradientError) as info:
        rm.check_grads(f, X, np.array([1.0, 2.0, -1.0]))
    message = str(info.value)
    assert "check_grads(f): FAILED" in message
    assert "<-- mismatch" in message
    rows = [line.split() for line in message.splitlines()[2:]]
    failing_args = {int(r[0]) for r in rows if "<--" in " ".join(r)}
    assert failing_args == {0}  # w's gradient does not go through the wrong rule
    assert all(float(r[4]) == pytest.approx(0.01, rel=0.05) for r in rows if r[0] == "0")


def test_argnums_restricts_the_check():
    def f(x, w):
        return rm.sum(wrong_tanh(x) * w)

    report = rm.check_grads(f, X, np.array([1.0, 2.0, -1.0]), argnums=1)
    assert {c.argnum for c in report.checks} == {1}


def test_array_output_uses_a_random_cotangent():
    report = rm.check_grads(lambda x: nn.softmax(x) * 3.0, np.array([[0.1, 2.0, -1.0], [0.5, 0.5, 0.0]]))
    assert report.ok and report.max_rel_error < 1e-7


def test_f32_defaults_are_looser_but_still_catch_big_errors():
    x = X.astype(np.float32)
    report = rm.check_grads(lambda x: rm.sum(rm.exp(x)), x)
    assert report.eps == 1e-3 and report.rtol == 1e-2

    @rm.custom_rule
    def wrong_exp(x):
        return rm.exp(x)

    @wrong_exp.rule
    def wrong_exp_rule(x, y, ct):
        return (ct * y * 1.2,)

    with pytest.raises(rm.GradientError, match="FAILED"):
        rm.check_grads(lambda x: rm.sum(wrong_exp(x)), x)


def test_python_numbers_and_seed_are_accepted():
    a = rm.check_grads(lambda x, s: rm.sum(x * s), X, 2.0, seed=3)
    b = rm.check_grads(lambda x, s: rm.sum(x * s), X, 2.0, seed=3)
    assert [c.fd for c in a.checks] == [c.fd for c in b.checks]


def test_bad_use_is_a_gradient_error():
    with pytest.raises(rm.GradientError, match="out of range"):
        rm.check_grads(lambda x: rm.sum(x), X, argnums=2)
    with pytest.raises(rm.GradientError, match="must return one array"):
        rm.check_grads(lambda x: (rm.sum(x), rm.sum(x)), X)
    with pytest.raises(rm.GradientError, match="must be an array or a number"):
        rm.check_grads(lambda x: rm.sum(x), "x")
