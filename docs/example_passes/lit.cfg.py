# lit configuration of the example plug-in's tests (docs/writing-a-pass.md, "Testing it").
# A plug-in package copies this file next to its .mlir tests. raster-opt finds the
# plug-in's passes through the entry point its installed package declares.
import os
import sys

import lit.formats

config.name = "raster_mlir_example_passes"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir"]
config.test_source_root = os.path.dirname(__file__)
config.excludes = ["__pycache__"]
# The driver runs under the interpreter lit runs under, so it sees the same installed packages.
config.substitutions.append(("raster-opt", f"{sys.executable} -m raster_mlir.apps.raster_opt"))
# filecheck as a module of that interpreter too: found whether or not its script directory is on PATH
# (the pattern leaves paths such as tests/filecheck/... alone).
config.substitutions.append((r"(?<![\w/.-])filecheck(?![\w/.-])", f"{sys.executable} -m filecheck"))
config.environment["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
# lit clears the environment; keep PYTHONPATH for plug-ins used from a checkout without installing.
if "PYTHONPATH" in os.environ:
    config.environment["PYTHONPATH"] = os.environ["PYTHONPATH"]
