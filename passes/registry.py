"""Pass registry: pass name -> pass class, imported lazily.

Covers raster_mlir's own passes and every transform of xDSL, taken from
xDSL's own registry (`xdsl.transforms.get_all_passes`: canonicalize, cse,
dce, licm, scf-for-loop-unroll, convert-scf-to-cf, ...). A researcher adds a
pass with `register_pass(MyPass)` (a subclass of xDSL's `ModulePass` with a
`name`), or ships it in an installed package under the entry-point group
`raster_mlir.passes` (entry point value: `module:PassClass`).

Precedence when names collide: `register_pass` (on purpose) over raster_mlir's
own passes over xDSL's (raster_mlir's `canonicalize` is xDSL's with a bound on
its rewrites, its `cse` and `dce` xDSL's with cheaper keys: same results); an
entry-point plug-in only adds names nobody has.
`RASTER_PASSES` (raster_mlir's own passes) is what the `xdsl.universe` entry
point gives upstream `xdsl-opt` (see `raster_mlir/universe.py`).

Pipelines are strings in xDSL's syntax, with options in braces:
`"inline,autodiff,canonicalize,cse,lower-to-loops"`.
"""

from __future__ import annotations

import importlib
import re
import sys
import time
from collections.abc import Callable
from importlib.metadata import entry_points

from xdsl.passes import ModulePass, PassPipeline
from xdsl.transforms import get_all_passes
from xdsl.utils.exceptions import ArgSpecParseError

from raster_mlir.errors import CompileError


def _lazy(module: str, cls: str) -> Callable[[], type[ModulePass]]:
    return lambda: getattr(importlib.import_module(module), cls)


_PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    # raster_mlir's own passes (one file each in passes/)
    "inline": _lazy("raster_mlir.passes.inline", "InlinePass"),
    "autodiff": _lazy("raster_mlir.passes.autodiff", "AutodiffPass"),
    "forward-ad": _lazy("raster_mlir.passes.forward_ad", "ForwardADPass"),
    "lower-to-loops": _lazy("raster_mlir.passes.lower_to_loops", "LowerToLoopsPass"),
    "fuse-loops": _lazy("raster_mlir.passes.fuse_loops", "FuseLoopsPass"),
    "forward-gathers": _lazy("raster_mlir.passes.forward_gathers", "ForwardGathersPass"),
    "data-loop": _lazy("raster_mlir.passes.data_loop", "DataLoopPass"),
    "defer-updates": _lazy("raster_mlir.passes.defer_updates", "DeferUpdatesPass"),
    "skip-zero-chunks": _lazy("raster_mlir.passes.skip_zero_chunks", "SkipZeroChunksPass"),
    "skip-zero-updates": _lazy("raster_mlir.passes.skip_zero_updates", "SkipZeroUpdatesPass"),
    "skip-masked-terms": _lazy("raster_mlir.passes.skip_masked_terms", "SkipMaskedTermsPass"),
    "fuse-epilogues": _lazy("raster_mlir.passes.fuse_epilogues", "FuseEpiloguesPass"),
    "parallelize-loops": _lazy("raster_mlir.passes.parallelize_loops", "ParallelizeLoopsPass"),
    "fuse-softmax-cross-entropy": _lazy("raster_mlir.passes.fuse_softmax_cross_entropy", "FuseSoftmaxCrossEntropyPass"),
    # xDSL's canonicalize with a bound on its rewrites (a looping pattern is an error, not a hang)
    "canonicalize": _lazy("raster_mlir.passes.canonicalize", "CanonicalizePass"),
    # xDSL's cse and dce, same result, with the op classes' traits looked up once per class
    "cse": _lazy("raster_mlir.passes.cse", "CommonSubexpressionEliminationPass"),
    "dce": _lazy("raster_mlir.passes.dce", "DeadCodeEliminationPass"),
}
# raster_mlir's own passes as shipped (before any `register_pass`).
_SHIPPED: dict[str, Callable[[], type[ModulePass]]] = dict(_PASSES)
# Every transform xDSL registers, reused as it is (lazy: nothing is imported until used).
XDSL_PASSES: dict[str, Callable[[], type[ModulePass]]] = get_all_passes()
# The names raster_mlir adds to xDSL's (before any `register_pass`): what upstream xdsl-opt gets.
RASTER_PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    name: load for name, load in _PASSES.items() if name not in XDSL_PASSES
}

