"""Compile time that scales: raster_mlir against JAX, each compile in a fresh process, cold and warm.

    python bench/bench_compile.py [--quick] [--only raster_mlir,jax,ode,mlp] [--repeats R] [--json PATH]

Workloads (issue 13):
- the unrolled damped spring (`ode`), a Python loop over N steps of
  `a = -k x - c v; x = x + dt v; v = v + dt a` on 64-element vectors, then
  `sum(x*x) + sum(v*v)`, for N = 10, 100, 1,000: the value and the gradient
  with respect to both arguments (`rm.jit(rm.grad(f))`, `jax.jit(jax.grad(f, (0, 1)))`);
- the MLP train step 784 -> 128 x (L-1) -> 10 with L = 2, 4, 8, 16 dense
  layers, f64, one SGD step (bench/workloads/compile_probe.py).

Each figure is the first call in a fresh process after the imports: tracing,
compiling and running once. "cold" starts with an empty cache directory
(raster_mlir: RASTER_MLIR_CACHE_DIR; JAX: its persistent compilation cache),
"warm" reuses the directory the cold run filled. Cold and warm runs of the
two libraries are interleaved; each figure is the median of `--repeats`
runs (1 for runs longer than 5 s). CPU seconds (all threads of the child)
are given beside wall seconds: on a shared machine the wall time includes
waiting for a core. Every result is checked: the ODE value against numpy,
the gradient between the two libraries (1e-9 relative), the train step
against the harness's float64 reference.

Bytecode: an installed package runs from compiled bytecode (pip compiles
it at install; JAX, xDSL, numpy and llvmlite in site-packages have their
`__pycache__`), while this checkout, run with PYTHONDONTWRITEBYTECODE=1,
would compile raster_mlir's modules from source in every child (about 10 ms
of a cold first call: the passes are imported when the first pipeline is
parsed). So by default the children run with a temporary PYTHONPYCACHEPREFIX
that the parent fills before any timed run, for both libraries alike: it
compiles raster_mlir's packages (raster_mlir, dialects, passes, bench) with
compileall, then runs each implementation's child once per workload kind
(ode value, ode grad, mlp; smallest size, untimed) with bytecode writing on,
which compiles every module those children import, the standard library's,
JAX's and xDSL's included (a cache prefix replaces the `__pycache__`
directories for every module, so they must be in it too). The timed children
only read it. `--bytecode source` measures raster_mlir compiling from source
instead (the prefix then holds the other libraries' bytecode only).

`--quick`: N = 10 and 100, L = 2 and 4, one repeat. `--only` keeps some
implementations (raster_mlir, jax) and workloads (ode, mlp).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
IMPLEMENTATIONS = ("raster_mlir", "jax")
ODE_SIZES = (10, 100, 1000)
LAYERS = (2, 4, 8, 16)
TIMEOUT_SECONDS = 1800
DT, K, C, ELEMENTS = 0.01, 4.0, 0.1, 64
# Issue 13's targets (seconds, wall, on a quiet machine) and the growth allowed from N=100 to N=1,000.
TARGETS = {
    ("ode", 100, "value"): 0.5, ("ode", 100, "grad"): 1.0, ("ode", 1000, "value"): 5.0, ("ode", 1000, "grad"): 10.0,
    ("mlp", 2, "cold"): 0.150, ("mlp", 8, "cold"): 0.300, ("mlp", 2, "warm"): 0.015, ("mlp", 8, "warm"): 0.030,
}  # fmt: skip
GROWTH_TARGET = 12.0


# ---- the child: one compile in this fresh process ---------------------------------------------


def ode_inputs() -> tuple[np.ndarray, np.ndarray]:
    return np.linspace(0.0, 1.0, ELEMENTS), np.zeros(ELEMENTS)


def ode_reference(steps: int) -> float:
    x, v = ode_inputs()
    for _ in range(steps):
        a = -K * x - C * v
        x = x + DT * v
        v = v + DT * a
    return float(np.sum(x * x) + np.sum(v * v))


def ode_child(impl: str, steps: int, mode: str, cache: str) -> dict:
    t0 = time.perf_counter()
    if impl == "raster_mlir":
        os.environ["RASTER_MLIR_CACHE_DIR"] = cache
        import raster_mlir as rm

        def compiled(f):
            return rm.jit(f) if mode == "value" else rm.jit(rm.grad(f))

        sum_ = rm.sum
    else:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

        def compiled(f):
            return jax.jit(f) if mode == "value" else jax.jit(jax.grad(f, argnums=(0, 1)))

        sum_ = jnp.sum
    import_seconds = time.perf_counter() - t0

    from workloads.spring import unrolled_spring  # (the child runs this file as a script: bench/ is on sys.path)

    spring = unrolled_spring(steps, sum_)

    x, v = ode_inputs()
    wall, cpu = time.perf_counter(), time.process_time()
    result = compiled(spring)(x, v)
    if impl == "jax":
        result = jax.block_until_ready(result)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if mode == "value":
        values = [float(result)]
    else:
        values = [float(t) for g in result for t in np.asarray(g)[:8]]
    return {"import_s": import_seconds, "first_s": wall, "first_cpu_s": cpu, "values": values}


def child_main(argv: list[str]) -> None:
    impl, steps, mode, cache = argv[0], int(argv[1]), argv[2], argv[3]
    print(json.dumps(ode_child(impl, steps, mode, cache)))


# ---- the parent: fresh processes, tables ------------------------------------------------------


# The bytecode directory the children read (PYTHONPYCACHEPREFIX), or None: see the module docstring.
_pycache_prefix: str | None = None
# raster_mlir's source directories (the packages of pyproject.toml's package-dir) and the harness's.
SOURCE_DIRS = ("raster_mlir", "dialects", "passes", "bench")


def run(command: list[str], write_bytecode: bool = False) -> dict | str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.pop("RASTER_MLIR_VERIFY_EACH", None)  # what users get: verification at the end
    if _pycache_prefix is not None:
        env["PYTHONPYCACHEPREFIX"] = _pycache_prefix
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        if not write_bytecode:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
    try:
        out = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        return f"took longer than {TIMEOUT_SECONDS} s"
    if out.returncode != 0:
        lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
        return f"exited {out.returncode}: {lines[-1] if lines else ''}"[:300]
    return json.loads(out.stdout.strip().splitlines()[-1])


def prepare_bytecode(prefix: str, impls: list[str], workloads: list[str], raster_from_source: bool) -> None:
    """Fill `prefix` with the bytecode the timed children will read (module docstring)."""
    global _pycache_prefix
    _pycache_prefix = prefix
    if not raster_from_source:
        dirs = [str(ROOT / d) for d in SOURCE_DIRS]
        env = dict(os.environ, PYTHONPYCACHEPREFIX=prefix)
        subprocess.run([sys.executable, "-m", "compileall", "-q", *dirs], env=env, check=True, capture_output=True)
    with tempfile.TemporaryDirectory(prefix="bench_compile_prime_") as cache:
        for impl in impls:
            commands = [mlp_command(impl, 2, cache)] if "mlp" in workloads else []
            if "ode" in workloads:
                commands += [ode_command(impl, 10, mode, cache) for mode in ("value", "grad")]
            for command in commands:
                run(command, write_bytecode=True)
    if raster_from_source:  # keep the other libraries' bytecode only
        for d in SOURCE_DIRS:
            shutil.rmtree(Path(prefix) / str(ROOT / d).lstrip(os.sep), ignore_errors=True)


def ode_command(impl: str, steps: int, mode: str, cache: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--child", impl, str(steps), mode, cache]


def mlp_command(impl: str, layers: int, cache: str) -> list[str]:
    return [sys.executable, "-m", "bench.workloads.compile_probe", impl, "f64", str(layers), cache]


def measure(commands: dict[str, callable], repeats: int) -> dict[str, dict]:
    """For each implementation: cold and warm runs, interleaved; medians of wall and CPU seconds."""
    samples: dict[str, dict[str, list]] = {impl: {"cold": [], "warm": []} for impl in commands}
    failures: dict[str, str] = {}
    results: dict[str, dict] = {}
    for attempt in range(repeats):
        for temperature in ("cold", "warm"):
            for impl, command in commands.items():
                if impl in failures:
                    continue
                with tempfile.TemporaryDirectory(prefix=f"bench_compile_{impl}_") as cache:
                    if temperature == "warm":
                        run(command(cache))  # fills the cache
                    got = run(command(cache))
                if isinstance(got, str):
                    failures[impl] = got
                    continue
                samples[impl][temperature].append(got)
                results[impl] = got
        slow = any(s["first_s"] > 5.0 for impl in samples for runs in samples[impl].values() for s in runs)
        if slow:
            break  # long compiles: one run each
    summary = {}
    for impl in commands:
        if impl in failures:
            summary[impl] = {"error": failures[impl]}
            continue
        summary[impl] = {
            temperature: {
                "wall": statistics.median(s["first_s"] for s in runs),
                "cpu": statistics.median(s.get("first_cpu_s", float("nan")) for s in runs),
                "runs": len(runs),
            }
            for temperature, runs in samples[impl].items()
        }
        summary[impl]["result"] = results[impl]
    return summary


def check_ode(summary: dict, steps: int, mode: str) -> str:
    """"ok", or what is wrong with a result."""
    values = {impl: s["result"]["values"] for impl, s in summary.items() if "result" in s}
    if mode == "value":
        want = ode_reference(steps)
        bad = [impl for impl, got in values.items() if abs(got[0] - want) > 1e-9 * abs(want)]
        return "ok" if not bad else f"WRONG value: {', '.join(bad)}"
    if len(values) == 2:
        a, b = (np.array(v) for v in values.values())
        if not np.allclose(a, b, rtol=1e-9, atol=1e-12):
            return "WRONG: the gradients differ"
    return "ok"


def fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def row_cells(summary: dict, temperature: str) -> list[str]:
    cells = []
    for impl in summary:
        s = summary[impl]
        if "error" in s:
            cells.append(f"failed: {s['error'][:40]}")
        else:
            t = s[temperature]
            cells.append(f"{fmt(t['wall'])} ({fmt(t['cpu'])} CPU)")
    if all("error" not in summary[i] for i in ("raster_mlir", "jax") if i in summary) and len(summary) == 2:
        cells.append(f"{summary['raster_mlir'][temperature]['wall'] / summary['jax'][temperature]['wall']:.2f}")
    return cells


def target_of(key: tuple, temperature: str) -> float | None:
    kind, size, mode = key
    if kind == "mlp":
        return TARGETS.get(("mlp", size, temperature))
    return TARGETS.get(("ode", size, mode)) if temperature == "cold" else None


def table(rows: list[tuple[str, dict, tuple]], impls: list[str]) -> str:
    lines = []
    for temperature in ("cold", "warm"):
        cols = ["workload", *[f"{i} {temperature}" for i in impls]]
        if len(impls) == 2:
            cols.append("raster_mlir / JAX")
        cols.append("target (raster_mlir)")
        filled = "empty" if temperature == "cold" else "filled"
        lines += [f"\n{temperature.upper()} (fresh process, {filled} cache)\n", "| " + " | ".join(cols) + " |"]
        lines.append("|" + "---|" * len(cols))
        for name, summary, key in rows:
            target = target_of(key, temperature)
            cells = [name, *row_cells(summary, temperature), f"<= {fmt(target)}" if target else ""]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def growth(ode_results: dict, impls: list[str]) -> str:
    lines = []
    for mode in ("value", "grad"):
        for impl in impls:
            a, b = ode_results.get((100, mode), {}).get(impl), ode_results.get((1000, mode), {}).get(impl)
            if a and b and "cold" in a and "cold" in b:
                ratio = b["cold"]["wall"] / a["cold"]["wall"]
                cpu = b["cold"]["cpu"] / a["cold"]["cpu"]
                note = f" (target <= {GROWTH_TARGET:.0f}x)" if impl == "raster_mlir" else ""
                lines.append(f"- {impl} {mode}: N=100 -> 1,000 costs {ratio:.1f}x wall, {cpu:.1f}x CPU{note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        child_main(argv[1:])
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", default="", help="comma-separated: raster_mlir, jax, ode, mlp (default: all)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ode-sizes", default=None, help="comma-separated N (default 10,100,1000)")
    p.add_argument("--layers", default=None, help="comma-separated layer counts (default 2,4,8,16)")
    p.add_argument("--json", default=None)
    p.add_argument(
        "--bytecode", choices=("compiled", "source"), default="compiled",
        help="raster_mlir's modules from compiled bytecode, as installed (default), or compiled from source",
    )  # fmt: skip
    args = p.parse_args(argv)
    terms = args.only.split(",")
    impls = [i for i in IMPLEMENTATIONS if i in terms] or list(IMPLEMENTATIONS)
    workloads = [w for w in ("ode", "mlp") if w in terms] or ["ode", "mlp"]
    sizes = tuple(int(n) for n in args.ode_sizes.split(",")) if args.ode_sizes else ODE_SIZES
    layers = tuple(int(n) for n in args.layers.split(",")) if args.layers else LAYERS
    if args.quick:
        sizes, layers = sizes[:2], layers[:2]
    sizes = sizes if "ode" in workloads else ()
    layers = layers if "mlp" in workloads else ()
    repeats = 1 if args.quick else args.repeats
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; python {sys.version.split()[0]}")
    bytecode_dir = tempfile.TemporaryDirectory(prefix="bench_compile_pycache_")
    prepare_bytecode(bytecode_dir.name, impls, workloads, args.bytecode == "source")
    source = args.bytecode == "source"
    exception = " except raster_mlir's (compiled from source by each child)" if source else ""
    print(f"bytecode: every imported module's precompiled in {bytecode_dir.name}{exception}")
    rows, ode_results, checks = [], {}, []
    for steps in sizes:
        for mode in ("value", "grad"):
            summary = measure({i: (lambda cache, i=i: ode_command(i, steps, mode, cache)) for i in impls}, repeats)
            ode_results[(steps, mode)] = summary
            verdict = check_ode(summary, steps, mode)
            checks.append(f"ode N={steps} {mode}: {verdict}")
            rows.append((f"unrolled ODE N={steps:,} {mode}", summary, ("ode", steps, mode)))
            print(f"  ode N={steps} {mode}: " + ", ".join(f"{i} {fmt(s['cold']['wall'])} cold" for i, s in summary.items() if "cold" in s), flush=True)
    for n in layers:
        summary = measure({i: (lambda cache, i=i: mlp_command(i, n, cache)) for i in impls}, repeats)
        wrong = [i for i, s in summary.items() if "result" in s and not s["result"]["gate"]["passed"]]
        checks.append(f"MLP {n} layers: {'ok' if not wrong else 'WRONG ' + ', '.join(wrong)}")
        rows.append((f"MLP train step, {n} layers", summary, ("mlp", n, "")))
        print(f"  mlp {n} layers: " + ", ".join(f"{i} {fmt(s['cold']['wall'])} cold, {fmt(s['warm']['wall'])} warm" for i, s in summary.items() if "cold" in s), flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    print(table(rows, impls))
    print("\n" + growth(ode_results, impls))
    print("\nChecks: " + "; ".join(checks))
    if args.json:
        data = {name: summary for name, summary, _ in rows}
        Path(args.json).write_text(json.dumps(data, indent=1, default=str))
    bytecode_dir.cleanup()
    return 0 if all(c.endswith("ok") for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
