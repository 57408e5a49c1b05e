"""LLVM's diagnostics are captured, never printed; forced loops LLVM did not vectorise are named.

Regression (issue 18, item 9): compiling a 784-256-128-10 train step at batch 64
printed "warning: <unknown>:0:0: loop not vectorized: ..." twice on the user's
stderr (two transposes forced with `llvm.loop.vectorize.enable` that LLVM could
not vectorise). Now the text is kept on the compiled object (`llvm_remarks`), the
loops are named (`loops_not_vectorized`), and the programs below must have none:
a forced loop that does not vectorise is a performance bug this file reports by name.
"""

from __future__ import annotations

import numpy as np
import pytest
from backend_programs import load

import raster_mlir as rm
from raster_mlir import nn
from raster_mlir.backend import clear_memory_cache, compile_module
from raster_mlir.backend.cache import load_or_compile
from raster_mlir.backend.jit import optimize_and_codegen
from raster_mlir.backend.llvm_remarks import loops_not_vectorized
from raster_mlir.backend.target import host_target
from raster_mlir.apps.raster_opt import raster_opt_main

# a[i + 1] = 2 * a[i]: a true loop-carried dependence, forced anyway, and named like the emitter does.
UNVECTORIZABLE = """
define void @carried(ptr noalias %a) {
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %next, %loop ]
  %p = getelementptr double, ptr %a, i64 %i
  %v = load double, ptr %p
  %w = fmul double %v, 2.0
  %next = add i64 %i, 1
  %q = getelementptr double, ptr %a, i64 %next
  store double %w, ptr %q
  %done = icmp eq i64 %next, 1000
  br i1 %done, label %exit, label %loop, !llvm.loop !0
exit:
  ret void
}
!0 = distinct !{!0, !1, !2}
!1 = !{!"llvm.loop.vectorize.enable", i1 true}
!2 = !{!"raster.loop", !"@carried forced loop 1: a[i + 1] = 2 a[i]"}
"""


def test_llvm_warnings_are_captured_and_the_loop_is_named(capfd, private_cache_dir):
    compiled = optimize_and_codegen(UNVECTORIZABLE, host_target())
    out, err = capfd.readouterr()
    assert err == "" and out == "", "LLVM printed to the process's stdout/stderr"
    assert any("loop not vectorized" in r for r in compiled.llvm_remarks), compiled.llvm_remarks
    assert loops_not_vectorized(compiled.llvm_ir_optimized) == ["@carried forced loop 1: a[i + 1] = 2 a[i]"]
    # The remarks survive the disk cache: a hit runs no LLVM pass, so they are stored with the object.
    first = load_or_compile(UNVECTORIZABLE, host_target())
    clear_memory_cache()
    again = load_or_compile(UNVECTORIZABLE, host_target())
    assert (first.source, again.source) == (None, "disk")
    assert again.module.llvm_remarks == first.module.llvm_remarks == compiled.llvm_remarks
    assert again.module.loops_not_vectorized == ["@carried forced loop 1: a[i + 1] = 2 a[i]"]


def test_a_vectorised_forced_loop_is_not_reported():
    f = compile_module(load("matvec", "f64", M=16, K=33), "matvec")
    assert '!"raster.loop"' in f.llvm_ir  # the inner loop is forced and named
    assert "<8 x double>" in f.llvm_ir_optimized or "<4 x double>" in f.llvm_ir_optimized
    assert f.loops_not_vectorized == [] and not f.llvm_remarks


def mlp3(W1, b1, W2, b2, W3, b3, x, y):
    h = nn.relu(nn.dense(W2, nn.relu(nn.dense(W1, x, b1)), b2))
    loss, _ = nn.softmax_cross_entropy(nn.dense(W3, h, b3), y)
    return loss


def mlp3_args(batch, dtype, sizes=(784, 256, 128, 10), seed=0):
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        params += [rng.normal(0, 0.05, (n_out, n_in)).astype(dtype), np.zeros(n_out, dtype)]
    shape = (batch, sizes[0]) if batch else (sizes[0],)
    x = rng.random(shape).astype(dtype)
    y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], batch or 1)]
    return params, x, y if batch else y[0]


def assert_every_forced_loop_vectorised(compiled, what):
    assert compiled.loops_not_vectorized == [], f"{what}: forced loops LLVM did not vectorise (a performance bug)"
    assert not [r for r in compiled.llvm_remarks if r.startswith("warning")], compiled.llvm_remarks


@pytest.mark.parametrize("batch, dtype", [(64, np.float64), (0, np.float32)], ids=["batch64-f64", "sample-f32"])
def test_reported_train_step_compiles_without_warnings(capfd, batch, dtype):
    params, x, y = mlp3_args(batch, dtype)
    step = rm.compile_train_step(mlp3, params=range(6), optimizer=rm.optim.SGD(lr=0.01))
    step(*params, x, y)
    assert capfd.readouterr().err == ""
    assert_every_forced_loop_vectorised(step, f"784-256-128-10 train step, batch {batch}, {dtype.__name__}")


def test_other_programs_have_no_forced_loop_left_scalar(capfd):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((33, 17)), rng.standard_normal((17, 9))
    programs = {
        "matmul, transpose, softmax": (lambda a, b: rm.sum(nn.softmax(a @ b) * (a @ b)) + rm.sum(a.T), (a, b)),
        "broadcasting and reductions": (lambda a: rm.max(a, axis=0) + rm.mean(a * rm.sum(a, axis=0, keepdims=True), axis=0), (a,)),
        "their gradients": (rm.grad(lambda a, b: rm.sum(nn.tanh(a @ b).T @ a)), (a, b)),
    }
    for what, (fn, args) in programs.items():
        assert_every_forced_loop_vectorised(rm.compile(fn, *args), what)
    params, x, y = mlp3_args(0, np.float64, sizes=(20, 12, 8, 3))
    step = rm.compile_train_step(mlp3, params=range(6), optimizer=rm.optim.Adam())
    step.run(*params, np.stack([x] * 5), np.stack([y] * 5))
    assert_every_forced_loop_vectorised(step, "Adam step")
    assert_every_forced_loop_vectorised(step._last_loop.function, "Adam data loop")
    assert capfd.readouterr().err == ""


def test_raster_opt_prints_the_remarks_on_request(tmp_path, capsys):
    path = tmp_path / "matvec.mlir"
    path.write_text(str(load("matvec", "f64", M=8, K=8)))
    assert raster_opt_main([str(path), "-p", "", "--print-llvm-remarks"]) == 0
    out, err = capsys.readouterr()
    assert "// -----// LLVM remarks //----- //" in err and "func.func @matvec" in out
    assert raster_opt_main([str(path), "-p", ""]) == 0
    assert "LLVM remarks" not in capsys.readouterr().err
