# lit configuration: .mlir files with RUN lines through raster-opt, checked by filecheck.
import os
import sys

import lit.formats

config.name = "raster_mlir"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir"]
config.test_source_root = os.path.dirname(__file__)
# lit writes `Output/` folders (%t files) and `.lit_test_times.txt` under the exec root;
# tests/test_lit.py points it at a temporary directory so the working tree stays clean.
config.test_exec_root = os.environ.get("RASTER_MLIR_LIT_EXEC_ROOT", config.test_source_root)
config.excludes = ["__pycache__"]
# Run the driver with the interpreter lit runs under, so the installed package is used.
config.substitutions.append(("raster-opt", f"{sys.executable} -m raster_mlir.apps.raster_opt"))
# filecheck as a module of that interpreter too: found whether or not its script directory is on PATH
# (the pattern leaves paths such as tests/filecheck/... alone).
config.substitutions.append((r"(?<![\w/.-])filecheck(?![\w/.-])", f"{sys.executable} -m filecheck"))
config.environment["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
# lit runs commands in a clean environment: pass on where the object cache lives (the
# test session's own cache, never the user's) and whether it is on.
for name in ("RASTER_MLIR_CACHE_DIR", "RASTER_MLIR_CACHE", "XDG_CACHE_HOME"):
    if name in os.environ:
        config.environment[name] = os.environ[name]
