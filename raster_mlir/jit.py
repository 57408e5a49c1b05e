"""`@rm.jit` and `rm.compile`: trace per signature, compile (or load from the cache), call the result.

Compiling one signature (`CompiledFunction`):
1. trace the Python function into a module (kept untouched);
2. with a pipeline that lowers to native code, look the traced IR up in the
   compile cache (compile_cache.py): a hit loads the code, and no pass runs;
3. on a miss, run the pipeline on a copy of the traced module (verifying
   after every pass, printing nothing unless asked), compile it with the
   backend, and store the result in the cache.
IR stages, the final module and the LLVM IR are recomputed on demand by
re-running the pipeline (replay.py). `timing_report()` shows where the time
went (timing.py). Signatures and the argument policy are in `runtime/arguments.py`.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import DenseArrayBase, ModuleOp, i64

from raster_mlir import compile_cache, call_variants
from raster_mlir.bound_methods import BoundJitMethod
from raster_mlir.compiler import DEFAULT_PIPELINE, DumpOptions, StagedPipeline, pass_labels
from raster_mlir.passes.registry import pipeline_pass_names
from raster_mlir.errors import DTypeError, RasterError, TraceError, with_location
from raster_mlir.frontend.source import user_location
from raster_mlir.frontend.pytree import flatten
from raster_mlir.frontend.trace_state import TRACES_OPEN
from raster_mlir.frontend.tracer import ModuleTrace, TracedArray, active_scope, unflatten
from raster_mlir.gc_pause import paused_gc
from raster_mlir.ir_clone import clone_op
from raster_mlir.runtime.interpreter import interpret
from raster_mlir.runtime.native import MISS, NativeEntry
from raster_mlir.runtime.arguments import ArgSpec, check_args, parameter_names, signature_of
from raster_mlir.backend import cache_store, call_slot, runtime_prep
from raster_mlir.backend.inspect import LLVMInspection
from raster_mlir.backend.llvm_emit import EmitOptions, emit_module
from raster_mlir.backend.target import host_target
from raster_mlir.replay import Replay
from raster_mlir.timing import CompileTimer

# The backend options every CompiledFunction compiles with (backend.compile_module's defaults).
_OPT_LEVEL = 3
_BACKEND_OPTIONS = compile_cache.backend_options(_OPT_LEVEL, EmitOptions.fastmath, True, None, EmitOptions.jam)


class CompiledFunction(LLVMInspection):
    """One traced signature of a function, compiled; callable, with every IR stage inspectable.

    `ir(stage)` — `"traced"`, `"after:<pass>"` (`"after:inline#2"` for a repeat),
    or None for the last stage; `stages` lists them; `pass_seconds` times the
    passes that ran (none on a cache hit); `timing_report()` every phase;
    `cache_source` is "memory" or "disk" when the compile was a cache hit.
    """

    # `_dispatch` is a slot so that backend/call_slot.py can call it from native code (see __call__);
    # `_vectorcall` holds the address of call_slot's vectorcall function (0: CPython uses tp_call).
    __slots__ = ("_dispatch", "_vectorcall", "__dict__", "__weakref__")

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
        if result_aliases is None and (pipeline is None or "lower-to-loops" in pipeline):
            # A native function writing no argument ends its compile by making the call path of
            # backend/dispatch.py: its per-process module is built meanwhile (runtime_prep.py).
            runtime_prep.prepare("dispatcher")
        self.timer = CompileTimer()
        try:
            with paused_gc(self.timer):
                self._build(fn, specs, name, pipeline, dump, result_aliases, keep_ir_before)
        except BaseException:
            runtime_prep.join()  # no build outlives a failed compile
            raise

    def _build(self, fn, specs, name, pipeline, dump, result_aliases, keep_ir_before) -> None:
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "fn")
        self.specs = tuple(specs)
        self.arg_names = parameter_names(fn)
        with self.timer.phase("trace"):
            trace = ModuleTrace()
            self.entry, self.out_tree = trace.trace_function(fn, self.name, [s.tensor_type for s in specs])
        self.traced = trace.module  # never modified: the pipeline runs on a copy
        entry = trace.function(self.entry)
        self.result_types = list(entry.function_type.outputs)
        self.result_aliases = tuple(result_aliases) if result_aliases is not None else (-1,) * len(self.result_types)
        if len(self.result_aliases) != len(self.result_types):
            raise RasterError(f"{self.name}: {len(self.result_aliases)} aliases for {len(self.result_types)} results")
        if result_aliases is not None:
            entry.attributes["raster.result_aliases"] = DenseArrayBase.from_list(i64, list(self.result_aliases))
        self.pipeline_spec = pipeline if pipeline is not None else DEFAULT_PIPELINE
        self.pass_names = pipeline_pass_names(self.pipeline_spec)
        self.dump = dump or DumpOptions()
        self.keep_ir_before = tuple(keep_ir_before)
        self.cache_source: str | None = None
        self.native: NativeEntry | None = None
        self._ran: StagedPipeline | None = None  # the pipeline this compile ran (None on a cache hit)
        self._module: ModuleOp | None = None  # the module after it
        self._replay = Replay(self.traced, self.pipeline_spec)
        lowers = "lower-to-loops" in self.pass_names
        key = self.cache_key = self._cache_key() if lowers else None
        if key is None or not self._load(key):
            self._compile(lowers, key)
        # A row of its own: the first compile of a process makes (or waits for, runtime_prep.py)
        # the native dispatcher here.
        with self.timer.phase("native call path"):
            # The hot path (native argument checks, no signature work); None in the interpreter.
            self.fast_call = None
            if self.native is not None:
                tree = self.out_tree
                flat_tuple = tree is not None and tree[0] is tuple and all(leaf is None for leaf in tree[1])
                self.fast_call = self.native.fast_caller(
                    self._package, bare_result=tree is None, flat_tuple=flat_tuple, tree=tree
                )
            # What `compiled(*args)` calls (see __call__): the native dispatcher, whose fallback for
            # anything it declines is the Python path; or the Python path.
            builtin = self.dispatcher(self._call)
            self._dispatch = builtin or self._call
        # Only with a native dispatcher: installing the call slot builds the dispatcher's module, which a
        # train step (it writes its parameters, so it has none) must not pay for (~50 ms cold).
        if builtin is not None and type(self) is CompiledFunction:
            call_slot.install(CompiledFunction, "_dispatch", self)

    # -- compiling ------------------------------------------------------------
    def _cache_key(self) -> str | None:
        """The compile cache key, or None when this compile does not use the cache."""
        d = self.dump
        if not cache_store.cache_enabled() or d.print_ir_after_all or d.print_ir_before_all or d.print_ir_before or d.print_ir_after:
            return None  # (a user asking to see the passes wants them to run)
        if d.dump_dir is not None:
            return None
        with self.timer.phase("cache key (traced IR fingerprint)"):
            return compile_cache.function_key(self.traced, self.pipeline_spec, _BACKEND_OPTIONS)

    def _load(self, key: str) -> bool:
        """Load the compiled function stored for `key`; False on a miss."""
        loaded = compile_cache.load_function(key, _OPT_LEVEL, self._llvm_ir_text, self.timer)
        if loaded is None:
            return False
        stored, function = loaded
        with self.timer.phase("loading"):
            self.native = NativeEntry(function, self.specs, self.result_types, self.result_aliases, stored.constants)
        self.cache_source = function.cache_source
        return True

    def _compile(self, lowers: bool, key: str | None) -> None:
        with self.timer.phase("copy of the traced IR"):
            module = clone_op(self.traced)
        self._ran = StagedPipeline(self.pipeline_spec, self.dump, snapshot_before=self.keep_ir_before, timer=self.timer)
        self._ran.run(module, fresh_input=lambda: clone_op(self.traced))
        self._module = module
        if not lowers:
            return
        self.native = NativeEntry.compile(
            module, self.entry, self.specs, self.result_types, self.result_aliases, self.timer, self._ran.verified
        )
        if key is not None and self.native.function.cache_key is not None:
            with self.timer.phase("cache write"):
                function = self.native.function
                compile_cache.store(key, compile_cache.FunctionEntry(function.cache_key, function.abi, tuple(self.native.constants)))

    def _llvm_ir_text(self) -> str:
        """The LLVM IR of this compile, emitted again from the replayed final module (for a cache hit)."""
        assert self.native is not None
        options = EmitOptions(target=host_target())
        emitted = emit_module(self.final_module, {self.entry: list(self.native.function.arg_specs)}, options)
        return emitted.llvm_ir

    # -- inspection ---------------------------------------------------------
    @property
    def module(self) -> ModuleOp:
        """The module after the pipeline (re-computed on first use after a cache hit)."""
        return self.final_module

    @property
    def final_module(self) -> ModuleOp:
        if self._module is None:
            self._module = self._replayed(lambda r: r.final_module())
        return self._module

    @functools.cached_property
    def passes(self) -> tuple:
        """The passes of the pipeline, parsed (with their options)."""
        return self._ran.passes if self._ran is not None else StagedPipeline(self.pipeline_spec).passes

    @property
    def pipeline(self) -> StagedPipeline:
        """The pipeline as run: by this compile, or re-run with every stage recorded after a cache hit."""
        return self._ran if self._ran is not None else self._replayed(lambda r: r.recorded())

    @property
    def reference_module(self) -> ModuleOp:
        """The tensor-level IR the reference interpreter runs (before lower-to-loops)."""
        if "lower-to-loops" not in self.pass_names:
            return self.final_module
        return self._replayed(lambda r: r.module_before("lower-to-loops"))

    @property
    def ir_before(self) -> dict[str, ModuleOp]:
        """Copies of the module before the passes named in `keep_ir_before` (those the pipeline has)."""
        snapshots = self._ran.snapshots if self._ran is not None else {}
        found = {}
        for name in self.keep_ir_before:
            if name in snapshots:
                found[name] = snapshots[name]
            elif name in self.pass_names:
                found[name] = self._replayed(lambda r: r.module_before(name))
        return found

    def _replayed(self, what):
        """`what(replay)`, timing the re-run of the pipeline as one row of the timing report."""
        with paused_gc(self.timer), self.timer.phase("pipeline re-run for inspection"):
            return what(self._replay)

    @property
    def stages(self) -> list[str]:
        return ["traced", *(f"after:{label}" for label in pass_labels(self.pass_names))]

    @property
    def pass_seconds(self) -> dict[str, float]:
        return dict(self._ran.pass_seconds) if self._ran is not None else {}

    def timing_report(self) -> str:
        """Seconds per phase of this compile (trace, cache, each pass, verification, printing, LLVM...)."""
        return self.timer.report()

    def ir(self, stage: str | None = None) -> str:
        stages = self.stages
        stage = stages[-1] if stage is None else stage
        if stage not in stages:
            raise RasterError(f"no IR stage {stage!r}; stages are: {', '.join(stages)}")
        if self._ran is not None and stage in self._ran.stages:
            return self._ran.stages[stage]
        return self._replayed(lambda r: r.recorded()).stages[stage]

    def tape_report(self):
        """The reverse-mode tapes in this function's workspace (raster_mlir/tape_report.py)."""
        from raster_mlir.tape_report import tape_report

        return tape_report(self.module)

    def _llvm_source(self):
        if self.native is None:
            raise RasterError(
                f"{self.name} was not compiled to native code: its pipeline {self.pipeline_spec!r} "
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
        """Results in the traced function's nesting; 0-d results as Python numbers (a float, or an int
        for an integer result such as a loop counter), as the eager function returns them."""
        return unflatten(self.out_tree, [o.item() if o.ndim == 0 else o for o in outs])

    def dispatcher(self, fallback: Callable):
        """A builtin `f(*args)` that runs this signature natively, results and all, and calls
        `fallback(*args)` for anything else; None when the native entry cannot (then use `__call__`)."""
        native = self.native
        if native is None or native.descriptor is None:
            return None
        return native.function.returning_builtin(native.descriptor, tuple(native.constants), fallback, varargs=True)

    # `compiled(*args)` calls `self._dispatch(*args)`: through the native tp_call of
    # backend/call_slot.py once installed, else through this property (C code, no Python frame).
    __call__ = property(operator.attrgetter("_dispatch"), doc="Call the compiled function.")

    def _call(self, *args, **kwargs):
        """The Python path: no native dispatcher, a declined argument (its precise error), a trace, keywords."""
        if kwargs:
            try:
                args = call_variants.as_positional(self.name, self.fn, args, kwargs, len(self.specs))
            except RasterError as e:
                raise with_location(e, user_location()) from None
        if self.fast_call is not None:
            result = self.fast_call(args)
            if result is not MISS:
                return result
        return self._package(self.run_flat(args))


call_slot.prepare_vectorcall(CompiledFunction, "_vectorcall")


class JitFunction:
    """A Python function compiled on first call per signature (`@rm.jit`).

    Called with traced values (from inside another traced function) it becomes
    a `func.call` to its own traced `func.func`.
    """

    # `_dispatch` is a slot so that backend/call_slot.py can call it from native code (see __call__);
    # `_vectorcall` holds the address of call_slot's vectorcall function (0: CPython uses tp_call).
    __slots__ = ("_dispatch", "_vectorcall", "__dict__", "__weakref__")

    def __init__(self, fn: Callable, *, pipeline: str | None = None, name: str | None = None):
        self.fn = fn
        self.pipeline = pipeline
        self.name = name or getattr(fn, "__name__", "fn")
        self._compiled: dict[tuple[ArgSpec, ...], CompiledFunction] = {}
        self._arg_names = parameter_names(fn)
        self._fast = None  # hot path for the most recently used signature
        # What `f(*args)` calls (see __call__): the native dispatcher of the most recently
        # used signature, or the Python path; one dispatcher per signature, made once.
        self._dispatch = self._call
        self._dispatchers: dict[tuple[ArgSpec, ...], Callable] = {}
        self._keyword_variants: dict[tuple[int, tuple[str, ...]], JitFunction] = {}  # (see _call_with_keywords)
        self._tree_variants: dict[Any, JitFunction] = {}  # argument structure -> variant (see tree_variant)
        self._method_variants: dict[Any, JitFunction] = {}  # (see bound_methods.py)
        functools.update_wrapper(self, fn)

    def __get__(self, instance, owner=None):
        """A method binds like a function: `instance.f(x)` calls `f(instance, x)` (bound_methods.py);
        `Class.f` is this function itself."""
        return self if instance is None else BoundJitMethod(self, instance)

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

    # `f(*args)` calls `self._dispatch(*args)` with no Python frame in between (the property's
    # getter is C code): for the most recently used signature that is a builtin running the
    # native code (backend/dispatch.py), whose fallback for anything else is `_call`. Once a
    # native dispatcher exists, backend/call_slot.py makes the class's tp_call read `_dispatch`
    # itself (the same call without the property's lookups).
    __call__ = property(operator.attrgetter("_dispatch"), doc="Call the function (compiled per signature).")

    def _call(self, *args, **kwargs):
        """The Python call path: a trace, another signature, a bad argument, keywords, or no native dispatcher."""
        if kwargs:
            return self._call_with_keywords(args, kwargs)
        fast = self._fast
        if fast is not None and not TRACES_OPEN.value:  # (active_scope() without its thread-local read)
            result = fast(args)
            if result is not MISS:
                return result
        if call_variants.has_containers(args):
            return self._call_with_trees(args)
        if active_scope() is not None or any(isinstance(a, TracedArray) for a in args):
            return call_traced(self, args)
        try:
            compiled = self.lower(*args)
            self._fast = compiled.fast_call
            self._dispatch = self._dispatcher(compiled)
            if type(self) is JitFunction and self._dispatch != self._call:  # (bound methods: see CompiledFunction)
                call_slot.install(JitFunction, "_dispatch", self)
            return compiled(*args)
        except RasterError as e:
            raise with_location(e, user_location()) from None

    def _call_with_keywords(self, args: tuple, kwargs: dict):
        """`f(*args, **kwargs)` as a positional call of the keyword variant for these keyword names
        (call_variants.py), made once and kept."""
        return self.keyword_variant(args, kwargs)(*args, *kwargs.values())

    def keyword_variant(self, args: tuple, kwargs: dict) -> JitFunction:
        """This function as an `@rm.jit` function of `len(args)` positional arguments followed by the
        values of `kwargs`' names (made once per such key; `args` and `kwargs` are checked against the
        signature the first time)."""
        key = (len(args), tuple(kwargs))
        return self.variant(self._keyword_variants, key, "keyword arguments", self._keyword_caller, args, kwargs, key)

    def _keyword_caller(self, args: tuple, kwargs: dict, key: tuple[int, tuple[str, ...]]) -> Callable:
        try:
            call_variants.check_binding(self.name, self.fn, args, kwargs)
        except RasterError as e:
            raise with_location(e, user_location()) from None
        return call_variants.keyword_variant(self.fn, self._arg_names, *key)

    def _call_with_trees(self, args: tuple):
        """`f(*args)` with tuples, lists or dicts of arrays among the arguments: the tree variant for
        their structure (call_variants.py) called with their leaves."""
        leaves, tree = flatten(args)
        return self.tree_variant(tree)(*leaves)

    def tree_variant(self, tree) -> JitFunction:
        """This function as an `@rm.jit` function of the leaves of arguments structured as `tree`
        (made once per structure)."""
        key = call_variants.tree_key(tree)
        what = "tuples, lists or dicts of arrays as arguments"
        return self.variant(self._tree_variants, key, what, call_variants.tree_variant, self.fn, self._arg_names, tree)

    def variant(self, cache: dict, key, what: str, make_caller: Callable, *make_args) -> JitFunction:
        """The `@rm.jit` function of `make_caller(*make_args)` kept in `cache` under `key`, made on first
        use: the keyword, tree and method (bound_methods.py) variants of this function, each a plain
        JitFunction with this one's pipeline and name (refused for a subclass with its own tracing)."""
        variant = cache.get(key)
        if variant is None:
            self._refuse_variants_of_own_tracing(what)
            variant = cache[key] = JitFunction(make_caller(*make_args), pipeline=self.pipeline, name=self.name)
        return variant

    def _refuse_variants_of_own_tracing(self, what: str) -> None:
        """A variant is a plain @rm.jit function of `self.fn`: a subclass that traces itself its own way
        (a custom rule's function carries its rule) would lose that, so it takes arrays by position."""
        if type(self).trace_into is not JitFunction.trace_into:
            error = DTypeError(
                f"{self.name}: {what} are not supported by a {type(self).__name__} (they would bypass what it "
                "adds to its trace, such as a custom rule); pass arrays by position"
            )
            raise with_location(error, user_location())

    def _dispatcher(self, compiled: CompiledFunction) -> Callable:
        dispatch = self._dispatchers.get(compiled.specs)
        if dispatch is None:
            dispatch = self._dispatchers[compiled.specs] = compiled.dispatcher(self._call) or self._call
        return dispatch


call_slot.prepare_vectorcall(JitFunction, "_vectorcall")


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
    verify_each: bool | None = None,
    print_ir_before_all: bool = False,
    print_op_generic: bool = False,
    print_debuginfo: bool = False,
) -> CompiledFunction:
    """Compile `fn` for the signature of `example_args`, with every IR stage inspectable.

    `verify_each`: True verifies the IR after every pass, False never; None (the default)
    verifies after the last pass, and when that or a pass fails, re-runs the pipeline
    verifying after every pass to name the culprit (`RASTER_MLIR_VERIFY_EACH=1` makes
    None mean True; see `compiler.verification_policy`).

    The dump options are raster-opt's (see `compiler.DumpOptions`): dumps go to stdout,
    or before and after every pass into `dump_dir`; `print_op_generic` and
    `print_debuginfo` (op locations) change how the dumps are printed.
    """
    target = fn.fn if isinstance(fn, JitFunction) else fn
    name = fn.name if isinstance(fn, JitFunction) else getattr(fn, "__name__", "fn")
    dump = DumpOptions(
        print_ir_after_all=print_ir_after_all,
        print_ir_before=(print_ir_before,) if isinstance(print_ir_before, str) else tuple(print_ir_before),
        print_ir_after=(print_ir_after,) if isinstance(print_ir_after, str) else tuple(print_ir_after),
        dump_dir=dump_dir,
        verify_each=verify_each,
        print_ir_before_all=print_ir_before_all,
        generic=print_op_generic,
        locations=print_debuginfo,
    )
    specs = signature_of(name, example_args, parameter_names(target))
    return CompiledFunction(target, specs, name=name, pipeline=pipeline, dump=dump)
