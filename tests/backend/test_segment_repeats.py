"""Segment cuts that follow repeated top-level ops (segment_repeats.py) and the emission order of
segments (segment_emit.emission_order)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from raster_mlir.backend import segment_repeats
from raster_mlir.backend.segment_repeats import plan_with_repeats

from test_segment_dedup import COMPILED_SEGMENT, SEGMENT, SEGMENT_CALL, trained


def fake_ops(kinds: str, weights: dict[str, int]):
    """Top-level ops standing for `kinds` (one letter each: the same letter, the same structure)."""
    return [SimpleNamespace(name=f"op.{kind}", kind=kind) for kind in kinds], [weights[k] for k in kinds]


def cut(kinds: str, weights: dict[str, int], segment_ops: int, monkeypatch) -> list[str]:
    monkeypatch.setattr(segment_repeats, "signature", lambda op: op.kind)
    ops, w = fake_ops(kinds, weights)
    groups, copy_of = plan_with_repeats(ops, w, segment_ops)
    for group, first in zip(groups, copy_of):
        if first is not None:  # a copy of the repeat's first group
            assert [op.kind for op in group] == [op.kind for op in groups[first]]
    return ["".join(op.kind for op in group) for group in groups]


def greedy(kinds: str, weights: dict[str, int], segment_ops: int) -> list[str]:
    """The cuts before segment_repeats: every `segment_ops` nested ops, a small tail joins the last group."""
    groups, current, weight = [], "", 0
    for kind in kinds:
        current += kind
        weight += weights[kind]
        if weight >= segment_ops:
            groups.append(current)
            current, weight = "", 0
    if current:
        if groups and weight < segment_ops // 2:
            groups[-1] += current
        else:
            groups.append(current)
    return groups


def test_repeated_layers_are_cut_into_identical_groups(monkeypatch):
    # a train step's shape: a prologue, six identical forward layers, the loss, five identical
    # backward pairs, then the parameter update
    weights = {"P": 47, "F": 13, "G": 12, "L": 7, "B": 18, "b": 12, "U": 194}
    got = cut("PFFFFFFGLBbBbBbBbBbBU", weights, 40, monkeypatch)
    assert got == ["P", "FF", "FF", "FF", "GL", "Bb", "Bb", "Bb", "Bb", "Bb", "BU"]
    before = greedy("PFFFFFFGLBbBbBbBbBbBU", weights, 40)  # ['P', 'FFFF', 'FFGL', 'BbB', 'bBb', 'BbB', 'bBU']
    distinct = lambda groups: sum(weights[k] for g in set(groups) for k in g)  # noqa: E731  (what LLVM compiles)
    assert (distinct(before), distinct(got)) == (458, 334)  # the update U (194) is compiled either way


def test_repeats_too_small_for_two_segments_are_cut_as_before(monkeypatch):
    weights = {"a": 1, "x": 3, "F": 13}
    for kinds in ("axaxaxaxFxaxa", "FFxxxxxxx", "aaaaaaaaaa", "FxFxF"):
        assert cut(kinds, weights, 40, monkeypatch) == greedy(kinds, weights, 40)


@settings(deadline=None)
@given(st.text(alphabet="abcde", min_size=0, max_size=60), st.integers(1, 60))
def test_the_groups_are_the_ops_in_order_and_repeats_are_alike(kinds, segment_ops):
    weights = dict(zip("abcde", (1, 3, 7, 13, 40)))
    ops, w = fake_ops(kinds, weights)
    original = segment_repeats.signature
    segment_repeats.signature = lambda op: op.kind
    try:
        groups, copy_of = plan_with_repeats(ops, w, segment_ops)
    finally:
        segment_repeats.signature = original
    assert [op for group in groups for op in group] == ops  # a partition, in order
    assert all(groups)
    for k, first in enumerate(copy_of):  # copies are alike, and each repeat has two at least
        if first is not None:
            assert [op.kind for op in groups[k]] == [op.kind for op in groups[first]]
            assert copy_of.count(first) >= 2 and copy_of[first] == first
    # without any repeat of a letter the cuts are the old ones
    if len(set(kinds)) == len(kinds):
        assert ["".join(op.kind for op in g) for g in groups] == greedy(kinds, weights, segment_ops)


def test_signature_ignores_which_buffers_and_tells_other_constants_apart():
    from xdsl.dialects import arith, func
    from xdsl.dialects.builtin import Float64Type, IndexType, MemRefType, ModuleOp
    from xdsl.dialects import memref, scf
    from xdsl.ir import Block, Region

    f64, index = Float64Type(), IndexType()
    buf = MemRefType(f64, [8])
    block = Block(arg_types=[buf, buf, buf, buf])
    zero, one, eight, seven = (arith.ConstantOp.from_int_and_width(v, index) for v in (0, 1, 8, 7))
    block.add_ops([zero, one, eight, seven])

    def copy_loop(src, dst, upper):
        body = Block(arg_types=[index])
        load = memref.LoadOp.get(src, [body.args[0]])
        body.add_ops([load, memref.StoreOp.get(load.res, dst, [body.args[0]]), scf.YieldOp()])
        return scf.ForOp(zero.result, upper.result, one.result, [], Region(body))

    a, b, c, d = block.args
    loops = [copy_loop(a, b, eight), copy_loop(c, d, eight), copy_loop(a, b, seven)]
    block.add_ops([*loops, func.ReturnOp()])
    ModuleOp([func.FuncOp("f", ((buf,) * 4, ()), Region(block))])
    first, other_buffers, other_trip_count = map(segment_repeats.signature, loops)
    assert first == other_buffers
    assert first != other_trip_count


def test_a_deep_train_step_compiles_each_repeated_layer_once_with_the_same_results(monkeypatch, tmp_path):
    apart, want, want_losses = trained(False, monkeypatch, tmp_path, layers=8)
    merged, got, losses = trained(True, monkeypatch, tmp_path, layers=8)
    compiled = COMPILED_SEGMENT.findall(merged.llvm_ir_optimized)
    assert sorted(compiled) == sorted(SEGMENT.findall(merged.llvm_ir))  # each kept one compiled once
    np.testing.assert_array_equal(losses, want_losses)  # bitwise: the same code
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    # two more identical hidden layers: more calls, no more compiled code
    shallower, _, _ = trained(True, monkeypatch, tmp_path, layers=6, steps=1)
    assert len(SEGMENT_CALL.findall(merged.llvm_ir)) > len(SEGMENT_CALL.findall(shallower.llvm_ir))
    assert len(compiled) == len(COMPILED_SEGMENT.findall(shallower.llvm_ir_optimized))


def test_segments_are_numbered_in_the_block_order_and_emitted_heaviest_first(monkeypatch, tmp_path):
    step, _, _ = trained(True, monkeypatch, tmp_path, layers=3)
    text = step.llvm_ir
    called = [int(n) for n in re.findall(r'call [^@]*@"\w+\.segment(\d+)"\(', text)]
    assert called == sorted(called)  # the kernel calls them in the block's order, numbered so
    defined = [int(n) for n in re.findall(r'^define internal [^@]*@"\w+\.segment(\d+)"\(', text, re.M)]
    assert sorted(defined) == sorted(set(called)) and defined != sorted(defined)  # not emitted in that order


DIGEST = """
import hashlib, sys
sys.path.insert(0, sys.argv[1])
import test_segment_dedup as t
class MP:
    def setattr(self, obj, name, value): setattr(obj, name, value)
    def setenv(self, name, value): __import__("os").environ.__setitem__(name, value)
