// RUN: raster-opt %s -p lower-to-loops,fuse-loops | filecheck %s
// fuse-loops works inside the regions of scf.while and scf.if: the element-wise
// chain of each body becomes one loop, writing the carry (or the result) in place.

func.func @f(%x0: tensor<64xf64>, %w: tensor<64xf64>, %p: tensor<f64>) -> tensor<64xf64> {
  %t0 = raster.fill 0.000000e+00 : f64 : tensor<f64>
  %x, %t = raster.while iter_args(%x1 = %x0 : tensor<64xf64>, %t1 = %t0 : tensor<f64>) captures(%w1 = %w : tensor<64xf64>) cond {
    %three = raster.fill 3.000000e+00 : f64 : tensor<f64>
    %go = raster.greater %three, %t1 : tensor<f64>, tensor<f64> -> tensor<f64>
    raster.condition %go : tensor<f64>
  } do {
  ^bb0(%x2: tensor<64xf64>, %t2: tensor<f64>, %w2: tensor<64xf64>):
    %a = raster.mul %x2, %w2 : tensor<64xf64>, tensor<64xf64> -> tensor<64xf64>
    %b = raster.tanh %a : tensor<64xf64>
    %c = raster.add %b, %x2 : tensor<64xf64>, tensor<64xf64> -> tensor<64xf64>
    %one = raster.fill 1.000000e+00 : f64 : tensor<f64>
    %t3 = raster.add %t2, %one : tensor<f64>, tensor<f64> -> tensor<f64>
    raster.yield %c, %t3 : tensor<64xf64>, tensor<f64>
  }
  %r = raster.if %p : tensor<f64> captures(%xa = %x : tensor<64xf64>, %wa = %w : tensor<64xf64>) -> (tensor<64xf64>) {
    %m = raster.mul %xa, %wa : tensor<64xf64>, tensor<64xf64> -> tensor<64xf64>
    %e = raster.exp %m : tensor<64xf64>
    raster.yield %e : tensor<64xf64>
  } else {
  ^bb0(%xb: tensor<64xf64>, %wb: tensor<64xf64>):
    %n = raster.neg %xb : tensor<64xf64>
    raster.yield %n : tensor<64xf64>
  }
  func.return %r : tensor<64xf64>
}

// CHECK:      scf.while () : () -> () {
// CHECK:        scf.condition
// CHECK-NEXT: } do {
// CHECK-NEXT:   scf.for %[[J:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NOT:      scf.for
// CHECK:          math.tanh
// CHECK:          memref.store %{{.*}}, %[[X:.*]][%[[J]]] : memref<64xf64>
// CHECK-NEXT:   }
// CHECK-NOT:    scf.for
// CHECK:        scf.yield
// CHECK-NEXT: } attributes {raster.loop = "while"}
// CHECK:      scf.if %{{.*}} {
// CHECK-NEXT:   scf.for
// CHECK-NOT:      scf.for
// CHECK:          math.exp
// CHECK-NEXT:     memref.store %{{.*}}, %out0
// CHECK-NEXT:   }
// CHECK-NEXT: } else {
// CHECK-NEXT:   scf.for
// CHECK:          arith.negf
// CHECK-NEXT:     memref.store %{{.*}}, %out0
// CHECK-NEXT:   }
// CHECK-NEXT: }
