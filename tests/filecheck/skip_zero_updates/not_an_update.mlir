// RUN: raster-opt %s -p lower-to-loops,fuse-loops,skip-zero-updates | filecheck %s
// A loop whose store is not old +- (factor * ...) stays unguarded: y = dz * x
// must be written even when dz == 0.

func.func @f(%dz: tensor<8x1xf64>, %x: tensor<1x4xf64>) -> tensor<8x4xf64> {
  %y = raster.mul %dz, %x : tensor<8x1xf64>, tensor<1x4xf64> -> tensor<8x4xf64>
  func.return %y : tensor<8x4xf64>
}

// CHECK-NOT: scf.if
// CHECK:     memref.store
