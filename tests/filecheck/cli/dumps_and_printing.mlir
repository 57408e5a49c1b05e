// RUN: raster-opt %s -p inline,cse,inline --print-ir-before=inline#2 --print-ir-after=inline 2>&1 >/dev/null | filecheck %s
// RUN: rm -rf %t && raster-opt %s -p inline,cse,inline --dump-dir %t > /dev/null && ls %t | filecheck %s --check-prefix=DIR
// RUN: raster-opt %s -p cse --print-op-generic --mlir-print-debuginfo | filecheck %s --check-prefix=GENERIC
// A pass that runs twice is `inline#2` in headers, dump files and stage names;
// --print-ir-before/after take a name (every run) or a label (that run).
// --dump-dir writes the IR before and after every pass; --print-op-generic and
// --mlir-print-debuginfo print the generic form with locations.

func.func private @twice(%x: tensor<4xf64>) -> tensor<4xf64> {
  %y = raster.add %x, %x : tensor<4xf64>, tensor<4xf64> -> tensor<4xf64> loc("model.py":3:7)
  func.return %y : tensor<4xf64>
}

func.func @f(%x: tensor<4xf64>) -> tensor<4xf64> {
  %a = func.call @twice(%x) : (tensor<4xf64>) -> tensor<4xf64>
  func.return %a : tensor<4xf64>
}

// CHECK:      // -----// IR Dump After inline //----- //
// CHECK:      // -----// IR Dump Before inline#2 //----- //
// CHECK:      // -----// IR Dump After inline#2 //----- //
// CHECK-NOT:  IR Dump

// DIR:      00_input.mlir
// DIR-NEXT: 01_before_inline.mlir
// DIR-NEXT: 02_after_inline.mlir
// DIR-NEXT: 03_before_cse.mlir
// DIR-NEXT: 04_after_cse.mlir
// DIR-NEXT: 05_before_inline#2.mlir
// DIR-NEXT: 06_after_inline#2.mlir

// GENERIC: %y = "raster.add"(%x, %x) : (tensor<4xf64>, tensor<4xf64>) -> tensor<4xf64> loc("model.py":3:7)
