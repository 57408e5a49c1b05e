// RUN: raster-opt %s -p 'skip-zero-chunks{align=false}' | filecheck %s
// A first layer's forward dot products z[i] = W[i, :] . x and its rank-one update
// W[i, j] -= lr * e[i] * x[j], x an argument never written: x is scanned once, in
// 64-byte chunks (8 f64), into one chunk list that both loops walk, one vector per chunk.
// Here the chunks count from element 0 (align=false); aligned_frame.mlir shows the default,
// chunks from the first 64-byte boundary of W's rows.

func.func @layer(%W: memref<8x64xf64>, %x: memref<64xf64>, %e: memref<8xf64>, %z: memref<8xf64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c64 = arith.constant 64 : index
  %zero = arith.constant 0.0 : f64
  %lr = arith.constant 0.1 : f64
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
    %g = arith.mulf %lr, %ei : f64
    scf.for %j = %c0 to %c64 step %c1 {
      %xj = memref.load %x[%j] : memref<64xf64>
      %t = arith.mulf %g, %xj : f64
      %w = memref.load %W[%i, %j] : memref<8x64xf64>
      %wn = arith.subf %w, %t : f64
      memref.store %wn, %W[%i, %j] : memref<8x64xf64>
    }
  }
  func.return
}

// The scan, once, before the first row loop: any bit set in a chunk (a non-zero, a NaN or a -0.0) keeps it.
// CHECK:          %[[LIST:.*]] = memref.alloc() {{.*}} : memref<8xi64>
// CHECK-NOT:      memref.alloc
// CHECK:          %[[COUNT:.*]] = scf.for %[[C:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[N:.*]] = %{{.*}}) -> (index) {
// CHECK-NEXT:       %[[CHUNK:.*]] = vector.load %x[%[[C]]] : memref<64xf64>, vector<8xf64>
// CHECK-NEXT:       %[[BITS:.*]] = vector.bitcast %[[CHUNK]] : vector<8xf64> to vector<8xi64>
// CHECK-NEXT:       %[[ANY:.*]] = vector.reduction <or>, %[[BITS]] : vector<8xi64> into i64
// CHECK-NEXT:       %[[NZ:.*]] = arith.cmpi ne, %[[ANY]], %{{.*}} : i64
// CHECK:            memref.store %{{.*}}, %[[LIST]][%[[N]]] : memref<8xi64>
// CHECK:            arith.select %[[NZ]]
// CHECK:          }
// The dot products: a vector accumulator over the listed chunks, summed once per row.
// CHECK:          scf.for %[[I:.*]] = %c0 to %c8 step %c1 {
// CHECK-NEXT:       %[[INIT:.*]] = vector.broadcast %{{.*}} : f64 to vector<8xf64>
// CHECK-NEXT:       %[[ACC:.*]] = scf.for %[[Q:.*]] = %{{.*}} to %[[COUNT]] step %{{.*}} iter_args(%[[A:.*]] = %[[INIT]]) -> (vector<8xf64>) {
// CHECK-NEXT:         %[[START64:.*]] = memref.load %[[LIST]][%[[Q]]] : memref<8xi64>
// CHECK-NEXT:         %[[START:.*]] = arith.index_cast %[[START64]] : i64 to index
// CHECK-NEXT:         %[[WV:.*]] = vector.load %W[%[[I]], %[[START]]] : memref<8x64xf64>, vector<8xf64>
// CHECK-NEXT:         %[[XV:.*]] = vector.load %x[%[[START]]] : memref<64xf64>, vector<8xf64>
// CHECK-NEXT:         %[[S:.*]] = math.fma %[[WV]], %[[XV]], %[[A]] {raster.exact} : vector<8xf64>
// CHECK-NEXT:         scf.yield %[[S]] : vector<8xf64>
// CHECK-NEXT:       }
// CHECK-NEXT:       %[[SUM:.*]] = vector.reduction <add>, %[[ACC]] : vector<8xf64> into f64
// CHECK-NEXT:       %dot = arith.addf %zero, %[[SUM]] : f64
// CHECK-NEXT:       memref.store %dot, %z[%[[I]]] : memref<8xf64>
// The update: the same list (no second scan), one vector store per listed chunk.
// CHECK-NOT:      vector.bitcast
// CHECK:          scf.for %[[I2:.*]] = %c0 to %c8 step %c1 {
// CHECK:            %g = arith.mulf %lr, %ei : f64
// CHECK-NEXT:       %[[MINUS:.*]] = arith.negf %g : f64
// CHECK-NEXT:       %[[G:.*]] = vector.broadcast %[[MINUS]] : f64 to vector<8xf64>
// CHECK-NEXT:       scf.for %[[Q2:.*]] = %{{.*}} to %[[COUNT]] step %{{.*}} {
// CHECK-NEXT:         %[[U64:.*]] = memref.load %[[LIST]][%[[Q2]]] : memref<8xi64>
// CHECK-NEXT:         %[[U:.*]] = arith.index_cast %[[U64]] : i64 to index
// CHECK-NEXT:         %[[XU:.*]] = vector.load %x[%[[U]]] : memref<64xf64>, vector<8xf64>
// CHECK-NEXT:         %[[WU:.*]] = vector.load %W[%[[I2]], %[[U]]] : memref<8x64xf64>, vector<8xf64>
// CHECK-NEXT:         %[[WN:.*]] = math.fma %[[G]], %[[XU]], %[[WU]] {raster.exact} : vector<8xf64>
// CHECK-NEXT:         vector.store %[[WN]], %W[%[[I2]], %[[U]]] : memref<8x64xf64>, vector<8xf64>
// CHECK-NEXT:       }
// CHECK-NEXT:     }
// No scalar loop over j is left (64 is a whole number of chunks).
// CHECK-NOT:      memref.load %x
// CHECK:          func.return
