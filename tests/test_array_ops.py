"""Static indexing and shape ops against numpy: eager, interpreted and native, f32 and f64.

Indexing keys are drawn by hypothesis: per axis an integer (negative too), a
slice with negative or out-of-range bounds and steps of +-1, 2, 3, or `:`;
then None axes and an `...`. Each example compiles one function computing
several keys and every shape op, so the suite stays fast.
"""

from __future__ import annotations

import numpy as np
import pytest
from array_checks import DTYPES, NATIVE, assert_close, draw_array, draw_shape, three_ways
from hypothesis import given
from hypothesis import strategies as st

import raster_mlir as rm
from raster_mlir import array_ops
from raster_mlir.compiler import TENSOR_PIPELINE


@st.composite
def basic_keys(draw, shape):
    items = []
    used = draw(st.integers(0, len(shape)))  # trailing axes may be left out (they mean `:`)
    for n in shape[:used]:
        kind = draw(st.sampled_from(["int", "slice", "slice", "all"]))
        if kind == "int":
            items.append(draw(st.integers(-n, n - 1)))
        elif kind == "all":
            items.append(slice(None))
        else:
            bound = st.none() | st.integers(-n - 2, n + 2)
            step = draw(st.sampled_from([None, 1, 2, 3, -1, -2]))
            items.append(slice(draw(bound), draw(bound), step))
    if draw(st.booleans()):
        # `...` stands for a run of `:` (possibly empty): anywhere when every axis is indexed, else at the end.
        at = draw(st.integers(0, len(items))) if used == len(shape) else len(items)
        end = at
        while end < len(items) and items[end] == slice(None) and draw(st.booleans()):
            end += 1
        items = items[:at] + [Ellipsis] + items[end:]
    for _ in range(draw(st.integers(0, 2))):
        items.insert(draw(st.integers(0, len(items))), None)
    return tuple(items) if len(items) != 1 or draw(st.booleans()) else items[0]


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@NATIVE
@given(data=st.data())
def test_static_indexing(dtype, data):
    shape = draw_shape(data, 1, 3)
    x = draw_array(data, shape, dtype)
    keys = [data.draw(basic_keys(shape), label=f"key {k}") for k in range(4)]
    keys = [k for k in keys if x[k].size > 0 or x[k].ndim == 0] or [0]  # native outputs are non-empty

    def index(x):
        return tuple(array_ops.getitem(x, k) for k in keys)  # x[k] when x is traced

    want = tuple(x[k] for k in keys)
    three_ways(index, [x], want, dtype)
    traced = rm.compile(lambda x: tuple(x[k] for k in keys), x, pipeline=TENSOR_PIPELINE)
    for got, w in zip(traced.run_reference(x), want):
        assert_close(got, w, dtype)


def test_indexing_forms():
    x = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)
    keys = [-1, (1, -1), (..., None), (None, 1, ..., slice(None, None, -2)), (slice(None), 0), (..., 2), ()]

    def f(x):
        return tuple(x[k] for k in keys) + (x[0][1][2], x[::-1, ::-1, ::-1])

    want = tuple(x[k] for k in keys) + (x[0][1][2], x[::-1, ::-1, ::-1])
    compiled = rm.compile(f, x)
    for got, w in zip(compiled(x), want):
        assert_close(got, w, np.float64)
    traced = compiled.ir("traced")
    assert "raster.slice" in traced and "step = [-1, -1, -1]" in traced
    # Whole-array keys build no op.
    assert "raster.slice" not in rm.compile(lambda x: x[...] + x[:, :] + x[()], x).ir("traced")


def test_iterating_over_a_traced_array_unrolls():
    x = np.arange(6.0).reshape(3, 2)
    compiled = rm.compile(lambda x: sum(row * k for k, row in enumerate(x)), x)
    assert_close(compiled(x), 0 * x[0] + 1 * x[1] + 2 * x[2], np.float64)


def _pieces(data, shape, axis, dtype):
    extra = [data.draw(st.sampled_from([1, 2, 3]), label="piece") for _ in range(2)]
    out = []
    for k, n in enumerate([shape[axis], *extra]):
        piece = list(shape)
        piece[axis] = n
        out.append(draw_array(data, tuple(piece), dtype, label=f"piece {k}"))
    return out


