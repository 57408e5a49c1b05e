"""The compile cache taken before the pass pipeline (compile_cache.py): a warm compile is trace, hash, load.

Each test gets its own cache directory. Fresh processes check what a user
sees on a second run: no pass runs, the numbers are the same, and every
inspection (IR stages, LLVM IR, the reference interpreter, data loops)
still works, recomputed on demand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir import compile_cache, nn
from raster_mlir.backend import cache_store, dispatch
from raster_mlir.dialects import raster as R
from raster_mlir.dialects.raster_rules import DEFAULT_RULES, register_rule_set
from raster_mlir.passes.loop_analysis import WORK

CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import raster_mlir as rm
    from raster_mlir import nn
    from raster_mlir.passes.loop_analysis import WORK

    def loss(W1, b1, W2, b2, x, y):
        h = nn.relu(nn.dense(W1, x, b1))
        return nn.cross_entropy(nn.softmax(nn.dense(W2, h, b2)), y)

    rng = np.random.default_rng(0)
    params = [rng.standard_normal((16, 8)) * 0.3, np.zeros(16), rng.standard_normal((4, 16)) * 0.3, np.zeros(4)]
    x, y = rng.standard_normal(8), np.eye(4)[1]
    step = rm.compile_train_step(loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.1))
    first = step(*params, x, y)
    c = step.lower(*params, x, y)
    report = step.timing_report()
    facts = {
        "source": c.cache_source,
        "passes": list(c.pass_seconds),
        "ops_analysed": WORK.ops_visited,
        "report": report,
        "loss": first,
        "params": [p.tolist() for p in params],
    }
    xs, ys = rng.standard_normal((6, 8)), np.eye(4)[rng.integers(0, 4, 6)]
    facts["run"] = step.run(*params, xs, ys).tolist()
    facts["schedule"] = step.run_schedule
    facts["run_report"] = step.run_timing_report()
    if "inspect" in sys.argv:
        facts["stages"] = {s: step.ir(s) for s in step.stages}
        facts["llvm_ir"] = step.llvm_ir
        facts["run_ir"] = step.run_ir("after:fuse-loops")
    print(json.dumps(facts))
    """
)


@pytest.fixture(autouse=True)
def fresh_memory_level():
    """The in-process level outlives a test's cache directory: start each test without it."""
    rm.clear_cache(disk=False)
    yield
    rm.clear_cache(disk=False)


def run_child(cache: Path, *flags: str) -> dict:
    env = dict(os.environ, RASTER_MLIR_CACHE_DIR=str(cache))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *flags], capture_output=True, text=True, env=env, timeout=600
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def pass_rows(report: str) -> list[str]:
    names = [line.split("%  ")[-1] for line in report.splitlines() if "%  " in line]
    passes = {"inline", "autodiff", "canonicalize", "cse", "dce", "lower-to-loops", "fuse-loops", "data-loop"}
    return [n for n in names if n.split("#")[0] in passes]


def test_warm_compile_in_a_fresh_process_runs_no_pass(tmp_path):
    cold = run_child(tmp_path)
    assert cold["source"] is None and "fuse-loops" in cold["passes"] and cold["ops_analysed"] > 0
    assert pass_rows(cold["report"]) and pass_rows(cold["run_report"])
    # The first compile of a process shows what it pays outside the passes (raster_mlir/gc_pause.py).
    assert "imports of the passes (first compile of a process)" in cold["report"]
    assert "garbage collection after the compile" in cold["report"]
    warm = run_child(tmp_path)
    assert warm["source"] == "disk"
    assert warm["passes"] == [] and warm["ops_analysed"] == 0  # no pass, no loop analysis ran
    assert pass_rows(warm["report"]) == [] and pass_rows(warm["run_report"]) == []
    assert "cache lookup" in warm["report"] and "trace" in warm["report"]
    assert "imports of the passes" not in warm["report"]  # a warm start imports no pass module
    # The same numbers: the step, its in-place update, and a data loop loaded from the cache.
    assert warm["loss"] == cold["loss"] and warm["params"] == cold["params"]
    assert warm["run"] == cold["run"] and warm["schedule"] == cold["schedule"]


