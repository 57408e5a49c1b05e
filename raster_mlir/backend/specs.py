"""`ArgSpec`: what the caller promises about one buffer argument of an entry.

The IR already knows each buffer's shape and dtype and which buffers it
writes; a spec adds a name for error messages, the alignment the caller
guarantees, and may mark more buffers as written (the call path then also
checks them for writability and overlap). `reconcile_specs` refuses specs
that contradict the IR: a wrong shape or dtype, or a buffer the IR writes
but the spec calls read-only (that would void the `noalias` promise).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import CompileError, argument_label
from .analysis import BufferType, FunctionInfo


@dataclass(frozen=True)
class ArgSpec:
    """One buffer argument: shape, dtype, written?, optional name and alignment."""

    shape: tuple[int, ...]
    dtype: str  # numpy dtype name ("float64", "float32", "int64", "int32")
    written: bool = False
    name: str | None = None
    align: int | None = None  # bytes; None means the element size

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "dtype", np.dtype(self.dtype).name)
        if self.align is not None and (self.align <= 0 or self.align & (self.align - 1)):
            raise CompileError(f"ArgSpec.align must be a power of two, got {self.align}")

    @functools.cached_property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.np_dtype.itemsize

    def label(self, index: int) -> str:
        return argument_label(index, self.name)


def specs_from_ir(info: FunctionInfo) -> list[ArgSpec]:
    """Specs derived from the IR alone (names from the SSA name hints)."""
    block_args = info.op.body.blocks.first.args
    return [
        ArgSpec(buf.shape, buf.dtype, written=(i in info.written_args), name=block_args[i].name_hint)
        for i, buf in enumerate(info.arg_types)
    ]


def reconcile_specs(info: FunctionInfo, specs: Sequence[ArgSpec] | None) -> list[ArgSpec]:
    """The specs the entry is compiled for: `specs` checked against the IR, or derived from it."""
    derived = specs_from_ir(info)
    if specs is None:
        return derived
    specs = list(specs)
    if len(specs) != len(info.arg_types):
        raise CompileError(f"@{info.name} takes {len(info.arg_types)} buffers but {len(specs)} ArgSpecs were given")
    out = []
    for i, (spec, buf) in enumerate(zip(specs, info.arg_types)):
        if not isinstance(spec, ArgSpec):
            raise CompileError(f"@{info.name}: spec {i} is {type(spec).__name__}, expected ArgSpec")
        assert isinstance(buf, BufferType)
        if spec.shape != buf.shape or spec.dtype != buf.dtype:
            raise CompileError(
                f"@{info.name} {spec.label(i)}: spec says {spec.dtype}{list(spec.shape)} "
                f"but the IR has {buf.dtype}{list(buf.shape)}"
            )
        if i in info.written_args and not spec.written:
            raise CompileError(
                f"@{info.name} {spec.label(i)}: the IR writes this buffer but its spec says written=False"
            )
        out.append(spec)
    return out
