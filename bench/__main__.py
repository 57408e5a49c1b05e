"""`python -m bench`: raster_mlir against numpy, JAX and PyTorch on the MLP's train step, in one process.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m bench [--quick] [--only TERMS] [--json PATH] [--publish]

(OpenBLAS' tuning variables are unset for that command only, so numpy runs
its default kernel; the machine description printed first names it.)

Workloads, float64 and float32, on 784 -> 128 -> 10 (`bench/workloads/model.py`):
train step on one sample called from Python; the same as a compiled data
loop over 1,000 samples (raster_mlir `step.run` with deferred updates, with
the bitwise cross-step rotation and step by step; JAX `lax.scan`); train step on batches of 32 and 128; inference
(softmax probabilities) of 1 and 128 samples. Then the scaling report:
per-sample step for hidden sizes 64 ... 1024, and compile time (cold and
warm, each in a fresh process) of 2-, 4- and 8-layer MLPs.

Before anything is timed, every contender takes ONE step (or makes one
prediction) from the same initial parameters and data, and its loss and
updated parameters are compared with a float64 numpy reference (normwise
error <= 1e-9 for f64, 1e-4 for f32). A data loop runs whole, on labels
that are real for its first GATE_STEPS samples and zero afterwards (zero
labels give zero gradients), and every loss and the final parameters are
compared with the reference after GATE_STEPS steps. A contender that fails is reported as
WRONG and not timed. Contenders are then timed in interleaved rounds
(`bench/timing.py`); the report gives the median and min-max and the ratio
to raster_mlir. After timing, each train contender's parameters are compared
again, with the reference replaying every step the contender took (the gate
step, the warm-up and the timed calls, cycling over the data): a contender
that goes wrong after its first step is reported as WRONG too (tolerance
`model.TOLERANCE_AFTER_TIMING`).

`--only` takes comma-separated terms: implementations (raster_mlir, numpy,
jax, torch, torch_compile), workloads (per_sample, data_loop, batch32,
batch128, infer1, infer128, scaling, compile) and dtypes (f64, f32). Within
each kind, naming some keeps only those; a kind not named keeps all.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import report, workloads
from bench.timing import compare
from bench.workloads import Contender, Failed, Implementation, NotRunnable, Unavailable, model
from bench.workloads.model import as_numpy

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSON = BENCH_DIR / "results" / "latest.json"
PUBLISHED = (BENCH_DIR / "latest.json", BENCH_DIR / "latest.md")
N_SAMPLES = 1000
# Data-loop schedules (`Implementation.data_loop`'s `schedule`) and their row titles.
LOOP_SCHEDULES = {
    "deferred": "cross-step fusion, deferred updates",
    "rotated": "cross-step fusion, bitwise (update_block=1)",
    "stepwise": "no cross-step fusion",
}
GATE_STEPS = 3  # real steps in a data loop's gate (>= 2, so cross-step fusion is exercised)
ESTIMATE_CALLS = 2  # untimed calls per contender that size the timing rounds
HIDDEN_SIZES = (64, 128, 256, 512, 1024)
DEPTHS = (2, 4, 8)
COMPILE_LIMIT_SECONDS = 120  # a torch.compile taking longer than this is given up from then on
PROBE_TIMEOUT_SECONDS = 600
MAIN_WORKLOADS = ("per_sample", "data_loop", "batch32", "batch128", "infer1", "infer128")
WORKLOADS = (*MAIN_WORKLOADS, "scaling", "compile")
COMPILED = ("raster_mlir", "jax", "torch_compile")  # the contenders with a compile step
LOOP_ROWS = (
    f"Train-step rows: one SGD step (forward, backward, update) per call on the next of {N_SAMPLES:,} digits, "
    f"cycling; per sample or per batch. Data-loop rows: all {N_SAMPLES:,} samples in one call, reported per "
    "sample: raster_mlir `step.run` (deferred updates, the bitwise rotation, and step by step), "
    "JAX `jax.lax.scan` of the jitted step; "
    "numpy and PyTorch have no compiled loop (—). Inference: softmax probabilities, per call. "
    "raster_mlir skips work on zeros (its default pipeline): the 64-byte chunks of W1's rows where a digit's "
    "pixels are zero (81% of MNIST's pixels are) and the weight rows of inactive ReLU units; numpy, JAX and "
    "PyTorch do all the arithmetic (with an inf or NaN in W1, raster_mlir's results can differ from theirs; "
    "README: \"Zeros are skipped\")."
)


@dataclass(frozen=True)
class Timing:
    rounds: int  # interleaved rounds per row
    loop_rounds: int  # rounds for data-loop rows (one call = the whole dataset)
    round_seconds: float  # target length of one round of the fastest contender
    max_round_seconds: float  # ... and the most one round of the slowest may take
    compile_repeats: int  # fresh processes per (implementation, cold/warm)

    def describe(self) -> str:
        return (
            f"Median (min–max) over {self.rounds} interleaved rounds after warm-up "
            f"(data loops: {self.loop_rounds} rounds of one {N_SAMPLES:,}-sample call; compile: "
            f"{self.compile_repeats} fresh process(es) per phase); ×: ratio of the median to raster_mlir's "
            "(> 1: slower than raster_mlir)."
        )


FULL = Timing(rounds=25, loop_rounds=15, round_seconds=2e-3, max_round_seconds=0.25, compile_repeats=3)
QUICK = Timing(rounds=3, loop_rounds=2, round_seconds=5e-4, max_round_seconds=0.05, compile_repeats=1)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- what to run -------------------------------------------------------------------------


@dataclass
class Selection:
    implementations: list[str]
    workloads: set[str]
    dtypes: list[str]

    @classmethod
    def parse(cls, terms: list[str]) -> Selection:
        words = [w.strip() for t in terms for w in t.split(",") if w.strip()]
        kinds = {"implementation": list(workloads.REGISTRY), "workload": list(WORKLOADS), "dtype": list(model.DTYPES)}
        chosen: dict[str, list[str]] = {k: [] for k in kinds}
        for word in words:
            kind = next((k for k, names in kinds.items() if word in names), None)
            if kind is None:
                valid = "; ".join(f"{k}s: {', '.join(v)}" for k, v in kinds.items())
                raise SystemExit(f"--only: unknown name {word!r} ({valid})")
            chosen[kind].append(word)
        pick = {k: [n for n in names if not chosen[k] or n in chosen[k]] for k, names in kinds.items()}
        return cls(pick["implementation"], set(pick["workload"]), pick["dtype"])


# -- the correctness gate ----------------------------------------------------------------


def parameter_pairs(got: list[np.ndarray], want: list[np.ndarray]) -> list[tuple[str, object, object]]:
    """(name, got, want) per parameter; a missing or extra parameter fails the gate as a shape mismatch."""
    if len(got) != len(want):
        return [("parameter count", np.zeros(len(got)), np.zeros(len(want)))]
    names = [f"{kind}{k + 1}" for k in range(len(want) // 2) for kind in ("W", "b")]
    return [(name, g, w) for name, g, w in zip(names, got, want)]


def train_gate(spec: model.Spec, init, xs, ys) -> Callable[[Contender], model.Gate]:
    """ONE step on xs[0], ys[0]: the loss and every updated parameter against the reference."""
    want_loss, want_params = model.reference_step(init, xs[0], ys[0])

    def check(contender: Contender) -> model.Gate:
        loss = as_numpy(contender.call())
        got = contender.parameters()
        return model.gate([("loss", loss, want_loss), *parameter_pairs(got, want_params)], spec.dtype)

    return check


def gate_labels(ys: np.ndarray) -> np.ndarray:
    """The labels a data loop is gated on: the real ones for the first GATE_STEPS samples, then zeros.

    With y = 0 the loss is 0 and so is its gradient (softmax * sum(y) - y), so
    every later step leaves the parameters exactly as they are: after the whole
    loop they must equal the reference after GATE_STEPS steps. Comparing after
    1,000 real steps instead would not be a fair test in float32: wherever a
    ReLU input lies within rounding of zero (it happens, e.g. step 232 of the
    784->1024->10 float32 run), either side of the switch is a correct
    float32 answer, and the two trajectories then drift apart.
    """
    gated = model.aligned_copy(ys)
    gated[GATE_STEPS:] = 0
    return gated


def loop_gate(spec: model.Spec, init, xs, ys) -> Callable[[Contender], model.Gate]:
    """The whole loop on `gate_labels`: every step's loss and the final parameters against the reference."""
    losses, want_params = model.reference_run(init, xs[:GATE_STEPS], ys[:GATE_STEPS])
    want_losses = np.concatenate([losses, np.zeros(len(xs) - GATE_STEPS)])

    def check(contender: Contender) -> model.Gate:
        losses = as_numpy(contender.call())
        got = contender.parameters()
        return model.gate([("losses", losses, want_losses), *parameter_pairs(got, want_params)], spec.dtype)

    return check


