"""raster_mlir's cse, dce and canonicalize's dead-code sweep (passes/cse.py, dce.py, op_facts.py)
give exactly the IR of xDSL's own, at every stage of a few programs: tensor-level IR, loop-level
IR with memref reads and writes (effects computed per op: the xDSL paths) and nested regions."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.parser import Parser
from xdsl.transforms.common_subexpression_elimination import cse as xdsl_cse
from xdsl.transforms.dead_code_elimination import region_dce as xdsl_region_dce

import raster_mlir as rm
from raster_mlir import nn
from raster_mlir.compiler import make_context, print_module
from raster_mlir.passes.cse import KeyedCSEDriver
from raster_mlir.passes.dce import region_dce

from helpers import unrolled_spring


def duplicated(x, w):
    a = rm.exp(x @ w) * 2.0
    b = rm.exp(x @ w) * 2.0
    unused = rm.sin(a)  # noqa: F841 - dead on purpose
    return rm.sum(nn.relu(a + b)) + rm.sum(rm.fori_loop(0, 3, lambda i, y: y * 0.5 + rm.exp(y), x))


def branches(x, w):
    return rm.cond(rm.sum(x) > 1.0, lambda y: rm.sum(rm.exp(y) * rm.exp(y)), lambda y: rm.sum(y @ w), x)


PROGRAMS = [
    ("duplicated", rm.grad(duplicated, argnums=(0, 1))),
    ("branches", rm.value_and_grad(branches)),
    ("spring", rm.grad(unrolled_spring(4))),
]


def stages(fn, *args) -> dict[str, str]:
    compiled = rm.compile(fn, *args)
    return {stage: compiled.ir(stage) for stage in compiled.stages}


def parse(text: str):
    return Parser(make_context(), text).parse_module()


@pytest.mark.parametrize("name,fn", PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_same_ir_as_xdsl_at_every_stage(name, fn):
    rng = np.random.default_rng(0)
    args = (rng.random(3), rng.random((3, 3))) if name != "spring" else (rng.random(8), rng.random(8))
    for stage, text in stages(fn, *args).items():
        theirs, ours = parse(text), parse(text)
        xdsl_cse(theirs)
        KeyedCSEDriver().simplify(ours)
        assert print_module(ours) == print_module(theirs), f"cse differs after {stage}"
        assert region_dce(ours.body) == xdsl_region_dce(theirs.body)
        assert print_module(ours) == print_module(theirs), f"dce differs after {stage}"


@pytest.mark.parametrize("name,fn", PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_canonicalize_same_ir_as_xdsl_and_no_dead_code_sweep_after_a_quiet_sweep(name, fn, monkeypatch):
    """Our canonicalize (greedy.PatternWalker) gives xDSL's IR at every stage, and sweeps for dead
    code after the first pattern sweep and after each one that changed something, not after the
    last (which changed nothing: the IR is what the previous dead-code sweep left)."""
    from xdsl.transforms.canonicalize import CanonicalizePass as XdslCanonicalize

    from raster_mlir.passes import canonicalize, greedy

    dce_sweeps, pattern_sweeps = [], []
    monkeypatch.setattr(
        canonicalize, "region_dce", lambda region, listener=None: dce_sweeps.append(1) or region_dce(region, listener)
    )
    real_process = greedy.PatternWalker._process_worklist
    monkeypatch.setattr(
        greedy.PatternWalker, "_process_worklist", lambda self, listener: pattern_sweeps.append(1) or real_process(self, listener)
    )
    rng = np.random.default_rng(0)
    args = (rng.random(3), rng.random((3, 3))) if name != "spring" else (rng.random(8), rng.random(8))
    for stage, text in stages(fn, *args).items():
        theirs, ours = parse(text), parse(text)
        XdslCanonicalize().apply(make_context(), theirs)
        dce_sweeps.clear()
        pattern_sweeps.clear()
        canonicalize.CanonicalizePass().apply(make_context(), ours)
        assert print_module(ours) == print_module(theirs), f"canonicalize differs after {stage}"
        assert len(dce_sweeps) == max(1, len(pattern_sweeps) - 1), stage
