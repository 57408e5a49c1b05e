// RUN: raster-opt %s -p lower-to-loops,fuse-loops | filecheck %s
// Gradient-update fusion: dW = dz (x) x (an outer product by broadcasting) and
// W - lr * dW fuse into one nest; neither dW nor lr * dW is materialised.

func.func @f(%W: tensor<8x4xf64>, %dz: tensor<8x1xf64>, %x: tensor<1x4xf64>) -> tensor<8x4xf64> {
  %dW = raster.mul %dz, %x : tensor<8x1xf64>, tensor<1x4xf64> -> tensor<8x4xf64>
  %lr = raster.fill 1.000000e-01 : f64 : tensor<f64>
  %s = raster.mul %lr, %dW : tensor<f64>, tensor<8x4xf64> -> tensor<8x4xf64>
  %Wn = raster.sub %W, %s : tensor<8x4xf64>, tensor<8x4xf64> -> tensor<8x4xf64>
  func.return %Wn : tensor<8x4xf64>
}

// CHECK:      func.func @f({{.*}}) attributes {raster.fusion = {loops_fused = 4 : i64, temporaries_removed = 2 : i64, bytes_removed = 512 : i64}} {
// CHECK-NOT:    memref.alloc
// CHECK:        scf.for %[[O:.*]] = {{.*}} {
// CHECK-NEXT:     scf.for %[[I:.*]] = {{.*}} {
// CHECK:            %[[G:.*]] = arith.mulf
// CHECK-NEXT:       %[[S:.*]] = arith.mulf %{{.*}}, %[[G]]
// CHECK-NEXT:       %[[W:.*]] = memref.load %W[%[[O]], %[[I]]]
// CHECK-NEXT:       %[[N:.*]] = arith.subf %[[W]], %[[S]]
// CHECK-NEXT:       memref.store %[[N]], %out0[%[[O]], %[[I]]]
// CHECK-NEXT:     }
// CHECK-NEXT:   }
// CHECK-NEXT:   func.return
