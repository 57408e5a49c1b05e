"""The call path refuses bad arguments before native code runs, and never crashes.

Every refused call is also checked to have left the output untouched (the
kernel did not run), and followed by a good call in the same process.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from backend_programs import load

from raster_mlir.backend import (
    AliasingError,
    AlignmentError,
    ArgSpec,
    NotContiguousError,
    ReadOnlyError,
    aligned_empty,
    aligned_zeros,
    compile_module,
)
from raster_mlir.errors import DTypeError, RasterError, ShapeError

M, K = 4, 6


@pytest.fixture
def matvec():
    return compile_module(load("matvec", "f64", M=M, K=K), "matvec")


@pytest.fixture
def args():
    rng = np.random.default_rng(3)
    return [rng.standard_normal((M, K)), rng.standard_normal(K), rng.standard_normal(M), np.zeros(M)]


def expect_refused(f, args, error, *fragments):
    out_before = args[-1].copy() if isinstance(args[-1], np.ndarray) else None
    with pytest.raises(error) as info:
        f(*args)
    assert isinstance(info.value, RasterError)
    message = str(info.value)
    assert message.startswith("matvec:"), message
    for fragment in fragments:
        assert fragment in message, message
    if out_before is not None:
        np.testing.assert_array_equal(args[-1], out_before)


def good_call(f):
    rng = np.random.default_rng(4)
    W, x, b, y = rng.standard_normal((M, K)), rng.standard_normal(K), rng.standard_normal(M), np.zeros(M)
    f(W, x, b, y)
    np.testing.assert_allclose(y, W @ x + b, rtol=1e-12)


def test_fast_path_is_active_and_correct(matvec, args):
    assert matvec.native_checks
    W, x, b, y = args
    matvec(W, x, b, y)
    np.testing.assert_allclose(y, W @ x + b, rtol=1e-12)


def test_wrong_shape(matvec, args):
    args[1] = np.zeros(K + 1)
    expect_refused(matvec, args, ShapeError, "argument 1 ('x')", f"expected shape ({K},)", f"got ({K + 1},)")
    assert issubclass(ShapeError, ValueError)
    good_call(matvec)


def test_wrong_rank(matvec, args):
    args[0] = args[0].reshape(-1)
    expect_refused(matvec, args, ShapeError, "argument 0 ('W')")


def test_wrong_dtype(matvec, args):
    args[2] = args[2].astype(np.float32)
    expect_refused(matvec, args, DTypeError, "argument 2 ('b')", "expected dtype float64", "got float32")
    assert issubclass(DTypeError, TypeError)
    good_call(matvec)


def test_int_array(matvec, args):
    args[1] = np.arange(K)
    expect_refused(matvec, args, DTypeError, "argument 1", "got int64")


def test_byte_swapped_dtype(matvec, args):
    args[1] = args[1].astype(">f8")
    expect_refused(matvec, args, DTypeError, "argument 1", ">f8")


@pytest.mark.parametrize("bad", [None, 3.0, [0.0] * M, (0.0,) * M, "y", np.float64(1.0)])
def test_not_an_array(matvec, args, bad):
    args[3] = bad
    expect_refused(matvec, args, DTypeError, "argument 3 ('y')", "expected a numpy.ndarray")
    good_call(matvec)


@pytest.mark.parametrize("count", [0, 3, 5])
def test_wrong_number_of_arguments(matvec, args, count):
    with pytest.raises(DTypeError, match=r"matvec: expected 4 arrays \(W, x, b, y\), got"):
        matvec(*(args * 2)[:count])
    good_call(matvec)


def test_non_contiguous(matvec, args):
    args[1] = np.zeros(2 * K)[::2]
    expect_refused(matvec, args, NotContiguousError, "argument 1", "not C-contiguous")
    args[1] = np.zeros(K)
    args[0] = np.asfortranarray(args[0])
    expect_refused(matvec, args, NotContiguousError, "argument 0")
    assert issubclass(NotContiguousError, ShapeError)
    good_call(matvec)


def test_read_only_output(matvec, args):
    args[3].flags.writeable = False
    expect_refused(matvec, args, ReadOnlyError, "argument 3 ('y')", "read-only")
    assert issubclass(ReadOnlyError, ValueError)
    good_call(matvec)


def test_read_only_inputs_are_fine(matvec, args):
    for a in args[:3]:
        a.flags.writeable = False
    W, x, b, y = args
    matvec(*args)
    np.testing.assert_allclose(y, W @ x + b, rtol=1e-12)


def test_output_aliasing_an_input(matvec, args):
    args[3] = args[2]
    expect_refused(matvec, args, AliasingError, "argument 3 ('y') is written but overlaps argument 2 ('b')")
    good_call(matvec)


def test_output_partially_overlapping_an_input(matvec, args):
    buf = np.zeros(M + K)
    args[1], args[3] = buf[:K], buf[K - 1 : K - 1 + M]
    expect_refused(matvec, args, AliasingError, "overlaps argument 1 ('x')")
    args[3] = buf[K : K + M]  # adjacent, not overlapping: accepted
    W, x, b, y = args
    matvec(*args)
    np.testing.assert_allclose(y, W @ x + b, rtol=1e-12)


def test_inputs_may_alias_each_other():
    f = compile_module(load("add", "f64", N=5), "add")
    x = np.arange(5.0)
    z = np.zeros(5)
    f(x, x, z)
    np.testing.assert_array_equal(z, 2 * x)


def test_misaligned_array(matvec, args):
    raw = bytearray(8 * K + 1)
    args[1] = np.frombuffer(raw, dtype=np.float64, count=K, offset=1)
    assert not args[1].flags.aligned
    expect_refused(matvec, args, AlignmentError, "argument 1", "8-byte aligned")
    good_call(matvec)


def test_promised_alignment_is_checked():
    specs = [ArgSpec((16,), "float64", name="x", align=64), ArgSpec((16,), "float64", name="y", align=64)]
    specs.append(ArgSpec((16,), "float64", written=True, name="z", align=64))
    f = compile_module(load("add", "f64", N=16), "add", specs)
    header = next(line for line in f.llvm_ir.splitlines() if line.startswith('define void @"add"('))
    assert header.count("align 64") == 4  # three buffers and the workspace
    x, z = aligned_zeros(16), aligned_zeros(16)
    x[:] = np.arange(16.0)
    shifted = aligned_zeros(17)[1:]  # 8 bytes past a 64-byte boundary
    with pytest.raises(AlignmentError, match=r"argument 1 \('y'\): data pointer .* is not 64-byte aligned"):
        f(x, shifted, z)
    np.testing.assert_array_equal(z, 0)
    f(x, x, z)
    np.testing.assert_array_equal(z, 2 * x)


def test_aligned_helpers():
    for shape, dtype in (((3, 5), np.float32), (7, np.float64), ((), np.float64)):
        a = aligned_empty(shape, dtype)
        assert a.__array_interface__["data"][0] % 64 == 0
        assert a.flags.c_contiguous and a.flags.writeable and a.dtype == dtype
        assert a.shape == ((shape,) if isinstance(shape, int) else shape)
    assert not aligned_zeros((2, 2)).any()


def test_subclass_takes_the_python_path(matvec, args):
    class Tagged(np.ndarray):
        pass

    W, x, b, _ = args
    y = np.zeros(M).view(Tagged)
    matvec(W, x, b, y)
    np.testing.assert_allclose(y, W @ x + b, rtol=1e-12)


def test_fast_and_python_paths_agree(matvec, args):
    W, x, b, y = args
    y2 = np.zeros(M)
    matvec(W, x, b, y)
    matvec._call_checked_in_python((W, x, b, y2))
    np.testing.assert_array_equal(y, y2)


def test_rank0_buffer():
    f = compile_module(load("sum_rank0", "f32", N=3), "total")
    s = np.zeros((), dtype=np.float32)
    f(np.ones(3, dtype=np.float32), s)
    assert s == 3.0
    with pytest.raises(ShapeError):
        f(np.ones(3, dtype=np.float32), np.zeros(1, dtype=np.float32))


def test_threads_share_the_function_safely():
    f = compile_module(load("calls", "f64", N=64), "entry")  # uses the workspace
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal(64), rng.standard_normal(64)
    t = 2 * x + y
    want = t * t + 1
    failures = []

    def worker():
        out, d = np.zeros(64), np.zeros(())
        for _ in range(300):
            f(x, y, out, d)
            if not np.allclose(out, want, rtol=1e-12):
                failures.append(out.copy())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert failures == []


def test_fast_path_decisions(matvec, args):
    """What the native check accepts (0: ran) and declines (1: Python decides)."""
    import pickle

    W, x, b, y = args
    assert matvec.checked_call((W, x, b, y)) == 0
    # Unpickled arrays carry an equal but distinct dtype object: still fast.
    W2, x2 = pickle.loads(pickle.dumps((W, x)))
    assert W2.dtype is not W.dtype
    assert matvec.checked_call((W2, x2, b, y)) == 0
    np.testing.assert_allclose(y, W @ x + b, rtol=1e-12)
    # Declined: byte-swapped dtype, wrong arity, a subclass, a non-array.
    assert matvec.checked_call((W, x.astype(">f8"), b, y)) == 1
    assert matvec.checked_call((W, x, b)) == 1

    class Tagged(np.ndarray):
        pass

    assert matvec.checked_call((W, x, b, y.view(Tagged))) == 1
    assert matvec.checked_call((W, x, b, [0.0] * M)) == 1
    assert matvec.checked_call((W, x, b.astype(np.float32), y)) == 1


def test_zero_size_buffers():
    f = compile_module(load("matvec", "f64", M=3, K=0), "matvec")
    W, x, b, y = np.zeros((3, 0)), np.zeros(0), np.arange(3.0), np.full(3, 5.0)
    f(W, x, b, y)
    np.testing.assert_array_equal(y, b)  # an empty sum leaves y = b
    g = compile_module(load("add", "f64", N=0), "add")
    empty = np.zeros(0)
    g(empty, empty, empty)  # empty buffers cannot overlap anything
    with pytest.raises(ShapeError):
        g(empty, empty, np.zeros(1))
