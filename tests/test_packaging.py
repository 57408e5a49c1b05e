"""A plain (non-editable) install carries dialects/ and passes/ inside the raster_mlir package."""

import os
import shutil
import subprocess
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_wheel_maps_dialects_and_passes_into_the_package(tmp_path):
    # setuptools builds in the source tree (build/, *.egg-info): build a copy so the checkout stays clean.
    source = tmp_path / "source"
    leftovers = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis", "Output")
    shutil.copytree(ROOT, source, ignore=leftovers)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = [p for p in os.listdir(tmp_path) if p.endswith(".whl")]
    names = zipfile.ZipFile(tmp_path / wheel).namelist()
    assert "raster_mlir/dialects/raster.py" in names
    assert "raster_mlir/passes/fuse_loops.py" in names and "raster_mlir/passes/registry.py" in names
    assert "raster_mlir/backend/call.py" in names and "raster_mlir/frontend/tracer.py" in names
    # Every subpackage of the checkout is in the wheel (pyproject's package list is complete).
    for folder, _, files in os.walk(os.path.join(ROOT, "raster_mlir")):
        if "__init__.py" in files:
            relative = os.path.relpath(folder, ROOT).replace(os.sep, "/")
            assert f"{relative}/__init__.py" in names, f"{relative} is missing from [tool.setuptools] packages"
    assert "raster_mlir/apps/raster_opt.py" in names and "raster_mlir/runtime/native.py" in names
    # Never as bare top-level modules.
    assert not any(n.startswith(("dialects/", "passes/")) for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(tmp_path / wheel).read(entry_points).decode()
    assert "raster-opt" in text and "raster-mlir" in text
