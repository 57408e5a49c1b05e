// RUN: raster-opt %s -p skip-zero-chunks | filecheck %s
// The chunks start at the first 64-byte boundary of W's rows (passes/chunk_frame.py): the
// shift s is computed once from W's address, the chunk scan of x runs from s and copies x into
// an aligned buffer XS at the same alignment as W's rows (XS[j + t] = x[j]), where the chunks
// then read it, and the partial chunks at both ends of a row are masked: the dot product's
// straight-line (the rows' loop stays jammable), the update's each behind a branch. The update's loop-invariant factors lr * e are
// multiplied once per row; products and sums are explicit fma, every vector op raster.exact
// (all chunks round alike, wherever LLVM puts them: passes/chunk_vectorise.py).

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
    scf.for %j = %c0 to %c64 step %c1 {
      %xj = memref.load %x[%j] : memref<64xf64>
      %t = arith.mulf %ei, %xj : f64
      %u = arith.mulf %lr, %t : f64
      %w = memref.load %W[%i, %j] : memref<8x64xf64>
      %wn = arith.subf %w, %u : f64
      memref.store %wn, %W[%i, %j] : memref<8x64xf64>
    }
  }
  func.return
}
// CHECK-LABEL: func.func @layer
// The frame, once: s = ((-address) mod 64) / 8, t = (8 - s) mod 8, the head's lanes 8-s..7, the tail's 0..t-1.
// CHECK:         %[[ADDRESS:.*]] = "memref.extract_aligned_pointer_as_index"(%W)
// CHECK-NEXT:    %[[NEG:.*]] = arith.subi %{{.*}}, %[[ADDRESS]] : index
// CHECK-NEXT:    %[[BYTES:.*]] = arith.andi %[[NEG]], %{{.*}} : index
// CHECK-NEXT:    %[[S:.*]] = arith.divui %[[BYTES]], %{{.*}} : index
// CHECK-NEXT:    %[[LS:.*]] = arith.subi %{{.*}}, %[[S]] : index
// CHECK-NEXT:    %[[T:.*]] = arith.andi %[[LS]], %{{.*}} : index
// CHECK-NEXT:    %[[BELOW:.*]] = vector.create_mask %[[LS]] : vector<8xi1>
// CHECK-NEXT:    %[[ALL:.*]] = vector.create_mask %{{.*}} : vector<8xi1>
// CHECK-NEXT:    %[[HEADMASK:.*]] = arith.xori %[[BELOW]], %[[ALL]] : vector<8xi1>
// CHECK-NEXT:    %[[HEAD:.*]] = arith.subi %[[S]], %{{.*}} : index
// CHECK-NEXT:    %[[TAIL:.*]] = arith.subi %{{.*}}, %[[T]] : index
// CHECK-NEXT:    %[[TAILMASK:.*]] = vector.create_mask %[[T]] : vector<8xi1>
// CHECK-NEXT:    %[[NONE:.*]] = vector.create_mask %{{.*}} : vector<8xi1>
// The head of x, copied to XS: no lane left if x is zero there; then the scan of the whole chunks from s
// (each copied to XS); then the tail. Each row loop is versioned on "a partial chunk has a lane set":
// when none has (W aligned, or x zero at both ends of its row), a copy without them runs.
// CHECK:         %[[XHEAD:.*]] = vector.maskedload %x[%[[HEAD]]], %[[HEADMASK]]
// CHECK-NEXT:    %[[XSHEAD:.*]] = arith.addi %[[HEAD]], %[[T]] : index
// CHECK-NEXT:    vector.maskedstore %[[XS:.*]][%[[XSHEAD]]], %[[HEADMASK]], %[[XHEAD]] : memref<72xf64>
// CHECK:         %[[HEADON:.*]] = arith.cmpi ne
// CHECK-NEXT:    %[[HEADX:.*]] = arith.select %[[HEADON]], %[[HEADMASK]], %[[NONE]] : vector<8xi1>
// CHECK-NEXT:    %[[COUNT:.*]] = scf.for %[[C:.*]] = %[[S]] to %[[TAIL]] step %{{.*}} iter_args
// CHECK-NEXT:      %[[XC:.*]] = vector.load %x[%[[C]]] : memref<64xf64>, vector<8xf64>
// CHECK-NEXT:      %[[XSC:.*]] = arith.addi %[[C]], %[[T]] : index
// CHECK-NEXT:      vector.store %[[XC]], %[[XS]][%[[XSC]]] : memref<72xf64>, vector<8xf64>
// CHECK:         vector.maskedload %x[%[[TAIL]]], %[[TAILMASK]]
// CHECK:         %[[TAILON:.*]] = arith.cmpi ne
// CHECK-NEXT:    %[[TAILX:.*]] = arith.select %[[TAILON]], %[[TAILMASK]], %[[NONE]] : vector<8xi1>
// The dot products: head chunk -> the chunk loop's initial accumulator; tail chunk after it.
// CHECK-NEXT:    %[[ANY:.*]] = arith.ori %[[HEADON]], %[[TAILON]] : i1
// CHECK-NEXT:    scf.if %[[ANY]] {
// CHECK-NEXT:    scf.for %[[I:.*]] = %c0 to %c8 step %c1 {
// CHECK-NEXT:      %[[ZERO:.*]] = vector.broadcast
// CHECK-NEXT:      %[[HW:.*]] = vector.maskedload %W[%[[I]], %[[HEAD]]], %[[HEADX]], %[[ZERO]]
// CHECK-NEXT:      %[[HXS:.*]] = arith.addi %[[HEAD]], %[[T]] : index
// CHECK-NEXT:      %[[HX:.*]] = vector.maskedload %[[XS]][%[[HXS]]], %[[HEADX]], %[[ZERO]]
// CHECK-NEXT:      %[[HS:.*]] = math.fma %[[HW]], %[[HX]], %[[ZERO]] {raster.exact} : vector<8xf64>
// CHECK-NEXT:      %[[ACC:.*]] = scf.for %{{.*}} = %{{.*}} to %[[COUNT]] step %{{.*}} iter_args(%{{.*}} = %[[HS]]) -> (vector<8xf64>) {
// CHECK:             vector.load %W[%[[I]], %{{.*}}]
// CHECK:             vector.load %[[XS]][%{{.*}}]
// CHECK-NEXT:        math.fma %{{.*}}, %{{.*}}, %{{.*}} {raster.exact} : vector<8xf64>
// CHECK:           }
// CHECK-NEXT:      %[[TW:.*]] = vector.maskedload %W[%[[I]], %[[TAIL]]], %[[TAILX]], %[[ZERO]]
// CHECK-NEXT:      %[[TXS:.*]] = arith.addi %[[TAIL]], %[[T]] : index
// CHECK-NEXT:      %[[TX:.*]] = vector.maskedload %[[XS]][%[[TXS]]], %[[TAILX]], %[[ZERO]]
// CHECK-NEXT:      %[[TS:.*]] = math.fma %[[TW]], %[[TX]], %[[ACC]] {raster.exact} : vector<8xf64>
// CHECK-NEXT:      vector.reduction <add>, %[[TS]] : vector<8xf64> into f64
// The copy without partial chunks: the chunk loop starts from zero and its sum is reduced directly.
// CHECK:         } else {
// CHECK-NEXT:      scf.for %[[IP:.*]] = %c0 to %c8 step %c1 {
// CHECK-NEXT:        %[[ZP:.*]] = vector.broadcast
// CHECK-NEXT:        %[[ACCP:.*]] = scf.for %{{.*}} = %{{.*}} to %[[COUNT]] step %{{.*}} iter_args(%{{.*}} = %[[ZP]]) -> (vector<8xf64>) {
// CHECK-NOT:           mask
// CHECK:               scf.yield
// CHECK-NEXT:        }
// CHECK-NEXT:        vector.reduction <add>, %[[ACCP]] : vector<8xf64> into f64
// The update: -(lr * e) once per row, then the head (if any lane), the chunk loop, the tail (if any lane),
// each W + (-(lr * e)) * x as one fma.
// CHECK:         scf.if %{{.*}} {
// CHECK-NEXT:      scf.for %[[I2:.*]] = %c0 to %c8 step %c1 {
// CHECK-NEXT:      %ei = memref.load %e[%[[I2]]] : memref<8xf64>
// CHECK-NEXT:      %[[SCALE:.*]] = arith.mulf %lr, %ei : f64
// CHECK-NEXT:      %[[MINUS:.*]] = arith.negf %[[SCALE]] : f64
// CHECK-NEXT:      %[[G:.*]] = vector.broadcast %[[MINUS]] : f64 to vector<8xf64>
// CHECK:           scf.if %[[HEADON]] {
// CHECK-NEXT:        %[[UXS:.*]] = arith.addi %[[HEAD]], %[[T]] : index
// CHECK-NEXT:        %[[UX:.*]] = vector.maskedload %[[XS]][%[[UXS]]], %[[HEADX]]
// CHECK-NEXT:        %[[UW:.*]] = vector.maskedload %W[%[[I2]], %[[HEAD]]], %[[HEADX]]
// CHECK-NEXT:        %[[UN:.*]] = math.fma %[[G]], %[[UX]], %[[UW]] {raster.exact} : vector<8xf64>
// CHECK-NEXT:        vector.maskedstore %W[%[[I2]], %[[HEAD]]], %[[HEADX]], %[[UN]]
// CHECK-NEXT:      }
// CHECK-NEXT:      scf.for %{{.*}} = %{{.*}} to %[[COUNT]] step %{{.*}} {
// CHECK:             math.fma %[[G]], %{{.*}}, %{{.*}} {raster.exact} : vector<8xf64>
// CHECK:             vector.store
// CHECK-NEXT:      }
// CHECK-NEXT:      scf.if %[[TAILON]] {
// CHECK:             vector.maskedstore %W[%[[I2]], %[[TAIL]]], %[[TAILX]]
// CHECK-NEXT:      }
// CHECK-NEXT:    }
// CHECK-NEXT:  } else {
// CHECK-NEXT:    scf.for %{{.*}} = %c0 to %c8 step %c1 {
// CHECK-NOT:       mask
// CHECK:           scf.for %{{.*}} = %{{.*}} to %[[COUNT]] step %{{.*}} {
// CHECK-NOT:         mask
// CHECK:             vector.store
// CHECK-NEXT:      }
// CHECK-NEXT:    }
// CHECK-NEXT:  }

// Rows of 60 f64 (480 bytes) start at different offsets from a boundary: chunks from element 0.
func.func @rows_not_whole_lines(%W: memref<4x60xf64>, %x: memref<60xf64>, %z: memref<4xf64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c60 = arith.constant 60 : index
  %zero = arith.constant 0.0 : f64
  scf.for %i = %c0 to %c4 step %c1 {
    %dot = scf.for %j = %c0 to %c60 step %c1 iter_args(%acc = %zero) -> (f64) {
      %w = memref.load %W[%i, %j] : memref<4x60xf64>
      %xj = memref.load %x[%j] : memref<60xf64>
      %p = arith.mulf %w, %xj : f64
      %s = arith.addf %acc, %p : f64
      scf.yield %s : f64
    }
    memref.store %dot, %z[%i] : memref<4xf64>
  }
  func.return
}
// CHECK-LABEL: func.func @rows_not_whole_lines
// CHECK-NOT:     extract_aligned_pointer
// CHECK-NOT:     mask
// CHECK:         vector.load %W
// CHECK-NOT:     mask
// CHECK:         func.return
