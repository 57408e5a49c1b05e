// RUN: not raster-opt %s -p inline 2>&1 | filecheck %s
// IR that does not parse is reported at its line and column (exit code 1).

func.func @f(%x: tensor<4xf64>) -> tensor<4xf64> {
  %y = raster.frobnicate %x : tensor<4xf64>
  func.return %y : tensor<4xf64>
}

// CHECK-NOT:  Traceback
// CHECK:      raster-opt: error: {{.*}}parse_error.mlir:5:{{[0-9]+}}
// CHECK:      Operation raster.frobnicate is not registered
// CHECK-NOT:  Traceback
