"""Filecheck tests of the IR the autodiff pass generates (tests/autodiff/filecheck/*.mlir).

Each .mlir file holds the input IR, a `// RUN: raster-opt %s -p autodiff |
filecheck %s` line and CHECK lines. Here the pass runs in-process (parse
with the project's context, apply `AutodiffPass`, print) and the printed IR
goes through the `filecheck` tool; a second test runs the RUN line's
`raster-opt` driver as a subprocess to keep the files usable by lit.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

import pytest
from xdsl.parser import Parser

from raster_mlir.compiler import make_context, print_module
from raster_mlir.passes.autodiff import AutodiffPass

HERE = os.path.join(os.path.dirname(__file__), "filecheck")
FILES = sorted(glob.glob(os.path.join(HERE, "*.mlir")))
FILECHECK = shutil.which("filecheck")


def run_autodiff(path: str) -> str:
    with open(path) as f:
        module = Parser(make_context(), f.read(), path).parse_module()
    module.verify()
    AutodiffPass().apply(make_context(), module)
    module.verify()
    return print_module(module)


def filecheck(check_file: str, text: str) -> subprocess.CompletedProcess:
    return subprocess.run([FILECHECK, check_file], input=text, capture_output=True, text=True, timeout=60)


def test_the_expected_files_exist():
    assert {os.path.basename(f) for f in FILES} >= {"relu.mlir", "dense.mlir", "chain.mlir"}


@pytest.mark.skipif(FILECHECK is None, reason="the filecheck tool is not installed")
@pytest.mark.parametrize("path", FILES, ids=os.path.basename)
def test_autodiff_output_matches_check_lines(path):
    result = filecheck(path, run_autodiff(path))
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(FILECHECK is None, reason="the filecheck tool is not installed")
def test_check_lines_can_fail():
    """The CHECK lines pin the generated code: a different mask op (equal instead of greater) fails them."""
    path = os.path.join(HERE, "relu.mlir")
    text = run_autodiff(path).replace("raster.greater", "raster.equal")
    assert filecheck(path, text).returncode != 0


@pytest.mark.skipif(FILECHECK is None, reason="the filecheck tool is not installed")
@pytest.mark.parametrize("path", FILES, ids=os.path.basename)
def test_run_line_through_raster_opt(path):
    with open(path) as f:
        run = next(line for line in f if line.startswith("// RUN:"))
    assert "raster-opt %s -p autodiff | filecheck %s" in run
    opt = subprocess.run(
        [sys.executable, "-m", "raster_mlir.apps.raster_opt", path, "-p", "autodiff"], capture_output=True, text=True, timeout=120
    )
    assert opt.returncode == 0, opt.stderr
    result = filecheck(path, opt.stdout)
    assert result.returncode == 0, result.stderr
