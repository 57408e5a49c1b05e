"""`raster-opt`: run raster_mlir passes on an `.mlir` file, like `mlir-opt` / `xdsl-opt`.

    raster-opt model.mlir -p 'inline,autodiff,canonicalize,cse,lower-to-loops'
    raster-opt model.mlir -p lower-to-loops --emit=llvm
    cat model.mlir | raster-opt -p inline --print-ir-after-all
    raster-opt model.mlir --dump-dir ir/ --print-op-generic --mlir-print-debuginfo

IR dumps between passes go to stderr (as MLIR's do), headed
`// -----// IR Dump After <pass> //----- //` (`inline#2` for a pass's second
run, as in the stage names); `--dump-dir DIR` writes the IR before and after
every pass to files instead. The final IR (or LLVM IR / assembly with
`--emit`) goes to stdout or `-o FILE`. Every pass (upstream xDSL's too: see
`--list-passes`) runs by name in `-p`.
"""

from __future__ import annotations

import argparse
import sys

from xdsl.utils.exceptions import ParseError

from raster_mlir.compiler import DEFAULT_PIPELINE, DumpOptions, StagedPipeline, make_context, print_module
from raster_mlir.errors import CompileError, RasterError
from raster_mlir.gc_pause import paused_gc
from raster_mlir.timing import CompileTimer
from raster_mlir.verifier import verify_module


def _split(values: list[str]) -> list[str]:
    return [name for v in values for name in v.split(",") if name]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="raster-opt", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", nargs="?", default="-", help="an .mlir file (default: stdin)")
    p.add_argument("-p", "--passes", default=None, help=f"pass pipeline (default: {DEFAULT_PIPELINE!r}; '' runs none)")
    p.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    p.add_argument("--emit", choices=("mlir", "llvm", "llvm-opt", "asm"), default="mlir")
    p.add_argument("--print-ir-after-all", action="store_true")
    p.add_argument("--print-ir-before-all", action="store_true")
    p.add_argument("--print-ir-before", action="append", default=[], metavar="PASS",
                   help="a pass name (every run) or label (inline#2: its second run); repeatable, or comma-separated")
    p.add_argument("--print-ir-after", action="append", default=[], metavar="PASS")
    p.add_argument("--dump-dir", metavar="DIR",
                   help="write the IR before and after every pass to DIR (00_input.mlir, 01_before_<pass>.mlir, ...)")
    p.add_argument("--print-op-generic", "--mlir-print-op-generic", dest="generic", action="store_true",
                   help="print ops in the generic form (dumps and output)")
    p.add_argument("--print-debuginfo", "--mlir-print-debuginfo", dest="locations", action="store_true",
                   help="print op locations (dumps and output)")
    p.add_argument("--verify-each", dest="verify_each", action="store_true", default=True)
    p.add_argument("--no-verify-each", dest="verify_each", action="store_false")
    p.add_argument("--time-passes", action="store_true")
    p.add_argument("--list-passes", action="store_true")
    p.add_argument(
        "--print-llvm-remarks",
        action="store_true",
        help="compile the loop-level IR and print LLVM's diagnostics (captured, never printed otherwise) and the "
        "loops it was asked to vectorise but did not, on stderr",
    )
    return p


def raster_opt_main(argv: list[str] | None = None) -> int:
    with paused_gc():
        return _raster_opt(argv)


def _raster_opt(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_passes:
        from raster_mlir.passes.registry import available_passes

        print("\n".join(sorted(available_passes())))
        return 0
    timer = CompileTimer()
    try:
        from xdsl.parser import Parser

        if args.input == "-":
            text = sys.stdin.read()
        else:
            with open(args.input) as f:
                text = f.read()
        with timer.phase("parse"):
            module = Parser(make_context(every_dialect=True), text, args.input).parse_module()
        with timer.phase("verification"):
            verify_module(module)
        dump = DumpOptions(
            print_ir_after_all=args.print_ir_after_all,
            print_ir_before_all=args.print_ir_before_all,
            print_ir_before=_split(args.print_ir_before),
            print_ir_after=_split(args.print_ir_after),
            dump_dir=args.dump_dir,
            verify_each=args.verify_each,
            stream=sys.stderr,
            generic=args.generic,
            locations=args.locations,
        )
        pipeline = StagedPipeline(DEFAULT_PIPELINE if args.passes is None else args.passes, dump, timer=timer)
        pipeline.run(module, first_stage="input")
        output = _emit(module, args.emit, args.locations, args.generic, timer, args.print_llvm_remarks)
    except (RasterError, ParseError) as e:
        print(f"raster-opt: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # missing file, a directory, no permission
        print(f"raster-opt: error: cannot read {args.input}: {e.strerror or e}", file=sys.stderr)
        return 1
    except Exception as e:  # xDSL verification errors and the like: report, do not trace back
        print(f"raster-opt: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    if args.time_passes:  # every phase: parse, each pass, verification, printing, LLVM (with --emit)
        print(timer.report(), file=sys.stderr)
    if args.output == "-":
        sys.stdout.write(output)
    else:
        with open(args.output, "w") as f:
            f.write(output)
    return 0


def _emit(module, emit: str, locations: bool, generic: bool, timer: CompileTimer, print_remarks: bool = False) -> str:
    if emit == "mlir" and not print_remarks:
        with timer.phase("output printing"):
            return print_module(module, locations=locations, generic=generic)
    from xdsl.dialects.builtin import TensorType

    from raster_mlir.backend import emit_llvm

    if any(isinstance(v.type, TensorType) for op in module.walk() for v in (*op.operands, *op.results)):
        what = f"--emit={emit}" if emit != "mlir" else "--print-llvm-remarks"
        raise CompileError(f"{what} needs loop-level IR: add lower-to-loops to the pipeline (-p ...)")
    result = emit_llvm(module, timer=timer)
    if print_remarks:
        lines = ["// -----// LLVM remarks //----- //", *result.llvm_remarks]
        lines += [f"loop not vectorized: {name}" for name in result.loops_not_vectorized]
        print("\n".join(lines), file=sys.stderr)
    if emit == "mlir":
        with timer.phase("output printing"):
            return print_module(module, locations=locations, generic=generic)
    if emit == "asm":
        with timer.phase("assembly printing"):
            return result.asm
    return {"llvm": result.llvm_ir, "llvm-opt": result.llvm_ir_optimized}[emit]


if __name__ == "__main__":
    sys.exit(raster_opt_main())
