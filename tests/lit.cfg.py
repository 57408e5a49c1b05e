# lit configuration: .mlir files with RUN lines through raster-opt, checked by filecheck.
import os
import sys

import lit.formats

config.name = "raster_mlir"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir"]
config.test_source_root = os.path.dirname(__file__)
config.excludes = ["__pycache__"]
# Run the driver with the interpreter lit runs under, so the installed package is used.
config.substitutions.append(("raster-opt", f"{sys.executable} -m raster_mlir.cli"))
config.environment["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
