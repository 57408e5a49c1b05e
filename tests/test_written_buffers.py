"""`loop_analysis.written_buffers`: the one answer of skip-zero-updates, skip-zero-chunks and
defer-updates to "which buffers may this loop (or function) write?".

Stores and vector stores write their buffer, a copy its target (not its source), vector loads
write nothing, and an op the analysis does not model (a call, a masked vector store) may write
every buffer it is given.
"""

from __future__ import annotations

from xdsl.dialects import func
from xdsl.parser import Parser

from raster_mlir.compiler import make_context
from raster_mlir.passes.loop_analysis import written_buffers

IR = """
func.func private @opaque(memref<8xf64>) -> ()
func.func @f(%stored: memref<8xf64>, %vstored: memref<8xf64>, %read: memref<8xf64>, %vread: memref<8xf64>,
             %copied_from: memref<8xf64>, %copied_to: memref<8xf64>, %called: memref<8xf64>, %masked: memref<8xf64>) {
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  %c1 = arith.constant 1 : index
  scf.for %i = %c0 to %c8 step %c1 {
    %x = memref.load %read[%i] : memref<8xf64>
    memref.store %x, %stored[%i] : memref<8xf64>
    %v = vector.load %vread[%c0] : memref<8xf64>, vector<8xf64>
    vector.store %v, %vstored[%c0] : memref<8xf64>, vector<8xf64>
    %m = vector.create_mask %c8 : vector<8xi1>
    vector.maskedstore %masked[%c0], %m, %v : memref<8xf64>, vector<8xi1>, vector<8xf64>
  }
  "memref.copy"(%copied_from, %copied_to) : (memref<8xf64>, memref<8xf64>) -> ()
  func.call @opaque(%called) : (memref<8xf64>) -> ()
  func.return
}
"""


def test_written_buffers_of_a_loop_and_of_a_function():
    module = Parser(make_context(), IR).parse_module()
    function = next(op for op in module.ops if isinstance(op, func.FuncOp) and op.sym_name.data == "f")
    args = {arg.name_hint: arg for arg in function.body.block.args}
    loop = next(op for op in function.body.block.ops if op.name == "scf.for")
    assert written_buffers(loop) == {args["stored"], args["vstored"], args["masked"]}
    assert written_buffers(function) == {
        args["stored"], args["vstored"], args["masked"], args["copied_to"], args["called"]
    }  # fmt: skip
