"""The machine description, the Markdown table and the JSON file of a benchmark run."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

DISTRIBUTIONS = ("raster_mlir", "numpy", "xdsl", "llvmlite", "jax", "jaxlib", "torch", "threadpoolctl")
OPENBLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


def _lscpu() -> dict[str, str]:
    try:
        out = subprocess.run(["lscpu"], check=False, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    fields = {}
    for line in out.splitlines():
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    return fields


def numpy_blas() -> list[dict]:
    """The BLAS libraries numpy loaded, as threadpoolctl reports them (call before importing torch/jax)."""
    try:
        import numpy  # noqa: F401 - loads numpy's BLAS
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"error": "threadpoolctl not installed"}]
    keys = ("internal_api", "version", "architecture", "num_threads", "threading_layer")
    return [
        {**{k: info.get(k) for k in keys}, "library": os.path.basename(info.get("filepath", ""))}
        for info in threadpool_info()
        if info.get("user_api") == "blas" and "numpy" in info.get("filepath", "")
    ]


def versions() -> dict[str, str]:
    found = {}
    for name in DISTRIBUTIONS:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def source_state(root: Path) -> dict:
    """The commit measured, and which compiler sources differed from it when the run started."""
    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], check=False, cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    changed = git("status", "--porcelain", "--", "raster_mlir", "dialects", "passes")
    return {"commit": commit or "unknown", "uncommitted_compiler_changes": changed.splitlines() if commit else []}


def machine() -> dict:
    """What the run ran on: CPU, cores, numpy's BLAS kernel, library versions, load."""
    cpu = _lscpu()
    flags = cpu.get("Flags", "").split()
    return {
        "cpu": cpu.get("Model name", platform.processor() or "unknown"),
        "cpus": os.cpu_count(),
        "cores_per_socket": cpu.get("Core(s) per socket"),
        "threads_per_core": cpu.get("Thread(s) per core"),
        "sockets": cpu.get("Socket(s)"),
        "avx512f": "avx512f" in flags,
        "caches": {k: cpu[k] for k in ("L1d cache", "L2 cache", "L3 cache") if k in cpu},
        "hypervisor": cpu.get("Hypervisor vendor"),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "numpy_blas": numpy_blas(),
        "openblas_environment": {k: os.environ.get(k) for k in OPENBLAS_VARIABLES},
        "versions": versions(),
        "load_average_at_start": list(os.getloadavg()),
    }


def blas_summary(blas: list[dict]) -> str:
    if not blas:
        return "none found"
    return "; ".join(
        b.get("error") or f"{b['internal_api']} {b['version']}, kernel {b['architecture']}, {b['num_threads']} threads"
        for b in blas
    )


def describe_machine(m: dict) -> str:
    installed = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v != "not installed")
    missing = [k for k, v in m["versions"].items() if v == "not installed"]
    cores = f"{m['cpus']} CPUs ({m['sockets']} socket x {m['cores_per_socket']} cores x {m['threads_per_core']} threads)"
    env = ", ".join(f"{k}={v}" for k, v in m["openblas_environment"].items() if v is not None) or "none set"
    lines = [
        f"CPU:      {m['cpu']}, {cores}, AVX-512: {'yes' if m['avx512f'] else 'no'}"
        + (f", {m['hypervisor']} guest" if m.get("hypervisor") else ""),
        f"numpy BLAS: {blas_summary(m['numpy_blas'])} (OpenBLAS variables: {env})",
        f"Python {m['python']}; {installed}" + (f"; not installed: {', '.join(missing)}" if missing else ""),
    ]
    return "\n".join(lines)


