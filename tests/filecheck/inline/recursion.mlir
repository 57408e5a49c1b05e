// RUN: not raster-opt %s -p inline 2>&1 | filecheck %s
// Mutual recursion cannot be inlined away: the pass stops with an error
// (exit code 1, one message line from the driver, no Python traceback).

func.func private @even(%x: tensor<3xf64>) -> tensor<3xf64> {
  %y = func.call @odd(%x) : (tensor<3xf64>) -> tensor<3xf64>
  func.return %y : tensor<3xf64>
}

func.func private @odd(%x: tensor<3xf64>) -> tensor<3xf64> {
  %y = func.call @even(%x) : (tensor<3xf64>) -> tensor<3xf64>
  func.return %y : tensor<3xf64>
}

func.func @f(%x: tensor<3xf64>) -> tensor<3xf64> {
  %y = func.call @even(%x) : (tensor<3xf64>) -> tensor<3xf64>
  func.return %y : tensor<3xf64>
}

// CHECK-NOT: Traceback
// CHECK:     raster-opt: error: inline: calls are recursive, they cannot all be inlined
// CHECK-NOT: Traceback