def predict_gate(spec: model.Spec, init, xs) -> Callable[[Contender], model.Gate]:
    want = model.reference_predict(init, xs[0])

    def check(contender: Contender) -> model.Gate:
        return model.gate([("probabilities", as_numpy(contender.call()), want)], spec.dtype)

    return check


# -- the harness -------------------------------------------------------------------------


class Harness:
    def __init__(self, timing: Timing, selection: Selection, inject_wrong: bool, threads: int | None):
        self.timing = timing
        self.threads = threads
        self.selection = selection
        self.keys = list(selection.implementations)
        if inject_wrong:
            at = self.keys.index("numpy") + 1 if "numpy" in self.keys else len(self.keys)
            self.keys.insert(at, workloads.WRONG[0])
        self.implementations: dict[str, Implementation | str] = {}
        self.data = model.load_data(N_SAMPLES)

    def load_implementations(self) -> None:
        for key in self.keys:
            try:
                implementation = workloads.load(key, self.threads)
                implementation.check()
                self.implementations[key] = implementation
                log(f"  {workloads.label(key)}: ready")
            except Unavailable as reason:
                self.implementations[key] = NotRunnable(str(reason))
                log(f"  {workloads.label(key)}: unavailable: {reason}")
            except Failed as reason:
                self.implementations[key] = NotRunnable(str(reason), "failed")
                log(f"  {workloads.label(key)}: failed: {reason}")
            except Exception as error:  # noqa: BLE001 - a library that breaks on import is reported, not fatal
                reason = f"could not be loaded: {type(error).__name__}: {error}"[:300]
                self.implementations[key] = NotRunnable(reason, "failed")
                log(f"  {workloads.label(key)}: {reason}")

    def describe_implementations(self) -> dict:
        out = {}
        for key in self.keys:
            implementation = self.implementations[key]
            if isinstance(implementation, str):
                out[key] = {"label": workloads.label(key), "available": False, "reason": implementation}
            else:
                out[key] = {"label": workloads.label(key), "available": True, **implementation.details()}
        return out

    # -- one row: gate every contender, then time the ones that passed, interleaved --------
    def measure(
        self,
        *,
        section: str,
        workload: str,
        title: str,
        spec: model.Spec,
        unit: str,
        per: int,
        build: Callable[[Implementation], Contender | None],
        check: Callable[[Contender], model.Gate],
        gate_build: Callable[[Implementation], Contender] | None = None,
        loop: bool = False,
        replay: Callable[[int], list[np.ndarray]] | None = None,
    ) -> dict:
        """Gate every contender (on `gate_build`'s contender when given, else on the timed one),
        then time those that passed, interleaved; one row of the report. `replay(n)`: the reference
        parameters after n calls, to gate the timed contenders' final parameters again."""
        row = {"section": section, "workload": workload, "title": title, "model": spec.describe(), "dtype": spec.dtype,
               "unit": unit, "baseline": "raster_mlir", "results": {}}  # fmt: skip
        log(f"{title} [{spec.describe()} {spec.dtype}]")
        results = row["results"]
        timed: dict[str, Contender] = {}
        for key in self.keys:
            label = workloads.label(key)
            implementation = self.implementations[key]
            if isinstance(implementation, str):
                results[key] = {"label": label, "status": _status(implementation), "reason": implementation}
                continue
            start = time.perf_counter()
            try:
                contender = build(implementation)
                if contender is None:
                    continue  # this library has no such workload: an empty cell
                verdict = check(gate_build(implementation) if gate_build else contender)
            except Exception as error:  # noqa: BLE001 - a contender that raises is reported, not fatal
                message = str(error).strip().splitlines()
                reason = f"{type(error).__name__}: {message[0] if message else ''}"[:300]
                results[key] = {"label": label, "status": "failed", "reason": reason}
                log(f"  {label}: failed: {reason}")
                continue
            first = time.perf_counter() - start
            entry = results[key] = {"label": label, "gate": verdict.as_json(), "first_call_ms": first * 1e3}
            if contender.note:
                entry["note"] = contender.note
            if key == "torch_compile" and first > COMPILE_LIMIT_SECONDS:
                reason = f"compiling took {first:.0f} s (> {COMPILE_LIMIT_SECONDS} s); not used from then on"
                self.implementations[key] = reason
                entry.update(status="unavailable", reason=reason)
            elif not verdict.passed:
                entry.update(status="WRONG", reason=f"normwise error {verdict.error:.2e} > {verdict.tolerance:.0e}")
                log(f"  {label}: WRONG (error {verdict.error:.2e}); not timed")
            else:
                entry["status"] = "ok"
                timed[key] = contender
        if timed:
            self._time(timed, results, per, self.timing.loop_rounds if loop else self.timing.rounds)
            if replay is not None:
                self._gate_after_timing(timed, results, spec, replay, gate_calls=0 if gate_build else 1)
        base = results.get("raster_mlir", {})
        for key, entry in results.items():
            if entry["status"] == "ok" and base.get("status") == "ok":
                entry["ratio"] = entry["median"] / base["median"]
            if entry["status"] == "ok":
                log(f"  {entry['label']:<22} {entry['median']:10.2f} {unit}  [{entry['low']:.2f} - {entry['high']:.2f}]"
                    + (f"  x{entry['ratio']:.2f}" if "ratio" in entry else ""))  # fmt: skip
        return row

    def _gate_after_timing(self, timed, results, spec, replay, gate_calls: int) -> None:
        """Each timed contender's parameters now against the reference after as many calls."""
        references: dict[int, list[np.ndarray]] = {}
        for key, contender in timed.items():
            entry = results[key]
            if entry["status"] != "ok" or contender.parameters is None:
                continue
            calls = gate_calls + entry["calls"]
            if calls not in references:
                references[calls] = replay(calls)
            verdict = model.gate(parameter_pairs(contender.parameters(), references[calls]), spec.dtype, after_timing=True)
            entry["gate_after_timing"] = {**verdict.as_json(), "calls": calls}
            if not verdict.passed:
                entry.update(status="WRONG", reason=f"after {calls} calls: normwise error {verdict.error:.2e} > "
                                                    f"{verdict.tolerance:.0e}")  # fmt: skip
                log(f"  {entry['label']}: WRONG after timing (error {verdict.error:.2e})")

    def _time(self, timed: dict[str, Contender], results: dict, per: int, rounds: int) -> None:
        estimates = {}
        for key, contender in list(timed.items()):
            calls = []
            try:
                for _ in range(ESTIMATE_CALLS):
                    start = time.perf_counter()
                    contender.call()
                    calls.append(time.perf_counter() - start)
            except Exception as error:  # noqa: BLE001 - reported in its cell; the others are still timed
                results[key].update(status="failed", reason=f"{type(error).__name__}: {error}"[:300])
                del timed[key]
                continue
            estimates[key] = min(calls)
        if not timed:
            return
        number = max(1, round(self.timing.round_seconds / min(estimates.values())))
        number = max(1, min(number, int(self.timing.max_round_seconds / max(estimates.values()))))
        stats = compare({key: c.call for key, c in timed.items()}, rounds=rounds, number=number)
        for key, s in stats.items():
            entry = results[key]
            entry.update(median=s.median / per, low=s.low / per, high=s.high / per, rounds=rounds, number=number,
                         calls=ESTIMATE_CALLS + s.calls)  # fmt: skip
            info = timed[key].info()
            if info:
                entry["info"] = info

    # -- the workloads -----------------------------------------------------------------------
    def _fresh(self, init):
        return [model.aligned_copy(p) for p in init]

    def per_sample_rows(self, section: str, spec: model.Spec, with_loops: bool = True) -> list[dict]:
        init = model.init_params(spec)
        xs, ys = model.batches(self.data, None, spec.np_dtype)
        rows = [
            self.measure(
                section=section, workload="per_sample", title="train step, 1 sample, from Python", spec=spec,
                unit="µs/sample", per=1, build=lambda impl: impl.train_step(spec, self._fresh(init), xs, ys),
                check=train_gate(spec, init, xs, ys), replay=lambda n: model.reference_replay(init, xs, ys, n),
            )
        ]  # fmt: skip
        if with_loops:
            gated = gate_labels(ys)
            check_loop = loop_gate(spec, init, xs, ys)
            for schedule, how in LOOP_SCHEDULES.items():
                rows.append(
                    self.measure(
                        section=section, workload="data_loop",
                        title=f"data loop, {len(xs):,} samples per call, {how}",
                        spec=spec, unit="µs/sample", per=len(xs), loop=True,
                        build=lambda impl, s=schedule: impl.data_loop(spec, self._fresh(init), xs, ys, s),
                        gate_build=lambda impl, s=schedule: impl.data_loop(spec, self._fresh(init), xs, gated, s),
                        check=check_loop, replay=lambda n: model.reference_replay(init, xs, ys, n * len(xs)),
                    )
                )  # fmt: skip
        return rows

    def main_rows(self) -> list[dict]:
        rows = []
        chosen = self.selection.workloads
        for dtype in self.selection.dtypes:
            spec = model.Spec(model.mlp_sizes(128), dtype)
            init = model.init_params(spec)
            if "per_sample" in chosen or "data_loop" in chosen:
                per_sample = self.per_sample_rows("main", spec, with_loops="data_loop" in chosen)
                rows += per_sample if "per_sample" in chosen else per_sample[1:]
            for batch in (32, 128):
                if f"batch{batch}" in chosen:
                    xs, ys = model.batches(self.data, batch, spec.np_dtype)
                    rows.append(
                        self.measure(
                            section="main", workload=f"batch{batch}", title=f"train step, batch {batch}", spec=spec,
                            unit="µs/step", per=1,
                            build=lambda impl, spec=spec, init=init, xs=xs, ys=ys: impl.train_step(spec, self._fresh(init), xs, ys),
                            check=train_gate(spec, init, xs, ys),
                            replay=lambda n, init=init, xs=xs, ys=ys: model.reference_replay(init, xs, ys, n),
                        )
                    )  # fmt: skip
            for batch, name in ((None, "infer1"), (128, "infer128")):
                if name in chosen:
                    xs, _ = model.batches(self.data, batch, spec.np_dtype)
                    title = "inference, 1 sample" if batch is None else f"inference, batch {batch}"
                    rows.append(
                        self.measure(
                            section="main", workload=name, title=title, spec=spec, unit="µs/call", per=1,
                            build=lambda impl, spec=spec, init=init, xs=xs: impl.predictor(spec, self._fresh(init), xs),
                            check=predict_gate(spec, init, xs),
                        )
                    )  # fmt: skip
        return rows

    def scaling_rows(self) -> list[dict]:
        rows = []
        for hidden in HIDDEN_SIZES:
            for dtype in self.selection.dtypes:
                rows += self.per_sample_rows("scaling", model.Spec(model.mlp_sizes(hidden), dtype))
        return rows

    # -- compile time, each measurement in a fresh process -----------------------------------
    def compile_rows(self) -> list[dict]:
        keys = [k for k in COMPILED if k in self.keys]
        rows = []
        for layers in DEPTHS:
            for dtype in self.selection.dtypes:
                spec = model.Spec(model.mlp_sizes(128, layers), dtype)
                log(f"compile time [{spec.describe()} {dtype}]")
                samples: dict[str, dict[str, list[dict]]] = {k: {"cold": [], "warm": []} for k in keys}
                failures: dict[str, tuple[str, str]] = {}
                for _ in range(self.timing.compile_repeats):
                    for key in keys:  # interleaved: one repetition of each implementation in turn
                        if isinstance(self.implementations[key], str) or key in failures:
                            continue
                        with tempfile.TemporaryDirectory(prefix="bench-cache-") as cache:
                            for phase in ("cold", "warm"):
                                outcome = self._probe(key, dtype, layers, cache)
                                if isinstance(outcome, tuple):
                                    failures[key] = outcome
                                    break
                                samples[key][phase].append(outcome)
                for phase in ("cold", "warm"):
                    what = "empty cache" if phase == "cold" else "cache filled by the cold run"
                    row = {"section": "compile", "workload": f"compile_{phase}", "model": spec.describe(), "dtype": dtype,
                           "title": f"{phase} compile ({what})",
                           "unit": "ms", "baseline": "raster_mlir", "results": {}}  # fmt: skip
                    for key in keys:
                        row["results"][key] = self._compile_result(key, samples[key][phase], failures.get(key))
                    base = row["results"].get("raster_mlir", {})
                    for entry in row["results"].values():
                        if entry["status"] == "ok" and base.get("status") == "ok":
                            entry["ratio"] = entry["median"] / base["median"]
                    rows.append(row)
                    summary = ", ".join(f"{e['label']} {e['median']:.0f} ms" if e["status"] == "ok" else f"{e['label']} {e['status']}"
                                        for e in row["results"].values())  # fmt: skip
                    log(f"  {phase}: {summary}")
        return rows

    def _compile_result(self, key: str, runs: list[dict], failure: tuple[str, str] | None) -> dict:
        label = workloads.label(key)
        implementation = self.implementations[key]
        if isinstance(implementation, str):
            return {"label": label, "status": _status(implementation), "reason": implementation}
        if failure is not None:
            status, reason = failure
            return {"label": label, "status": status, "reason": reason}
        first = [r["first_s"] * 1e3 for r in runs]
        entry = {"label": label, "status": "ok", "median": float(np.median(first)), "low": min(first), "high": max(first),
                 "repeats": len(runs), "gate": runs[0]["gate"], "samples_ms": first,
                 "import_ms": float(np.median([r["import_s"] * 1e3 for r in runs])),
                 "second_call_ms": float(np.median([r["second_s"] * 1e3 for r in runs]))}  # fmt: skip
        if "cache_source" in runs[0]:
            entry["cache_source"] = sorted({r["cache_source"] for r in runs})
        return entry

    def _probe(self, key: str, dtype: str, layers: int, cache: str) -> dict | tuple[str, str]:
        """One fresh process; its JSON, or (status, reason) when it failed or its step was wrong."""
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(BENCH_DIR.parent), os.environ.get("PYTHONPATH")])))
        command = [sys.executable, "-m", "bench.workloads.compile_probe", key, dtype, str(layers), cache]
        failed = "failed"
        try:
            out = subprocess.run(command, check=False, capture_output=True, text=True, env=env, cwd=BENCH_DIR.parent,
                                 timeout=PROBE_TIMEOUT_SECONDS)  # fmt: skip
        except subprocess.TimeoutExpired:
            return failed, f"the compile probe took longer than {PROBE_TIMEOUT_SECONDS} s"
        if out.returncode != 0:
            lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
            return failed, f"compile probe exited {out.returncode}: {lines[-1] if lines else ''}"[:300]
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if not result["gate"]["passed"]:
            return "WRONG", f"first step: normwise error {result['gate']['max_error']:.2e}"
        return result