# -- the table -------------------------------------------------------------------------


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _ratio(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


class _Notes:
    """Footnotes for cells that are not numbers (unavailable, failed, WRONG), numbered once each."""

    def __init__(self):
        self.texts: list[str] = []

    def mark(self, text: str) -> str:
        if text not in self.texts:
            self.texts.append(text)
        return f"[{self.texts.index(text) + 1}]"


def _cell(result: dict | None, baseline: str, key: str, notes: _Notes) -> str:
    if result is None:
        return "—"
    status = result["status"]
    if status == "ok":
        text = f"{_number(result['median'])} ({_number(result['low'])}–{_number(result['high'])})"
        if key != baseline and result.get("ratio") is not None:
            text += f" ×{_ratio(result['ratio'])}"
        return text
    if status == "WRONG":
        after = result.get("gate_after_timing")
        gate = after if after and not after["passed"] else result["gate"]
        when = "after timing" if gate is after else "not timed"
        return f"WRONG (error {gate['max_error']:.1e} > {gate['tolerance']:.0e}) " + notes.mark(
            f"{result['label']}: WRONG, {when} ({result.get('reason', 'the correctness gate failed')})"
        )
    return f"{status} " + notes.mark(f"{result['label']}: {status}: {result.get('reason', '')}")


def section_table(section: dict, notes: _Notes) -> str:
    rows = section["rows"]
    columns: list[str] = []
    labels: dict[str, str] = {}
    for row in rows:
        for key, result in row["results"].items():
            if key not in columns:
                columns.append(key)
                labels[key] = result["label"]
    head = ["workload", "model", "dtype", "unit", *(labels[k] for k in columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 4 + ["--:"] * len(columns)) + "|"]
    for row in rows:
        cells = [_cell(row["results"].get(k), row["baseline"], k, notes) for k in columns]
        lines.append("| " + " | ".join([row["title"], row["model"], row["dtype"], row["unit"], *cells]) + " |")
    return "\n".join(lines)


def _after_timing_gate(settings: dict) -> str:
    after = settings.get("tolerance_after_timing")
    if after is None:  # a run from before the second gate existed
        return "All numbers below passed it unless marked WRONG."
    return (
        "After timing, every train contender's parameters again, against the reference replaying all the steps "
        f"it took (normwise error ≤ {after['f64']:.0e} (f64), ≤ {after['f32']:.0e} (f32, whose trajectory drifts "
        "from the float64 one by rounding over thousands of steps). All numbers below passed both unless marked WRONG."
    )


def markdown(run: dict) -> str:
    """All sections as Markdown tables, with the machine, the settings and the footnotes."""
    notes = _Notes()
    m = run["machine"]
    lines = describe_machine(m).splitlines()
    settings = run["settings"]
    source = run["source"]
    changes = source["uncommitted_compiler_changes"]
    out = [
        f"- Command: `{run['command']}`" + (" (quick run: few repetitions)" if run["quick"] else ""),
        f"- Machine: {lines[0].removeprefix('CPU:').strip()}",
        f"- {lines[1]}",
        f"- Versions: {lines[2]}",
        f"- Source: raster_mlir commit {source['commit'][:10]}"
        + (f" plus uncommitted changes to {', '.join(c[3:] for c in changes)}" if changes else "")
        + f"; run {run['started']} – {run['finished']}.",
        f"- Data: {settings['data']}; SGD, lr {settings['lr']}.",
        (
            f"- Timing: {settings['timing']} The timing loop's own cost, {settings['call_overhead_us']:.2f} µs per call, "
            "is included in every figure."
        ),
        f"- Threads: {settings['threads']}",
        (
            "- Correctness gate: before timing, one step (or one prediction) of every contender from the same "
            "parameters and data against a float64 numpy reference (data loops: the whole loop, with labels set to "
            f"zero after the first {settings['gate_steps_in_loops']} samples so that later steps change nothing); "
            f"normwise error ≤ {settings['tolerance']['f64']:.0e} (f64), ≤ {settings['tolerance']['f32']:.0e} (f32). "
            + _after_timing_gate(settings)
        ),
    ]
    for section in run["sections"]:
        if not section["rows"]:
            continue
        out += ["", f"**{section['title']}**", ""]
        if section.get("description"):
            out += [section["description"], ""]
        out.append(section_table(section, notes))
    if notes.texts:
        out += ["", "Notes:", ""]
        out += [f"{i}. {text}" for i, text in enumerate(notes.texts, 1)]
    return "\n".join(out) + "\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def write_json(path: Path, run: dict) -> None:
    write(path, json.dumps(run, indent=1, sort_keys=False) + "\n")
