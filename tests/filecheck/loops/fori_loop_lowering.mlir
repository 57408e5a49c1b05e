// RUN: raster-opt %s -p lower-to-loops | filecheck %s
// RUN: raster-opt %s -p lower-to-loops,fuse-loops | filecheck %s --check-prefix=FUSED
// A damped spring stepped by raster.for: one scf.for over time, the carries in the
// result buffers (updated in place: no copy back, no allocation inside the loop),
// the index an i64 SSA value; the body's element-wise ops become one nest inside the
// time loop (lower-to-loops lowers a run of them into one nest: elementwise_clusters.py).

func.func @spring(%k: tensor<64xf64>, %x0: tensor<64xf64>, %v0: tensor<64xf64>) -> tensor<64xf64> {
  %lb = raster.fill 0 : i64 : tensor<i64>
  %ub = raster.fill 1000 : i64 : tensor<i64>
  %x, %v = raster.for %i = %lb to %ub iter_args(%xc = %x0 : tensor<64xf64>, %vc = %v0 : tensor<64xf64>) captures(%kc = %k : tensor<64xf64>) {
    %nk = raster.neg %kc : tensor<64xf64>
    %f = raster.mul %nk, %xc : tensor<64xf64>, tensor<64xf64> -> tensor<64xf64>
    %c = raster.fill 1.000000e-01 : f64 : tensor<f64>
    %d = raster.mul %c, %vc : tensor<f64>, tensor<64xf64> -> tensor<64xf64>
    %a = raster.sub %f, %d : tensor<64xf64>, tensor<64xf64> -> tensor<64xf64>
    %dt = raster.fill 1.000000e-02 : f64 : tensor<f64>
    %da = raster.mul %dt, %a : tensor<f64>, tensor<64xf64> -> tensor<64xf64>
    %vn = raster.add %vc, %da : tensor<64xf64>, tensor<64xf64> -> tensor<64xf64>
    %dv = raster.mul %dt, %vn : tensor<f64>, tensor<64xf64> -> tensor<64xf64>
    %xn = raster.add %xc, %dv : tensor<64xf64>, tensor<64xf64> -> tensor<64xf64>
    raster.yield %xn, %vn : tensor<64xf64>, tensor<64xf64>
  }
  func.return %x : tensor<64xf64>
}

// CHECK:      func.func @spring(%k: memref<64xf64>, %x0: memref<64xf64>, %v0: memref<64xf64>, %out0: memref<64xf64>) attributes {raster.fusion = {loops_fused = 7 : i64, temporaries_removed = 6 : i64, bytes_removed = 3072 : i64}} {
// CHECK:        %[[V:.*]] = memref.alloc() {alignment = 64 : i64} : memref<64xf64>
// CHECK:        scf.for
// CHECK:          memref.store %{{.*}}, %out0[%{{.*}}]
// CHECK:          memref.store %{{.*}}, %[[V]][%{{.*}}]
// CHECK:        scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:     arith.index_cast %[[I]] : index to i64
// CHECK-NOT:      memref.alloc
// CHECK:          %[[VN:.*]] = arith.addf
// CHECK-NEXT:     memref.store %[[VN]], %[[V]][%{{.*}}] : memref<64xf64>
// CHECK:          %[[XN:.*]] = arith.addf
// CHECK-NEXT:     memref.store %[[XN]], %out0[%{{.*}}] : memref<64xf64>
// CHECK-NEXT:   }
// CHECK-NEXT: } {raster.loop = "for"}
// CHECK-NEXT: func.return

// FUSED:      memref.store %{{.*}}, %out0
// FUSED:      scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// FUSED-NEXT:   scf.for %[[J:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// FUSED-NOT:      scf.for
// FUSED:          memref.store %{{.*}}, %{{.*}}[%[[J]]] : memref<64xf64>
// FUSED:          memref.store %{{.*}}, %out0[%[[J]]] : memref<64xf64>
// FUSED-NEXT:   }
// FUSED-NEXT: } {raster.loop = "for"}
