"""LLVM IR emission of this tree against another checkout's backend, in one process, interleaved.

    python bench/bench_emit_ab.py --against /path/to/other/checkout [--reps N] [program ...]

The loop-level modules of bench_emit.py's programs are captured while they compile (cache
off), then emitted by both emitters in alternation, the way a compile emits them: with a
`SegmentHandOff` (part_handoff.py) that builds each handed-off part's text (its queue drops
the parts: no LLVM work). Printed: CPU ms of the calling thread per emission (medians, and
the ratio of the medians and of the minima), and whether both emitted the same text, byte for
byte (it must be "same": the emitter's speed-ups keep the IR text).

The other checkout's `raster_mlir/backend` is loaded as the package `raster_mlir.backend_base`;
everything outside the backend (xDSL helpers such as raster_mlir/ir_walk.py) is this tree's,
so a change there shows in both columns (measure it with two checkouts of bench_emit.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import importlib.util
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("RASTER_MLIR_CACHE_DIR", tempfile.mkdtemp(prefix="bench_emit_ab_"))

import numpy as np  # noqa: E402

from bench.bench_emit import capture, programs  # noqa: E402
from raster_mlir.backend import llvm_emit  # noqa: E402
from raster_mlir.backend.part_handoff import SegmentHandOff  # noqa: E402


class _DropParts:
    def submit(self, part) -> None:
        pass


def load_other_backend(checkout: str):
    """The other checkout's backend as `raster_mlir.backend_base`: (its llvm_emit, its part_handoff)."""
    path = os.path.join(os.path.abspath(checkout), "raster_mlir", "backend")
    spec = importlib.util.spec_from_file_location("raster_mlir.backend_base", os.path.join(path, "__init__.py"), submodule_search_locations=[path])
    module = importlib.util.module_from_spec(spec)
    sys.modules["raster_mlir.backend_base"] = module
    spec.loader.exec_module(module)
    from raster_mlir.backend_base import llvm_emit as other_emit, part_handoff as other_handoff, specs as other_specs

    return other_emit, other_handoff, other_specs


def _convert(obj, cls):
    """A dataclass instance of this tree as the other backend's class of the same name."""
    return cls(**{f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, help="another checkout of raster_mlir (its backend is the baseline)")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("programs", nargs="*", help="names of bench_emit.py's programs (default: all)")
    args = parser.parse_args()
    os.environ["RASTER_MLIR_CACHE"] = "0"
    other_emit, other_handoff, other_specs = load_other_backend(args.against)
    rng = np.random.default_rng(0)
    table = programs(rng)

    def other_entries(entries):
        if not isinstance(entries, dict):
            return entries
        return {k: None if v is None else [_convert(a, other_specs.ArgSpec) for a in v] for k, v in entries.items()}

    def other_options(options):
        if options is None:
            return None
        fields = {f.name: getattr(options, f.name) for f in dataclasses.fields(options) if f.name != "target"}
        return other_emit.EmitOptions(**fields, target=options.target)

    print(f"LLVM IR emission with hand-off, CPU ms (median of {args.reps}, interleaved); baseline {args.against}")
    print(f"{'program':24s} {'baseline':>9s} {'this tree':>10s} {'ratio':>6s} {'min ratio':>10s}  text")
    gc.disable()
    try:
        for name in args.programs or list(table):
            modules = capture(table[name])
            jobs = {
                "base": [(other_emit, m, other_entries(e), other_options(o), other_handoff.SegmentHandOff) for m, e, o in modules],
                "ours": [(llvm_emit, m, e, o, SegmentHandOff) for m, e, o in modules],
            }
            times: dict[str, list[float]] = {"base": [], "ours": []}
            texts: dict[str, str] = {}
            for r in range(args.reps):
                for side in ("base", "ours") if r % 2 else ("ours", "base"):
                    t = time.thread_time()
                    out = [em.emit_module(m, e, o, True, hand_off=hand_off(_DropParts())).llvm_ir for em, m, e, o, hand_off in jobs[side]]
                    times[side].append(time.thread_time() - t)
                    texts[side] = "".join(out)
                    gc.collect()
            base, ours = (statistics.median(times[k]) * 1000 for k in ("base", "ours"))
            low = min(times["ours"]) / min(times["base"])
            same = "same" if texts["base"] == texts["ours"] else "DIFFERENT"
            print(f"{name:24s} {base:9.2f} {ours:10.2f} {ours / base:6.2f} {low:10.2f}  {same}", flush=True)
    finally:
        gc.enable()


if __name__ == "__main__":
    main()
