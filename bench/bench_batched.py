"""Batched throughput against the FMA peak: all cores, then one core, every library in the same run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_batched.py [--quick] [--json PATH]

Rows: the 784→128→10 SGD train step at batch 32 and 128 and inference
(softmax probabilities) at batch 128, f64 and f32, in µs per sample, for
raster_mlir, numpy, JAX jit, PyTorch eager and torch.compile, in two blocks:

- all cores: each library with its default thread count (raster_mlir: the
  CPUs this process may use), `python -m bench --threads 0`;
- one core: the process pinned to one CPU (`sched_setaffinity`) and every
  library limited to one thread (`--threads 1`, RASTER_MLIR_NUM_THREADS=1,
  OMP/MKL/OpenBLAS variables, XLA without its multi-threaded Eigen), so even
  XLA's pool shares one core.

Each block is one run of the `python -m bench` harness (interleaved rounds,
medians, the correctness gate before timing) in a subprocess. Beside the
time: the ratio to raster_mlir (> 1: slower than raster_mlir) and the
fraction of the FMA peak, where the peak is one core's measured FMA rate
(bench/fma_peak.py: 512-bit FMA chains in LLVM IR) times the cores of the
block, and the work is the products of the step: forward W·x of both layers,
the weight gradients dzᵀx of both layers and the input gradient W2ᵀdz of the
second (the first layer's input gradient is not needed): 204,544 FMAs per
sample; inference 101,632. Then the first call (trace, compile, one step) of
the batch-128 step in a fresh process, with an empty cache and with the
cache that run filled, for raster_mlir, JAX and torch.compile.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fma_peak import fma_peak_per_core  # noqa: E402

N_IN, HIDDEN, N_OUT = 784, 128, 10
FMAS = {
    "train": 2 * (N_IN * HIDDEN + HIDDEN * N_OUT) + HIDDEN * N_OUT,
    "infer": N_IN * HIDDEN + HIDDEN * N_OUT,
}
WORKLOADS = {"batch32": ("train step, batch 32", 32, "train"), "batch128": ("train step, batch 128", 128, "train"),
             "infer128": ("inference, batch 128", 128, "infer")}  # fmt: skip
IMPLEMENTATIONS = ("raster_mlir", "numpy", "jax", "torch", "torch_compile")
COMPILED = ("raster_mlir", "jax", "torch_compile")
ONE_THREAD_ENV = {
    "RASTER_MLIR_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run_block(one_core: bool, quick: bool, workdir: Path) -> dict:
    out = workdir / ("one.json" if one_core else "all.json")
    only = ",".join([*IMPLEMENTATIONS, *WORKLOADS])
    cmd = [sys.executable, "-m", "bench", "--only", only, "--threads", "1" if one_core else "0", "--json", str(out)]
    if quick:
        cmd.append("--quick")
    env = base_env()
    cpu = min(os.sched_getaffinity(0))
    if one_core:
        env.update(ONE_THREAD_ENV)
    log(f"{'one core (CPU %d)' % cpu if one_core else 'all cores'}: {' '.join(cmd[1:])}")
    subprocess.run(
        cmd, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
        preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if one_core else None,
    )  # fmt: skip
    return json.loads(out.read_text())


def first_calls(dtypes, quick: bool) -> dict:
    """{(impl, dtype): {"cold": s, "warm": s}} for the batch-128 step, each in a fresh process."""
    results = {}
    for dtype in dtypes:
        for key in COMPILED:
            with tempfile.TemporaryDirectory(prefix="bench-batched-cache-") as cache:
                times = {}
                for phase in ("cold", "warm"):
                    cmd = [sys.executable, "-m", "bench.workloads.compile_probe", key, dtype, "2", cache, "128"]
                    out = subprocess.run(cmd, env=base_env(), cwd=ROOT, capture_output=True, text=True, timeout=900)
                    if out.returncode != 0:
                        times[phase] = None
                        log(f"first call {key} {dtype} {phase}: failed: {out.stderr.strip().splitlines()[-1:]}")
                        continue
                    facts = json.loads(out.stdout.strip().splitlines()[-1])
                    times[phase] = facts["first_s"] if facts["gate"]["passed"] else None
                results[(key, dtype)] = times
        if quick:
            break
    return results


def medians(run: dict) -> dict:
    """{(workload, dtype): {impl: median µs per call}} from a harness JSON."""
    table = {}
    for section in run["sections"]:
        for row in section["rows"]:
            cells = {}
            for key, cell in row["results"].items():
                if isinstance(cell, dict) and cell.get("median") is not None:
                    cells[key] = cell["median"]
            table[(row["workload"], row["dtype"])] = cells
    return table


def fmt(x: float) -> str:
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def markdown(blocks: dict, peak: dict, cores: int, calls: dict, labels: dict) -> str:
    lines = []
    for name, (run, block_cores) in blocks.items():
        data = medians(run)
        lines += [f"**{name}** (FMA peak: {block_cores} × one core's)", ""]
        head = ["workload", "dtype", *[labels.get(k, k) for k in IMPLEMENTATIONS], "raster_mlir % of peak"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "--:|" * (len(head) - 2)]
        for workload, (title, batch, kind) in WORKLOADS.items():
            for dtype in ("f64", "f32"):
                cells = data.get((workload, dtype))
                if not cells:
                    continue
                ours = cells.get("raster_mlir")
                row = [title, dtype]
                for key in IMPLEMENTATIONS:
                    us = cells.get(key)
                    if us is None:
                        row.append("—")
                        continue
                    per = us / batch
                    ratio = f" ×{us / ours:.2f}" if ours and key != "raster_mlir" else ""
                    row.append(f"{fmt(per)}{ratio}")
                if ours:
                    rate = FMAS[kind] * batch / (ours * 1e-6)
                    row.append(f"{100 * rate / (peak[dtype] * block_cores):.0f}%")
                else:
                    row.append("—")
                lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    if calls:
        lines += ["**First call of the batch-128 train step** (fresh process: trace, compile, one step; s)", ""]
        lines += ["| implementation | dtype | cold cache | warm cache |", "|---|---|--:|--:|"]
        for (key, dtype), times in calls.items():
            cold, warm = (times.get(p) for p in ("cold", "warm"))
            lines.append(f"| {labels.get(key, key)} | {dtype} | {'—' if cold is None else f'{cold:.2f}'} | "
                         f"{'—' if warm is None else f'{warm:.2f}'} |")  # fmt: skip
        lines.append("")
    lines.append(
        f"µs per sample (median); ×: ratio to raster_mlir. One core's measured FMA peak: {peak['f64'] / 1e9:.1f} G/s "
        f"f64, {peak['f32'] / 1e9:.1f} G/s f32; {cores} CPUs. Work: {FMAS['train']:,} FMAs per sample per train "
        f"step, {FMAS['infer']:,} per inference."
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions, f64 first calls only")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON here")
    parser.add_argument("--no-first-call", action="store_true", help="skip the fresh-process first-call rows")
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    peak = fma_peak_per_core()
    log(f"FMA peak per core: {peak['f64'] / 1e9:.2f} G/s f64, {peak['f32'] / 1e9:.2f} G/s f32; {cores} CPUs")
    with tempfile.TemporaryDirectory(prefix="bench-batched-") as tmp:
        all_cores = run_block(False, args.quick, Path(tmp))
        one_core = run_block(True, args.quick, Path(tmp))
    calls = {} if args.no_first_call else first_calls(("f64", "f32"), args.quick)
    labels = {k: v.get("label", k) for k, v in all_cores.get("implementations", {}).items()}
    blocks = {f"All cores ({cores})": (all_cores, cores), "One core": (one_core, 1)}
    print(markdown(blocks, peak, cores, calls, labels))
    if args.json:
        args.json.write_text(json.dumps({
            "peak_fma_per_core": peak, "cores": cores, "fmas_per_sample": FMAS,
            "all_cores": all_cores, "one_core": one_core,
            "first_call": {f"{k}/{d}": t for (k, d), t in calls.items()},
        }, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
