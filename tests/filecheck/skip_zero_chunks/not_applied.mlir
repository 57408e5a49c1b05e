// RUN: raster-opt %s -p skip-zero-chunks | filecheck %s
// Loops the pass must leave alone: skipping x's zero chunks would be wrong, or the
// body is not one of its two forms (dot product, rank-one update), or x is too short.

// x is written in the function (here after the loops): it is not an input. W is updated too,
// as in a train step (else W's row, an unwritten argument, would be the one scanned: as exact).
func.func @x_written(%W: memref<8x64xf64>, %x: memref<64xf64>, %e: memref<8xf64>, %z: memref<8xf64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c64 = arith.constant 64 : index
  %zero = arith.constant 0.0 : f64
  scf.for %i = %c0 to %c8 step %c1 {
    %dot = scf.for %j = %c0 to %c64 step %c1 iter_args(%acc = %zero) -> (f64) {
      %w = memref.load %W[%i, %j] : memref<8x64xf64>
      %xj = memref.load %x[%j] : memref<64xf64>
      %p = arith.mulf %w, %xj : f64
      %s = arith.addf %acc, %p : f64
      scf.yield %s : f64
    }
    memref.store %dot, %z[%i] : memref<8xf64>
  }
  scf.for %i = %c0 to %c8 step %c1 {
    %ei = memref.load %e[%i] : memref<8xf64>
    scf.for %j = %c0 to %c64 step %c1 {
      %xj = memref.load %x[%j] : memref<64xf64>
      %t = arith.mulf %ei, %xj : f64
      %w = memref.load %W[%i, %j] : memref<8x64xf64>
      %wn = arith.subf %w, %t : f64
      memref.store %wn, %W[%i, %j] : memref<8x64xf64>
    }
  }
  memref.store %zero, %x[%c0] : memref<64xf64>
  func.return
}
// CHECK-LABEL: func.func @x_written
// CHECK-NOT:     vector.
// CHECK:         scf.for %j = %c0 to %c64 step %c1 iter_args(%acc = %zero) -> (f64) {
// CHECK-NEXT:      memref.load %W[%i, %j]
// CHECK-NEXT:      memref.load %x[%j]
// CHECK-NOT:     vector.
// CHECK:         memref.store %wn, %W[%i_1, %j_1]
// CHECK-NOT:     vector.
// CHECK:         func.return

// The update reads W's row at another column (j + 1): not something one vector per chunk
// computes. (With the shifted load after the product, the pass crashes instead: see
// test_bug_giving_up_after_a_splat_crashes in tests/test_skip_zero_chunks.py.)
func.func @shifted_update(%W: memref<8x65xf64>, %x: memref<64xf64>, %e: memref<8xf64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c64 = arith.constant 64 : index
  scf.for %i = %c0 to %c8 step %c1 {
    %ei = memref.load %e[%i] : memref<8xf64>
    scf.for %j = %c0 to %c64 step %c1 {
      %j1 = arith.addi %j, %c1 : index
      %next = memref.load %W[%i, %j1] : memref<8x65xf64>
      %xj = memref.load %x[%j] : memref<64xf64>
      %t = arith.mulf %ei, %xj : f64
      %w = memref.load %W[%i, %j] : memref<8x65xf64>
      %u = arith.addf %w, %next : f64
      %v = arith.mulf %u, %t : f64
      %wn = arith.subf %w, %v : f64
      memref.store %wn, %W[%i, %j] : memref<8x65xf64>
    }
  }
  func.return
}
// CHECK-LABEL: func.func @shifted_update
// CHECK-NOT:     vector.
// CHECK:         %[[J1:.*]] = arith.addi %j, %c1 : index
// CHECK-NEXT:    memref.load %W[%i, %[[J1]]]
// CHECK-NOT:     vector.
// CHECK:         func.return

// The same for a dot product: W[i, j + 1] * x[j].
func.func @shifted_dot(%W: memref<8x65xf64>, %x: memref<64xf64>, %z: memref<8xf64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c64 = arith.constant 64 : index
  %zero = arith.constant 0.0 : f64
  scf.for %i = %c0 to %c8 step %c1 {
    %dot = scf.for %j = %c0 to %c64 step %c1 iter_args(%acc = %zero) -> (f64) {
      %j1 = arith.addi %j, %c1 : index
      %w = memref.load %W[%i, %j1] : memref<8x65xf64>
      %xj = memref.load %x[%j] : memref<64xf64>
      %p = arith.mulf %w, %xj : f64
      %s = arith.addf %acc, %p : f64
      scf.yield %s : f64
    }
    memref.store %dot, %z[%i] : memref<8xf64>
  }
  func.return
}
// CHECK-LABEL: func.func @shifted_dot
// CHECK-NOT:     vector.
// CHECK:         func.return

