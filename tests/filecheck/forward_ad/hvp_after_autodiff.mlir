// RUN: raster-opt %s -p autodiff,forward-ad,inline,canonicalize,cse,dce | filecheck %s
// A Hessian-vector product, forward over reverse: the jvp of @g, which takes
// the gradient of f(x) = sum(x * x * x). autodiff expands the gradient into
// @f_grad (3 x^2 by the reverse rules), forward-ad the jvp of @g into
// @g_jvp, whose tangent of 3 x^2 is 6 x v; after inlining, one function.

func.func private @f(%x: tensor<3xf64>) -> tensor<f64> {
  %x2 = raster.mul %x, %x : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
  %x3 = raster.mul %x2, %x : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
  %s = raster.sum %x3 : tensor<3xf64> -> tensor<f64>
  func.return %s : tensor<f64>
}

func.func private @g(%x: tensor<3xf64>) -> tensor<3xf64> {
  %d = raster.grad @f(%x) argnums = [0] : (tensor<3xf64>) -> tensor<3xf64>
  func.return %d : tensor<3xf64>
}

func.func @hvp(%x: tensor<3xf64>, %v: tensor<3xf64>) -> tensor<3xf64> {
  %d, %hv = raster.jvp @g(%x) tangents(%v) argnums = [0] : (tensor<3xf64>), (tensor<3xf64>) -> (tensor<3xf64>, tensor<3xf64>)
  func.return %hv : tensor<3xf64>
}

// CHECK-NOT:  raster.grad
// CHECK-NOT:  raster.jvp
// CHECK-NOT:  func.call
// CHECK:      func.func @hvp(%x: tensor<3xf64>, %v: tensor<3xf64>) -> tensor<3xf64> {
// CHECK-NOT:  func.func
// CHECK:        raster.mul %v, %x
// CHECK-NOT:  func.func
// CHECK:        func.return
