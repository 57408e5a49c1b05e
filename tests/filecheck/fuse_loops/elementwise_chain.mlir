// RUN: raster-opt %s -p lower-to-loops,fuse-loops | filecheck %s
// Producer->consumer: exp then mul then add become one loop; both temporaries disappear.

func.func @f(%x: tensor<7xf64>, %y: tensor<7xf64>) -> tensor<7xf64> {
  %e = raster.exp %x : tensor<7xf64>
  %m = raster.mul %e, %y : tensor<7xf64>, tensor<7xf64> -> tensor<7xf64>
  %r = raster.add %m, %x : tensor<7xf64>, tensor<7xf64> -> tensor<7xf64>
  func.return %r : tensor<7xf64>
}

// CHECK:      func.func @f({{.*}}) attributes {raster.fusion = {loops_fused = 2 : i64, temporaries_removed = 2 : i64, bytes_removed = 112 : i64}} {
// CHECK-NOT:    memref.alloc
// CHECK:        scf.for %[[I:.*]] = {{.*}} {
// CHECK-NEXT:     %[[X:.*]] = memref.load %x[%[[I]]]
// CHECK-NEXT:     %[[E:.*]] = math.exp %[[X]]
// CHECK-NEXT:     %[[Y:.*]] = memref.load %y[%[[I]]]
// CHECK-NEXT:     %[[M:.*]] = arith.mulf %[[E]], %[[Y]]
// CHECK-NEXT:     %[[X2:.*]] = memref.load %x[%[[I]]]
// CHECK-NEXT:     %[[R:.*]] = arith.addf %[[M]], %[[X2]]
// CHECK-NEXT:     memref.store %[[R]], %out0[%[[I]]]
// CHECK-NEXT:   }
// CHECK-NOT:    scf.for
// CHECK:        func.return
