// RUN: raster-opt %s -p lower-to-loops,fuse-loops | filecheck %s
// A reduction loop absorbs the loop producing what it reads: the producer's
// body goes first in the reduction's body, and the temporary disappears when
// nothing else reads it. An innermost reduction (the loop LLVM vectorises)
// takes only a producer of temporaries: @g's product is a result (an
// argument), so its loop stays (in a data loop, the same rule keeps the
// previous step's weight update out of the next step's dot product).

func.func @f(%x: tensor<7xf64>, %y: tensor<7xf64>) -> tensor<f64> {
  %e = raster.exp %x : tensor<7xf64>
  %m = raster.mul %e, %y : tensor<7xf64>, tensor<7xf64> -> tensor<7xf64>
  %s = raster.sum %m : tensor<7xf64> -> tensor<f64>
  func.return %s : tensor<f64>
}

// CHECK:      func.func @f({{.*}}) attributes {raster.fusion = {loops_fused = 2 : i64, temporaries_removed = 2 : i64, bytes_removed = 112 : i64}} {
// CHECK-NOT:    memref.alloc
// CHECK:        %[[S:.*]] = scf.for %[[I:.*]] = {{.*}} iter_args(%[[ACC:.*]] = {{.*}}) -> (f64) {
// CHECK-NEXT:     %[[X:.*]] = memref.load %x[%[[I]]]
// CHECK-NEXT:     %[[E:.*]] = math.exp %[[X]]
// CHECK-NEXT:     %[[Y:.*]] = memref.load %y[%[[I]]]
// CHECK-NEXT:     %[[M:.*]] = arith.mulf %[[E]], %[[Y]]
// CHECK-NEXT:     %[[NEXT:.*]] = arith.addf %[[ACC]], %[[M]]
// CHECK-NEXT:     scf.yield %[[NEXT]]
// CHECK-NEXT:   }
// CHECK-NOT:    scf.for
// CHECK:        memref.store %[[S]], %out0[]

func.func @g(%x: tensor<7xf64>, %y: tensor<7xf64>) -> (tensor<7xf64>, tensor<f64>) {
  %m = raster.mul %x, %y : tensor<7xf64>, tensor<7xf64> -> tensor<7xf64>
  %s = raster.sum %m : tensor<7xf64> -> tensor<f64>
  func.return %m, %s : tensor<7xf64>, tensor<f64>
}

// CHECK:      func.func @g(
// CHECK-SAME:   loops_fused = 0
// CHECK:        scf.for %[[J:.*]] = {{.*}} {
// CHECK:          memref.store {{.*}}, %out0[%[[J]]]
// CHECK-NEXT:   }
// CHECK-NEXT:   scf.for {{.*}} iter_args
// CHECK-NEXT:     memref.load %out0

// The temporary is read again after the sum: the sum still absorbs its
// producer (one pass over x and y), and the stored product stays.
func.func @kept(%x: tensor<7xf64>, %y: tensor<7xf64>) -> tensor<7xf64> {
  %m = raster.mul %x, %y : tensor<7xf64>, tensor<7xf64> -> tensor<7xf64>
  %s = raster.sum %m : tensor<7xf64> -> tensor<f64>
  %r = raster.mul %m, %s : tensor<7xf64>, tensor<f64> -> tensor<7xf64>
  func.return %r : tensor<7xf64>
}

// CHECK:      func.func @kept(
// CHECK:        %[[T:.*]] = memref.alloc()
// CHECK-NEXT:   %[[S2:.*]] = scf.for %[[K:.*]] = {{.*}} iter_args(%[[ACC2:.*]] = {{.*}}) -> (f64) {
// CHECK:          %[[P:.*]] = arith.mulf
// CHECK-NEXT:     memref.store %[[P]], %[[T]][%[[K]]]
// CHECK-NEXT:     %[[NEXT2:.*]] = arith.addf %[[ACC2]], %[[P]]
// CHECK-NEXT:     scf.yield %[[NEXT2]]
// CHECK-NEXT:   }
// CHECK-NEXT:   scf.for
// CHECK-NEXT:     memref.load %[[T]]
// CHECK-NEXT:     arith.mulf {{.*}}, %[[S2]]

// Different bounds: the sum of a slice reads m[i + 1] for i < 5; m's loop
// runs over 7 elements, so the loops stay apart.
func.func @bounds(%x: tensor<7xf64>, %y: tensor<7xf64>) -> tensor<f64> {
  %m = raster.mul %x, %y : tensor<7xf64>, tensor<7xf64> -> tensor<7xf64>
  %t = raster.slice %m start = [1] step = [1] : tensor<7xf64> -> tensor<5xf64>
  %s = raster.sum %t : tensor<5xf64> -> tensor<f64>
  func.return %s : tensor<f64>
}

// CHECK:      func.func @bounds(
// CHECK-SAME:   loops_fused = 0
// CHECK:        scf.for {{.*}} {
// CHECK:          memref.store
// CHECK-NEXT:   }
// CHECK-NEXT:   scf.for {{.*}} iter_args