PAD_MODES = ["constant", "edge", "wrap", "reflect", "symmetric"]


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@NATIVE
@given(data=st.data())
def test_shape_ops(dtype, data):
    shape = draw_shape(data, 1, 3)
    rank = len(shape)
    axis = data.draw(st.integers(-rank, rank - 1), label="axis")
    a, b, c = _pieces(data, shape, axis, dtype)
    shift = data.draw(st.integers(-200, 200), label="shift")
    roll_axis = data.draw(st.sampled_from([None, *range(rank)]), label="roll axis")
    flip_axis = data.draw(st.sampled_from([None, *range(-rank, rank)]), label="flip axis")
    mode = data.draw(st.sampled_from(PAD_MODES), label="mode")
    limit = lambda n: n - 1 if mode == "reflect" else n  # noqa: E731
    widths = [tuple(data.draw(st.integers(0, min(2, limit(n))), label="width") for _ in range(2)) for n in shape]
    new_axis = data.draw(st.integers(-rank - 1, rank), label="new axis")

    def shape_ops(a, b, c):
        return (
            rm.concatenate([a, b, c], axis=axis),
            rm.concatenate([a, b], axis=None),
            rm.stack([a, a * 2.0], axis=new_axis),
            rm.roll(a, shift, roll_axis),
            rm.flip(a, flip_axis),
            rm.pad(a, widths, mode=mode) if mode != "constant" else rm.pad(a, widths, constant_values=-1.5),
            rm.squeeze(rm.expand_dims(a, new_axis), new_axis),
            rm.diff(a, 1, axis) if a.shape[axis] > 1 else a,
        )

    kwargs = {"constant_values": -1.5} if mode == "constant" else {}
    want = (
        np.concatenate([a, b, c], axis=axis),
        np.concatenate([a, b], axis=None),
        np.stack([a, a * 2.0], axis=new_axis),
        np.roll(a, shift, roll_axis),
        np.flip(a, flip_axis),
        np.pad(a, widths, mode=mode, **kwargs),
        a,
        np.diff(a, 1, axis) if a.shape[axis] > 1 else a,
    )
    three_ways(shape_ops, [a, b, c], want, dtype)


def test_numpy_functions_and_methods_on_traced_arrays():
    x = np.arange(1.0, 13.0).reshape(3, 4)
    y = np.linspace(-1.0, 1.0, 4)

    def numpy_style(x, y):
        return (
            np.sum(x, axis=0), np.mean(x), np.max(x, axis=1, keepdims=True), np.min(x), np.prod(x[:, :2], axis=1),
            np.where(y > 0, y, 0.0), np.concatenate([x, x[:1]]), np.stack([y, y], axis=1), np.clip(x, 2.0, 5.0),
            np.cumsum(x, axis=1), np.transpose(x), np.reshape(x, (4, 3)), np.flip(y), np.roll(y, 1),
            np.pad(y, (1, 2), mode="edge"), np.squeeze(x[None]), np.expand_dims(y, 0), np.linalg.norm(y),
            np.abs(y), np.sin(y), np.arctan2(y, 1.0), np.square(y), np.diff(y), np.dot(x, y),
            x.T, x.reshape(2, 6), x.sum(axis=1), x.min(axis=0), x.prod(), x.cumsum(), x[None].squeeze(0),
            x.flatten(), x.swapaxes(0, 1), x.clip(3.0, None), abs(y), x.astype(np.float64), x.copy(),
            np.zeros_like(y) + np.ones_like(y), np.full_like(y, 3.0), np.shape(x)[0] * y, np.ndim(x) * y, np.size(x) * y,
        )  # fmt: skip

    # The reference interpreter is enough here: the ops themselves are compiled in the tests above.
    compiled = rm.compile(numpy_style, x, y, pipeline=TENSOR_PIPELINE)
    want = numpy_style(x, y)  # plain numpy on numpy arrays
    for k, (got, w) in enumerate(zip(compiled.run_reference(x, y), want)):
        assert_close(got, w, np.float64, what=f"output {k}")


def test_numpy_operators_give_float_masks():
    x = np.array([-1.0, 0.0, 2.0], dtype=np.float32)
    compiled = rm.compile(lambda x: (x >= 0) * x + (x == 0) - (x != 2.0), x)
    assert compiled(x).dtype == np.float32
    np.testing.assert_array_equal(compiled(x), (x >= 0) * x + (x == 0) - (x != 2.0))
