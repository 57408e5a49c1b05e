"""The LLVM side of one cold first call, part by part and thread by thread: a timeline.

    python bench/bench_llvm_timeline.py [--workloads mlp2,mlp8,ode100-grad,...] [--repeats R] [--parts]
        [--hand-over-ab | --against OTHER_CHECKOUT --against-venv ITS_VENV]

Each workload's first call runs in a fresh process (empty cache, bytecode precompiled into a
temporary PYTHONPYCACHEPREFIX by an untimed first child) with the LLVM side instrumented:
when each part reaches the PartQueue (llvm_worker.py), which thread compiles it, when, its
`llvm_cost` weight, and its thread CPU time split into parsing + verification, the pass
pipeline, printing the optimised module (the cache entry's text) and code generation. Times
are relative to the end of LLVM IR emission (negative: during emission); "CPU" columns are
`time.thread_time` of the compiling thread.

Per workload it prints the calling thread's CPU from the end of emission to the end of the
first call ("after emission"), and "path": a model of two idle cores from the measured CPU
times (the calling thread's CPU clock through emission, the parts' arrival on that clock,
each part's CPU on whichever thread, llvm_worker.py's policy), since a loaded machine cannot
show the two-core wall time. `--parts` prints each part's row (the first repeat). `--against`
alternates with another checkout, run by the Python of a virtual environment whose raster_mlir is
that checkout (`--against-venv`; a child stops if raster_mlir, its passes or its dialects are not
from its own tree: bench/own_tree.py).
Medians over `--repeats` fresh processes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_compile_pipeline import two_core_path  # noqa: E402  (llvm_worker.py's policy on two idle cores)
from bench.own_tree import OWN_TREE_CHECK  # noqa: E402
from raster_mlir.backend.module_split import ModulePart  # noqa: E402

WORKLOADS = {
    "mlp2": "mlp 2",
    "mlp4": "mlp 4",
    "mlp8": "mlp 8",
    "mlp16": "mlp 16",
    "ode100-value": "ode 100 value",
    "ode100-grad": "ode 100 grad",
    "softmax": "small softmax",
    "matmul": "small matmul",
    "tanh3x3-grad": "small tanh3x3",
}


CHILD = r'''
import os, sys, tempfile, threading, time, json
os.environ["RASTER_MLIR_CACHE_DIR"] = tempfile.mkdtemp()
sys.path.insert(0, os.getcwd())
''' + OWN_TREE_CHECK + r'''
import numpy as np
import raster_mlir as rm
from raster_mlir.backend import jit, llvm_worker
if os.environ.get("HAND_OVER_INTERVAL"):  # --hand-over-ab: 0.005, Python's default, is "off"
    llvm_worker.HAND_OVER_INTERVAL = float(os.environ["HAND_OVER_INTERVAL"])
import raster_mlir.backend as backend

events = {"parts": [], "emission": None, "finish": None}
clock0 = time.perf_counter()
main_ident = threading.get_ident()
now = lambda: time.perf_counter() - clock0
cpu_at = {}

inner_emit = backend.emit_module
def worker_cpu():
    thread = llvm_worker.worker_thread()
    return 0.0 if thread is None else time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
def emit_module(*a, **k):
    c = time.thread_time(); t = now(); w = worker_cpu()
    try:
        return inner_emit(*a, **k)
    finally:
        events["emission"] = (t, now(), c, time.thread_time())
        events["worker_during_emission"] = worker_cpu() - w
backend.emit_module = emit_module

keep_alive = []
inner_submit = llvm_worker.PartQueue.submit
def submit(self, part):
    keep_alive.append(part)
    part_arrivals.append((id(part), now(), time.thread_time(), part.weight, part.entry_points_only, len(part.text)))
    return inner_submit(self, part)
llvm_worker.PartQueue.submit = submit
part_arrivals = []

inner_finish = llvm_worker.PartQueue.finish
def finish(self, timer, last_parts=()):
    events["finish"] = (now(), time.thread_time())
    for p in last_parts:
        part_arrivals.append((id(p), now(), time.thread_time(), p.weight, p.entry_points_only, len(p.text)))
    return inner_finish(self, timer, last_parts)
llvm_worker.PartQueue.finish = finish

inner_opt = jit._optimize_and_emit
stamps = threading.local()
def stamped(inner, stamp):
    """`inner`, storing its thread CPU time as `stamps.<stamp>`."""
    def timed(*a, **k):
        c = time.thread_time()
        try:
            return inner(*a, **k)
        finally:
            setattr(stamps, stamp, time.thread_time() - c)
    return timed
parse, emit_obj = stamped(jit._parse_and_verify, "parse"), stamped(jit._emit_object, "codegen")
def optimize(module, llvm_ir, target, opt_level, timer=jit.NO_TIMER, entry_points_only=False):
    c = time.thread_time()
    stamps.codegen = stamps.printing = 0.0
    try:
        return inner_opt(module, llvm_ir, target, opt_level, timer, entry_points_only)
    finally:
        stamps.rest = time.thread_time() - c
jit._parse_and_verify, jit._optimize_and_emit, jit._emit_object = parse, optimize, emit_obj
import llvmlite.binding as llvm
inner_str = llvm.ModuleRef.__str__
def module_str(self):
    c = time.thread_time()
    try:
        return inner_str(self)
    finally:
        stamps.printing = getattr(stamps, "printing", 0.0) + time.thread_time() - c
llvm.ModuleRef.__str__ = module_str

inner_part = jit._compile_part
def compile_part(part, timer, target, opt_level):
    keep_alive.append(part)
    t = now(); c = time.thread_time()
    out = inner_part(part, timer, target, opt_level)
    events["parts"].append(dict(
        id=id(part), thread="main" if threading.get_ident() == main_ident else "worker",
        start=t, end=now(), cpu=time.thread_time() - c, parse=stamps.parse, codegen=stamps.codegen,
        rest=stamps.rest, printing=stamps.printing, weight=part.weight, entry=part.entry_points_only, size=len(part.text)))
    return out
jit._compile_part = compile_part

kind, *args = sys.argv[1:]
if kind == "mlp":
    from bench.workloads.raster_mlir_impl import sgd_train_step
    step, params, x, y = sgd_train_step(int(args[0]))
    call = lambda: step(*params, x, y)
elif kind == "ode":
    steps, mode = int(args[0]), args[1]
    def spring(x, v):
        for _ in range(steps):
            a = -4.0 * x - 0.1 * v
            x = x + 0.01 * v
            v = v + 0.01 * a
        return rm.sum(x * x) + rm.sum(v * v)
    f = rm.jit(spring) if mode == "value" else rm.jit(rm.grad(spring))
    xs, vs = np.linspace(0.0, 1.0, 64), np.zeros(64)
    call = lambda: f(xs, vs)
else:
    which = args[0]
    rng = np.random.default_rng(0)
    if which == "softmax":
        f = rm.jit(lambda x: rm.nn.softmax(x)); a = (rng.random((64, 10)),)
    elif which == "matmul":
        f = rm.jit(lambda a, b: a @ b); a = (rng.random((64, 64)), rng.random((64, 64)))
    else:
        f = rm.jit(rm.grad(lambda a, b: rm.sum(rm.tanh(a @ b)))); a = (rng.random((3, 3)), rng.random((3, 3)))
    call = lambda: f(*a)
c0 = time.thread_time(); t0 = now()
call()
t1 = now(); c1 = time.thread_time()
arrive = {pid: (t, c, w, e, n) for pid, t, c, w, e, n in part_arrivals}
events["warm_up"] = [p for p in events["parts"] if p["id"] not in arrive]
events["parts"] = [p for p in events["parts"] if p["id"] in arrive]
for p in events["parts"]:
    p["arrival"], p["arrival_cpu"] = arrive[p["id"]][0], arrive[p["id"]][1]
print(json.dumps(dict(events=events, call=(t0, t1, c0, c1))))
'''


def run_child(spec: str, env: dict) -> dict:
    cwd = env.get("TIMELINE_TREE", ROOT)  # --against: another checkout, with its own virtual environment's Python
    python = env.get("TIMELINE_PYTHON", sys.executable)
    out = subprocess.run([python, "-c", CHILD, *spec.split()], cwd=cwd, env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{cwd}: {out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarise(run: dict) -> dict:
    ev = run["events"]
    _, emit_end, _, emit_cpu_end = ev["emission"]
    t0, t1, c0, c1 = run["call"]
    parts = sorted(ev["parts"], key=lambda p: p["start"])
    # the 2-core model: the calling thread's CPU clock from the call's start
    finish_cpu = ev["finish"][1] - c0
    arrivals = [(min(p["arrival_cpu"] - c0, finish_cpu), ModulePart("", p["weight"], p["entry"])) for p in parts]
    path = two_core_path(finish_cpu, arrivals, [p["cpu"] for p in parts])
    main_llvm = sum(p["cpu"] for p in parts if p["thread"] == "main")
    worker_llvm = sum(p["cpu"] for p in parts if p["thread"] == "worker")
    return dict(
        emission_wall=ev["emission"][1] - ev["emission"][0],
        emission_cpu=ev["emission"][3] - ev["emission"][2],
        worker_during_emission=ev["worker_during_emission"],
        after_emission=c1 - emit_cpu_end,
        first_call_cpu=c1 - c0,
        wall=t1 - t0,
        emission_end_cpu=emit_cpu_end - c0,
        finish_cpu=finish_cpu,
        llvm=sum(p["cpu"] for p in parts),
        main_llvm=main_llvm,
        worker_llvm=worker_llvm,
        path=path,
        after_path=(c1 - ev["finish"][1]) - main_llvm,  # the calling thread's CPU after finish() not in parts
        parts=len(parts),
        rows=[
            (p["thread"], p["arrival"] - emit_end, p["start"] - emit_end, p["end"] - emit_end, p["weight"], p["size"],
             p["entry"], p["cpu"], p["parse"], p["rest"] - p["codegen"] - p["printing"], p["printing"], p["codegen"])
            for p in parts
        ],
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="mlp2,mlp4,mlp8,ode100-grad,softmax,matmul,tanh3x3-grad")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--parts", action="store_true", help="print each part's row (first repeat)")
    ap.add_argument(
        "--hand-over-ab", action="store_true",
        help="alternate children with llvm_worker.HAND_OVER_INTERVAL as shipped and at Python's default (off)",
    )
    ap.add_argument("--against", default=None, help="alternate children with the raster_mlir of this checkout")
    ap.add_argument("--against-venv", default=None, help="a virtual environment whose raster_mlir is --against")
    args = ap.parse_args()
    if bool(args.against) != bool(args.against_venv):
        ap.error("--against and --against-venv go together")
    prefix = tempfile.mkdtemp(prefix="llvm_timeline_pyc_")
    env = dict(os.environ, PYTHONPYCACHEPREFIX=prefix)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    names = args.workloads.split(",")
    for name in names:
        run_child(WORKLOADS[name], env)  # untimed: fills the bytecode prefix
    ms = lambda s: f"{1e3 * s:.1f}"  # noqa: E731
    print("| workload | first call: wall / CPU | emission ends | finish() | after emission (calling thread CPU) "
          "| LLVM CPU: all / calling / worker | 2-core path to the last part | parts "
          "| emission: wall / CPU / worker's CPU meanwhile |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    details = {}
    variants = [("", env)]
    if args.hand_over_ab:
        variants = [(" (interval off)", dict(env, HAND_OVER_INTERVAL="0.005")), ("", env)]
    if args.against:
        against_python = os.path.join(args.against_venv, "bin", "python")
        variants = [(" (against)", dict(env, TIMELINE_TREE=args.against, TIMELINE_PYTHON=against_python)), ("", env)]
    for _, variant_env in variants[:-1]:
        for name in names:
            run_child(WORKLOADS[name], variant_env)  # untimed: fills the bytecode prefix
    for name in names:
        all_runs = {label: [] for label, _ in variants}
        for _ in range(args.repeats):  # variants alternate
            for label, variant_env in variants:
                all_runs[label].append(summarise(run_child(WORKLOADS[name], variant_env)))
        for label, runs in all_runs.items():
            details[name + label] = runs[0]
            med = lambda key: statistics.median(r[key] for r in runs)  # noqa: B023, E731
            print(
                f"| {name}{label} | {ms(med('wall'))} / {ms(med('first_call_cpu'))} | {ms(med('emission_end_cpu'))} "
                f"| {ms(med('finish_cpu'))} | {ms(med('after_emission'))} "
                f"| {ms(med('llvm'))} / {ms(med('main_llvm'))} / {ms(med('worker_llvm'))} "
                f"| {ms(med('path'))} | {runs[0]['parts']} "
                f"| {ms(med('emission_wall'))} / {ms(med('emission_cpu'))} / {ms(med('worker_during_emission'))} |",
                flush=True,
            )
    if args.parts:
        for name, run in details.items():
            print(f"\n{name}: per part (ms; times from the end of emission, wall; CPU of the compiling thread)")
            print("| thread | arrives | starts | ends | weight | chars | O0 | CPU | parse | pipeline | print | codegen |")
            print("|---|---|---|---|---|---|---|---|---|---|---|---|")
            for th, arr, start, end, w, size, entry, cpu, parse, opt, pr, cg in run["rows"]:
                print(f"| {th} | {ms(arr)} | {ms(start)} | {ms(end)} | {w} | {size} | {'y' if entry else ''} "
                      f"| {ms(cpu)} | {ms(parse)} | {ms(opt)} | {ms(pr)} | {ms(cg)} |")  # fmt: skip


if __name__ == "__main__":
    main()
