"""Runs the lit + filecheck tests of passes (tests/filecheck/**/*.mlir) under pytest."""

import os
import subprocess
import sys

import pytest

TESTS = os.path.dirname(__file__)
# Folders of .mlir tests with RUN lines; the configuration is tests/lit.cfg.py.
SUITES = [os.path.join(TESTS, "filecheck"), os.path.join(TESTS, "autodiff", "filecheck")]


def test_lit_suite(tmp_path):
    pytest.importorskip("lit")
    # lit's Output/ folders and test-times file go to tmp_path, not into tests/ (see lit.cfg.py).
    env = dict(os.environ, RASTER_MLIR_LIT_EXEC_ROOT=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", "from lit.main import main; main()", "-v", *SUITES],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
    assert "Passed" in result.stdout
    assert (tmp_path / ".lit_test_times.txt").exists(), "lit wrote its state outside the temporary exec root"
