// RUN: raster-opt %s -p inline,cse --print-ir-after-all -o %t 2>&1 | filecheck %s
// RUN: filecheck %s --input-file %t --check-prefix=OUT
// RUN: rm %t
// Dumps go to stderr, one per pass in pipeline order, each headed as MLIR heads
// them; the final IR goes to the output file, without headers.

func.func private @twice(%x: tensor<4xf64>) -> tensor<4xf64> {
  %y = raster.add %x, %x : tensor<4xf64>, tensor<4xf64> -> tensor<4xf64>
  func.return %y : tensor<4xf64>
}

func.func @f(%x: tensor<4xf64>) -> tensor<4xf64> {
  %a = func.call @twice(%x) : (tensor<4xf64>) -> tensor<4xf64>
  %b = func.call @twice(%x) : (tensor<4xf64>) -> tensor<4xf64>
  %c = raster.mul %a, %b : tensor<4xf64>, tensor<4xf64> -> tensor<4xf64>
  func.return %c : tensor<4xf64>
}

// CHECK-NOT:  IR Dump Before
// CHECK:      // -----// IR Dump After inline //----- //
// CHECK-NEXT: builtin.module {
// CHECK:        %[[A:.*]] = raster.add %x, %x
// CHECK-NEXT:   %[[B:.*]] = raster.add %x, %x
// CHECK-NEXT:   raster.mul %[[A]], %[[B]]
// CHECK:      // -----// IR Dump After cse //----- //
// CHECK-NEXT: builtin.module {
// CHECK:        %[[S:.*]] = raster.add %x, %x
// CHECK-NEXT:   raster.mul %[[S]], %[[S]]
// CHECK-NOT:  IR Dump

// OUT-NOT:      IR Dump
// OUT:          builtin.module {
// OUT-NEXT:       func.func @f(%x: tensor<4xf64>) -> tensor<4xf64> {
// OUT-NEXT:         %[[S:.*]] = raster.add %x, %x
// OUT-NEXT:         %[[C:.*]] = raster.mul %[[S]], %[[S]]
// OUT-NEXT:         func.return %[[C]]
