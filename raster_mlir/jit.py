"""`@rm.jit` and `rm.compile`: trace per signature, run the pipeline, call the result.

Signatures and the argument policy are in `arguments.py`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import DenseArrayBase, ModuleOp, i64

from raster_mlir.compiler import DEFAULT_PIPELINE, DumpOptions, StagedPipeline
from raster_mlir.errors import RasterError, TraceError, with_location
from raster_mlir.frontend.source import user_location
from raster_mlir.frontend.tracer import ModuleTrace, TracedArray, active_scope, unflatten
from raster_mlir.interpreter import interpret
from raster_mlir.native import MISS, NativeEntry
from raster_mlir.arguments import ArgSpec, check_args, parameter_names, signature_of
from raster_mlir.backend.inspect import LLVMInspection


class CompiledFunction(LLVMInspection):
    """One traced signature of a function, compiled; callable, with every IR stage inspectable.

    `ir(stage)` — `"traced"`, `"after:<pass>"` (`"after:inline#2"` for a repeat),
    or None for the last stage; `stages` lists them; `pass_seconds` times passes.
    """

    def __init__(
        self,
        fn: Callable,
        specs: Sequence[ArgSpec],
        *,
        name: str | None = None,
        pipeline: str | None = None,
        dump: DumpOptions | None = None,
        result_aliases: Sequence[int] | None = None,
        keep_ir_before: Sequence[str] = (),
    ):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "fn")
        self.specs = tuple(specs)
        self.arg_names = parameter_names(fn)
        trace = ModuleTrace()
        self.entry, self.out_tree = trace.trace_function(fn, self.name, [s.tensor_type for s in specs])
        self.module = trace.module
        entry = trace.function(self.entry)
        self.result_types = list(entry.function_type.outputs)
        self.result_aliases = tuple(result_aliases) if result_aliases is not None else (-1,) * len(self.result_types)
        if len(self.result_aliases) != len(self.result_types):
            raise RasterError(f"{self.name}: {len(self.result_aliases)} aliases for {len(self.result_types)} results")
        if result_aliases is not None:
            entry.attributes["raster.result_aliases"] = DenseArrayBase.from_list(i64, list(self.result_aliases))
        self.pipeline = StagedPipeline(
            pipeline if pipeline is not None else DEFAULT_PIPELINE,
            dump,
            snapshot_before=("lower-to-loops", *keep_ir_before),
        )
        self.pipeline.run(self.module)
        snapshots = self.pipeline.snapshots
        # The tensor-level IR the reference interpreter runs (the module itself when no lowering ran).
        self.reference_module = snapshots.get("lower-to-loops", self.module)
        # Copies of the module before the passes named in `keep_ir_before` (absent when the pipeline
        # has no such pass): `TrainStep` keeps the IR before skip-zero-chunks for its data loops.
        self.ir_before: dict[str, ModuleOp] = {name: snapshots[name] for name in keep_ir_before if name in snapshots}
        self.native = None
        if "lower-to-loops" in snapshots:
            self.native = NativeEntry(self.module, self.entry, self.specs, self.result_types, self.result_aliases)
        # The hot path (native argument checks, no signature work); None in the interpreter.
        self.fast_call = None
        if self.native is not None:
            self.fast_call = self.native.fast_caller(self._package, bare_result=self.out_tree is None)

    # -- inspection ---------------------------------------------------------
    @property
    def stages(self) -> list[str]:
        return list(self.pipeline.stages)

    @property
    def pass_seconds(self) -> dict[str, float]:
        return dict(self.pipeline.pass_seconds)

    def ir(self, stage: str | None = None) -> str:
        if stage is None:
            return self.pipeline.stages[self.pipeline.last_stage]
        if stage not in self.pipeline.stages:
            raise RasterError(f"no IR stage {stage!r}; stages are: {', '.join(self.stages)}")
        return self.pipeline.stages[stage]

    def _llvm_source(self):
        if self.native is None:
            raise RasterError(
                f"{self.name} was not compiled to native code: its pipeline {self.pipeline.spec!r} "
                "has no lower-to-loops, so it runs in the reference interpreter"
            )
        return self.native

    # -- calling ------------------------------------------------------------
    def run_flat(self, args: Sequence[Any]) -> list[np.ndarray]:
        """Call with the signature's arguments; returns the flat list of result arrays.

        Results aliased to an input (`result_aliases`) are written into that
        input array, which is also what is returned for them.
        """
        if self.native is not None:
            return self.native(args)
        return self._interpret(args)

    def _interpret(self, args: Sequence[Any]) -> list[np.ndarray]:
        arrays = check_args(self.name, self.specs, args, written=self._written_inputs(), names=self.arg_names)
        outs = interpret(self.reference_module, self.entry, arrays)
        for k, a in enumerate(self.result_aliases):
            if a >= 0:
                np.copyto(arrays[a], outs[k])
                outs[k] = arrays[a]
        return outs

    def _written_inputs(self) -> set[int]:
        return {a for a in self.result_aliases if a >= 0}

    def run_reference(self, *args):
        """Run the tensor-level IR with the numpy reference interpreter (the test oracle)."""
        return self._package(self._interpret(args))

    def _package(self, outs: Sequence[np.ndarray]):
        """Results in the traced function's nesting; 0-d results as Python floats."""
        return unflatten(self.out_tree, [float(o) if o.ndim == 0 else o for o in outs])

    def __call__(self, *args):
        if self.fast_call is not None:
            result = self.fast_call(args)
            if result is not MISS:
                return result
        return self._package(self.run_flat(args))


