// RUN: raster-opt %s -p inline | filecheck %s
// A chain of three calls (@a -> @b -> @c) becomes straight-line code in @a,
// with each callee's block arguments replaced by the call's operands. The
// private callees are erased once nothing calls them; the public @helper is
// kept although its only call was inlined (code outside the module may call it).

func.func private @c(%x: tensor<3xf64>) -> tensor<3xf64> {
  %e = raster.exp %x : tensor<3xf64>
  func.return %e : tensor<3xf64>
}

func.func private @b(%x: tensor<3xf64>) -> tensor<3xf64> {
  %y = func.call @c(%x) : (tensor<3xf64>) -> tensor<3xf64>
  %r = raster.relu %y : tensor<3xf64>
  func.return %r : tensor<3xf64>
}

func.func @helper(%x: tensor<3xf64>) -> tensor<3xf64> {
  %n = raster.neg %x : tensor<3xf64>
  func.return %n : tensor<3xf64>
}

func.func @a(%p: tensor<3xf64>) -> tensor<3xf64> {
  %y = func.call @b(%p) : (tensor<3xf64>) -> tensor<3xf64>
  %h = func.call @helper(%y) : (tensor<3xf64>) -> tensor<3xf64>
  %z = raster.add %h, %p : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
  func.return %z : tensor<3xf64>
}

// CHECK-NOT:  func.func private
// CHECK:      func.func @helper(%x: tensor<3xf64>) -> tensor<3xf64> {
// CHECK-NEXT:   %n = raster.neg %x : tensor<3xf64>
// CHECK-NEXT:   func.return %n : tensor<3xf64>
// CHECK-NEXT: }
// CHECK-NEXT: func.func @a(%p: tensor<3xf64>) -> tensor<3xf64> {
// CHECK-NEXT:   %[[E:.*]] = raster.exp %p : tensor<3xf64>
// CHECK-NEXT:   %[[R:.*]] = raster.relu %[[E]] : tensor<3xf64>
// CHECK-NEXT:   %[[N:.*]] = raster.neg %[[R]] : tensor<3xf64>
// CHECK-NEXT:   %[[Z:.*]] = raster.add %[[N]], %p : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
// CHECK-NEXT:   func.return %[[Z]] : tensor<3xf64>
// CHECK-NEXT: }
// CHECK-NOT:  func.call
// CHECK-NOT:  func.func
