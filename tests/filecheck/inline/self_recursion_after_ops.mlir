// RUN: not raster-opt %s -p inline 2>&1 | filecheck %s
// A function that calls itself after other ops: each copy of its body goes into the body being
// copied, which must not make the copy go on for ever.

func.func private @f(%x: tensor<3xf64>) -> tensor<3xf64> {
  %a = raster.mul %x, %x : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
  %y = func.call @f(%a) : (tensor<3xf64>) -> tensor<3xf64>
  func.return %y : tensor<3xf64>
}

func.func @main(%x: tensor<3xf64>) -> tensor<3xf64> {
  %y = func.call @f(%x) : (tensor<3xf64>) -> tensor<3xf64>
  func.return %y : tensor<3xf64>
}

// CHECK: raster-opt: error: inline: calls are recursive, they cannot all be inlined: @f