class JitFunction:
    """A Python function compiled on first call per signature (`@rm.jit`).

    Called with traced values (from inside another traced function) it becomes
    a `func.call` to its own traced `func.func`.
    """

    def __init__(self, fn: Callable, *, pipeline: str | None = None, name: str | None = None):
        self.fn = fn
        self.pipeline = pipeline
        self.name = name or getattr(fn, "__name__", "fn")
        self._compiled: dict[tuple[ArgSpec, ...], CompiledFunction] = {}
        self._arg_names = parameter_names(fn)
        self._fast = None  # hot path for the most recently used signature
        functools.update_wrapper(self, fn)

    def trace_into(self, scope, arg_types: Sequence) -> tuple[str, Any]:
        """Trace this function into `scope`'s module (once per signature); (symbol, output tree)."""
        types = tuple(arg_types)
        return scope.trace.trace_function(self.fn, self.name, list(types), key=(id(self.fn), types))

    def lower(self, *args) -> CompiledFunction:
        """The CompiledFunction for these arguments' signature (compiled if new)."""
        specs = signature_of(self.name, args, self._arg_names)
        compiled = self._compiled.get(specs)
        if compiled is None:
            compiled = CompiledFunction(self.fn, specs, name=self.name, pipeline=self.pipeline)
            self._compiled[specs] = compiled
        return compiled

    def __call__(self, *args):
        fast = self._fast
        if fast is not None and active_scope() is None:
            result = fast(args)
            if result is not MISS:
                return result
        if active_scope() is not None or any(isinstance(a, TracedArray) for a in args):
            return call_traced(self, args)
        try:
            compiled = self.lower(*args)
            self._fast = compiled.fast_call
            return compiled(*args)
        except RasterError as e:
            raise with_location(e, user_location()) from None


def call_traced(jit_fn: JitFunction, args: Sequence[Any]):
    """Inside a trace: trace the callee once per signature and emit a func.call to it."""
    scope = active_scope()
    if scope is None:
        raise TraceError(f"{jit_fn.name} was called with a traced value outside of its trace")
    loc = user_location()
    values = scope.lift_args(args, loc)
    symbol, tree = jit_fn.trace_into(scope, [v.type for v in values])
    callee = scope.trace.function(symbol)
    call = func.CallOp(symbol, values, list(callee.function_type.outputs))
    scope.append(call, loc)
    return unflatten(tree, [TracedArray(scope, r) for r in call.results])


def jit(fn: Callable | None = None, *, pipeline: str | None = None):
    """Decorator: compile `fn` on its first call for each (shapes, dtypes) signature."""
    if fn is None:
        return lambda f: JitFunction(f, pipeline=pipeline)
    if isinstance(fn, JitFunction):
        return fn
    return JitFunction(fn, pipeline=pipeline)


def compile(  # noqa: A001 - the public name the design asks for
    fn: Callable,
    *example_args,
    pipeline: str | None = None,
    print_ir_after_all: bool = False,
    print_ir_before: Sequence[str] = (),
    print_ir_after: Sequence[str] = (),
    dump_dir=None,
    verify_each: bool = True,
) -> CompiledFunction:
    """Compile `fn` for the signature of `example_args`, with every IR stage inspectable."""
    target = fn.fn if isinstance(fn, JitFunction) else fn
    name = fn.name if isinstance(fn, JitFunction) else getattr(fn, "__name__", "fn")
    dump = DumpOptions(
        print_ir_after_all=print_ir_after_all,
        print_ir_before=(print_ir_before,) if isinstance(print_ir_before, str) else tuple(print_ir_before),
        print_ir_after=(print_ir_after,) if isinstance(print_ir_after, str) else tuple(print_ir_after),
        dump_dir=dump_dir,
        verify_each=verify_each,
    )
    specs = signature_of(name, example_args, parameter_names(target))
    return CompiledFunction(target, specs, name=name, pipeline=pipeline, dump=dump)
