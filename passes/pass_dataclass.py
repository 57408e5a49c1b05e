"""`@pass_dataclass`: `@dataclass(frozen=True)` for raster_mlir's pass classes, made with less code generation.

xDSL reads a pass's options from its dataclass fields (`ModulePass.from_spec`,
`spec`, `dataclasses.fields`), and a pass is immutable and compared by value.
`dataclass(frozen=True)` gives that by generating six methods per class
(`__init__`, `__repr__`, `__eq__`, `__hash__`, `__setattr__`,
`__delattr__`), each compiled from source with `exec`: about 0.3 ms per class,
paid by the first compile of every process when it imports the passes
(timing-report row "imports of the passes"). Only `__init__` and the frozen
`__setattr__` / `__delattr__` depend on the class's fields; `__eq__`,
`__hash__` and `__repr__` are written once here, over the fields, and shared
by every pass class: the same results as the generated ones (fields with
`compare` / `repr` set, the class's qualified name in the repr).

    @pass_dataclass
    class FuseLoopsPass(ModulePass):
        name = "fuse-loops"
        max_depth: int = 8

A pass written outside raster_mlir keeps `@dataclass(frozen=True)`, as xDSL
documents; both kinds work alike everywhere (the registry, `raster-opt`,
pipelines with options).
"""

from __future__ import annotations

import dataclasses
import reprlib


def _compared(p) -> tuple:
    return tuple(getattr(p, f.name) for f in dataclasses.fields(p) if f.compare)


def _eq(self, other):
    if other.__class__ is self.__class__:
        return _compared(self) == _compared(other)
    return NotImplemented


def _hash(self) -> int:
    return hash(tuple(getattr(self, f.name) for f in dataclasses.fields(self) if (f.compare if f.hash is None else f.hash)))


@reprlib.recursive_repr()
def _repr(self) -> str:
    shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.repr)
    return f"{self.__class__.__qualname__}({shown})"


def _frozen_methods(cls: type):
    """`__setattr__` and `__delattr__` of a frozen dataclass without fields (as dataclasses generates them)."""

    def __setattr__(self, name, value):
        if type(self) is cls:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self, name):
        if type(self) is cls:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    return __setattr__, __delattr__


def pass_dataclass(cls: type) -> type:
    """`dataclass(frozen=True)(cls)` with the field-independent methods shared instead of generated."""
    if not cls.__dict__.get("__annotations__") and dataclasses.is_dataclass(cls):
        # No field of its own (no annotation): the base dataclass's fields, `__init__`, and the
        # shared methods below; only the frozen checks name the class (closures, no code generated).
        cls.__setattr__, cls.__delattr__ = _frozen_methods(cls)
    else:
        cls = dataclasses.dataclass(frozen=True, eq=False, repr=False)(cls)
    cls.__eq__ = _eq
    cls.__hash__ = _hash
    cls.__repr__ = _repr
    return cls
