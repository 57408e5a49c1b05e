// RUN: raster-opt %s -p 'parallelize-loops{min-work=0}' | filecheck %s
// Which outermost loops may run on several threads.

// Rows 4*ob + i (i < 4) of each block: disjoint between iterations of %ob.
// CHECK-LABEL: func.func @row_blocks
// CHECK:       scf.for
// CHECK:       } {raster.parallel = []}
func.func @row_blocks(%w: memref<16x8xf64>, %out: memref<16x8xf64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : index
  scf.for %ob = %c0 to %c4 step %c1 {
    %o0 = arith.muli %ob, %c4 : index
    scf.for %i = %c0 to %c4 step %c1 {
      %o = arith.addi %o0, %i : index
      scf.for %j = %c0 to %c8 step %c1 {
        %v = memref.load %w[%o, %j] : memref<16x8xf64>
        %d = arith.addf %v, %v : f64
        memref.store %d, %out[%o, %j] : memref<16x8xf64>
      }
    }
  }
  func.return
}

// Rows 2*ob + i with i < 4 overlap the next iteration's: stays serial.
// CHECK-LABEL: func.func @overlapping_rows
// CHECK-NOT:   raster.parallel
// CHECK:       func.return
func.func @overlapping_rows(%out: memref<16x8xf64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c4 = arith.constant 4 : index
  %c6 = arith.constant 6 : index
  %f = arith.constant 1.0 : f64
  scf.for %ob = %c0 to %c6 step %c1 {
    %o0 = arith.muli %ob, %c2 : index
    scf.for %i = %c0 to %c4 step %c1 {
      %o = arith.addi %o0, %i : index
      memref.store %f, %out[%o, %c0] : memref<16x8xf64>
    }
  }
  func.return
}

// Every iteration adds into the same row (a bias gradient over a batch): serial; the loop
// over the row inside it is marked instead (outermost loops that qualify, at any depth).
// CHECK-LABEL: func.func @accumulate_rows
// CHECK:       scf.for
// CHECK:         scf.for
// CHECK:         } {raster.parallel = []}
// CHECK-NEXT:  }
// CHECK-NEXT:  func.return
func.func @accumulate_rows(%dz: memref<8x4xf64>, %db: memref<4xf64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : index
  scf.for %n = %c0 to %c8 step %c1 {
    scf.for %o = %c0 to %c4 step %c1 {
      %a = memref.load %db[%o] : memref<4xf64>
      %b = memref.load %dz[%n, %o] : memref<8x4xf64>
      %s = arith.addf %a, %b : f64
      memref.store %s, %db[%o] : memref<4xf64>
    }
  }
  func.return
}

// A sum through an inner loop's iter_args is a reduction; a carried value used twice is not.
// CHECK-LABEL: func.func @reductions
// CHECK:       } {raster.parallel = ["arith.addf"]}
// CHECK-NOT:   raster.parallel
// CHECK:       func.return
func.func @reductions(%x: memref<8x4xf64>, %out: memref<2xf64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f64
  %total = scf.for %n = %c0 to %c8 step %c1 iter_args(%acc = %zero) -> (f64) {
    %row = scf.for %o = %c0 to %c4 step %c1 iter_args(%r = %acc) -> (f64) {
      %v = memref.load %x[%n, %o] : memref<8x4xf64>
      %s = arith.addf %r, %v : f64
      scf.yield %s : f64
    }
    scf.yield %row : f64
  }
  memref.store %total, %out[%c0] : memref<2xf64>
  %squares = scf.for %n = %c0 to %c8 step %c1 iter_args(%acc = %zero) -> (f64) {
    %sq = arith.mulf %acc, %acc : f64
    %v = memref.load %x[%n, %c0] : memref<8x4xf64>
    %s = arith.addf %sq, %v : f64
    scf.yield %s : f64
  }
  memref.store %squares, %out[%c1] : memref<2xf64>
  func.return
}
