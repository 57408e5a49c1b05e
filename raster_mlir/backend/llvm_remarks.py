"""LLVM's diagnostics during a compile: captured, never printed to the user's stderr.

LLVM reports through its context's default diagnostic handler, which writes
straight to file descriptor 2 (for example the WarnMissedTransformations pass:
"warning: <unknown>:0:0: loop not vectorized: the optimizer was unable to
perform the requested transformation", once per loop that carries
`llvm.loop.vectorize.enable` and was not vectorised). llvmlite offers no
handler of our own, so `capture_llvm_diagnostics` points fd 2 at a temporary
file while LLVM optimises and emits code, then restores it. Lines that look
like LLVM diagnostics become the compile's remarks (`llvm_remarks` on
compiled objects, `raster-opt --print-llvm-remarks`); anything else written
to fd 2 meanwhile (another thread's output) is passed on to the real stderr.

The generic warning does not say which loop it means, so the emitter names
every loop it forces (`loop_name_property`: `!{!"raster.loop", !"<name>"}` in
the loop's ID), and `loops_not_vectorized` reads the optimised IR: a loop ID
still asking for vectorisation (`llvm.loop.vectorize.enable` true) without
`llvm.loop.isvectorized` is exactly a loop LLVM warned about.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator

LOOP_NAME_KEY = "raster.loop"
# Severity prefixes of LLVM's default diagnostic printer (DiagnosticPrinterRawOStream).
_DIAGNOSTIC = re.compile(r"^(warning|remark|note|error): ")


_capture_lock = threading.Lock()
_capture: list | None = None  # [entrants, saved fd 2, sink file] while any capture is open


@contextlib.contextmanager
def capture_llvm_diagnostics(remarks: list[str]) -> Iterator[None]:
    """Run the body with fd 2 redirected; append LLVM's diagnostic lines to `remarks`.

    Captures may overlap (a compile's LLVM worker thread works while its caller
    still emits IR, llvm_worker.py; a runtime builds on another thread): fd 2 is
    redirected once, for as long as any capture is open, and each capture takes
    the diagnostic lines written while it was open. Other lines are passed on to
    the real stderr when the last capture closes.
    """
    start = open_capture()
    try:
        yield
    finally:
        remarks += close_capture(start)


def open_capture() -> int | None:
    """Open a capture (see capture_llvm_diagnostics); the token for close_capture."""
    global _capture
    with _capture_lock:
        if _capture is None:
            try:
                sys.stderr.flush()
            except (AttributeError, OSError, ValueError):
                pass
            try:
                saved = os.dup(2)
            except OSError:  # no fd 2 at all: nothing can leak
                return None
            sink = tempfile.TemporaryFile()
            os.dup2(sink.fileno(), 2)
            _capture = [0, saved, sink]
        _capture[0] += 1
        return os.lseek(_capture[2].fileno(), 0, os.SEEK_END)


def close_capture(start: int | None) -> list[str]:
    """Close the capture `start` opened; the diagnostic lines written meanwhile."""
    return [line for line in _leave(start).splitlines() if _DIAGNOSTIC.match(line)]


def _leave(start: int | None) -> str:
    global _capture
    if start is None:
        return ""
    with _capture_lock:
        entrants, saved, sink = _capture
        end = os.lseek(sink.fileno(), 0, os.SEEK_END)
        text = os.pread(sink.fileno(), end - start, start).decode(errors="replace")
        if entrants > 1:
            _capture[0] -= 1
            return text
        _capture = None
        os.dup2(saved, 2)
        os.close(saved)
        everything = os.pread(sink.fileno(), end, 0).decode(errors="replace")
        sink.close()
    others = [line for line in everything.splitlines() if not _DIAGNOSTIC.match(line)]
    if others:
        print("\n".join(others), file=sys.stderr)
    return text


# ---- naming forced loops and finding the ones LLVM did not vectorise ------------------

_NODE = re.compile(r"^!(\d+) = (?:distinct )?!\{(.*)\}\s*$", re.MULTILINE)
_OPERAND = re.compile(r'!"((?:[^"\\]|\\.)*)"|!(\d+)|i1 (true|false)|i32 (\d+)')


def _unescape(text: str) -> str:
    return re.sub(r"\\([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), text)


def loops_not_vectorized(optimized_ir: str) -> list[str]:
    """Names of the named loops whose forced vectorisation LLVM did not perform, in IR order."""
    nodes: dict[str, list[tuple]] = {}
    for number, body in _NODE.findall(optimized_ir):
        nodes[number] = _OPERAND.findall(body)

    def strings(number: str) -> list[str]:
        return [_unescape(s) for s, *_ in nodes.get(number, []) if s]

    def enabled(number: str) -> bool:
        ops = nodes.get(number, [])
        return len(ops) == 2 and ops[0][0] == "llvm.loop.vectorize.enable" and ops[1][2] == "true"

    names = []
    for number, operands in nodes.items():
        refs = [ref for _, ref, _, _ in operands if ref]
        if not refs or refs[0] != number:  # a loop ID refers to itself first
            continue
        properties = refs[1:]
        if not any(enabled(p) for p in properties):
            continue
        if any(strings(p)[:1] == ["llvm.loop.isvectorized"] for p in properties):
            continue
        for p in properties:
            named = strings(p)
            if len(named) == 2 and named[0] == LOOP_NAME_KEY and named[1] not in names:
                names.append(named[1])
    return names
