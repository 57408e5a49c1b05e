// RUN: raster-opt %s -p 'autodiff,inline,fold-mul-by-one,dce' | filecheck %s
// RUN: raster-opt %s -p 'autodiff,inline,fold-mul-by-one{through-broadcast=false},dce' | filecheck %s --check-prefix=NOBCAST
// The gradient of sum(relu(x)) is the mask x > 0. autodiff multiplies the
// mask by the broadcast seed cotangent 1.0; fold-mul-by-one removes that
// product, after which dce erases the now unused forward pass and seed.

func.func private @f(%x: tensor<5xf64>) -> tensor<f64> {
  %y = raster.relu %x : tensor<5xf64>
  %s = raster.sum %y : tensor<5xf64> -> tensor<f64>
  func.return %s : tensor<f64>
}

func.func @main(%x: tensor<5xf64>) -> tensor<5xf64> {
  %g = raster.grad @f(%x) argnums = [0] : (tensor<5xf64>) -> tensor<5xf64>
  func.return %g : tensor<5xf64>
}

// CHECK:      func.func @main(%x: tensor<5xf64>) -> tensor<5xf64> {
// CHECK-NEXT:   %[[ZERO:.*]] = raster.fill 0.000000e+00 : f64 : tensor<f64>
// CHECK-NEXT:   %[[MASK:.*]] = raster.greater %x, %[[ZERO]] : tensor<5xf64>, tensor<f64> -> tensor<5xf64>
// CHECK-NEXT:   func.return %[[MASK]] : tensor<5xf64>
// CHECK-NEXT: }

// Without looking through raster.broadcast_to, the seed is not recognised as ones.
// NOBCAST:      func.func @main
// NOBCAST:        %[[ONES:.*]] = raster.broadcast_to
// NOBCAST:        %[[G:.*]] = raster.mul %[[ONES]], %{{.*}} : tensor<5xf64>, tensor<5xf64> -> tensor<5xf64>
// NOBCAST-NEXT:   func.return %[[G]]

// A product where the ones broadcast x to a larger shape stays: x alone has the wrong type.
func.func @broadcasting(%x: tensor<3xf64>) -> tensor<2x3xf64> {
  %ones = raster.fill 1.0 : f64 : tensor<2x3xf64>
  %y = raster.mul %x, %ones : tensor<3xf64>, tensor<2x3xf64> -> tensor<2x3xf64>
  func.return %y : tensor<2x3xf64>
}

// CHECK:      func.func @broadcasting(%x: tensor<3xf64>) -> tensor<2x3xf64> {
// CHECK-NEXT:   %[[ONES:.*]] = raster.fill 1.000000e+00 : f64 : tensor<2x3xf64>
// CHECK-NEXT:   %[[Y:.*]] = raster.mul %x, %[[ONES]] : tensor<3xf64>, tensor<2x3xf64> -> tensor<2x3xf64>
// CHECK-NEXT:   func.return %[[Y]] : tensor<2x3xf64>
