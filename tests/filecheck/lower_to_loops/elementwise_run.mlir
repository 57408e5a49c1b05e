// RUN: raster-opt %s -p lower-to-loops | filecheck %s
// RUN: raster-opt %s -p 'lower-to-loops{fuse-elementwise=false}' | filecheck %s --check-prefix=PER-OP
// A run of element-wise ops of one shape (exp, mul by a broadcast operand, add) is one loop nest:
// exp and mul stay scalars (no buffer), add is stored because the sum and the tanh after the run
// read it; the reduction ends the run, and the tanh after it is a run of its own.

func.func @f(%x: tensor<8xf64>, %y: tensor<8xf64>, %r: tensor<1xf64>) -> (tensor<f64>, tensor<8xf64>) {
  %e = raster.exp %x : tensor<8xf64>
  %m = raster.mul %e, %r : tensor<8xf64>, tensor<1xf64> -> tensor<8xf64>
  %a = raster.add %m, %y : tensor<8xf64>, tensor<8xf64> -> tensor<8xf64>
  %s = raster.sum %a : tensor<8xf64> -> tensor<f64>
  %t = raster.tanh %a : tensor<8xf64>
  func.return %s, %t : tensor<f64>, tensor<8xf64>
}

// CHECK:      func.func @f({{.*}}) attributes {raster.fusion = {loops_fused = 2 : i64, temporaries_removed = 2 : i64, bytes_removed = 128 : i64}} {
// CHECK:        %[[A:.*]] = memref.alloc() {alignment = 64 : i64} : memref<8xf64>
// CHECK-NOT:    memref.alloc
// CHECK:        scf.for %[[I:.*]] = {{.*}} {
// CHECK-NEXT:     %[[X:.*]] = memref.load %x[%[[I]]]
// CHECK-NEXT:     %[[E:.*]] = math.exp %[[X]]
// CHECK-NEXT:     %[[R:.*]] = memref.load %r[%{{.*}}]
// CHECK-NEXT:     %[[M:.*]] = arith.mulf %[[E]], %[[R]]
// CHECK-NEXT:     %[[Y:.*]] = memref.load %y[%[[I]]]
// CHECK-NEXT:     %[[SUM:.*]] = arith.addf %[[M]], %[[Y]]
// CHECK-NEXT:     memref.store %[[SUM]], %[[A]][%[[I]]]
// CHECK-NEXT:   }
// CHECK:        scf.for {{.*}} iter_args
// CHECK:        memref.store %{{.*}}, %out0[]
// CHECK:        scf.for %[[J:.*]] = {{.*}} {
// CHECK-NEXT:     %[[AJ:.*]] = memref.load %[[A]][%[[J]]]
// CHECK-NEXT:     %[[T:.*]] = math.tanh %[[AJ]]
// CHECK-NEXT:     memref.store %[[T]], %out1[%[[J]]]
// CHECK-NEXT:   }
// CHECK-NEXT:   func.return

// One nest and one buffer per op:
// PER-OP:      func.func @f({{.*}}) {
// PER-OP:        memref.alloc()
// PER-OP-NEXT:   scf.for
// PER-OP:          math.exp
// PER-OP:        memref.alloc()
// PER-OP-NEXT:   scf.for
// PER-OP:          arith.mulf
// PER-OP:        memref.alloc()
// PER-OP-NEXT:   scf.for
// PER-OP:          arith.addf
