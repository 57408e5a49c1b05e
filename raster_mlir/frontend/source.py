"""Find the user's source line: the innermost stack frame outside raster_mlir.

Ops carry it as their xDSL location (`loc("model.py":12:9)`), and error
messages quote it, so both the IR and a shape error point at the line the
user wrote, not at library internals.
"""

from __future__ import annotations

import importlib.util
import itertools
import linecache
import os
import sys
from dataclasses import dataclass


def _package_dir(name: str) -> str:
    # find_spec locates the package without importing it (no import cycle through the package).
    return os.path.abspath(importlib.util.find_spec(name).submodule_search_locations[0]) + os.sep


# Library code lives in three folders (dialects/ and passes/ are mapped into the package).
# The applications in raster_mlir/apps/ are clients of the library: their lines are user lines.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_LIBRARY_DIRS = (_PACKAGE_DIR, _package_dir("raster_mlir.dialects"), _package_dir("raster_mlir.passes"))
_APPLICATIONS_DIR = os.path.join(_PACKAGE_DIR, "apps") + os.sep


@dataclass(frozen=True)
class SourceLocation:
    filename: str
    line: int
    column: int

    def __str__(self) -> str:
        text = linecache.getline(self.filename, self.line).strip()
        where = f"{self.filename}:{self.line}"
        return f"{where}: {text}" if text else where


def _is_library_path(path: str) -> bool:
    return path.startswith(_LIBRARY_DIRS) and not path.startswith(_APPLICATIONS_DIR)


_ABSOLUTE_FILES: dict[str, bool] = {}  # _is_library of absolute file names seen


def _is_library(filename: str) -> bool:
    # Called for every frame of every traced op: cached for absolute paths (a relative
    # one depends on the working directory).
    known = _ABSOLUTE_FILES.get(filename)
    if known is not None:
        return known
    if os.path.isabs(filename):
        known = _ABSOLUTE_FILES[filename] = _is_library_path(os.path.abspath(filename))  # (normalised)
        return known
    return _is_library_path(os.path.abspath(filename))


def user_location() -> SourceLocation | None:
    """The innermost frame whose code is not raster_mlir's own (None if there is none)."""
    frame = sys._getframe(1)
    while frame is not None and _is_library(frame.f_code.co_filename):
        frame = frame.f_back
    if frame is None:
        return None
    line, column = frame.f_lineno, 0
    index = frame.f_lasti // 2
    positions = frame.f_code.co_positions() if hasattr(frame.f_code, "co_positions") else iter(())
    position = next(itertools.islice(positions, index, None), None) if index >= 0 else None
    if position is not None:
        start_line, _, start_col, _ = position
        if start_line is not None:
            line = start_line
        if start_col is not None:
            column = start_col + 1
    return SourceLocation(frame.f_code.co_filename, line or 0, column)
