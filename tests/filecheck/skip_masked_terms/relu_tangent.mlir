// RUN: raster-opt %s -p lower-to-loops,fuse-loops,skip-masked-terms | filecheck %s
// The jvp of relu(W x + b) along (V, c): after fusion one row loop computes both dot
// products; the tangent's (V's row) is used only times the mask z > 0, so it moves
// under `scf.if` on the comparison (an inactive unit reads no row of V).

func.func @f(%W: tensor<16x32xf64>, %b: tensor<16xf64>, %V: tensor<16x32xf64>, %c: tensor<16xf64>, %x: tensor<32xf64>) -> tensor<16xf64> {
  %z = raster.dense %W, %x, %b : (tensor<16x32xf64>, tensor<32xf64>, tensor<16xf64>) -> tensor<16xf64>
  %dz = raster.dense %V, %x, %c : (tensor<16x32xf64>, tensor<32xf64>, tensor<16xf64>) -> tensor<16xf64>
  %zero = raster.fill 0.000000e+00 : f64 : tensor<f64>
  %m = raster.greater %z, %zero : tensor<16xf64>, tensor<f64> -> tensor<16xf64>
  %t = raster.mul %dz, %m : tensor<16xf64>, tensor<16xf64> -> tensor<16xf64>
  func.return %t : tensor<16xf64>
}

// CHECK:      scf.for %[[I:.*]] = {{.*}} {
// CHECK:        memref.load %W[%[[I]], %{{.*}}]
// CHECK:        %[[ON:.*]] = arith.cmpf ogt
// CHECK:        %[[M:.*]] = arith.select %[[ON]]
// CHECK:        %[[DZ:.*]] = scf.if %[[ON]] -> (f64) {
// CHECK:          scf.for
// CHECK:            memref.load %V[%[[I]], %{{.*}}]
// CHECK:          memref.load %c[%[[I]]]
// CHECK:          scf.yield
// CHECK-NEXT:   } else {
// CHECK-NEXT:     %[[Z:.*]] = arith.constant 0.000000e+00 : f64
// CHECK-NEXT:     scf.yield %[[Z]] : f64
// CHECK-NEXT:   }
// CHECK-NEXT:   arith.mulf %[[DZ]], %[[M]] : f64
