// RUN: raster-opt %s -p lower-to-loops,forward-gathers | filecheck %s
// A transpose is a copy too, but reading through it would read x across its rows in the
// consumer's inner loop: it is not a gather of the same memory order, and stays.

func.func @transposed(%x: tensor<3x4xf64>) -> tensor<4x3xf64> {
  %t = raster.transpose %x perm = [1, 0] : tensor<3x4xf64> -> tensor<4x3xf64>
  %e = raster.exp %t : tensor<4x3xf64>
  func.return %e : tensor<4x3xf64>
}

// CHECK:      func.func @transposed(
// CHECK:        %[[T:.*]] = memref.alloc
// CHECK:        memref.store %{{.*}}, %[[T]]
// CHECK:        memref.load %[[T]]
