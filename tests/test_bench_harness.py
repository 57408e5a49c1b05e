"""The benchmark harness (`python -m bench`): a quick run of a tiny subset, its JSON, its correctness gate.

The subprocess run times only the numpy and raster_mlir per-sample train
steps with few repetitions, plus the deliberately wrong contender that
`--inject-wrong` adds, which the gate must refuse.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.__main__ import GATE_STEPS, Selection, gate_labels, loop_gate
from bench.workloads import Contender, model, numpy_impl


def run_bench(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("bench")
    out = tmp_path / "run.json"
    done = run_bench("--quick", "--only", "numpy,raster_mlir,per_sample", "--inject-wrong", "--json", str(out), tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text()), out.with_suffix(".md").read_text(), done.stdout


def test_json_describes_the_machine_and_settings(quick_run):
    run, _, stdout = quick_run
    assert run["schema"] == "raster_mlir-bench/1"
    assert run["quick"] is True
    machine = run["machine"]
    for key in ("cpu", "cpus", "numpy_blas", "versions", "openblas_environment", "load_average_at_start"):
        assert key in machine
    assert machine["versions"]["raster_mlir"] != "not installed"
    assert machine["cpu"] in stdout  # printed at the top
    assert run["source"]["commit"] and run["started"] <= run["finished"]
    assert run["settings"]["selection"]["implementations"] == ["raster_mlir", "numpy", "numpy_wrong"]
    assert set(run["implementations"]) == {"raster_mlir", "numpy", "numpy_wrong"}


def test_rows_have_gated_timings(quick_run):
    run, _, _ = quick_run
    sections = {s["key"]: s for s in run["sections"]}
    assert sections["scaling"]["rows"] == [] and sections["compile"]["rows"] == []
    rows = sections["main"]["rows"]
    assert [(r["workload"], r["dtype"]) for r in rows] == [("per_sample", "f64"), ("per_sample", "f32")]
    for row in rows:
        assert row["baseline"] == "raster_mlir" and row["unit"] == "µs/sample"
        for key in ("raster_mlir", "numpy"):
            result = row["results"][key]
            assert result["status"] == "ok", result
            gate = result["gate"]
            assert gate["passed"] is True
            assert gate["max_error"] <= gate["tolerance"] == model.TOLERANCE[row["dtype"]]
            assert "loss" in gate["checked"] and "W1" in gate["checked"] and "b2" in gate["checked"]
            assert 0 < result["low"] <= result["median"] <= result["high"]
            assert result["rounds"] >= 1 and result["number"] >= 1
        assert row["results"]["raster_mlir"]["ratio"] == pytest.approx(1.0)
        numpy_result = row["results"]["numpy"]
        assert numpy_result["ratio"] == pytest.approx(numpy_result["median"] / row["results"]["raster_mlir"]["median"])


def test_the_injected_wrong_contender_is_marked_wrong_and_not_timed(quick_run):
    run, table, _ = quick_run
    for row in run["sections"][0]["rows"]:
        wrong = row["results"]["numpy_wrong"]
        assert wrong["status"] == "WRONG"
        assert wrong["gate"]["passed"] is False
        assert wrong["gate"]["max_error"] > wrong["gate"]["tolerance"]
        assert "median" not in wrong and "ratio" not in wrong
    assert "WRONG" in table
    assert "| raster_mlir | numpy | numpy, injected bug |" in table


def test_only_rejects_unknown_names():
    with pytest.raises(SystemExit, match="unknown name 'nmupy'"):
        Selection.parse(["numpy,nmupy"])
    chosen = Selection.parse(["jax", "f32,per_sample"])
    assert chosen.implementations == ["jax"] and chosen.dtypes == ["f32"] and chosen.workloads == {"per_sample"}
    everything = Selection.parse([])
    assert "torch_compile" in everything.implementations and "compile" in everything.workloads


def test_reference_gradients_match_finite_differences():
    """The gate is only as good as its reference: check its SGD step against central differences."""
    spec = model.Spec((6, 5, 4, 3), "f64")
    params = model.init_params(spec, seed=3)
    rng = np.random.default_rng(4)
    for x, y in [(rng.random(6), np.eye(3)[1]), (rng.random((4, 6)), np.eye(3)[[0, 2, 1, 1]])]:
        lr = 0.5
        loss, updated = model.reference_step(params, x, y, lr)
        for p, new in zip(params, updated):
            gradient = (p - new) / lr
            numeric = np.zeros_like(p)
            for index in np.ndindex(p.shape):
                saved = p[index]
                p[index] = saved + 1e-6
                up = model.reference_step(params, x, y, lr)[0]
                p[index] = saved - 1e-6
                down = model.reference_step(params, x, y, lr)[0]
                p[index] = saved
                numeric[index] = (up - down) / 2e-6
            np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-8)
        assert loss == pytest.approx(-np.mean(np.sum(y * np.log(model.reference_predict(params, x)), axis=-1)))


def test_gate_refuses_nan_and_wrong_shapes():
    assert model.max_error(np.array([1.0, np.nan]), np.array([1.0, 2.0])) == float("inf")
    assert model.max_error(np.zeros(3), np.zeros(4)) == float("inf")
    verdict = model.gate([("a", np.array([1.0, 2.0 + 1e-12]), np.array([1.0, 2.0]))], "f64")
    assert verdict.passed and verdict.error < 1e-12


@pytest.mark.parametrize("dtype", ["f64", "f32"])
def test_loop_gate_passes_a_correct_loop_and_refuses_a_wrong_one(dtype):
    """A data loop is gated whole, on labels that are zero after GATE_STEPS samples."""
    spec = model.Spec((784, 16, 10), dtype)
    init = model.init_params(spec)
    rng = np.random.default_rng(5)
    xs = model.aligned_copy(rng.random((50, 784)).astype(spec.np_dtype))
    ys = model.aligned_copy(np.eye(10, dtype=spec.np_dtype)[rng.integers(0, 10, 50)])
    gated = gate_labels(ys)
    assert np.array_equal(gated[:GATE_STEPS], ys[:GATE_STEPS]) and not gated[GATE_STEPS:].any()
    check = loop_gate(spec, init, xs, ys)

    def python_loop(implementation):
        stepper = implementation.train_step(spec, [model.aligned_copy(p) for p in init], xs, gated)
        return Contender(lambda: np.array([stepper.call() for _ in xs]), stepper.parameters)

    assert check(python_loop(numpy_impl.NumpyMLP())).passed
    verdict = check(python_loop(numpy_impl.WrongNumpyMLP()))
    assert not verdict.passed and verdict.error > 1e-3


def test_rows_are_gated_again_after_timing(quick_run):
    run, table, _ = quick_run
    for row in run["sections"][0]["rows"]:
        for key in ("raster_mlir", "numpy"):
            after = row["results"][key]["gate_after_timing"]
            assert after["passed"] and after["calls"] > 1 and after["max_error"] <= after["tolerance"]
    assert "After timing, every train contender's parameters again" in table
    assert "raster_mlir skips work on zeros" in table


class _GoesWrongLater(numpy_impl._WrongMLP):
    """Right on the gate's step, then the first layer's bias stops moving."""

    calls = 0

    def step(self, x, y):
        self.calls += 1
        return numpy_impl._MLP.step(self, x, y) if self.calls == 1 else super().step(x, y)


class GoesWrongLater(numpy_impl.NumpyMLP):
    def _mlp(self, spec, params, xs):
        return _GoesWrongLater([model.aligned_copy(p) for p in params], spec.sizes, None, spec.np_dtype)


def test_a_contender_that_goes_wrong_after_its_first_step_is_caught():
    from bench.__main__ import QUICK, Harness, train_gate

    harness = Harness(QUICK, Selection.parse(["numpy,per_sample,f64"]), inject_wrong=False, threads=1)
    harness.keys = ["numpy", "numpy_wrong"]  # the injected contender's column, with a later bug
    harness.implementations = {"numpy": numpy_impl.NumpyMLP(), "numpy_wrong": GoesWrongLater()}
    spec = model.Spec((784, 16, 10), "f64")
    init = model.init_params(spec)
    xs, ys = model.batches(harness.data, None, spec.np_dtype)
    xs, ys = xs[:20], ys[:20]
    row = harness.measure(
        section="main", workload="per_sample", title="late", spec=spec, unit="µs/sample", per=1,
        build=lambda impl: impl.train_step(spec, [model.aligned_copy(p) for p in init], xs, ys),
        check=train_gate(spec, init, xs, ys), replay=lambda n: model.reference_replay(init, xs, ys, n),
    )  # fmt: skip
    good, late = row["results"]["numpy"], row["results"]["numpy_wrong"]
    assert good["status"] == "ok" and good["gate_after_timing"]["passed"]
    assert late["gate"]["passed"] and late["status"] == "WRONG"
    assert not late["gate_after_timing"]["passed"] and "after" in late["reason"]