// Not an update of W by a multiple of x: W[i, j] = e[i] * x[j] must be written where x is 0.
func.func @overwrite(%W: memref<8x64xf64>, %x: memref<64xf64>, %e: memref<8xf64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c64 = arith.constant 64 : index
  scf.for %i = %c0 to %c8 step %c1 {
    %ei = memref.load %e[%i] : memref<8xf64>
    scf.for %j = %c0 to %c64 step %c1 {
      %xj = memref.load %x[%j] : memref<64xf64>
      %t = arith.mulf %ei, %xj : f64
      memref.store %t, %W[%i, %j] : memref<8x64xf64>
    }
  }
  func.return
}
// No chunk is skipped (no chunk list); the row write only gets W's frame (aligned_writes.py): a masked
// head, whole chunks from W's first 64-byte boundary, a masked tail, x read from an aligned copy.
// CHECK-LABEL: func.func @overwrite
// CHECK-NOT:     xi64>
// CHECK:         memref.alloc() {alignment = 64 : i64} : memref<72xf64>
// CHECK-NOT:     xi64>
// CHECK:         vector.maskedstore %W
// CHECK:         vector.store {{.*}}, %W
// CHECK:         vector.maskedstore %W
// CHECK:         func.return

// W[i, j] -= e[i] + x[j]: x is not a factor of the update term.
func.func @not_a_product(%W: memref<8x64xf64>, %x: memref<64xf64>, %e: memref<8xf64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c64 = arith.constant 64 : index
  scf.for %i = %c0 to %c8 step %c1 {
    %ei = memref.load %e[%i] : memref<8xf64>
    scf.for %j = %c0 to %c64 step %c1 {
      %xj = memref.load %x[%j] : memref<64xf64>
      %t = arith.addf %ei, %xj : f64
      %w = memref.load %W[%i, %j] : memref<8x64xf64>
      %wn = arith.subf %w, %t : f64
      memref.store %wn, %W[%i, %j] : memref<8x64xf64>
    }
  }
  func.return
}
// CHECK-LABEL: func.func @not_a_product
// CHECK-NOT:     vector.
// CHECK:         func.return

// x is a temporary (an alloc), not an argument: it may be computed in the function
// (and W is written, so it is no candidate either).
func.func @x_not_an_argument(%W: memref<8x64xf64>, %z: memref<8xf64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c64 = arith.constant 64 : index
  %zero = arith.constant 0.0 : f64
  %x = memref.alloc() : memref<64xf64>
  scf.for %i = %c0 to %c8 step %c1 {
    %dot = scf.for %j = %c0 to %c64 step %c1 iter_args(%acc = %zero) -> (f64) {
      %w = memref.load %W[%i, %j] : memref<8x64xf64>
      %xj = memref.load %x[%j] : memref<64xf64>
      %p = arith.mulf %w, %xj : f64
      %s = arith.addf %acc, %p : f64
      scf.yield %s : f64
    }
    memref.store %dot, %z[%i] : memref<8xf64>
  }
  memref.store %zero, %W[%c0, %c0] : memref<8x64xf64>
  func.return
}
// CHECK-LABEL: func.func @x_not_an_argument
// CHECK-NOT:     vector.
// CHECK:         func.return

// Three chunks of 8 f64 (and a tail of 7): fewer than min-chunks = 4, left as it is.
func.func @too_short(%W: memref<8x31xf64>, %x: memref<31xf64>, %z: memref<8xf64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c31 = arith.constant 31 : index
  %zero = arith.constant 0.0 : f64
  scf.for %i = %c0 to %c8 step %c1 {
    %dot = scf.for %j = %c0 to %c31 step %c1 iter_args(%acc = %zero) -> (f64) {
      %w = memref.load %W[%i, %j] : memref<8x31xf64>
      %xj = memref.load %x[%j] : memref<31xf64>
      %p = arith.mulf %w, %xj : f64
      %s = arith.addf %acc, %p : f64
      scf.yield %s : f64
    }
    memref.store %dot, %z[%i] : memref<8xf64>
  }
  func.return
}
// CHECK-LABEL: func.func @too_short
// CHECK-NOT:     vector.
// CHECK-NOT:     memref.alloc
// CHECK:         scf.for %j = %c0 to %c31 step %c1
// CHECK-NOT:     vector.
// CHECK:         func.return

// A lone dot product of two long vectors (sum(x * y) once fuse-loops merged the product into
// the sum): no loop around it reuses the chunk list, no other loop reads x's row, and x (32 KiB)
// does not stay in L1, so a scan would be one more pass over memory.
func.func @lone_dot(%x: memref<4096xf64>, %y: memref<4096xf64>, %out: memref<f64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4096 = arith.constant 4096 : index
  %zero = arith.constant 0.0 : f64
  %dot = scf.for %j = %c0 to %c4096 step %c1 iter_args(%acc = %zero) -> (f64) {
    %xj = memref.load %x[%j] : memref<4096xf64>
    %yj = memref.load %y[%j] : memref<4096xf64>
    %p = arith.mulf %xj, %yj : f64
    %s = arith.addf %acc, %p : f64
    scf.yield %s : f64
  }
  memref.store %dot, %out[] : memref<f64>
  func.return
}

// CHECK-LABEL: func.func @lone_dot
// CHECK-NOT:     vector.
// CHECK-NOT:     memref.alloc
// CHECK:         scf.for %j = %c0 to %c4096 step %c1 iter_args
// CHECK-NOT:     vector.
// CHECK:         func.return
