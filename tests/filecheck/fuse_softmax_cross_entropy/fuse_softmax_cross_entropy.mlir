// RUN: raster-opt %s -p canonicalize | filecheck %s --check-prefix=CANON
// RUN: raster-opt %s -p fuse-softmax-cross-entropy | filecheck %s
// fuse-softmax-cross-entropy turns cross_entropy(softmax z, y) into the stable
// fused op, whose softmax result the other users of the softmax take;
// canonicalize does not (it would change the loss where p underflows).

// CANON-NOT: raster.softmax_cross_entropy

// CHECK-LABEL: func.func @loss(%z: tensor<4x3xf64>, %y: tensor<4x3xf64>) -> tensor<f64> {
// CHECK-NEXT:    %[[L:.*]], %{{.*}} = raster.softmax_cross_entropy %z, %y : (tensor<4x3xf64>, tensor<4x3xf64>) -> (tensor<f64>, tensor<4x3xf64>)
// CHECK-NEXT:    func.return %[[L]] : tensor<f64>
func.func @loss(%z: tensor<4x3xf64>, %y: tensor<4x3xf64>) -> tensor<f64> {
  %p = raster.softmax %z : tensor<4x3xf64>
  %l = raster.cross_entropy %p, %y : (tensor<4x3xf64>, tensor<4x3xf64>) -> tensor<f64>
  func.return %l : tensor<f64>
}

// CHECK-LABEL: func.func @shared(%z: tensor<3xf64>, %y: tensor<3xf64>) -> (tensor<f64>, tensor<3xf64>) {
// CHECK-NEXT:    %[[L:.*]], %[[P:.*]] = raster.softmax_cross_entropy %z, %y
// CHECK-NEXT:    func.return %[[L]], %[[P]] : tensor<f64>, tensor<3xf64>
func.func @shared(%z: tensor<3xf64>, %y: tensor<3xf64>) -> (tensor<f64>, tensor<3xf64>) {
  %p = raster.softmax %z : tensor<3xf64>
  %l = raster.cross_entropy %p, %y : (tensor<3xf64>, tensor<3xf64>) -> tensor<f64>
  func.return %l, %p : tensor<f64>, tensor<3xf64>
}

// The target is computed after the softmax, which another op reads: left alone.
// CHECK-LABEL: func.func @late_target(
// CHECK:         raster.softmax %z
// CHECK:         raster.cross_entropy
func.func @late_target(%z: tensor<3xf64>, %t: tensor<3xf64>) -> (tensor<f64>, tensor<3xf64>) {
  %p = raster.softmax %z : tensor<3xf64>
  %y = raster.relu %t : tensor<3xf64>
  %l = raster.cross_entropy %p, %y : (tensor<3xf64>, tensor<3xf64>) -> tensor<f64>
  func.return %l, %p : tensor<f64>, tensor<3xf64>
}
