// RUN: raster-opt %s -p lower-to-loops,fuse-loops,skip-zero-updates | filecheck %s
// W -= lr * (dz (x) x), in place (the result aliases %W): after fusion each row's
// update loop multiplies by dz[o], which is hoisted out of it, and the row is
// skipped when dz[o] == 0 (`une` keeps NaNs propagating).

func.func @f(%W: tensor<8x4xf64>, %dz: tensor<8x1xf64>, %x: tensor<1x4xf64>) -> tensor<8x4xf64> attributes {raster.result_aliases = array<i64: 0>} {
  %dW = raster.mul %dz, %x : tensor<8x1xf64>, tensor<1x4xf64> -> tensor<8x4xf64>
  %lr = raster.fill 1.000000e-01 : f64 : tensor<f64>
  %s = raster.mul %lr, %dW : tensor<f64>, tensor<8x4xf64> -> tensor<8x4xf64>
  %Wn = raster.sub %W, %s : tensor<8x4xf64>, tensor<8x4xf64> -> tensor<8x4xf64>
  func.return %Wn : tensor<8x4xf64>
}

// CHECK:      scf.for %[[O:.*]] = {{.*}} {
// CHECK:        %[[DZ:.*]] = memref.load %dz[%[[O]], %{{.*}}]
// CHECK:        %[[NZ:.*]] = arith.cmpf une, %[[DZ]], %{{.*}} : f64
// CHECK-NEXT:   scf.if %[[NZ]] {
// CHECK-NEXT:     scf.for %[[I:.*]] = {{.*}} {
// CHECK:            arith.mulf %[[DZ]]
// CHECK:            arith.subf
// CHECK:            memref.store {{.*}}, %W[%[[O]], %[[I]]]
// CHECK:          }
// CHECK-NEXT:   }