from pathlib import Path
step, _, _ = t.trained(True, MP(), Path(sys.argv[2]), layers=8, steps=1)
print(hashlib.sha256((step.llvm_ir + step.llvm_ir_optimized).encode()).hexdigest())
"""


def test_cuts_and_merges_are_the_same_in_two_fresh_processes(tmp_path):
    tests = Path(__file__).resolve().parent
    digests = []
    for k in range(2):
        env = {**os.environ, "RASTER_MLIR_NUM_THREADS": "2"}
        out = subprocess.run(
            [sys.executable, "-c", DIGEST, str(tests), str(tmp_path / f"run{k}")],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        digests.append(out.stdout.strip())
    assert digests[0] == digests[1]


def test_verified_copies_of_a_repeat_are_not_emitted_and_change_no_code(monkeypatch, tmp_path):
    from raster_mlir.backend import segment_emit
    from raster_mlir.backend.segment_dedup import SegmentDedup

    import raster_mlir as rm

    def objects_of(step, params):
        x, y = rm.aligned(np.zeros(40)), rm.aligned(np.eye(5)[2])  # the shapes `trained` uses
        return list(step.lower(*params, x, y).native.function._jit._compiled.objects)

    compared = []
    same_as = SegmentDedup.same_as
    monkeypatch.setattr(SegmentDedup, "same_as", lambda self, fn, text: compared.append(fn.name) or same_as(self, fn, text))
    results = {}
    for skip in (False, True):
        monkeypatch.setattr(segment_emit, "SKIP_VERIFIED_REPEATS", skip)
        compared.clear()
        step, params, losses = trained(True, monkeypatch, tmp_path / str(skip), layers=8)
        results[skip] = (len(compared), objects_of(step, params), losses, params, SEGMENT_CALL.findall(step.llvm_ir))
    (emitted_all, objects_all, losses_all, params_all, calls_all) = results[False]
    (emitted, objects, losses, params, calls) = results[True]
    assert emitted <= emitted_all - 4  # the third and later copies of the six hidden layers: not emitted
    assert calls == calls_all  # every segment calls the same function as when all were emitted
    assert objects == objects_all  # the same object code
    np.testing.assert_array_equal(losses, losses_all)
    for g, w in zip(params, params_all):
        np.testing.assert_array_equal(g, w)


def test_each_signature_is_made_once_and_only_for_ops_with_a_twin_of_their_name_and_size(monkeypatch):
    made = []
    monkeypatch.setattr(segment_repeats, "signature", lambda op: made.append(op) or op.kind)
    kinds = "".join("abcdefghij"[k % 10] for k in range(3000)) + "xyz"  # a long repeat of 10 ops, 3 singles
    ops, w = fake_ops(kinds, {**dict.fromkeys("abcdefghij", 1), "x": 5, "y": 6, "z": 7})
    groups, copy_of = plan_with_repeats(ops, w, 40)
    assert len(made) == 3000  # x, y, z: alone of their name and size
    assert len(set(map(id, made))) == len(made)
    assert sum(first is not None for first in copy_of) >= 2
