"""Clear errors from the loop and branch primitives: each names the problem, the leaf and the user's line."""

from __future__ import annotations

import numpy as np
import pytest

import raster_mlir as rm

X = np.arange(4.0)


def compile_error(fn, *args):
    with pytest.raises(rm.RasterError) as info:
        rm.jit(fn)(*args)
    return info.value


def test_carry_structure_changed():
    err = compile_error(lambda x: rm.fori_loop(0, 3, lambda i, c: (c[0],), (x, x)), X)
    assert isinstance(err, rm.TraceError)
    assert "structure (*,), but the init has structure (*, *)" in str(err)
    assert "test_loop_errors.py" in str(err)


def test_carry_dict_keys_changed():
    err = compile_error(lambda x: rm.fori_loop(0, 3, lambda i, c: {"x": c["x"], "y": c["v"]}, {"x": x, "v": x}), X)
    assert "{'x': *, 'y': *}" in str(err) and "{'v': *, 'x': *}" in str(err)


def test_carry_dtype_changed():
    x32 = np.ones(4, np.float32)
    err = compile_error(lambda x, y: rm.fori_loop(0, 3, lambda i, c: (c[1], c[1]), (x, y)), X, x32)
    assert isinstance(err, rm.DTypeError) and isinstance(err, TypeError)
    assert "carry [0]" in str(err) and "f32" in str(err) and "init is f64" in str(err)


def test_carry_shape_changed():
    err = compile_error(lambda x: rm.fori_loop(0, 3, lambda i, c: rm.sum(c), x), X)
    assert isinstance(err, rm.ShapeError) and isinstance(err, ValueError)
    assert "has shape ()" in str(err) and "(4,)" in str(err)


def test_scan_shape_of_y_and_body_output():
    err = compile_error(lambda x: rm.scan(lambda c, x: c + x, 0.0, x), X)
    assert "must return a pair (carry, y)" in str(err)


def test_traced_if_inside_a_body_points_at_cond_and_where():
    def f(x):
        def body(i, c):
            if rm.sum(c) > 0:  # <traced-if>
                return c * 2.0
            return c

        return rm.fori_loop(0, 3, body, x)

    err = compile_error(f, X)
    assert "rm.cond(pred, true_fn, false_fn" in str(err) and "rm.where" in str(err)
    assert "if rm.sum(c) > 0" in str(err)


def test_python_while_on_traced_value_points_at_while_loop():
    def f(x):
        while rm.sum(x) < 10.0:
            x = x * 2.0
        return x

    assert "rm.while_loop" in str(compile_error(f, X))


@pytest.mark.parametrize("which", ["cond", "while"])
def test_non_scalar_predicate(which):
    if which == "cond":
        f = lambda x: rm.cond(x > 1.0, lambda a: a, lambda a: -a, x)  # noqa: E731
    else:
        f = lambda x: rm.while_loop(lambda c: c > 1.0, lambda c: c * 0.5, x)  # noqa: E731
    err = compile_error(f, X)
    assert isinstance(err, rm.ShapeError)
    assert "predicate must be a scalar" in str(err) and "(4,)" in str(err)


def test_non_scalar_predicate_eagerly():
    with pytest.raises(rm.ShapeError, match="predicate must be a scalar"):
        rm.cond(X > 1.0, lambda a: a, lambda a: -a, X)


def test_branches_with_different_structures():
    err = compile_error(lambda x, p: rm.cond(p, lambda a: (a, a), lambda a: a, x), X, 1.0)
    assert "branches return different structures" in str(err)


def test_value_escaping_a_body():
    kept = []

    def f(x):
        def body(i, c):
            kept.append(c * 2.0)
            return c

        y = rm.fori_loop(0, 3, body, x)
        return y + kept[0]

    err = compile_error(f, X)
    assert "computed inside a loop body or branch is used outside it" in str(err)


def test_bounds_must_be_integers():
    err = compile_error(lambda x: rm.fori_loop(0, 2.5, lambda i, c: c, x), X)
    assert "bound 2.5 is not an integer" in str(err)


def test_index_errors():
    err = compile_error(lambda x: rm.fori_loop(0, 2, lambda i, c: c.at[7].set(1.0), x), X)
    assert isinstance(err, rm.ShapeError) and "index 7 is out of range for axis 0 of size 4" in str(err)
    err = compile_error(lambda x: rm.fori_loop(0, 2, lambda i, c: c + x[i * 1.5], x), X)
    assert "must be a 0-d traced integer" in str(err)
    err = compile_error(lambda x: rm.fori_loop(0, 2, lambda i, c: c + x[i, 1], x), X)
    assert "2 indices for an array of shape (4,)" in str(err)


def test_checkpoint_policy_errors():
    err = compile_error(lambda x, n: rm.fori_loop(0, n, rm.checkpoint(lambda i, c: c), x), X, 5.0)
    assert "checkpoint='sqrt' needs a trip count known while tracing" in str(err)
    err = compile_error(lambda x: rm.fori_loop(0, 5, lambda i, c: c, x, checkpoint=0), X)
    assert "checkpoint must be a positive int" in str(err)
