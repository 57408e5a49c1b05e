// RUN: not raster-opt %s -p inline 2>&1 | filecheck %s
// A function calling itself is recursion too, even when it is public.

func.func @f(%x: tensor<3xf64>) -> tensor<3xf64> {
  %y = func.call @f(%x) : (tensor<3xf64>) -> tensor<3xf64>
  func.return %y : tensor<3xf64>
}

// CHECK: raster-opt: error: inline: calls are recursive
