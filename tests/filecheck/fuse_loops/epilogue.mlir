// RUN: raster-opt %s -p lower-to-loops,fuse-loops | filecheck %s
// Epilogue fusion: the relu over dense's rows joins dense's row loop, right
// after the dot product; the pre-activation buffer is never allocated.

func.func @f(%W: tensor<128x784xf64>, %x: tensor<784xf64>, %b: tensor<128xf64>) -> tensor<128xf64> {
  %z = raster.dense %W, %x, %b : (tensor<128x784xf64>, tensor<784xf64>, tensor<128xf64>) -> tensor<128xf64>
  %h = raster.relu %z : tensor<128xf64>
  func.return %h : tensor<128xf64>
}

// CHECK:      func.func @f
// CHECK-NOT:    memref.alloc
// CHECK:        scf.for %[[O:.*]] = {{.*}} {
// CHECK-NEXT:     %[[DOT:.*]] = scf.for {{.*}} iter_args
// CHECK:          }
// CHECK-NEXT:     %[[B:.*]] = memref.load %b[%[[O]]]
// CHECK-NEXT:     %[[Z:.*]] = arith.addf %[[DOT]], %[[B]]
// CHECK-NEXT:     %[[H:.*]] = arith.maximumf %[[Z]], %{{.*}}
// CHECK-NEXT:     memref.store %[[H]], %out0[%[[O]]]
// CHECK-NEXT:   }
// CHECK-NEXT:   func.return
