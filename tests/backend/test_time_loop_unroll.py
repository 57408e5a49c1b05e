"""Time loops (rm.fori_loop / scan / while) are not unrolled by LLVM; short vectorisable loops
are vectorised before LLVM may unroll them.

Each step depends on the one before, so unrolling gains little at run time, while
fully unrolling a short loop of a vectorised body multiplied LLVM's optimisation
and code-generation time (llvm_emit.loop_metadata)."""

from __future__ import annotations

import re

import numpy as np

import raster_mlir as rm

from helpers import damped_spring, damped_spring_reference


def _vector_multiplies(llvm_ir: str) -> int:
    return sum(1 for line in llvm_ir.splitlines() if " fmul " in line and "x double>" in line)


def test_a_time_loop_keeps_one_body_whatever_its_trip_count():
    args = (np.full(64, 1.5), np.linspace(-1.0, 1.0, 64), np.zeros(64))
    short, long = (rm.compile(damped_spring(n), *args) for n in (4, 12))
    assert '!"llvm.loop.unroll.disable"' in short.llvm_ir
    assert _vector_multiplies(short.llvm_ir_optimized) == _vector_multiplies(long.llvm_ir_optimized) > 0
    np.testing.assert_allclose(long(*args), damped_spring_reference(*args, 12)[0], rtol=1e-13)


def test_loops_without_a_time_loop_may_be_unrolled():
    x = np.arange(1.0, 101.0)
    c = rm.compile(lambda x: rm.sum(x * 2.0 + 1.0), x)
    assert "llvm.loop.unroll.disable" not in c.llvm_ir


def _loop_ids(llvm_ir: str) -> list[str]:
    """The loop ID nodes of a module (`!N = distinct !{ !N, ... }`) with their property nodes spelled out."""
    nodes = dict(re.findall(r"^(!\d+) = (.*)$", llvm_ir, re.M))
    ids = [body for name, body in nodes.items() if body.startswith(f"distinct !{{ {name},")]
    return [" ".join(nodes.get(ref, ref) for ref in re.findall(r"!\d+", body)[1:]) for body in ids]


def test_a_short_loop_is_vectorised_before_it_may_be_unrolled():
    """Unrolled first, the 10 classes were 10 inlined copies of exp and 10 scalar log calls for
    the SLP vectoriser to re-pack; vectorised first, one vector body and a short remainder."""
    rng = np.random.default_rng(0)
    logits, onehot = rng.normal(size=10), np.eye(10)[3]

    def cross_entropy(z, y):
        return -rm.sum(y * rm.log(rm.nn.softmax(z)))

    c = rm.compile(cross_entropy, logits, onehot)
    loops = _loop_ids(c.llvm_ir)
    short = [ids for ids in loops if "10 iterations" in ids]
    first = ["llvm.loop.unroll.disable" in ids and "llvm.loop.vectorize.followup_all" in ids for ids in short]
    assert sum(first) == 2  # the loops of exp (with the sum) and of log
    assert not all(first)  # loops of plain arithmetic (the max, the division) unroll as before
    assert c.loops_not_vectorized == []  # it was vectorised: the followup says so (llvm_remarks.py)
    kernel = re.search(r'^define [^\n]*@"?cross_entropy"?\(.*?^}', c.llvm_ir_optimized, re.M | re.S).group(0)
    assert re.search(r"<\d+ x double>", kernel)
    p = np.exp(logits - logits.max())
    np.testing.assert_allclose(c(logits, onehot), -np.log(p[3] / p.sum()), rtol=1e-14)
    long = rm.compile(cross_entropy, *(np.resize(a, 100) for a in (logits, onehot)))
    assert not any("unroll.disable" in ids for ids in _loop_ids(long.llvm_ir))  # the interleave count stays LLVM's
