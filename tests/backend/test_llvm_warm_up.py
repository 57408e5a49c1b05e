"""The LLVM worker's warm-up also makes the calling thread's target machines (jit._spare_machines)
and the execution engine of the first module loaded (jit._spare_engines): that thread then makes none of
its own for the parts it compiles after emission nor for loading the objects, and no other thread
takes them (jit._take_spare)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent

SCRIPT = r"""
import sys, threading
sys.path.insert(0, sys.argv[1])
import numpy as np
import raster_mlir as rm
from raster_mlir.backend import jit, llvm_emit, llvm_worker
from raster_mlir.backend.target import HostTarget, host_target
from helpers import mlp_loss, mlp_params

jit._usable_cpus = lambda: 2
llvm_emit.SEGMENT_OPS = 8  # a kernel of several parts
made = []
inner = HostTarget.create_target_machine
def create_target_machine(self, opt_level=3):
    made.append((threading.current_thread() is threading.main_thread(), opt_level))
    return inner(self, opt_level)
HostTarget.create_target_machine = create_target_machine

jit.warm_up(host_target(), 3)
done = threading.Event()
llvm_worker._worker().serve(done.set)  # runs after the warm-up on the worker
assert done.wait(120)
assert made.count((False, 0)) == 2 and made.count((False, 3)) >= 3 and not any(m for m, _ in made), made
made.clear()

taken_elsewhere = []
def other_thread():  # e.g. the pool runtime's preparation, asking before the calling thread
    for pool, level in ((jit._spare_machines, 3), (jit._spare_machines, 0), (jit._spare_engines, 3)):
        taken_elsewhere.append(jit._take_spare(pool, host_target(), level))
other = threading.Thread(target=other_thread)
other.start()
other.join()
assert taken_elsewhere == [None, None, None], taken_elsewhere

rng = np.random.default_rng(0)
params = mlp_params(rng, 60, 24, 5)
step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.1))
step(*params, rng.random(60), np.eye(5)[2])
print(sum(main for main, _ in made), len(jit._per_thread.machines), len(jit._spare_engines[(threading.get_ident(), host_target(), 3)]))
"""


def test_the_calling_thread_compiles_with_the_target_machines_of_the_warm_up(tmp_path):
    env = {**os.environ, "RASTER_MLIR_CACHE_DIR": str(tmp_path), "RASTER_MLIR_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(TESTS)], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    made_here, compile_machines, engines_left = map(int, out.stdout.split())
    assert made_here == 0 and compile_machines >= 1 and engines_left == 0
