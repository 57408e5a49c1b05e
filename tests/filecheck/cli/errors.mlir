// RUN: not raster-opt %s -p inline,no-such-pass 2>&1 | filecheck %s --check-prefix=UNKNOWN
// RUN: not raster-opt %s -p 'fuse-loops{no-such-option=1}' 2>&1 | filecheck %s --check-prefix=OPTION
// RUN: not raster-opt %s -p inline --emit=llvm 2>&1 | filecheck %s --check-prefix=TENSOR
// Bad pipelines and IR the backend cannot take are one-line errors with exit
// code 1, not Python tracebacks.

func.func @f(%x: tensor<4xf64>) -> tensor<4xf64> {
  %y = raster.relu %x : tensor<4xf64>
  func.return %y : tensor<4xf64>
}

// UNKNOWN-NOT: Traceback
// UNKNOWN:     raster-opt: error: bad pass pipeline 'inline,no-such-pass': Unrecognized passes: ['no-such-pass']
// UNKNOWN-NEXT: known passes: {{.*}}fuse-loops, {{.*}}inline, lower-to-loops{{.*}} and xDSL's {{[0-9]+}} transforms

// OPTION-NOT:  Traceback
// OPTION:      raster-opt: error: bad pass pipeline 'fuse-loops{no-such-option=1}': {{.*}}no_such_option{{.*}}max_depth

// The backend takes loop-level IR only.
// TENSOR-NOT:  Traceback
// TENSOR:      raster-opt: error: --emit=llvm needs loop-level IR: add lower-to-loops