def test_inspection_after_a_cache_hit_is_the_compile_s_ir(tmp_path):
    cold = run_child(tmp_path, "inspect")
    warm = run_child(tmp_path, "inspect")
    assert warm["source"] == "disk"
    assert warm["stages"] == cold["stages"]  # every stage, re-computed by re-running the pipeline
    assert warm["llvm_ir"] == cold["llvm_ir"]
    assert warm["run_ir"] == cold["run_ir"]


def model(x, w):
    return rm.sum(rm.tanh(x * w) * x)


def test_memory_hit_then_disk_hit_in_process(tmp_path, monkeypatch):
    monkeypatch.setenv("RASTER_MLIR_CACHE_DIR", str(tmp_path))
    x, w = np.linspace(-1, 1, 7), np.full(7, 0.5)
    cold = rm.compile(model, x, w)
    assert cold.cache_source is None
    warm = rm.compile(model, x, w)
    assert warm.cache_source == "memory" and warm.pass_seconds == {}
    rm.clear_cache(disk=False)
    again = rm.compile(model, x, w)
    assert again.cache_source == "disk"
    for c in (cold, warm, again):
        assert c(x, w) == pytest.approx(float(np.sum(np.tanh(x * w) * x)), rel=1e-12)
    # Inspection on the hit re-runs the pipeline: same IR, reference interpreter works.
    assert again.ir() == cold.ir() and again.ir("after:lower-to-loops") == cold.ir("after:lower-to-loops")
    assert again.run_reference(x, w) == pytest.approx(cold(x, w), rel=1e-12)
    assert again.llvm_ir == cold.llvm_ir and "ret" in again.asm


def test_replayed_stages_equal_the_stages_printed_while_compiling(tmp_path, monkeypatch):
    monkeypatch.setenv("RASTER_MLIR_CACHE_DIR", str(tmp_path))
    x, w = np.linspace(-1, 1, 7), np.full(7, 0.5)
    printed = rm.compile(rm.grad(model), x, w, dump_dir=tmp_path / "dump")
    replayed = rm.compile(rm.grad(model), x, w)  # not a hit (dumps bypass the cache), nothing printed
    assert printed.pipeline.stages and replayed.pipeline.stages == {}
    for stage in printed.stages:
        assert replayed.ir(stage) == printed.ir(stage), stage


def test_key_changes_with_what_changes_the_code(tmp_path, monkeypatch):
    monkeypatch.setenv("RASTER_MLIR_CACHE_DIR", str(tmp_path))
    x, w = np.linspace(-1, 1, 7), np.full(7, 0.5)
    assert rm.compile(model, x, w).cache_source is None
    assert rm.compile(model, x, w).cache_source == "memory"
    # Another signature, pipeline, environment setting or constant: a miss.
    assert rm.compile(model, x.astype(np.float32), w.astype(np.float32)).cache_source is None
    assert rm.compile(model, x, w, pipeline="inline,lower-to-loops").cache_source is None
    monkeypatch.setenv("RASTER_MLIR_SOME_OPTION", "1")
    assert rm.compile(model, x, w).cache_source is None
    monkeypatch.delenv("RASTER_MLIR_SOME_OPTION")
    scale = np.array([1.0, 2.0, 3.0])

    def scaled(v):
        return rm.sum(v * scale)

    v = np.ones(3)
    assert rm.compile(scaled, v)(v) == 6.0
    scale[2] = 4.0  # a captured array is a constant of the trace
    c = rm.compile(scaled, v)
    assert c.cache_source is None and c(v) == 7.0


def test_a_changed_rule_set_is_a_different_compile(tmp_path, monkeypatch):
    monkeypatch.setenv("RASTER_MLIR_CACHE_DIR", str(tmp_path))
    x = np.linspace(0.1, 1, 5)
    before = compile_cache.function_key(rm.compile(model, x, x, pipeline="").traced, "inline,autodiff", "")
    mine = DEFAULT_RULES.copy("test-compile-cache-rules")

    @mine.register(R.TanhOp)
    def tanh_surrogate(b, op, cts):
        return [cts[0]]

    register_rule_set(mine)
    try:
        after = compile_cache.function_key(rm.compile(model, x, x, pipeline="").traced, "inline,autodiff", "")
    finally:
        from raster_mlir.dialects import raster_rules

        raster_rules._RULE_SETS.pop("test-compile-cache-rules")
    assert before is not None and after is not None and before != after


