"""Runs the lit + filecheck tests of passes (tests/filecheck/**/*.mlir) under pytest."""

import os
import subprocess
import sys

import pytest

TESTS = os.path.dirname(__file__)
# Folders of .mlir tests with RUN lines; the configuration is tests/lit.cfg.py.
SUITES = [os.path.join(TESTS, "filecheck"), os.path.join(TESTS, "autodiff", "filecheck")]


def test_lit_suite():
    pytest.importorskip("lit")
    result = subprocess.run(
        [sys.executable, "-c", "from lit.main import main; main()", "-v", *SUITES],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
    assert "Passed" in result.stdout
