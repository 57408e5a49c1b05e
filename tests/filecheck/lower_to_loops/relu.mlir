// RUN: raster-opt %s -p lower-to-loops | filecheck %s
// An elementwise op becomes one loop nest writing straight into the output buffer.

func.func @f(%x: tensor<4xf64>) -> tensor<4xf64> {
  %y = raster.relu %x : tensor<4xf64>
  func.return %y : tensor<4xf64>
}

// CHECK:      func.func @f(%x: memref<4xf64>, %out0: memref<4xf64>) {
// CHECK-DAG:    %[[ZERO:.*]] = arith.constant 0.000000e+00 : f64
// CHECK:        scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:     %[[V:.*]] = memref.load %x[%[[I]]] : memref<4xf64>
// CHECK-NEXT:     %[[R:.*]] = arith.maximumf %[[V]], %[[ZERO]] : f64
// CHECK-NEXT:     memref.store %[[R]], %out0[%[[I]]] : memref<4xf64>
// CHECK-NEXT:   }
// CHECK-NEXT:   func.return
// CHECK-NOT:  memref.alloc
