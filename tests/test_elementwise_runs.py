"""lower-to-loops: a run of element-wise ops of one shape becomes one loop nest (passes/elementwise_clusters.py).

- Random programs of element-wise ops (hypothesis-chosen chains over a matrix, a
  broadcast row and a 0-d value, some values also summed or returned, so they
  must be stored) give the same results with runs as with one nest per op
  (`lower-to-loops{fuse-elementwise=false}`), with the default bound on a nest
  and with a bound small enough to cut every run into several nests, and agree
  with numpy; their gradients too. Not always the same bits: where the two
  lowerings end with a product and the sum reading it in one loop in one case
  and in two loops in the other, LLVM contracts them into a fused multiply-add
  (the `contract` flag) in one case only (one rounding fewer).
- The IR: the run is one nest whose values used only inside it get no buffer;
  a value read after the run is stored; a reduction ends a run; a nest holds
  at most `max-loop-ops` ops.

tests/filecheck/lower_to_loops/elementwise_run.mlir shows the IR of a run.
"""

from __future__ import annotations

import numpy as np
from helpers import profile_examples
from hypothesis import given, settings, strategies as st
from xdsl.dialects import func, scf

import raster_mlir as rm
from raster_mlir.compiler import DEFAULT_PIPELINE

PER_OP = DEFAULT_PIPELINE.replace("lower-to-loops,", "lower-to-loops{fuse-elementwise=false},", 1)
SMALL_NESTS = DEFAULT_PIPELINE.replace("lower-to-loops,", "lower-to-loops{max-loop-ops=12},", 1)

# (name, arity, raster function, numpy function): ops that keep values in a moderate range
OPS = [
    ("add", 2, lambda a, b: a + b, lambda a, b: a + b),
    ("sub", 2, lambda a, b: a - b, lambda a, b: a - b),
    ("mul", 2, lambda a, b: a * b, lambda a, b: a * b),
    ("tanh", 1, rm.tanh, np.tanh),
    ("scale", 1, lambda a: a * 0.5, lambda a: a * 0.5),
    ("maximum", 2, rm.maximum, np.maximum),
]


def program(choices, xp):
    """A chain of element-wise ops on (x: matrix, row: broadcast row, s: 0-d); returns (sum of some values, last)."""
    ops = {name: (arity, f_rm if xp is rm else f_np) for name, arity, f_rm, f_np in OPS}

    def f(x, row, s):
        values = [x, row * s, x * row]
        total = 0.0
        for name, left, right, summed in choices:
            arity, fn = ops[name]
            a, b = values[left % len(values)], values[right % len(values)]
            value = fn(a) if arity == 1 else fn(a, b)
            values.append(value)
            if summed:  # read after the run: must be stored (and a reduction ends the run)
                total = total + xp.sum(value)
        return total + xp.sum(values[-1] * values[-1]), values[-1]

    return f


choice = st.tuples(st.sampled_from([op[0] for op in OPS]), st.integers(0, 50), st.integers(0, 50), st.booleans())


@settings(max_examples=profile_examples(3), deadline=None)
@given(
    choices=st.lists(choice, min_size=1, max_size=14),
    rows=st.integers(1, 5),
    cols=st.sampled_from([1, 3, 8, 17]),
    seed=st.integers(0, 2**16),
)
def test_runs_compute_what_one_nest_per_op_computes(choices, rows, cols, seed):
    rng = np.random.default_rng(seed)
    x, row, s = rng.standard_normal((rows, cols)), rng.standard_normal(cols), np.array(rng.standard_normal())
    fn = program(choices, rm)
    expected_total, expected_last = program(choices, np)(x, row, s)
    per_op = rm.compile(fn, x, row, s, pipeline=PER_OP)(x, row, s)
    for pipeline in (DEFAULT_PIPELINE, SMALL_NESTS):
        total, last = rm.compile(fn, x, row, s, pipeline=pipeline)(x, row, s)
        np.testing.assert_allclose(last, per_op[1], rtol=1e-14, atol=1e-14)  # (an FMA: module docstring)
        np.testing.assert_allclose(total, per_op[0], rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(last, expected_last, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(total, expected_total, rtol=1e-10, atol=1e-10)


@settings(max_examples=profile_examples(3), deadline=None)
@given(choices=st.lists(choice, min_size=1, max_size=10), cols=st.sampled_from([1, 8, 17]), seed=st.integers(0, 2**16))
def test_gradients_of_runs_are_those_of_one_nest_per_op(choices, cols, seed):
    rng = np.random.default_rng(seed)
    x, row, s = rng.standard_normal((3, cols)), rng.standard_normal(cols), np.array(rng.standard_normal())
    fn = program(choices, rm)
    grad = rm.grad(lambda x, row, s: fn(x, row, s)[0], argnums=(0, 1, 2))
    expected = rm.compile(grad, x, row, s, pipeline=PER_OP)(x, row, s)
    for pipeline in (DEFAULT_PIPELINE, SMALL_NESTS):
        for got, want in zip(rm.compile(grad, x, row, s, pipeline=pipeline)(x, row, s), expected):
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


def _loops(block):
    return [op for op in block.ops if isinstance(op, scf.ForOp)]


def test_a_run_is_one_nest_and_only_values_read_after_it_are_stored():
    def f(x, y):
        a = rm.exp(x) * y  # a: used only in the run
        b = a + x  # b: summed after the run
        return rm.sum(b) + rm.sum(b * a)

    x, y = np.linspace(0.0, 1.0, 16), np.linspace(1.0, 2.0, 16)
    c = rm.compile(f, x, y, pipeline="lower-to-loops")
    (function,) = [op for op in c.module.ops if isinstance(op, func.FuncOp)]
    loops = _loops(function.body.block)
    # the run exp, mul, add (+ the mul b * a after the first sum: a second run), and two sums
    assert len(loops) == 4, c.ir()
    allocs = [op for op in function.body.block.ops if op.name == "memref.alloc"]
    # b (read by the sum and the second run), a (read by the second run), b * a and the 0-d sums
    assert sorted(str(op.results[0].type) for op in allocs).count("memref<16xf64>") == 3, c.ir()
    a = np.exp(x) * y
    np.testing.assert_allclose(c(x, y), np.sum(a + x) + np.sum((a + x) * a), rtol=1e-13)
    counts = c.ir().split("raster.fusion = {")[1].split("}")[0]
    assert "loops_fused = 2" in counts and "temporaries_removed = 1" in counts, counts


def test_a_nest_holds_at_most_max_loop_ops():
    def chain(x):
        for _ in range(40):
            x = rm.tanh(x) * 0.9
        return x

    x = np.linspace(-1.0, 1.0, 32)
    c = rm.compile(chain, x, pipeline="lower-to-loops{max-loop-ops=20}")
    (function,) = [op for op in c.module.ops if isinstance(op, func.FuncOp)]
    loops = _loops(function.body.block)
    assert len(loops) >= 80 // 20, len(loops)
    for loop in loops:
        # (the op reaching the bound, and the stores of the values crossing the cut, come on top)
        assert sum(1 for _ in loop.walk()) <= 20 + 4, c.ir()
    np.testing.assert_array_equal(c(x), rm.compile(chain, x, pipeline="lower-to-loops{fuse-elementwise=false}")(x))
