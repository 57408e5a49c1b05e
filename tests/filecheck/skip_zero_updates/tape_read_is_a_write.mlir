// RUN: raster-opt %s -p skip-zero-updates | filecheck %s
// A load of a buffer that a run-time tape read fills inside the loop is not invariant: it stays
// after the read (hoisted, every step would see the buffer's contents before the loop).

func.func @f(%tape: memref<4xi64>, %out: memref<1xf64>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %row = memref.alloc() {alignment = 64 : i64} : memref<1xf64>
  scf.for %i = %c0 to %n step %c1 {
    raster.rt_tape_read %tape[%i], %row : memref<1xf64>
    %x = memref.load %row[%c0] : memref<1xf64>
    %o = memref.load %out[%c0] : memref<1xf64>
    %s = arith.addf %o, %x : f64
    memref.store %s, %out[%c0] : memref<1xf64>
  }
  func.return
}

// CHECK:      scf.for
// CHECK-NEXT:   raster.rt_tape_read
// CHECK-NEXT:   memref.load %{{.*}}[%{{.*}}] : memref<1xf64>
