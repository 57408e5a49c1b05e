// RUN: raster-opt %s -p lower-to-loops,fuse-loops | filecheck %s
// The explicit heat-equation step u[1:-1] + c * (u[2:] - 2 * u[1:-1] + u[:-2]), as traced:
// each slice is a copy loop, read through (forward_gathers.py), and producer-consumer fusion
// merges the arithmetic's loops into one that reads u at i, i + 1 and i + 2 directly.

func.func @step(%u: tensor<10xf64>, %c: tensor<f64>) -> tensor<8xf64> {
  %mid = raster.slice %u start = [1] step = [1] : tensor<10xf64> -> tensor<8xf64>
  %right = raster.slice %u start = [2] step = [1] : tensor<10xf64> -> tensor<8xf64>
  %two = raster.fill 2.000000e+00 : f64 : tensor<f64>
  %mid2 = raster.slice %u start = [1] step = [1] : tensor<10xf64> -> tensor<8xf64>
  %twice = raster.mul %two, %mid2 : tensor<f64>, tensor<8xf64> -> tensor<8xf64>
  %d = raster.sub %right, %twice : tensor<8xf64>, tensor<8xf64> -> tensor<8xf64>
  %left = raster.slice %u start = [0] step = [1] : tensor<10xf64> -> tensor<8xf64>
  %lap = raster.add %d, %left : tensor<8xf64>, tensor<8xf64> -> tensor<8xf64>
  %flux = raster.mul %c, %lap : tensor<f64>, tensor<8xf64> -> tensor<8xf64>
  %next = raster.add %mid, %flux : tensor<8xf64>, tensor<8xf64> -> tensor<8xf64>
  func.return %next : tensor<8xf64>
}

// CHECK:      func.func @step(%u: memref<10xf64>, %c: memref<f64>, %out0: memref<8xf64>) attributes {raster.fusion = {loops_fused = {{[0-9]+}} : i64, temporaries_removed = 8 : i64, {{.*}}}} {
// CHECK-NOT:    memref.alloc
// CHECK:        scf.for %[[I:.*]] = {{.*}} {
// CHECK-DAG:      %[[I1:.*]] = arith.addi %[[I]], %{{.*}} : index
// CHECK-DAG:      memref.load %u[%[[I1]]]
// CHECK-DAG:      %[[I2:.*]] = arith.addi %[[I]], %{{.*}} : index
// CHECK-DAG:      memref.load %u[%[[I2]]]
// CHECK-DAG:      memref.load %u[%[[I]]]
// CHECK-DAG:      memref.load %c[]
// CHECK:          memref.store %{{.*}}, %out0[%[[I]]]
// CHECK-NEXT:   }
// CHECK-NOT:    scf.for
// CHECK:        func.return
