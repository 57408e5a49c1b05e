// RUN: raster-opt %s -p autodiff | filecheck %s
// A two-op chain, L = sum(exp(x) * w): the rules run in reverse order (sum, mul, exp).
// Only x is differentiated, so mul's rule computes no cotangent for w; the
// forward value stays in @f_value_and_grad and is returned first.

func.func private @f(%x: tensor<4xf64>, %w: tensor<4xf64>) -> tensor<f64> {
  %e = raster.exp %x : tensor<4xf64>
  %m = raster.mul %e, %w : tensor<4xf64>, tensor<4xf64> -> tensor<4xf64>
  %l = raster.sum %m : tensor<4xf64> -> tensor<f64>
  func.return %l : tensor<f64>
}

func.func @main(%x: tensor<4xf64>, %w: tensor<4xf64>) -> (tensor<f64>, tensor<4xf64>) {
  %v, %dx = raster.value_and_grad @f(%x, %w) argnums = [0] : (tensor<4xf64>, tensor<4xf64>) -> (tensor<f64>, tensor<4xf64>)
  func.return %v, %dx : tensor<f64>, tensor<4xf64>
}

// CHECK-LABEL: func.func private @f_value_and_grad_wrt_0(%x: tensor<4xf64>, %w: tensor<4xf64>) -> (tensor<f64>, tensor<4xf64>) {
// CHECK-NEXT:    %[[E:.*]] = raster.exp %x : tensor<4xf64>
// CHECK-NEXT:    %[[M:.*]] = raster.mul %[[E]], %w
// CHECK-NEXT:    %[[L:.*]] = raster.sum %[[M]] : tensor<4xf64> -> tensor<f64>
// CHECK-NEXT:    %[[SEED:.*]] = raster.fill 1.000000e+00 : f64 : tensor<f64>
// CHECK-NEXT:    %[[CT_M:.*]] = raster.broadcast_to %[[SEED]] : tensor<f64> -> tensor<4xf64>
// CHECK-NEXT:    %[[CT_E:.*]] = raster.mul %[[CT_M]], %w : tensor<4xf64>, tensor<4xf64> -> tensor<4xf64>
// CHECK-NEXT:    %[[CT_X:.*]] = raster.mul %[[CT_E]], %[[E]] : tensor<4xf64>, tensor<4xf64> -> tensor<4xf64>
// CHECK-NEXT:    func.return %[[L]], %[[CT_X]] : tensor<f64>, tensor<4xf64>
// CHECK-NEXT:  }
// CHECK-LABEL: func.func @main
// CHECK-NEXT:    %v, %dx = func.call @f_value_and_grad_wrt_0(%x, %w)
