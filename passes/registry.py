"""Pass registry: pass name -> pass class, imported lazily.

Covers raster_mlir's own passes and the xDSL passes we reuse. A researcher
adds a pass with `register_pass(MyPass)` (a subclass of xDSL's `ModulePass`
with a `name`), or ships it in an installed package under the entry-point
group `raster_mlir.passes` (entry point value: `module:PassClass`).

Pipelines are strings in xDSL's syntax, with options in braces:
`"inline,autodiff,canonicalize,cse,lower-to-loops"`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points

from xdsl.passes import ModulePass, PassPipeline
from xdsl.utils.exceptions import ArgSpecParseError

from raster_mlir.errors import CompileError


def _lazy(module: str, cls: str) -> Callable[[], type[ModulePass]]:
    return lambda: getattr(importlib.import_module(module), cls)


_PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    # raster_mlir's own passes (one file each in passes/)
    "inline": _lazy("raster_mlir.passes.inline", "InlinePass"),
    "autodiff": _lazy("raster_mlir.passes.autodiff", "AutodiffPass"),
    "lower-to-loops": _lazy("raster_mlir.passes.lower_to_loops", "LowerToLoopsPass"),
    "fuse-loops": _lazy("raster_mlir.passes.fuse_loops", "FuseLoopsPass"),
    "data-loop": _lazy("raster_mlir.passes.data_loop", "DataLoopPass"),
    "defer-updates": _lazy("raster_mlir.passes.defer_updates", "DeferUpdatesPass"),
    "skip-zero-chunks": _lazy("raster_mlir.passes.skip_zero_chunks", "SkipZeroChunksPass"),
    "skip-zero-updates": _lazy("raster_mlir.passes.skip_zero_updates", "SkipZeroUpdatesPass"),
    # xDSL's passes, reused as they are
    "canonicalize": _lazy("xdsl.transforms.canonicalize", "CanonicalizePass"),
    "cse": _lazy("xdsl.transforms.common_subexpression_elimination", "CommonSubexpressionElimination"),
    "dce": _lazy("xdsl.transforms.dead_code_elimination", "DeadCodeElimination"),
    "licm": _lazy("xdsl.transforms.loop_invariant_code_motion", "LoopInvariantCodeMotionPass"),
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
        _PASSES.setdefault(ep.name, ep.load)


def available_passes() -> dict[str, Callable[[], type[ModulePass]]]:
    _load_plugins()
    return dict(_PASSES)


def parse_pipeline(spec: str, callback=None) -> PassPipeline:
    """A PassPipeline from a spec string; unknown passes or bad options are CompileErrors."""
    try:
        return PassPipeline.parse_spec(available_passes(), spec, callback)
    except CompileError:
        raise
    # xDSL raises ValueError / PassFailedException with the detail, and ArgSpecParseError
    # (a BaseException, so `except Exception` would miss it) for malformed specs.
    except (Exception, ArgSpecParseError) as e:
        known = ", ".join(sorted(available_passes()))
        raise CompileError(f"bad pass pipeline {spec!r}: {e}\n  known passes: {known}") from None
