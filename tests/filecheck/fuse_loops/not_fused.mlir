// RUN: raster-opt %s -p lower-to-loops,fuse-loops | filecheck %s
// Loops whose dependence crosses iterations stay apart: softmax's exp pass
// needs the row max (a loop result), and a sum over axis 0 reads every row of
// its input before the consumer may read one element.

func.func @f(%x: tensor<3x5xf64>) -> (tensor<3x5xf64>, tensor<5xf64>) {
  %p = raster.softmax %x : tensor<3x5xf64>
  %s = raster.sum %x axis = 0 : i64 : tensor<3x5xf64> -> tensor<5xf64>
  %e = raster.exp %s : tensor<5xf64>
  func.return %p, %e : tensor<3x5xf64>, tensor<5xf64>
}

// Softmax: the max loop, the exp-and-sum loop and the scaling loop remain three
// loops. The column sum's row loop reads only x, so it legally joins the softmax
// row loop; the exp of the column sums stays a separate loop after it.
// CHECK:      %[[T:.*]] = memref.alloc() {{.*}} : memref<5xf64>
// CHECK:      scf.for %[[ROW:.*]] = {{.*}} {
// CHECK:        %[[M:.*]] = scf.for {{.*}} iter_args
// CHECK:          arith.maximumf
// CHECK:        %[[S:.*]] = scf.for {{.*}} iter_args
// CHECK:          math.exp
// CHECK:        arith.divf
// CHECK:        scf.for
// CHECK:          arith.mulf
// CHECK:          memref.load %[[T]]
// CHECK:          memref.store {{.*}}, %[[T]]
// CHECK:        }
// CHECK-NEXT: }
// CHECK-NEXT: scf.for
// CHECK-NEXT:   memref.load %[[T]]
// CHECK-NEXT:   math.exp
