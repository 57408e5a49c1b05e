"""The work of every pass of the default pipeline, of verification and of the backend's emitter grows linearly.

Work is counted deterministically, never timed: the number of Python function
calls (Python and built-in, `sys.setprofile`) made while one pass runs, divided
by the ops of the module it receives. A pass that re-analyses the module per op
(or per pair of loops) makes O(n) calls per op; a linear pass makes about the
same number per op at every size. Programs of about 10, 100 and 1,000 traced
ops go through the pipeline one pass at a time; the calls per op at 1,000 may
exceed the calls per op at 10 or 100 by GROWTH_ALLOWANCE only (a quadratic pass
grows 10x per step). `test_pass_scaling.py` has fuse-loops' own work measure.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from helpers import count_calls, unrolled_spring as spring
from xdsl.dialects.builtin import ModuleOp, TensorType, f64

import raster_mlir as rm
from raster_mlir import nn
from raster_mlir.backend.llvm_emit import EmitOptions, emit_module
from raster_mlir.compiler import DEFAULT_PIPELINE, make_context
from raster_mlir.frontend.tracer import ModuleTrace
from raster_mlir.passes.registry import parse_pipeline
from raster_mlir.verifier import verify_module

GROWTH_ALLOWANCE = 1.6  # calls per op may grow by this factor from the smaller sizes to the largest
EMITTER = "LLVM IR emission"
VERIFIER = "verification of the final module"


def ops_of(module: ModuleOp) -> int:
    return sum(1 for _ in module.walk())


def calls_per_op(module: ModuleOp, spec: str, entry: str | None) -> dict[str, float]:
    """Run the passes of `spec` over `module` one at a time: {pass label: calls per op of its input}.

    Then the final module is verified (row VERIFIER) and, with `entry`, the backend emits its
    LLVM IR (row EMITTER).
    """
    ctx = make_context()
    work: dict[str, float] = {}
    for i, p in enumerate(parse_pipeline(spec).passes):
        n = ops_of(module)
        work[f"{i:02d} {p.name}"] = count_calls(lambda: p.apply(ctx, module)) / n
    n = ops_of(module)
    work[VERIFIER] = count_calls(lambda: verify_module(module)) / n
    if entry is not None:
        work[EMITTER] = count_calls(lambda: emit_module(module, [entry], EmitOptions())) / n
    return work


def traced(fn, shapes) -> ModuleOp:
    trace = ModuleTrace()
    trace.trace_function(fn, "f", [TensorType(f64, s) for s in shapes])
    return trace.module


def assert_linear(work_by_size: dict[int, dict[str, float]]) -> None:
    sizes = sorted(work_by_size)
    largest, smaller = sizes[-1], sizes[:-1]
    grown = {}
    for label, per_op in work_by_size[largest].items():
        baseline = min(work_by_size[s][label] for s in smaller)
        grown[label] = per_op / baseline if baseline else float("inf")
    too_much = {label: round(g, 2) for label, g in grown.items() if g > GROWTH_ALLOWANCE}
    assert not too_much, (too_much, work_by_size)


@pytest.mark.parametrize("differentiate", [False, True], ids=["value", "grad"])
def test_every_pass_and_the_emitter_do_linear_work(differentiate):
    """inline, autodiff, forward-ad, canonicalize, cse, dce, lower-to-loops, fuse-loops, fuse-epilogues,
    skip-zero-updates, skip-zero-chunks, parallelize-loops, the verifier and the LLVM IR emitter."""
    work = {}
    for size in (10, 100, 1000):
        fn = spring(max(1, size // 6))
        module = traced(rm.grad(fn, argnums=(0, 1)) if differentiate else fn, [(64,), (64,)])
        work[size] = calls_per_op(module, DEFAULT_PIPELINE, "f")
    assert_linear(work)


def deep_mlp_loss(layers: int):
    """A dense network of `layers` layers (tanh between them) and its cross-entropy loss."""

    def loss(*args):
        h, y = args[-2], args[-1]
        for i in range(layers):
            h = nn.dense(args[2 * i], h, args[2 * i + 1])
            h = rm.tanh(h) if i < layers - 1 else h
        return nn.cross_entropy(nn.softmax(h), y)

    return loss


def test_data_loop_and_defer_updates_do_linear_work(monkeypatch, tmp_path):
    """The passes of a train step's data loop (`step.run`): data-loop, defer-updates and the loop passes."""
    monkeypatch.setenv("RASTER_MLIR_CACHE_DIR", str(tmp_path))
    rng = np.random.default_rng(0)
    n_in, width, n_out, samples = 6, 4, 3, 3  # (a first layer of its own shape: its update is not fused with others)
    work = {}
    for layers in (1, 3, 18):  # step modules of about 90, 200 and 1,070 ops
        sizes = [n_in] + [width] * (layers - 1) + [n_out]
        params = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            params += [rng.standard_normal((fan_out, fan_in)) * 0.3, np.zeros(fan_out)]
        x = rng.random((samples, n_in))
        y = np.eye(n_out)[rng.integers(0, n_out, samples)]
        step = rm.compile_train_step(deep_mlp_loss(layers), params=tuple(range(2 * layers)), optimizer=rm.optim.SGD(lr=0.1))
        step.run(*params, x, y, epochs=0, update_block=2)  # compiles the loop: its pipeline is the one measured
        loop = step._last_loop
        assert loop.schedule.startswith("defer-updates"), loop.schedule  # defer-updates is among the passes
        work[layers] = calls_per_op(loop._step_module().clone(), loop.spec, loop.entry)
    assert_linear(work)