_plugins_loaded = False


def register_pass(pass_cls: type[ModulePass]) -> type[ModulePass]:
    """Make `pass_cls` available to pipelines under `pass_cls.name` (usable as a decorator)."""
    name = getattr(pass_cls, "name", None)
    if not isinstance(name, str) or not name:
        raise CompileError(f"{pass_cls.__name__} needs a class attribute `name` to be registered")
    _PASSES[name] = lambda: pass_cls
    return pass_cls


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group="raster_mlir.passes"):
        if ep.name not in XDSL_PASSES:
            _PASSES.setdefault(ep.name, ep.load)


def available_passes() -> dict[str, Callable[[], type[ModulePass]]]:
    """Every pass a pipeline may name: xDSL's, then ours and registered ones over them."""
    _load_plugins()
    return {**XDSL_PASSES, **_PASSES}


def pass_origin(name: str) -> str | type[ModulePass] | None:
    """Where the pass a pipeline names `name` comes from: "raster_mlir" (shipped with it),
    "xdsl" (xDSL's own), the class (registered or a plug-in), or None (unknown)."""
    loader = _PASSES.get(name)
    if loader is None:
        if name in XDSL_PASSES:
            return "xdsl"
        _load_plugins()
        loader = _PASSES.get(name)
        if loader is None:
            return None
    if loader is _SHIPPED.get(name):
        return "raster_mlir"
    return loader()


def pipeline_pass_names(spec: str) -> list[str]:
    """The pass names of a pipeline string, in order (options in braces dropped)."""
    return [name.strip() for name in re.sub(r"\{[^}]*\}", "", spec).split(",") if name.strip()]


# The timing report's row for the pass modules a compile imports (the first compile of a process
# imports its pipeline's 24 modules: about 15 ms from bytecode, more than half of it Python making
# their dataclasses).
IMPORTS_ROW = "imports of the passes (first compile of a process)"


def _imported(passes: dict[str, Callable[[], type[ModulePass]]], names: list[str], timer) -> dict:
    """The classes of `names` (their modules imported), timed as `IMPORTS_ROW` when that imported
    anything; an unknown name is left out, for parse_spec to report."""
    modules = len(sys.modules)
    start = time.perf_counter()
    classes = {name: passes[name]() for name in dict.fromkeys(names) if name in passes}
    if timer is not None and len(sys.modules) != modules:
        timer.add(IMPORTS_ROW, time.perf_counter() - start)
    return classes


def parse_pipeline(spec: str, callback=None, timer=None) -> PassPipeline:
    """A PassPipeline from a spec string; unknown passes or bad options are CompileErrors.

    Plug-ins are looked up (an entry-point scan of every installed package, tens of
    milliseconds) only when the pipeline names a pass nobody else provides. With a
    `timer` (timing.CompileTimer), importing the passes' modules is a row of its own.
    """
    passes = {**XDSL_PASSES, **_PASSES}
    names = pipeline_pass_names(spec)
    if any(name not in passes for name in names):
        passes = available_passes()
    try:
        classes = _imported(passes, names, timer)
        if "{" not in spec and all(name in classes for name in names) and all(part.strip() for part in spec.split(",")):
            # No options: each pass with its defaults, which is what parse_spec makes after reading
            # every pass class's fields and type hints (0.7-1 ms per compile; every compile parses its
            # pipeline). A class that cannot be made without options gets parse_spec's message.
            try:
                return PassPipeline(tuple(classes[name]() for name in names), callback)
            except TypeError:
                pass
        return PassPipeline.parse_spec(passes, spec, callback)
    except CompileError:
        raise
    # xDSL raises ValueError / PassFailedException with the detail, and ArgSpecParseError
    # (a BaseException, so `except Exception` would miss it) for malformed specs.
    except (Exception, ArgSpecParseError) as e:
        ours = sorted(name for name in available_passes() if name in _PASSES)
        raise CompileError(
            f"bad pass pipeline {spec!r}: {e}\n  known passes: {', '.join(ours)}, "
            f"and xDSL's {len(XDSL_PASSES)} transforms (`raster-opt --list-passes` lists them all)"
        ) from None
