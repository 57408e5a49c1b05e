// RUN: raster-opt %s -p autodiff | filecheck %s
// relu's reverse rule: the cotangent passes where x > 0 (relu'(0) = 0).
// The grad op becomes a call to a generated private function that recomputes
// the forward pass, seeds the output cotangent with 1.0 and applies the rules
// of sum (broadcast back) and relu (mask) in reverse order.

func.func private @f(%x: tensor<5xf64>) -> tensor<f64> {
  %y = raster.relu %x : tensor<5xf64>
  %s = raster.sum %y : tensor<5xf64> -> tensor<f64>
  func.return %s : tensor<f64>
}

func.func @main(%x: tensor<5xf64>) -> tensor<5xf64> {
  %g = raster.grad @f(%x) argnums = [0] : (tensor<5xf64>) -> tensor<5xf64>
  func.return %g : tensor<5xf64>
}

// CHECK:      func.func private @f_grad(%x: tensor<5xf64>) -> tensor<5xf64> {
// CHECK-NEXT:   %[[Y:.*]] = raster.relu %x : tensor<5xf64>
// CHECK-NEXT:   %[[S:.*]] = raster.sum %[[Y]] : tensor<5xf64> -> tensor<f64>
// CHECK-NEXT:   %[[SEED:.*]] = raster.fill 1.000000e+00 : f64 : tensor<f64>
// CHECK-NEXT:   %[[CT_Y:.*]] = raster.broadcast_to %[[SEED]] : tensor<f64> -> tensor<5xf64>
// CHECK-NEXT:   %[[ZERO:.*]] = raster.fill 0.000000e+00 : f64 : tensor<f64>
// CHECK-NEXT:   %[[MASK:.*]] = raster.greater %x, %[[ZERO]] : tensor<5xf64>, tensor<f64> -> tensor<5xf64>
// CHECK-NEXT:   %[[CT_X:.*]] = raster.mul %[[CT_Y]], %[[MASK]] : tensor<5xf64>, tensor<5xf64> -> tensor<5xf64>
// CHECK-NEXT:   func.return %[[CT_X]] : tensor<5xf64>
// CHECK-NEXT: }
// CHECK:      func.func @main(%x: tensor<5xf64>) -> tensor<5xf64> {
// CHECK-NEXT:   %g = func.call @f_grad(%x) : (tensor<5xf64>) -> tensor<5xf64>
// CHECK-NEXT:   func.return %g : tensor<5xf64>
// CHECK-NOT:  raster.grad
