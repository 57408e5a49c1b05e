// RUN: raster-opt %s -p forward-ad | filecheck %s
// A jvp of @f with respect to %x only: @f_jvp_wrt_0 takes (x, w, dx), copies
// f's body and puts each op's tangent right after it. exp(x) * w gets
// dx * exp(x) then (dx exp(x)) * w; the sum's tangent is the sum of the
// tangent. The weight %w has no tangent, so no op is emitted for it.

func.func private @f(%x: tensor<3xf64>, %w: tensor<3xf64>) -> tensor<f64> {
  %e = raster.exp %x : tensor<3xf64>
  %m = raster.mul %e, %w : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
  %s = raster.sum %m : tensor<3xf64> -> tensor<f64>
  func.return %s : tensor<f64>
}

func.func @main(%x: tensor<3xf64>, %w: tensor<3xf64>, %v: tensor<3xf64>) -> tensor<f64> {
  %y, %dy = raster.jvp @f(%x, %w) tangents(%v) argnums = [0] : (tensor<3xf64>, tensor<3xf64>), (tensor<3xf64>) -> (tensor<f64>, tensor<f64>)
  func.return %dy : tensor<f64>
}

// CHECK:      func.func private @f_jvp_wrt_0(%x: tensor<3xf64>, %w: tensor<3xf64>, %dx: tensor<3xf64>) -> (tensor<f64>, tensor<f64>) {
// CHECK-NEXT:   %e = raster.exp %x : tensor<3xf64>
// CHECK-NEXT:   %[[DE:.*]] = raster.mul %dx, %e : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
// CHECK-NEXT:   %m = raster.mul %e, %w : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
// CHECK-NEXT:   %[[DM:.*]] = raster.mul %[[DE]], %w : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
// CHECK-NEXT:   %s = raster.sum %m : tensor<3xf64> -> tensor<f64>
// CHECK-NEXT:   %[[DS:.*]] = raster.sum %[[DM]] : tensor<3xf64> -> tensor<f64>
// CHECK-NEXT:   func.return %s, %[[DS]] : tensor<f64>, tensor<f64>
// CHECK-NEXT: }
// CHECK:      func.func @main(%x: tensor<3xf64>, %w: tensor<3xf64>, %v: tensor<3xf64>) -> tensor<f64> {
// CHECK-NEXT:   %y, %dy = func.call @f_jvp_wrt_0(%x, %w, %v) : (tensor<3xf64>, tensor<3xf64>, tensor<3xf64>) -> (tensor<f64>, tensor<f64>)
// CHECK-NEXT:   func.return %dy : tensor<f64>
