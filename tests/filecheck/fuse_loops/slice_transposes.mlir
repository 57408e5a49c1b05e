// RUN: raster-opt %s -p lower-to-loops,fuse-loops | filecheck %s
// The gradient of u[1:] and u[:-1] sums two slice transposes (insert_slice into zeros).
// Each is one loop over the result that loads the source only inside its box, so both
// fuse with the add into one loop: no zero-filled temporaries remain.

func.func @transposes(%a: tensor<7xf64>, %b: tensor<7xf64>) -> tensor<8xf64> {
  %z = raster.fill 0.000000e+00 : f64 : tensor<8xf64>
  %ia = raster.insert_slice %a into %z start = [1] step = [1] : tensor<7xf64> into tensor<8xf64>
  %ib = raster.insert_slice %b into %z start = [0] step = [1] : tensor<7xf64> into tensor<8xf64>
  %s = raster.add %ia, %ib : tensor<8xf64>, tensor<8xf64> -> tensor<8xf64>
  func.return %s : tensor<8xf64>
}

// CHECK:      func.func @transposes(%a: memref<7xf64>, %b: memref<7xf64>, %out0: memref<8xf64>)
// CHECK-NOT:    memref.alloc
// CHECK:        scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:          %[[J:.*]] = arith.subi %[[I]], %{{.*}} : index
// CHECK-NEXT:     %[[IN:.*]] = arith.cmpi ult, %[[J]], %{{.*}} : index
// CHECK-NEXT:     %[[A:.*]] = scf.if %[[IN]] -> (f64) {
// CHECK-NEXT:       memref.load %a[%[[J]]]
// CHECK:          %[[IN2:.*]] = arith.cmpi ult, %[[I]], %{{.*}} : index
// CHECK-NEXT:     %[[B:.*]] = scf.if %[[IN2]] -> (f64) {
// CHECK-NEXT:       memref.load %b[%[[I]]]
// CHECK:          %[[S:.*]] = arith.addf %[[A]], %[[B]] : f64
// CHECK-NEXT:     memref.store %[[S]], %out0[%[[I]]]
// CHECK-NEXT:   }
// CHECK-NOT:    scf.for
// CHECK:        func.return
