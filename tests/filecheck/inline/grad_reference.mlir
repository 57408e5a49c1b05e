// RUN: raster-opt %s -p inline | filecheck %s
// A private function that a raster.grad refers to is still used after its
// calls are inlined: inline keeps it for the autodiff pass. Its own calls are
// inlined, and the private helper it called is erased.

func.func private @square(%x: tensor<3xf64>) -> tensor<3xf64> {
  %y = raster.mul %x, %x : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
  func.return %y : tensor<3xf64>
}

func.func private @loss(%x: tensor<3xf64>) -> tensor<f64> {
  %q = func.call @square(%x) : (tensor<3xf64>) -> tensor<3xf64>
  %s = raster.sum %q : tensor<3xf64> -> tensor<f64>
  func.return %s : tensor<f64>
}

func.func @main(%x: tensor<3xf64>) -> (tensor<f64>, tensor<3xf64>) {
  %l = func.call @loss(%x) : (tensor<3xf64>) -> tensor<f64>
  %g = raster.grad @loss(%x) argnums = [0] : (tensor<3xf64>) -> tensor<3xf64>
  func.return %l, %g : tensor<f64>, tensor<3xf64>
}

// CHECK-NOT:  @square
// CHECK:      func.func private @loss(%x: tensor<3xf64>) -> tensor<f64> {
// CHECK-NEXT:   %[[Q:.*]] = raster.mul %x, %x
// CHECK-NEXT:   %[[S:.*]] = raster.sum %[[Q]]
// CHECK-NEXT:   func.return %[[S]] : tensor<f64>
// CHECK:      func.func @main(%x: tensor<3xf64>) -> (tensor<f64>, tensor<3xf64>) {
// CHECK-NEXT:   %[[Q2:.*]] = raster.mul %x, %x
// CHECK-NEXT:   %[[L:.*]] = raster.sum %[[Q2]]
// CHECK-NEXT:   %g = raster.grad @loss(%x) argnums = [0]
// CHECK-NEXT:   func.return %[[L]], %g
// CHECK-NOT:  @square
