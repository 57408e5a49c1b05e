"""Find the user's source line: the innermost stack frame outside raster_mlir.

Ops carry it as their xDSL location (`loc("model.py":12:9)`), and error
messages quote it, so both the IR and a shape error point at the line the
user wrote, not at library internals.
"""

from __future__ import annotations

import functools
import itertools
import linecache
import os
import sys
from dataclasses import dataclass

import raster_mlir
import raster_mlir.dialects
import raster_mlir.passes

# Library code lives in three folders (dialects/ and passes/ are mapped into the package).
_LIBRARY_DIRS = tuple(
    os.path.dirname(os.path.abspath(m.__file__)) + os.sep
    for m in (raster_mlir, raster_mlir.dialects, raster_mlir.passes)
)


@dataclass(frozen=True)
class SourceLocation:
    filename: str
    line: int
    column: int

    def __str__(self) -> str:
        text = linecache.getline(self.filename, self.line).strip()
        where = f"{self.filename}:{self.line}"
        return f"{where}: {text}" if text else where


@functools.lru_cache(maxsize=1024)
def _is_library_file(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_LIBRARY_DIRS)


def _is_library(filename: str) -> bool:
    # Called for every frame of every traced op: cached for absolute paths (a relative
    # one depends on the working directory).
    if os.path.isabs(filename):
        return _is_library_file(filename)
    return os.path.abspath(filename).startswith(_LIBRARY_DIRS)


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