def test_extension_without_source_file_skips_the_cache():
    namespace = {}
    exec("def rule(b, op, cts):\n    return [cts[0]]\n", namespace)  # no file behind it
    assert compile_cache.code_identity(namespace["rule"]) is None
    assert compile_cache.code_identity(model) is not None


def test_dumps_and_the_off_switch_bypass_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RASTER_MLIR_CACHE_DIR", str(tmp_path))
    x, w = np.ones(4), np.ones(4)
    rm.compile(model, x, w)
    assert rm.compile(model, x, w, print_ir_after=["inline"]).cache_source is None
    monkeypatch.setenv("RASTER_MLIR_CACHE", "0")
    assert rm.compile(model, x, w).cache_source is None


def test_damaged_or_orphaned_entries_recompile(tmp_path, monkeypatch):
    monkeypatch.setenv("RASTER_MLIR_CACHE_DIR", str(tmp_path))
    x, w = np.ones(4), np.full(4, 0.25)
    rm.compile(model, x, w)
    (function_entry,) = tmp_path.glob("*.rmf")
    function_entry.write_bytes(function_entry.read_bytes()[:-3])
    rm.clear_cache(disk=False)
    c = rm.compile(model, x, w)
    assert c.cache_source is None and c(x, w) == pytest.approx(4 * np.tanh(0.25))
    for obj in tmp_path.glob("*.rmo"):  # the object entry a function entry names was evicted
        obj.unlink()
    rm.clear_cache(disk=False)
    c = rm.compile(model, x, w)
    assert c.cache_source is None and c(x, w) == pytest.approx(4 * np.tanh(0.25))
    rm.clear_cache(disk=False)
    assert rm.compile(model, x, w).cache_source == "disk"


