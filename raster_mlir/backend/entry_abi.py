"""What the Python side needs to call one compiled entry function.

Its own module because both sides use it: llvm_entry.py builds an EntryABI while
emitting the entry points, llvm_emit.py returns them in its EmittedModule, and the
call path (call.py) and the compile cache read them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .specs import ArgSpec


@dataclass(frozen=True)
class EntryABI:
    """Everything the Python side needs to call one entry function."""

    name: str
    packed_symbol: str
    checked_symbol: str
    pycall_symbol: str
    runtime_table_symbol: str
    specs: tuple[ArgSpec, ...]
    workspace_bytes: int
