// RUN: raster-opt %s -p 'defer-updates{function=shared block=2}' | filecheck %s --check-prefix=SHARED
// RUN: raster-opt %s -p 'defer-updates{function=square block=2}' | filecheck %s --check-prefix=SQUARE
// RUN: raster-opt %s -p 'defer-updates{function=short}' | filecheck %s --check-prefix=SHORT
// Data loops defer-updates leaves alone: it says why in raster.schedule and
// changes nothing else (no coefficient buffer, the loop as it was).
// @shared: W is also read by the loss, so W's value at each step matters
// elsewhere than in the dot product. @square: the update x[n, j] * x[n, j] is
// not rank one. @short: 3 steps, fewer than one block (block=0 picks 8 for rows
// of 24 bytes).

func.func @shared(%W: memref<4x3xf64>, %x: memref<6x3xf64>, %out: memref<6xf64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %cols = arith.constant 3 : index
  %rows = arith.constant 4 : index
  %steps = arith.constant 6 : index
  %zero = arith.constant 0.000000e+00 : f64
  %lr = arith.constant 1.000000e-01 : f64
  %z = memref.alloc() {alignment = 64 : i64} : memref<4xf64>
  scf.for %n = %c0 to %steps step %c1 {
    scf.for %i = %c0 to %rows step %c1 {
      %dot = scf.for %j = %c0 to %cols step %c1 iter_args(%acc = %zero) -> (f64) {
        %w = memref.load %W[%i, %j] : memref<4x3xf64>
        %xj = memref.load %x[%n, %j] : memref<6x3xf64>
        %p = arith.mulf %w, %xj : f64
        %s = arith.addf %acc, %p : f64
        scf.yield %s : f64
      }
      memref.store %dot, %z[%i] : memref<4xf64>
    }
    // the loss reads W[i, 0]
    %loss = scf.for %i2 = %c0 to %rows step %c1 iter_args(%lacc = %zero) -> (f64) {
      %a2 = memref.load %z[%i2] : memref<4xf64>
      %w0 = memref.load %W[%i2, %c0] : memref<4x3xf64>
      %t = arith.mulf %a2, %w0 : f64
      %ls = arith.addf %lacc, %t : f64
      scf.yield %ls : f64
    }
    memref.store %loss, %out[%n] : memref<6xf64>
    scf.for %i3 = %c0 to %rows step %c1 {
      %d = memref.load %z[%i3] : memref<4xf64>
      scf.for %j3 = %c0 to %cols step %c1 {
        %xu = memref.load %x[%n, %j3] : memref<6x3xf64>
        %wold = memref.load %W[%i3, %j3] : memref<4x3xf64>
        %dx = arith.mulf %d, %xu : f64
        %step = arith.mulf %lr, %dx : f64
        %wnew = arith.subf %wold, %step : f64
        memref.store %wnew, %W[%i3, %j3] : memref<4x3xf64>
      }
    }
  }
  func.return
}

func.func @square(%W: memref<4x3xf64>, %x: memref<6x3xf64>, %out: memref<6xf64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %cols = arith.constant 3 : index
  %rows = arith.constant 4 : index
  %steps = arith.constant 6 : index
  %zero = arith.constant 0.000000e+00 : f64
  %lr = arith.constant 1.000000e-01 : f64
  %z = memref.alloc() {alignment = 64 : i64} : memref<4xf64>
  scf.for %n = %c0 to %steps step %c1 {
    scf.for %i = %c0 to %rows step %c1 {
      %dot = scf.for %j = %c0 to %cols step %c1 iter_args(%acc = %zero) -> (f64) {
        %w = memref.load %W[%i, %j] : memref<4x3xf64>
        %xj = memref.load %x[%n, %j] : memref<6x3xf64>
        %p = arith.mulf %w, %xj : f64
        %s = arith.addf %acc, %p : f64
        scf.yield %s : f64
      }
      memref.store %dot, %z[%i] : memref<4xf64>
    }
    scf.for %i3 = %c0 to %rows step %c1 {
      %d = memref.load %z[%i3] : memref<4xf64>
      scf.for %j3 = %c0 to %cols step %c1 {
        %xu = memref.load %x[%n, %j3] : memref<6x3xf64>
        %wold = memref.load %W[%i3, %j3] : memref<4x3xf64>
        %xx = arith.mulf %xu, %xu : f64
        %dx = arith.mulf %d, %xx : f64
        %wnew = arith.subf %wold, %dx : f64
        memref.store %wnew, %W[%i3, %j3] : memref<4x3xf64>
      }
    }
  }
  func.return
}

