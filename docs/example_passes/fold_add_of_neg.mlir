// RUN: raster-opt %s -p 'autodiff,inline,canonicalize,fold-add-of-neg,dce' | filecheck %s
// RUN: raster-opt %s -p 'autodiff,inline,canonicalize,fold-add-of-neg{commute=false max-rewrites=100},dce' | filecheck %s --check-prefix=NOCOMMUTE

func.func private @f(%a: tensor<5xf64>, %b: tensor<5xf64>) -> tensor<f64> {
  %d = raster.sub %a, %b : tensor<5xf64>, tensor<5xf64> -> tensor<5xf64>
  %dd = raster.mul %d, %d : tensor<5xf64>, tensor<5xf64> -> tensor<5xf64>
  %ab = raster.mul %a, %b : tensor<5xf64>, tensor<5xf64> -> tensor<5xf64>
  %t = raster.add %dd, %ab : tensor<5xf64>, tensor<5xf64> -> tensor<5xf64>
  %s = raster.sum %t : tensor<5xf64> -> tensor<f64>
  func.return %s : tensor<f64>
}

func.func @main(%a: tensor<5xf64>, %b: tensor<5xf64>) -> (tensor<5xf64>, tensor<5xf64>) {
  %ga, %gb = raster.grad @f(%a, %b) argnums = [0, 1] : (tensor<5xf64>, tensor<5xf64>) -> (tensor<5xf64>, tensor<5xf64>)
  func.return %ga, %gb : tensor<5xf64>, tensor<5xf64>
}

func.func @commuted(%x: tensor<3xf64>, %y: tensor<2x3xf64>) -> tensor<2x3xf64> {
  %n = raster.neg %x : tensor<3xf64>
  %s = raster.add %n, %y : tensor<3xf64>, tensor<2x3xf64> -> tensor<2x3xf64>
  func.return %s : tensor<2x3xf64>
}

// The gradient of b: the negated cotangent of the subtraction plus a, as one subtraction.
// CHECK:      func.func @main(%a: tensor<5xf64>, %b: tensor<5xf64>) -> (tensor<5xf64>, tensor<5xf64>) {
// CHECK-NEXT:   %d = raster.sub %a, %b : tensor<5xf64>, tensor<5xf64> -> tensor<5xf64>
// CHECK-NEXT:   %[[TWICE:.*]] = raster.add %d, %d : tensor<5xf64>, tensor<5xf64> -> tensor<5xf64>
// CHECK-NEXT:   %ga = raster.add %b, %[[TWICE]] : tensor<5xf64>, tensor<5xf64> -> tensor<5xf64>
// CHECK-NEXT:   %gb = raster.sub %a, %[[TWICE]] : tensor<5xf64>, tensor<5xf64> -> tensor<5xf64>
// CHECK-NEXT:   func.return %ga, %gb : tensor<5xf64>, tensor<5xf64>
// CHECK-NEXT: }
// CHECK-NOT:  raster.neg

// With broadcasting, the subtraction broadcasts as the addition did.
// CHECK:      func.func @commuted(%x: tensor<3xf64>, %y: tensor<2x3xf64>) -> tensor<2x3xf64> {
// CHECK-NEXT:   %s = raster.sub %y, %x : tensor<2x3xf64>, tensor<3xf64> -> tensor<2x3xf64>

// NOCOMMUTE:      %gb = raster.sub %a
// NOCOMMUTE:      func.func @commuted(
// NOCOMMUTE-NEXT:   %n = raster.neg %x : tensor<3xf64>
// NOCOMMUTE-NEXT:   %s = raster.add %n, %y : tensor<3xf64>, tensor<2x3xf64> -> tensor<2x3xf64>
