// RUN: raster-opt %s -p lower-to-loops,fuse-loops | filecheck %s
// np.roll(u, 1) as traced: a concatenation of two slices of u. The concatenation lowers to one
// loop over the result choosing its piece under scf.if; the slices are copy loops, read through
// (fuse-loops runs forward-gathers first; the one-element slice is a store forwarded by fuse-loops):
// u[9] is loaded once and u at i - 1 in the loop; no temporary of a slice remains.

func.func @roll(%u: tensor<10xf64>) -> tensor<10xf64> {
  %last = raster.slice %u start = [9] step = [1] : tensor<10xf64> -> tensor<1xf64>
  %rest = raster.slice %u start = [0] step = [1] : tensor<10xf64> -> tensor<9xf64>
  %r = raster.concatenate %last, %rest axis = 0 : i64 : (tensor<1xf64>, tensor<9xf64>) -> tensor<10xf64>
  func.return %r : tensor<10xf64>
}

// CHECK:      func.func @roll(%u: memref<10xf64>, %out0: memref<10xf64>) attributes {raster.fusion = {{.*}}} {
// CHECK-NOT:    memref.alloc
// CHECK:        %[[LAST:.*]] = memref.load %u[%{{.*}}] : memref<10xf64>
// CHECK:        scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:     %[[IN:.*]] = arith.cmpi ult, %[[I]], %{{.*}} : index
// CHECK-NEXT:     %{{.*}} = scf.if %[[IN]] -> (f64) {
// CHECK-NEXT:       scf.yield %[[LAST]] : f64
// CHECK-NEXT:     } else {
// CHECK-NEXT:       %[[K:.*]] = arith.subi %[[I]], %{{.*}} : index
// CHECK-NEXT:       memref.load %u[%[[K]]]
// CHECK:          memref.store %{{.*}}, %out0[%[[I]]]
// CHECK-NEXT:   }
// CHECK-NOT:    scf.for
// CHECK:        func.return