def _status(not_runnable: str) -> str:
    return getattr(not_runnable, "status", "unavailable")


def limit_blas(threads: int | None) -> str:
    """Limit numpy's BLAS to `threads` threads (threadpoolctl); a sentence saying what was done."""
    if threads is None:
        return "Thread limit: none (each library's default)."
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return f"Thread limit {threads} for PyTorch and raster_mlir; numpy's BLAS unlimited (threadpoolctl not installed)."
    threadpool_limits(limits=threads, user_api="blas")
    return (
        f"Thread limit {threads} (--threads): numpy's BLAS (threadpoolctl), PyTorch (torch.set_num_threads) and "
        "raster_mlir (rm.set_num_threads); JAX keeps XLA's own pool."
    )


def call_overhead() -> float:
    """Microseconds per call of the timing loop around a contender (a no-op contender)."""
    call = workloads.cycling(lambda *args: None, [(i,) for i in range(N_SAMPLES)])
    return compare({"no-op": call}, rounds=5, number=20_000)["no-op"].median


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions (for tests and a first look)")
    parser.add_argument("--only", action="append", default=[], metavar="TERMS",
                        help="comma-separated implementations, workloads and dtypes to keep (see the module docstring)")  # fmt: skip
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write the results (default {DEFAULT_JSON})")
    parser.add_argument("--markdown", type=Path, default=None, help="where to write the table (default: next to the JSON, .md)")
    parser.add_argument("--publish", action="store_true", help="also copy the JSON and the table to bench/latest.json and bench/latest.md")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for numpy's BLAS, PyTorch and raster_mlir (default 1; 0: each library's default). "
                             "JAX keeps XLA's own pool either way")  # fmt: skip
    parser.add_argument("--inject-wrong", action="store_true",
                        help="test hook: add a numpy contender with a bug (the first bias is never updated) that the gate must mark WRONG")  # fmt: skip
    args = parser.parse_args(argv)
    selection = Selection.parse(args.only)
    timing = QUICK if args.quick else FULL
    command = " ".join(["python -m bench", *(sys.argv[1:] if argv is None else argv)])

    machine = report.machine()  # before JAX or torch load BLAS libraries of their own
    print(report.describe_machine(machine), flush=True)
    started = time.perf_counter()
    started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    source = report.source_state(BENCH_DIR.parent)
    threads = args.threads or None
    blas_limit = limit_blas(threads)
    harness = Harness(timing, selection, args.inject_wrong, threads)
    log(f"data: {harness.data.source}")
    log("implementations:")
    harness.load_implementations()

    chosen = selection.workloads
    sections = [
        {"key": "main", "title": "Train step and inference, 784→128→10", "description": LOOP_ROWS,
         "rows": harness.main_rows()},
        {"key": "scaling", "title": "Scaling: per-sample train step against the hidden size H (784→H→10)",
         "description": LOOP_ROWS, "rows": harness.scaling_rows() if "scaling" in chosen else []},
        {"key": "compile", "title": "Compile time of the train step (784→128→…→10, relu between layers)",
         "description": "First call (trace, compile, one step) in a fresh process, import excluded. Cold: empty "
                        "compilation cache (raster_mlir disk cache, JAX persistent cache, TorchInductor cache); "
                        "warm: the cache the cold run filled. numpy and PyTorch eager have no compile step.",
         "rows": harness.compile_rows() if "compile" in chosen else []},
    ]  # fmt: skip
    machine["load_average_at_end"] = list(os.getloadavg())
    described = harness.describe_implementations()
    per_library = ", ".join(f"{d['label']}: {d['threads']}" for d in described.values() if d.get("available") and "threads" in d)
    run = {
        "schema": "raster_mlir-bench/1",
        "started": started_at,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source": source,
        "command": command,
        "quick": args.quick,
        "seconds": time.perf_counter() - started,
        "machine": machine,
        "settings": {
            "data": harness.data.source,
            "samples": N_SAMPLES,
            "lr": model.LR,
            "tolerance": model.TOLERANCE,
            "tolerance_after_timing": model.TOLERANCE_AFTER_TIMING,
            "gate_steps_in_loops": GATE_STEPS,
            "timing": timing.describe(),
            "call_overhead_us": call_overhead(),
            "threads": f"{blas_limit} Per library: {per_library}.",
            "selection": {"implementations": harness.keys, "workloads": sorted(chosen), "dtypes": selection.dtypes},
        },
        "implementations": described,
        "sections": sections,
    }
    table = report.markdown(run)
    report.write_json(args.json, run)
    markdown_path = args.markdown or args.json.with_suffix(".md")
    report.write(markdown_path, table)
    if args.publish:
        report.write_json(PUBLISHED[0], run)
        report.write(PUBLISHED[1], table)
    print()
    print(table)
    log(f"wrote {args.json} and {markdown_path}" + (f", {PUBLISHED[0]} and {PUBLISHED[1]}" if args.publish else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
