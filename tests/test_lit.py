"""Runs the lit + filecheck tests of passes (tests/filecheck/**/*.mlir) under pytest."""

import os
import subprocess
import sys

import pytest

HERE = os.path.join(os.path.dirname(__file__), "filecheck")


def test_lit_suite():
    pytest.importorskip("lit")
    result = subprocess.run(
        [sys.executable, "-c", "from lit.main import main; main()", "-v", HERE],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
    assert "Passed" in result.stdout
