// RUN: raster-opt %s -p skip-masked-terms | filecheck %s
// What stays where it is: a masked value used elsewhere too (@also_stored), a reduction
// too short to be worth a branch (@short), and one that reads a buffer written between it
// and the multiplication (@written_in_between: moved, it would read the new value).

func.func @also_stored(%V: memref<4x64xf64>, %m: memref<4xf64>, %out: memref<4xf64>, %raw: memref<4xf64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c64 = arith.constant 64 : index
  %zero = arith.constant 0.000000e+00 : f64
  %one = arith.constant 1.000000e+00 : f64
  scf.for %i = %c0 to %c4 step %c1 {
    %s = scf.for %j = %c0 to %c64 step %c1 iter_args(%acc = %zero) -> (f64) {
      %v = memref.load %V[%i, %j] : memref<4x64xf64>
      %a = arith.addf %acc, %v : f64
      scf.yield %a : f64
    }
    memref.store %s, %raw[%i] : memref<4xf64>
    %z = memref.load %m[%i] : memref<4xf64>
    %on = arith.cmpf ogt, %z, %zero : f64
    %mask = arith.select %on, %one, %zero : f64
    %t = arith.mulf %s, %mask : f64
    memref.store %t, %out[%i] : memref<4xf64>
  }
  func.return
}

// CHECK-LABEL: func.func @also_stored
// CHECK-NOT:   scf.if

func.func @short(%V: memref<4x4xf64>, %m: memref<4xf64>, %out: memref<4xf64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %zero = arith.constant 0.000000e+00 : f64
  %one = arith.constant 1.000000e+00 : f64
  scf.for %i = %c0 to %c4 step %c1 {
    %s = scf.for %j = %c0 to %c4 step %c1 iter_args(%acc = %zero) -> (f64) {
      %v = memref.load %V[%i, %j] : memref<4x4xf64>
      %a = arith.addf %acc, %v : f64
      scf.yield %a : f64
    }
    %z = memref.load %m[%i] : memref<4xf64>
    %on = arith.cmpf ogt, %z, %zero : f64
    %mask = arith.select %on, %one, %zero : f64
    %t = arith.mulf %mask, %s : f64
    memref.store %t, %out[%i] : memref<4xf64>
  }
  func.return
}

// CHECK-LABEL: func.func @short
// CHECK-NOT:   scf.if

func.func @written_in_between(%V: memref<4x64xf64>, %m: memref<4xf64>, %out: memref<4xf64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c64 = arith.constant 64 : index
  %zero = arith.constant 0.000000e+00 : f64
  %one = arith.constant 1.000000e+00 : f64
  scf.for %i = %c0 to %c4 step %c1 {
    %s = scf.for %j = %c0 to %c64 step %c1 iter_args(%acc = %zero) -> (f64) {
      %v = memref.load %V[%i, %j] : memref<4x64xf64>
      %a = arith.addf %acc, %v : f64
      scf.yield %a : f64
    }
    memref.store %zero, %V[%i, %c0] : memref<4x64xf64>
    %z = memref.load %m[%i] : memref<4xf64>
    %on = arith.cmpf ogt, %z, %zero : f64
    %mask = arith.select %on, %one, %zero : f64
    %t = arith.mulf %s, %mask : f64
    memref.store %t, %out[%i] : memref<4xf64>
  }
  func.return
}

// CHECK-LABEL: func.func @written_in_between
// CHECK-NOT:   scf.if

func.func @negated_mask(%V: memref<4x64xf64>, %m: memref<4xf64>, %out: memref<4xf64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c64 = arith.constant 64 : index
  %zero = arith.constant 0.000000e+00 : f64
  %one = arith.constant 1.000000e+00 : f64
  scf.for %i = %c0 to %c4 step %c1 {
    %s = scf.for %j = %c0 to %c64 step %c1 iter_args(%acc = %zero) -> (f64) {
      %v = memref.load %V[%i, %j] : memref<4x64xf64>
      %a = arith.addf %acc, %v : f64
      scf.yield %a : f64
    }
    %z = memref.load %m[%i] : memref<4xf64>
    %off = arith.cmpf ogt, %z, %zero : f64
    %mask = arith.select %off, %zero, %one : f64
    %t = arith.mulf %s, %mask : f64
    memref.store %t, %out[%i] : memref<4xf64>
  }
  func.return
}

// A mask that is 1 where the condition is false: the reduction runs in the else branch.
// CHECK-LABEL: func.func @negated_mask
// CHECK:         %[[OFF:.*]] = arith.cmpf ogt
// CHECK:         %[[S:.*]] = scf.if %[[OFF]] -> (f64) {
// CHECK-NEXT:      arith.constant 0.000000e+00 : f64
// CHECK-NEXT:      scf.yield
// CHECK-NEXT:    } else {
// CHECK-NEXT:      scf.for
// CHECK:           memref.load %V
// CHECK:         arith.mulf %[[S]]
