"""Running programs: native calls of compiled code, and numpy reference semantics.

    arguments.py         signatures of compiled functions and the argument policy, checked before a call
    native.py            calling a lowered function natively (the glue to raster_mlir/backend)
    threads.py           `rm.set_num_threads` / `rm.set_deterministic` (the backend's native pool)
    reference.py         numpy kernels of every raster op: eager mode, the interpreter, the test oracle
    reference_index.py   numpy kernels of the traced-integer ops
    interpreter.py       the reference interpreter of tensor-level raster IR (pipelines without lower-to-loops)
"""
