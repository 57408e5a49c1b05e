// RUN: raster-opt -p lower-to-loops < %s | filecheck %s --check-prefix=LOOPS
// RUN: raster-opt -p lower-to-loops --emit=llvm < %s | filecheck %s --check-prefix=LLVM
// RUN: raster-opt -p '' < %s | filecheck %s --check-prefix=NONE
// The input comes from stdin when no file is given; --emit picks what is
// printed: MLIR (the default) or LLVM IR.

func.func @scale(%x: tensor<16xf64>) -> tensor<16xf64> {
  %y = raster.add %x, %x : tensor<16xf64>, tensor<16xf64> -> tensor<16xf64>
  func.return %y : tensor<16xf64>
}

// LOOPS:      func.func @scale(%x: memref<16xf64>, %out0: memref<16xf64>) {
// LOOPS:        scf.for
// LOOPS:          arith.addf

// LLVM:       define void @"scale"(
// LLVM:         fadd

// An empty pipeline prints the input back.
// NONE:       builtin.module {
// NONE-NEXT:    func.func @scale(%x: tensor<16xf64>) -> tensor<16xf64> {
// NONE-NEXT:      %y = raster.add %x, %x : tensor<16xf64>, tensor<16xf64> -> tensor<16xf64>
// NONE-NEXT:      func.return %y : tensor<16xf64>
