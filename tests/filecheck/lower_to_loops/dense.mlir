// RUN: raster-opt %s -p lower-to-loops | filecheck %s
// dense: one dot product per output row, the accumulator carried in iter_args
// over the unit-stride input dimension; the temporary softmax input is the
// only allocation.

func.func @f(%W: tensor<3x4xf64>, %x: tensor<4xf64>, %b: tensor<3xf64>) -> tensor<3xf64> {
  %y = raster.dense %W, %x, %b : (tensor<3x4xf64>, tensor<4xf64>, tensor<3xf64>) -> tensor<3xf64>
  %p = raster.softmax %y : tensor<3xf64>
  func.return %p : tensor<3xf64>
}

// CHECK:      func.func @f(%W: memref<3x4xf64>, %x: memref<4xf64>, %b: memref<3xf64>, %out0: memref<3xf64>) {
// CHECK:        %[[Y:.*]] = memref.alloc() {alignment = 64 : i64} : memref<3xf64>
// CHECK:        scf.for %[[O:.*]] = {{.*}} {
// CHECK-NEXT:     %[[ACC:.*]] = scf.for %[[K:.*]] = {{.*}} iter_args(%[[A:.*]] = %{{.*}}) -> (f64) {
// CHECK-NEXT:       memref.load %W[%[[O]], %[[K]]] : memref<3x4xf64>
// CHECK-NEXT:       memref.load %x[%[[K]]] : memref<4xf64>
// CHECK-NEXT:       arith.mulf
// CHECK-NEXT:       arith.addf %[[A]]
// CHECK-NEXT:       scf.yield
// CHECK-NEXT:     }
// CHECK:          memref.store %{{.*}}, %[[Y]][%[[O]]] : memref<3xf64>
// CHECK:        math.exp
// CHECK:        memref.store %{{.*}}, %out0
// CHECK-NOT:    memref.alloc
// CHECK:        func.return
