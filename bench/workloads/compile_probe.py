"""Compile time of one train step in a fresh process (run by the harness, not by hand).

    python -m bench.workloads.compile_probe IMPL DTYPE LAYERS CACHE_DIR [BATCH]

Points the implementation's compilation cache at CACHE_DIR (raster_mlir:
RASTER_MLIR_CACHE_DIR; JAX: its persistent compilation cache; torch.compile:
TORCHINDUCTOR_CACHE_DIR), imports it, builds the 784 -> 128 -> ... -> 10 MLP
with LAYERS dense layers, then times the first call of the train step
(tracing, compiling and one step) and a second call (one step), on one
sample or, given BATCH, on batches of BATCH samples. An empty
directory gives the cold time; the directory a cold run filled gives the
warm time. Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np


def main(argv: list[str]) -> None:
    key, dtype, layers, cache = argv[0], argv[1], int(argv[2]), argv[3]
    batch = int(argv[4]) if len(argv) > 4 else None
    if key == "raster_mlir":
        os.environ["RASTER_MLIR_CACHE_DIR"] = cache
    elif key == "torch_compile":
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
    t0 = time.perf_counter()
    from bench import workloads
    from bench.workloads import model

    implementation = workloads.load(key)
    if key == "jax":
        import jax

        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    import_seconds = time.perf_counter() - t0
    spec = model.Spec(model.mlp_sizes(128, layers), dtype)
    params = model.init_params(spec)
    rng = np.random.default_rng(1)
    shape = (2, model.N_IN) if batch is None else (2, batch, model.N_IN)
    xs = model.aligned_copy(rng.random(shape).astype(spec.np_dtype))
    labels = rng.integers(0, model.N_OUT, shape[:-1])
    ys = model.aligned_copy(np.eye(model.N_OUT, dtype=spec.np_dtype)[labels])
    contender = implementation.train_step(spec, [model.aligned_copy(p) for p in params], xs, ys)
    t0, c0 = time.perf_counter(), time.process_time()
    loss = contender.call()
    t1, c1 = time.perf_counter(), time.process_time()
    # The correctness gate of the harness, on this first step (outside the timing).
    want_loss, want_params = model.reference_step(params, xs[0], ys[0])
    pairs = [("loss", model.as_numpy(loss), want_loss)]
    pairs += [(f"param{k}", got, want) for k, (got, want) in enumerate(zip(contender.parameters(), want_params))]
    verdict = model.gate(pairs, dtype)
    t2 = time.perf_counter()
    contender.call()
    t3 = time.perf_counter()
    facts = {"import_s": import_seconds, "first_s": t1 - t0, "first_cpu_s": c1 - c0, "second_s": t3 - t2, "gate": verdict.as_json()}
    print(json.dumps({**facts, **contender.info()}))


if __name__ == "__main__":
    main(sys.argv[1:])
