// RUN: raster-opt %s -p lower-to-loops,fuse-loops | filecheck %s
// A reduction loop absorbs the elementwise loop producing what it sums: the
// producer's body goes first in the reduction's body, and the temporary
// disappears when nothing else reads it (@g: the product is also returned,
// so its store stays and the sum reads the stored value directly).

func.func @f(%x: tensor<7xf64>, %y: tensor<7xf64>) -> tensor<f64> {
  %e = raster.exp %x : tensor<7xf64>
  %m = raster.mul %e, %y : tensor<7xf64>, tensor<7xf64> -> tensor<7xf64>
  %s = raster.sum %m : tensor<7xf64> -> tensor<f64>
  func.return %s : tensor<f64>
}

// CHECK:      func.func @f({{.*}}) attributes {raster.fusion = {loops_fused = 2 : i64, temporaries_removed = 2 : i64, bytes_removed = 112 : i64}} {
// CHECK-NOT:    memref.alloc
// CHECK:        %[[S:.*]] = scf.for %[[I:.*]] = {{.*}} iter_args(%[[ACC:.*]] = {{.*}}) -> (f64) {
// CHECK-NEXT:     %[[X:.*]] = memref.load %x[%[[I]]]
// CHECK-NEXT:     %[[E:.*]] = math.exp %[[X]]
// CHECK-NEXT:     %[[Y:.*]] = memref.load %y[%[[I]]]
// CHECK-NEXT:     %[[M:.*]] = arith.mulf %[[E]], %[[Y]]
// CHECK-NEXT:     %[[NEXT:.*]] = arith.addf %[[ACC]], %[[M]]
// CHECK-NEXT:     scf.yield %[[NEXT]]
// CHECK-NEXT:   }
// CHECK-NOT:    scf.for
// CHECK:        memref.store %[[S]], %out0[]

func.func @g(%x: tensor<7xf64>, %y: tensor<7xf64>) -> (tensor<7xf64>, tensor<f64>) {
  %m = raster.mul %x, %y : tensor<7xf64>, tensor<7xf64> -> tensor<7xf64>
  %s = raster.sum %m : tensor<7xf64> -> tensor<f64>
  func.return %m, %s : tensor<7xf64>, tensor<f64>
}

// CHECK:      func.func @g(
// CHECK-NOT:    memref.alloc
// CHECK:        scf.for %[[J:.*]] = {{.*}} iter_args(%[[ACC2:.*]] = {{.*}}) -> (f64) {
// CHECK:          %[[P:.*]] = arith.mulf
// CHECK-NEXT:     memref.store %[[P]], %out0[%[[J]]]
// CHECK-NEXT:     %[[NEXT2:.*]] = arith.addf %[[ACC2]], %[[P]]
// CHECK-NEXT:     scf.yield %[[NEXT2]]
// CHECK-NEXT:   }
// CHECK-NOT:    scf.for