// Row sums (axis 1): the row loops merge, then the sum over j absorbs the
// product over j. Column sums (axis 0) accumulate into the output in place
// (no loop carries a value): ordinary fusion, the row loop outermost.
func.func @rows(%x: tensor<3x5xf64>, %y: tensor<3x5xf64>) -> tensor<3xf64> {
  %m = raster.mul %x, %y : tensor<3x5xf64>, tensor<3x5xf64> -> tensor<3x5xf64>
  %s = raster.sum %m axis = 1 : i64 : tensor<3x5xf64> -> tensor<3xf64>
  func.return %s : tensor<3xf64>
}

// CHECK:      func.func @rows(
// CHECK-NOT:    memref.alloc
// CHECK:        scf.for %[[R:.*]] = {{.*}} {
// CHECK-NEXT:     %[[RS:.*]] = scf.for %[[C:.*]] = {{.*}} iter_args
// CHECK-NEXT:       memref.load %x[%[[R]], %[[C]]]
// CHECK-NEXT:       memref.load %y[%[[R]], %[[C]]]
// CHECK-NEXT:       arith.mulf
// CHECK-NEXT:       arith.addf
// CHECK-NEXT:       scf.yield
// CHECK-NEXT:     }
// CHECK-NEXT:     memref.store %[[RS]], %out0[%[[R]]]
// CHECK-NEXT:   }

func.func @columns(%x: tensor<3x5xf64>, %y: tensor<3x5xf64>) -> tensor<5xf64> {
  %m = raster.mul %x, %y : tensor<3x5xf64>, tensor<3x5xf64> -> tensor<3x5xf64>
  %s = raster.sum %m axis = 0 : i64 : tensor<3x5xf64> -> tensor<5xf64>
  func.return %s : tensor<5xf64>
}

// CHECK:      func.func @columns(
// CHECK-NOT:    memref.alloc
// CHECK:          memref.store %{{.*}}, %out0[
// CHECK-NEXT:   }
// CHECK-NEXT:   scf.for %[[R2:.*]] = {{.*}} {
// CHECK-NEXT:     scf.for %[[C2:.*]] = {{.*}} {
// CHECK-NEXT:       memref.load %x[%[[R2]], %[[C2]]]
// CHECK:            memref.load %out0[%[[C2]]]
// CHECK:            memref.store {{.*}}, %out0[%[[C2]]]

// An outer reduction (the max over rows of a dense layer) absorbs the dense
// row loop whatever it writes: LLVM does not vectorise it, its rows are
// combined in the same order.
func.func @rowmax(%W: tensor<3x4xf64>, %x: tensor<4xf64>, %b: tensor<3xf64>) -> tensor<f64> {
  %z = raster.dense %W, %x, %b : (tensor<3x4xf64>, tensor<4xf64>, tensor<3xf64>) -> tensor<3xf64>
  %s = raster.max %z : tensor<3xf64> -> tensor<f64>
  func.return %s : tensor<f64>
}

// CHECK:      func.func @rowmax(
// CHECK-NOT:    memref.alloc
// CHECK:        %[[MX:.*]] = scf.for {{.*}} iter_args(%[[BEST:.*]] = {{.*}}) -> (f64) {
// CHECK-NEXT:     %[[DOT:.*]] = scf.for
// CHECK:          %[[Z:.*]] = arith.addf %[[DOT]]
// CHECK-NEXT:     %[[NEXT3:.*]] = arith.maximumf %[[BEST]], %[[Z]]
// CHECK-NEXT:     scf.yield %[[NEXT3]]
// CHECK-NEXT:   }
// CHECK-NEXT:   memref.store %[[MX]], %out0[]

// A later loop that shares the reduction's temporaries and does not read its
// result joins it (a value and its gradient: tanh(x) is summed and reused),
// so no temporary is left.
func.func @joined(%x: tensor<7xf64>, %y: tensor<7xf64>) -> (tensor<f64>, tensor<7xf64>) {
  %t = raster.tanh %x : tensor<7xf64>
  %s = raster.sum %t : tensor<7xf64> -> tensor<f64>
  %g = raster.mul %t, %y : tensor<7xf64>, tensor<7xf64> -> tensor<7xf64>
  func.return %s, %g : tensor<f64>, tensor<7xf64>
}

// CHECK:      func.func @joined(
// CHECK-SAME:   loops_fused = 2
// CHECK-NOT:    memref.alloc
// CHECK:        %[[SJ:.*]] = scf.for %[[IJ:.*]] = {{.*}} iter_args(%[[ACCJ:.*]] = {{.*}}) -> (f64) {
// CHECK-NEXT:     memref.load %x[%[[IJ]]]
// CHECK-NEXT:     %[[TJ:.*]] = math.tanh
// CHECK-NEXT:     %[[NEXTJ:.*]] = arith.addf %[[ACCJ]], %[[TJ]]
// CHECK-NEXT:     memref.load %y[%[[IJ]]]
// CHECK-NEXT:     arith.mulf %[[TJ]]
// CHECK-NEXT:     memref.store {{.*}}, %out1[%[[IJ]]]
// CHECK-NEXT:     scf.yield %[[NEXTJ]]
// CHECK-NEXT:   }
// CHECK-NOT:    scf.for
