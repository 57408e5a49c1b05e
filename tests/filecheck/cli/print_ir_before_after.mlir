// RUN: raster-opt %s -p inline,lower-to-loops --print-ir-before=lower-to-loops 2>&1 | filecheck %s --check-prefix=BEFORE
// RUN: raster-opt %s -p inline,lower-to-loops --print-ir-after=inline,lower-to-loops 2>&1 | filecheck %s --check-prefix=BOTH
// --print-ir-before shows the input of one pass, --print-ir-after its output
// (several passes: comma-separated); no other stage is dumped.

func.func @f(%x: tensor<4xf64>) -> tensor<4xf64> {
  %y = raster.relu %x : tensor<4xf64>
  func.return %y : tensor<4xf64>
}

// BEFORE-NOT:  IR Dump After
// BEFORE:      // -----// IR Dump Before lower-to-loops //----- //
// BEFORE-NEXT: builtin.module {
// BEFORE-NEXT:   func.func @f(%x: tensor<4xf64>) -> tensor<4xf64> {
// BEFORE-NEXT:     %y = raster.relu %x : tensor<4xf64>
// BEFORE-NOT:  IR Dump

// BOTH-NOT:    IR Dump Before
// BOTH:        // -----// IR Dump After inline //----- //
// BOTH:          raster.relu
// BOTH:        // -----// IR Dump After lower-to-loops //----- //
// BOTH-NEXT:   builtin.module {
// BOTH-NEXT:     func.func @f(%x: memref<4xf64>, %out0: memref<4xf64>) {
// BOTH:            scf.for
// BOTH:              arith.maximumf
// BOTH-NOT:    IR Dump
