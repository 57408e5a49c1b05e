"""Cold compile of a train step with and without merging identical kernel segments (segment_dedup.py).

    python bench/bench_segment_dedup.py [--quick] [--repeats R] [--layers 2,4,8,16] [--batch 32]

Each measurement is a fresh process with an empty cache directory, compiling and
calling once the 784-128-...-10 f64 SGD train step (bench/workloads); "merged"
and "apart" (EmitOptions.merge_identical_segments off) alternate, R times each.
Columns (medians): segment functions defined in the LLVM IR, wall ms of the
first call (trace + compile + call), process CPU ms of it (both threads), and
LLVM ms: the timing report's LLVM optimisation and code generation rows of
both threads added up (wall time of each phase: on a loaded machine it counts
time spent waiting for a core). Ratios merged / apart in the same run. The numbers
are bitwise compared (the loss of three steps and the parameters).
Bytecode: the children read bytecode from a private prefix filled by a first,
untimed run (like bench_compile.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child(layers: int, batch: int, merge: bool) -> dict:
    import re
    import time

    os.environ["RASTER_MLIR_CACHE_DIR"] = tempfile.mkdtemp()
    sys.path.insert(0, ROOT)
    import numpy as np

    from bench.workloads.raster_mlir_impl import sgd_train_step
    from raster_mlir.backend import segment_dedup

    segment_dedup.MERGE_IDENTICAL_SEGMENTS = merge
    step, params, x, y = sgd_train_step(layers, batch or None)
    w0, c0 = time.perf_counter(), time.process_time()
    losses = [step(*params, x, y)]
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    losses += [step(*params, x, y) for _ in range(2)]
    report = step.timing_report()
    llvm = sum(
        float(line.split()[0])
        for line in report.splitlines()
        if "LLVM optimisation" in line or "code generation" in line
    )
    segments = len(re.findall(r'^define internal [^@]*@"[\w.]+\.segment\d+"\(', step.llvm_ir, re.M))
    digest = [float(v).hex() for v in losses] + [float(np.sum(p)).hex() for p in params]
    return {"wall": wall * 1e3, "cpu": cpu * 1e3, "llvm": llvm * 1e3, "segments": segments, "digest": digest}


def run_child(layers: int, batch: int, merge: bool, prefix: str) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = prefix
    command = [sys.executable, __file__, "--child", str(layers), str(batch), str(int(merge))]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--layers", default="2,4,8,16")
    parser.add_argument("--batch", type=int, default=32, help="also 8 layers with this batch (0: no)")
    parser.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], bool(args.child[2]))))
        return
    repeats = 1 if args.quick else args.repeats
    cases = [(int(n), 0) for n in args.layers.split(",")] + ([(8, args.batch)] if args.batch else [])
    if args.quick:
        cases = [(8, 0)]
    prefix = tempfile.mkdtemp(prefix="bench_dedup_pyc")
    run_child(2, 0, True, prefix)  # fills the bytecode prefix (untimed)
    print(f"{'program':<16}{'segments':>10}{'wall ms':>18}{'CPU ms':>18}{'LLVM ms':>18}  bitwise")
    for layers, batch in cases:
        runs: dict[bool, list[dict]] = {True: [], False: []}
        for _ in range(repeats):
            for merge in (False, True):
                runs[merge].append(run_child(layers, batch, merge, prefix))
        med = {m: {k: statistics.median(r[k] for r in runs[m]) for k in ("wall", "cpu", "llvm")} for m in runs}
        same = all(r["digest"] == runs[False][0]["digest"] for r in runs[True] + runs[False])
        label = f"{layers} layers" + (f" b{batch}" if batch else "")
        cols = [f"{runs[False][0]['segments']}->{runs[True][0]['segments']}"]
        for k in ("wall", "cpu", "llvm"):
            cols.append(f"{med[False][k]:.0f}->{med[True][k]:.0f} {med[True][k] / med[False][k]:.2f}x")
        print(f"{label:<16}{cols[0]:>10}{cols[1]:>18}{cols[2]:>18}{cols[3]:>18}  {same}")


if __name__ == "__main__":
    main()