func.func @short(%W: memref<4x3xf64>, %x: memref<3x3xf64>, %g: memref<3x4xf64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %cols = arith.constant 3 : index
  %rows = arith.constant 4 : index
  %steps = arith.constant 3 : index
  %zero = arith.constant 0.000000e+00 : f64
  %z = memref.alloc() {alignment = 64 : i64} : memref<4xf64>
  scf.for %n = %c0 to %steps step %c1 {
    scf.for %i = %c0 to %rows step %c1 {
      %dot = scf.for %j = %c0 to %cols step %c1 iter_args(%acc = %zero) -> (f64) {
        %w = memref.load %W[%i, %j] : memref<4x3xf64>
        %xj = memref.load %x[%n, %j] : memref<3x3xf64>
        %p = arith.mulf %w, %xj : f64
        %s = arith.addf %acc, %p : f64
        scf.yield %s : f64
      }
      memref.store %dot, %z[%i] : memref<4xf64>
    }
    scf.for %i3 = %c0 to %rows step %c1 {
      %d = memref.load %g[%n, %i3] : memref<3x4xf64>
      scf.for %j3 = %c0 to %cols step %c1 {
        %xu = memref.load %x[%n, %j3] : memref<3x3xf64>
        %wold = memref.load %W[%i3, %j3] : memref<4x3xf64>
        %dx = arith.mulf %d, %xu : f64
        %wnew = arith.subf %wold, %dx : f64
        memref.store %wnew, %W[%i3, %j3] : memref<4x3xf64>
      }
    }
  }
  func.return
}

// SHARED:      func.func @shared({{.*}}) attributes {raster.schedule = "step by step (defer-updates: the weight is used elsewhere than one forward dot product and one update)"} {
// SHARED-NOT:  memref.alloc() {{.*}} : memref<2x4xf64>
// SHARED:      %z = memref.alloc() {alignment = 64 : i64} : memref<4xf64>
// SHARED-NEXT: scf.for %n = %c0 to %steps step %c1 {
// SHARED-NEXT:   scf.for %i = %c0 to %rows step %c1 {
// SHARED-NEXT:     %dot = scf.for %j = %c0 to %cols step %c1 iter_args(%acc = %zero) -> (f64) {
// SHARED-NEXT:       %w = memref.load %W[%i, %j] : memref<4x3xf64>
// SHARED:        %w0 = memref.load %W[%i2, %c0] : memref<4x3xf64>
// SHARED:        scf.for %j3 = %c0 to %cols step %c1 {
// SHARED:            memref.store %wnew, %W[%i3, %j3] : memref<4x3xf64>
// The other functions have no attribute.
// SHARED:      func.func @square(%W: memref<4x3xf64>, %x: memref<6x3xf64>, %out: memref<6xf64>) {
// SHARED:      func.func @short(%W: memref<4x3xf64>, %x: memref<3x3xf64>, %g: memref<3x4xf64>) {

// SQUARE:      func.func @shared(%W: memref<4x3xf64>, %x: memref<6x3xf64>, %out: memref<6xf64>) {
// SQUARE:      func.func @square({{.*}}) attributes {raster.schedule = "step by step (defer-updates: the update term is not a coefficient times a row of the samples)"} {
// SQUARE-NOT:  memref.alloc() {{.*}} : memref<2x4xf64>
// SQUARE:      scf.for %n = %c0 to %steps step %c1 {
// SQUARE:            %xx = arith.mulf %xu, %xu : f64
// SQUARE-NEXT:       %dx = arith.mulf %d, %xx : f64
// SQUARE-NEXT:       %wnew = arith.subf %wold, %dx : f64
// SQUARE-NEXT:       memref.store %wnew, %W[%i3, %j3] : memref<4x3xf64>

// SHORT:       func.func @short({{.*}}) attributes {raster.schedule = "step by step (defer-updates: fewer steps (3) than one block (8))"} {
// SHORT-NOT:   memref<8x4xf64>
// SHORT:       scf.for %n = %c0 to %steps step %c1 {
// SHORT:           memref.store %wnew, %W[%i3, %j3] : memref<4x3xf64>
