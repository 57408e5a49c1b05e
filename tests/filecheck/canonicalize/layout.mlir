// RUN: raster-opt %s -p canonicalize | filecheck %s
// Transposes compose; identity layouts and repeated reshapes/broadcasts collapse.

// CHECK-LABEL: func.func @transposes(%x: tensor<2x3x4xf64>) -> (tensor<2x3x4xf64>, tensor<3x4x2xf64>) {
// CHECK-NEXT:    %[[T:.*]] = raster.transpose %x perm = [1, 2, 0] : tensor<2x3x4xf64> -> tensor<3x4x2xf64>
// CHECK-NEXT:    func.return %x, %[[T]] : tensor<2x3x4xf64>, tensor<3x4x2xf64>
func.func @transposes(%x: tensor<2x3x4xf64>) -> (tensor<2x3x4xf64>, tensor<3x4x2xf64>) {
  %a = raster.transpose %x perm = [2, 0, 1] : tensor<2x3x4xf64> -> tensor<4x2x3xf64>
  %b = raster.transpose %a perm = [1, 2, 0] : tensor<4x2x3xf64> -> tensor<2x3x4xf64>
  %c = raster.transpose %a perm = [2, 0, 1] : tensor<4x2x3xf64> -> tensor<3x4x2xf64>
  func.return %b, %c : tensor<2x3x4xf64>, tensor<3x4x2xf64>
}

// CHECK-LABEL: func.func @identity_layouts(%x: tensor<3x4xf64>) -> (tensor<3x4xf64>, tensor<3x4xf64>, tensor<3x4xf64>) {
// CHECK-NEXT:    func.return %x, %x, %x :
func.func @identity_layouts(%x: tensor<3x4xf64>) -> (tensor<3x4xf64>, tensor<3x4xf64>, tensor<3x4xf64>) {
  %t = raster.transpose %x perm = [0, 1] : tensor<3x4xf64> -> tensor<3x4xf64>
  %r = raster.reshape %x : tensor<3x4xf64> -> tensor<3x4xf64>
  %b = raster.broadcast_to %x : tensor<3x4xf64> -> tensor<3x4xf64>
  func.return %t, %r, %b : tensor<3x4xf64>, tensor<3x4xf64>, tensor<3x4xf64>
}

// CHECK-LABEL: func.func @repeated(%x: tensor<12xf64>, %v: tensor<4xf64>) -> (tensor<2x6xf64>, tensor<5x3x4xf64>) {
// CHECK-NEXT:    %[[R:.*]] = raster.reshape %x : tensor<12xf64> -> tensor<2x6xf64>
// CHECK-NEXT:    %[[B:.*]] = raster.broadcast_to %v : tensor<4xf64> -> tensor<5x3x4xf64>
// CHECK-NEXT:    func.return %[[R]], %[[B]] :
func.func @repeated(%x: tensor<12xf64>, %v: tensor<4xf64>) -> (tensor<2x6xf64>, tensor<5x3x4xf64>) {
  %a = raster.reshape %x : tensor<12xf64> -> tensor<3x4xf64>
  %b = raster.reshape %a : tensor<3x4xf64> -> tensor<2x6xf64>
  %c = raster.broadcast_to %v : tensor<4xf64> -> tensor<3x4xf64>
  %d = raster.broadcast_to %c : tensor<3x4xf64> -> tensor<5x3x4xf64>
  func.return %b, %d : tensor<2x6xf64>, tensor<5x3x4xf64>
}
