// RUN: raster-opt %s -p unroll-small-loops | filecheck %s
// RUN: raster-opt %s -p 'unroll-small-loops{max-trip=1}' | filecheck %s --check-prefix=ONE
// Loops of at most max-trip (4) iterations become copies of their body; inner loops
// first, so a small loop nest disappears completely; a loop of 8 trips stays.

func.func @f(%x: memref<2x2xf64>, %y: memref<8xf64>, %out: memref<f64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.000000e+00 : f64
  %s = scf.for %i = %c0 to %c2 step %c1 iter_args(%acc = %zero) -> (f64) {
    %r = scf.for %j = %c0 to %c2 step %c1 iter_args(%racc = %acc) -> (f64) {
      %v = memref.load %x[%i, %j] : memref<2x2xf64>
      %a = arith.addf %racc, %v : f64
      scf.yield %a : f64
    }
    scf.yield %r : f64
  }
  %t = scf.for %k = %c0 to %c8 step %c1 iter_args(%acc = %s) -> (f64) {
    %v = memref.load %y[%k] : memref<8xf64>
    %a = arith.addf %acc, %v : f64
    scf.yield %a : f64
  }
  memref.store %t, %out[] : memref<f64>
  func.return
}

// CHECK:      %[[V00:.*]] = memref.load %x[%[[I0:.*]], %[[J0:.*]]] : memref<2x2xf64>
// CHECK-NEXT: %[[A00:.*]] = arith.addf %zero, %[[V00]] : f64
// CHECK:      %[[V01:.*]] = memref.load %x[%[[I0]], %{{.*}}] : memref<2x2xf64>
// CHECK-NEXT: %[[A01:.*]] = arith.addf %[[A00]], %[[V01]] : f64
// CHECK:      %[[V10:.*]] = memref.load %x
// CHECK-NEXT: %[[A10:.*]] = arith.addf %[[A01]], %[[V10]] : f64
// CHECK:      %[[V11:.*]] = memref.load %x
// CHECK-NEXT: %[[A11:.*]] = arith.addf %[[A10]], %[[V11]] : f64
// CHECK-NEXT: %t = scf.for %k = %c0 to %c8 step %c1 iter_args(%acc = %[[A11]]) -> (f64) {
// CHECK-NOT:  scf.for

// ONE-COUNT-3: scf.for
