"""hyperbolic.py's tanh (u / (1 - u), u = -expm1(-2|x|)/2): saturation, small arguments, and the same
bits for an element in a vector lane, in the scalar remainder and alone, f32 and f64."""

from __future__ import annotations

import numpy as np
import pytest

from raster_mlir.backend.vmath.accuracy import run_native

NP = {"f64": np.float64, "f32": np.float32}
# |x| beyond which tanh rounds to 1: 9.01 (f32), 19.06 (f64); the kernel's clamp: (p + 4) ln2 / 2
SATURATED = {"f32": 9.02, "f64": 19.07}
CLAMP = {"f32": 28 * np.log(2) / 2, "f64": 56 * np.log(2) / 2}


@pytest.mark.parametrize("T", ["f32", "f64"])
def test_saturates_to_exactly_one(T):
    big = np.array([SATURATED[T], CLAMP[T], np.nextafter(CLAMP[T], 0), np.nextafter(CLAMP[T], 99), 1e4, 3e38], dtype=NP[T])
    x = np.concatenate([big, -big])
    np.testing.assert_array_equal(run_native("math.tanh", T, x), np.sign(x))


@pytest.mark.parametrize("T", ["f32", "f64"])
def test_small_arguments_keep_their_relative_accuracy(T):
    """Near 0 tanh(x) = x - x^3/3: no cancellation, the result is within an ulp of x (and odd)."""
    x = np.array([1e-3, 3e-5, 1e-8, 1e-20, 2.0**-120], dtype=NP[T])
    x = np.concatenate([x, -x])
    got = run_native("math.tanh", T, x)
    want = np.tanh(x.astype(np.float64)).astype(NP[T])
    assert np.all(np.abs(got.astype(np.float64) - want) <= np.spacing(np.abs(want)))
    np.testing.assert_array_equal(np.signbit(got), np.signbit(x))


@pytest.mark.parametrize("T", ["f32", "f64"])
@pytest.mark.parametrize("flush", [False, True])
def test_vector_lanes_and_scalar_path_agree_bitwise(T, flush):
    """67 elements (vector lanes and the remainder) against each element computed alone."""
    rng = np.random.default_rng(5)
    x = rng.uniform(-12, 12, 67).astype(NP[T])
    edges = [0.0, -0.0, np.inf, -np.inf, np.nan, CLAMP[T], -CLAMP[T], SATURATED[T], 0.17, 0.1733, 0.347, 1e-30, 1e-40]
    x[: len(edges)] = edges
    x[20:40] = rng.uniform(-0.4, 0.4, 20)  # around the first steps of n
    rng.shuffle(x)
    together = run_native("math.tanh", T, x, flush_denormal=flush)
    alone = np.array([run_native("math.tanh", T, x[k : k + 1], flush_denormal=flush)[0] for k in range(len(x))])
    ints = np.int32 if T == "f32" else np.int64
    np.testing.assert_array_equal(together.view(ints), alone.view(ints))