def test_size_bound_evicts_least_recently_used(tmp_path, monkeypatch):
    monkeypatch.setenv("RASTER_MLIR_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("RASTER_MLIR_CACHE_MAX_MB", str(2.5 * 1000 / 2**20))  # room for two 1,000-byte entries
    keys = [f"{k:064x}" for k in range(4)]
    for k, key in enumerate(keys[:2]):
        assert cache_store.write(key, ".rmf", bytes(1000 - cache_store.HEADER.size))
        os.utime(cache_store.entry_path(key, ".rmf"), (1000 + k, 1000 + k))
    assert cache_store.read(keys[0], ".rmf") is not None  # used now: the most recent
    cache_store.write(keys[2], ".rmf", bytes(1000 - cache_store.HEADER.size))
    left = sorted(p.stem for p in tmp_path.glob("*.rmf"))
    assert left == sorted([keys[0], keys[2]])  # keys[1] was the least recently used
    assert cache_store.info()["bytes"] <= cache_store.max_bytes()


def test_clear_cache_api_and_cli(tmp_path, monkeypatch):
    dispatch._get()  # the process's call path module, made once per process: not into this directory
    monkeypatch.setenv("RASTER_MLIR_CACHE_DIR", str(tmp_path))
    rm.compile(model, np.ones(3), np.ones(3))
    info = rm.cache_info()
    assert info["functions"] == 1 and info["objects"] == 1 and info["directory"] == str(tmp_path)
    env = dict(os.environ, RASTER_MLIR_CACHE_DIR=str(tmp_path))
    shown = subprocess.run([sys.executable, "-m", "raster_mlir", "cache", "info"], capture_output=True, text=True, env=env)
    assert shown.returncode == 0 and "1 functions, 1 object files" in shown.stdout
    cleared = subprocess.run([sys.executable, "-m", "raster_mlir", "cache", "clear"], capture_output=True, text=True, env=env)
    assert cleared.returncode == 0 and "removed 2 entries" in cleared.stdout
    assert rm.cache_info()["entries"] == 0
    rm.clear_cache(disk=False)  # this process still holds the code: forget it, so the compile writes again
    assert rm.compile(model, np.ones(3), np.ones(3)).cache_source is None
    assert rm.clear_cache() == 2 and list(tmp_path.glob("*.rm?")) == []


def traced(fn, *args):
    return rm.compile(fn, *args, pipeline="").traced


def test_fingerprint_tells_apart_what_printing_tells_apart():
    from raster_mlir.compiler import print_module
    from raster_mlir.ir_fingerprint import fingerprint

    x, y = np.ones(3), np.full(3, 2.0)

    @rm.jit
    def helper(a):
        return rm.exp(a)

    def with_names(alpha, beta):
        return alpha - beta

    variants = [
        traced(lambda a, b: a - b, x, y),
        traced(lambda a, b: b - a, x, y),  # operand order
        traced(with_names, x, y),  # argument names
        traced(lambda a, b: a * b, x, y),  # op
        traced(lambda a, b: a - b, x.astype(np.float32), y.astype(np.float32)),  # types
        traced(lambda a, b: a - b, np.ones(4), np.ones(4)),  # shapes
        traced(lambda a, b: a * 0.1, x, y),  # a constant
        traced(lambda a, b: a * 0.1000000000000001, x, y),  # the same constant to the last bit but one
        traced(lambda a, b: rm.sum(a * np.array([1.0, 2.0, 3.0])), x, y),  # captured arrays
        traced(lambda a, b: rm.sum(a * np.array([1.0, 2.0, 3.5])), x, y),
        traced(lambda a, b: rm.sum(rm.reshape(a, (3, 1)) * b, axis=0), x, y),  # attributes
        traced(lambda a, b: rm.sum(rm.reshape(a, (3, 1)) * b, axis=1), x, y),
        traced(lambda a, b: helper(a) + b, x, y),  # a call
        traced(lambda a, b: helper(b) + a, x, y),
    ]
    texts = [print_module(m) for m in variants]
    prints = [fingerprint(m) for m in variants]
    for i in range(len(variants)):
        for j in range(len(variants)):
            assert (texts[i] == texts[j]) == (prints[i] == prints[j]), (i, j)
    assert prints[0] == fingerprint(traced(lambda a, b: a - b, x, y))  # and it is deterministic


def test_a_process_scans_the_directory_at_its_first_write_then_when_the_bound_may_be_passed(tmp_path, monkeypatch):
    monkeypatch.setenv("RASTER_MLIR_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("RASTER_MLIR_CACHE_MAX_MB", str(80_000 / 2**20))  # 80,000 bytes: a rescan every 10,000 written
    scans = []
    entries = cache_store._entries
    monkeypatch.setattr(cache_store, "_entries", lambda d: scans.append(d) or entries(d))
    monkeypatch.setattr(cache_store, "_ledger", {})
    payload = bytes(1000 - cache_store.HEADER.size)  # 1,000-byte entries
    keys = iter(f"{k:064x}" for k in range(1000))
    for _ in range(9):
        assert cache_store.write(next(keys), ".rmo", payload)
    assert len(scans) == 1  # the first write only: 8,000 bytes since, not more than an eighth of the bound
    for _ in range(3):
        cache_store.write(next(keys), ".rmo", payload)
    assert len(scans) == 2  # 11,000 bytes written since the first scan: another process may have written too
    for k in range(80):  # another process fills the directory
        (tmp_path / f"{10**6 + k:064x}.rmo").write_bytes(payload + bytes(cache_store.HEADER.size))
        os.utime(tmp_path / f"{10**6 + k:064x}.rmo", (1000 + k, 1000 + k))  # used long ago
    assert cache_store.info()["bytes"] == 92_000
    for _ in range(11):
        cache_store.write(next(keys), ".rmo", payload)
    assert len(scans) == 3 + 1  # (info() scanned once) the rescan saw the other process's entries...
    assert cache_store.info()["bytes"] <= cache_store.max_bytes()  # ...and evicted its oldest ones
    assert rm.clear_cache(memory=False) > 0 and tmp_path not in cache_store._ledger
