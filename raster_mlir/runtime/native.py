"""Calling a lowered function natively: the glue between `CompiledFunction` and the backend.

The lowered entry takes `(inputs..., fresh outputs..., constants...)` (see
`lower-to-loops`). `NativeEntry.compile` compiles it once and keeps the
constant arrays (from the function attribute `raster.constants`); a cache
hit builds a `NativeEntry` from the stored function and constants instead.
Per call it allocates the fresh output arrays and hands everything to the
backend's checked call path, which validates shapes, dtypes, contiguity,
writability and overlap before any native code runs.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp

from raster_mlir import backend
from raster_mlir.runtime.arguments import check_args
from raster_mlir.backend.inspect import LLVMInspection
from raster_mlir.dialects import raster as R
from raster_mlir.frontend.pytree import packer
from raster_mlir.frontend.trace_state import NUMPY_DTYPES, TRACES_OPEN
from raster_mlir.timing import NO_TIMER


# The fast path declined: take the slow path. NotImplemented because that is what the native
# backend/dispatch.py's builtin returns then (no compiled function can return it: results are arrays and numbers).
MISS = NotImplemented


def _nesting(tree, bare_result: bool, flat_tuple: bool) -> str | None:
    """The nesting of the results as `returning_call` names it, or None if it builds no such."""
    if bare_result:
        return "single"
    if flat_tuple:
        return "tuple"
    if tree is not None and tree[0] is tuple and len(tree[1]) == 2 and tree[1][0] is None:
        inner = tree[1][1]  # value_and_grad: (value, (grads...))
        if inner is not None and inner[0] is tuple and all(leaf is None for leaf in inner[1]):
            return "value_and_tuple"
    return None


class NativeEntry(LLVMInspection):
    """A compiled entry with what each call needs: output shapes, aliases, constant arrays."""

    def __init__(
        self,
        function: backend.NativeFunction,
        specs,
        result_types,
        result_aliases: Sequence[int],
        constants: Sequence[np.ndarray],
    ):
        self.function = function
        self.name = function.name
        self.input_specs = tuple(specs)
        self.result_aliases = tuple(result_aliases)
        self.fresh = [k for k, a in enumerate(result_aliases) if a < 0]
        self.out_shapes = [(R.shape_of(result_types[k]), NUMPY_DTYPES[R.dtype_of(result_types[k])]) for k in self.fresh]
        self.constants = list(constants)
        self.descriptor = None  # set when fast_caller gave backend/dispatch.py's native builtin
        self.written = {a for a in result_aliases if a >= 0}
        # The IR's argument names (the user's parameter names), for error messages.
        self.arg_names = [spec.name for spec in function.arg_specs[: len(self.input_specs)]]

    @classmethod
    def compile(
        cls,
        module: ModuleOp,
        entry: str,
        specs,
        result_types,
        result_aliases: Sequence[int],
        timer=NO_TIMER,
        verified: bool = False,
    ) -> NativeEntry:
        """Compile `entry` of the lowered `module`; its constants come from the attribute `raster.constants`.

        `verified`: the pipeline verified `module` after its last pass (the backend need not again).
        """
        function = next(op for op in module.ops if isinstance(op, func.FuncOp) and op.sym_name.data == entry)
        constants = []
        attr = function.attributes.get("raster.constants")
        if attr is not None:
            for element in attr.data:
                t = element.type
                values = np.array(element.get_values(), dtype=NUMPY_DTYPES[R.dtype_of(t)])
                constants.append(values.reshape(R.shape_of(t)))
        written = {a for a in result_aliases if a >= 0}
        names = [a.name_hint for a in function.body.blocks.first.args]
        arg_specs = []
        for i, s in enumerate(specs):
            arg_specs.append(backend.ArgSpec(s.shape, NUMPY_DTYPES[s.dtype].name, written=i in written, name=names[i]))
        for k, a in enumerate(result_aliases):
            if a < 0:
                t = result_types[k]
                dtype = NUMPY_DTYPES[R.dtype_of(t)]
                arg_specs.append(backend.ArgSpec(R.shape_of(t), dtype.name, written=True, name=f"out{k}"))
        for j, c in enumerate(constants):
            arg_specs.append(backend.ArgSpec(c.shape, c.dtype.name, name=f"constant{j}"))
        native = backend.compile_module(module, entry, arg_specs, timer=timer, verified=verified)
        return cls(native, specs, result_types, result_aliases, constants)

    def _llvm_source(self):
        return self.function

    # -- calling ------------------------------------------------------------------
    def fast_caller(self, package, bare_result: bool, flat_tuple: bool = False, tree=None):
        """A closure for the hot path: `call(args)` returns package(results), or MISS.

        `bare_result`: the function returns one array (not a tuple), so the
        result needs no packaging; `flat_tuple`: it returns a flat tuple of
        arrays, so the tuple of fresh outputs is the result; `tree`: the result's
        nesting (frontend/pytree.py), packed by a generated expression when every
        result is fresh. It allocates the fresh outputs and lets the backend's native check
        validate every argument; anything unusual (a Python number, another
        signature, a bad array) returns MISS and the caller takes the slow,
        fully checked path, which raises the precise error.
        """
        specs = self.out_shapes
        aliases = self.result_aliases
        constants = tuple(self.constants)
        nesting = _nesting(tree, bare_result, flat_tuple)
        if aliases == (-1,) * len(specs) and nesting is not None:
            # All native: checks, outputs, the call and the result (backend/dispatch.py).
            traces_open = ctypes.addressof(TRACES_OPEN)
            descriptor = self.function.result_descriptor(len(self.input_specs), len(specs), nesting, constants, traces_open)
            native = self.function.returning_builtin(descriptor, constants) if descriptor is not None else None
            if native is not None:
                self.descriptor = descriptor
                return native
        checked_call = self.function.checked_call  # truthy: declined, nothing ran
        empty = np.empty
        if bare_result and len(specs) == 1 and aliases == (-1,) and not constants:
            (shape, dtype), = specs
            if shape == ():

                def call_scalar(args):
                    out = empty((), dtype)
                    if checked_call(args + (out,)):
                        return MISS
                    return out.item()  # a Python float (int for i64)

                return call_scalar

            def call_array(args):
                out = empty(shape, dtype)
                if checked_call(args + (out,)):
                    return MISS
                return out

            return call_array

        if flat_tuple and aliases == (-1,) * len(specs) and all(shape != () for shape, _ in specs):

            def call_tuple(args):
                outs = tuple([empty(shape, dtype) for shape, dtype in specs])
                if checked_call(args + outs + constants):
                    return MISS
                return outs

            return call_tuple

        scalars = frozenset(k for k, (shape, _) in enumerate(specs) if shape == ())
        pack = packer(tree, scalars) if tree is not None and aliases == (-1,) * len(specs) else None
        if pack is not None:

            def call_tree(args):
                outs = [empty(shape, dtype) for shape, dtype in specs]
                if checked_call((*args, *outs, *constants)):
                    return MISS
                return pack(outs)

            return call_tree

        def call(args):
            outs = [empty(shape, dtype) for shape, dtype in specs]
            if checked_call((*args, *outs, *constants)):
                return MISS
            fresh = iter(outs)
            return package([args[a] if a >= 0 else next(fresh) for a in aliases])

        return call

    def __call__(self, args: Sequence[Any]) -> list[np.ndarray]:
        """The slow path: the argument policy checked in Python first, for precise errors."""
        inputs = check_args(self.name, self.input_specs, args, written=self.written, names=self.arg_names)
        outs = [np.empty(shape, dtype) for shape, dtype in self.out_shapes]
        self.function(*inputs, *outs, *self.constants)
        results: list[np.ndarray] = []
        fresh = iter(outs)
        for a in self.result_aliases:
            results.append(inputs[a] if a >= 0 else next(fresh))
        return results
