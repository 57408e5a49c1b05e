// RUN: raster-opt %s -p autodiff | filecheck %s
// dense's reverse rule, y = W x + b with W (out, in):
//   single sample: dW = outer(dy, x) (a reshape and a broadcasting mul), db = dy;
//                  x is not differentiated here (argnums = [0, 2]), so no dx = dy @ W
//                  (the CHECK-NEXT lines pin the whole body: no matmul);
//   batched:       dW = dy^T @ x, dx = dy @ W, db = sum of dy over the batch.

func.func private @loss(%W: tensor<3x4xf64>, %x: tensor<4xf64>, %b: tensor<3xf64>) -> tensor<f64> {
  %y = raster.dense %W, %x, %b : (tensor<3x4xf64>, tensor<4xf64>, tensor<3xf64>) -> tensor<3xf64>
  %l = raster.sum %y : tensor<3xf64> -> tensor<f64>
  func.return %l : tensor<f64>
}

func.func private @batch_loss(%W: tensor<3x4xf64>, %x: tensor<2x4xf64>, %b: tensor<3xf64>) -> tensor<f64> {
  %y = raster.dense %W, %x, %b : (tensor<3x4xf64>, tensor<2x4xf64>, tensor<3xf64>) -> tensor<2x3xf64>
  %l = raster.sum %y : tensor<2x3xf64> -> tensor<f64>
  func.return %l : tensor<f64>
}

func.func @main(%W: tensor<3x4xf64>, %x: tensor<4xf64>, %b: tensor<3xf64>, %xs: tensor<2x4xf64>) -> (tensor<3x4xf64>, tensor<3xf64>, tensor<f64>, tensor<3x4xf64>, tensor<2x4xf64>, tensor<3xf64>) {
  %dW, %db = raster.grad @loss(%W, %x, %b) argnums = [0, 2] : (tensor<3x4xf64>, tensor<4xf64>, tensor<3xf64>) -> (tensor<3x4xf64>, tensor<3xf64>)
  %v, %dW2, %dx2, %db2 = raster.value_and_grad @batch_loss(%W, %xs, %b) argnums = [0, 1, 2] : (tensor<3x4xf64>, tensor<2x4xf64>, tensor<3xf64>) -> (tensor<f64>, tensor<3x4xf64>, tensor<2x4xf64>, tensor<3xf64>)
  func.return %dW, %db, %v, %dW2, %dx2, %db2 : tensor<3x4xf64>, tensor<3xf64>, tensor<f64>, tensor<3x4xf64>, tensor<2x4xf64>, tensor<3xf64>
}

// CHECK-LABEL: func.func private @loss_grad_wrt_0_2(%W: tensor<3x4xf64>, %x: tensor<4xf64>, %b: tensor<3xf64>) -> (tensor<3x4xf64>, tensor<3xf64>) {
// CHECK-NEXT:    %[[Y:.*]] = raster.dense %W, %x, %b
// CHECK-NEXT:    raster.sum %[[Y]]
// CHECK-NEXT:    %[[SEED:.*]] = raster.fill 1.000000e+00 : f64 : tensor<f64>
// CHECK-NEXT:    %[[DY:.*]] = raster.broadcast_to %[[SEED]] : tensor<f64> -> tensor<3xf64>
// CHECK-NEXT:    %[[COL:.*]] = raster.reshape %[[DY]] : tensor<3xf64> -> tensor<3x1xf64>
// CHECK-NEXT:    %[[DW:.*]] = raster.mul %[[COL]], %x : tensor<3x1xf64>, tensor<4xf64> -> tensor<3x4xf64>
// CHECK-NEXT:    func.return %[[DW]], %[[DY]] : tensor<3x4xf64>, tensor<3xf64>
// CHECK-NEXT:  }

// CHECK-LABEL: func.func private @batch_loss_value_and_grad(%W: tensor<3x4xf64>, %x: tensor<2x4xf64>, %b: tensor<3xf64>) -> (tensor<f64>, tensor<3x4xf64>, tensor<2x4xf64>, tensor<3xf64>) {
// CHECK-NEXT:    %[[Y:.*]] = raster.dense %W, %x, %b
// CHECK-NEXT:    %[[L:.*]] = raster.sum %[[Y]]
// CHECK-NEXT:    %[[SEED:.*]] = raster.fill 1.000000e+00
// CHECK-NEXT:    %[[DY:.*]] = raster.broadcast_to %[[SEED]] : tensor<f64> -> tensor<2x3xf64>
// CHECK-NEXT:    %[[DYT:.*]] = raster.transpose %[[DY]] perm = [1, 0] : tensor<2x3xf64> -> tensor<3x2xf64>
// CHECK-NEXT:    %[[DW:.*]] = raster.matmul %[[DYT]], %x : (tensor<3x2xf64>, tensor<2x4xf64>) -> tensor<3x4xf64>
// CHECK-NEXT:    %[[DX:.*]] = raster.matmul %[[DY]], %W : (tensor<2x3xf64>, tensor<3x4xf64>) -> tensor<2x4xf64>
// CHECK-NEXT:    %[[DB:.*]] = raster.sum %[[DY]] axis = 0 : i64 : tensor<2x3xf64> -> tensor<3xf64>
// CHECK-NEXT:    func.return %[[L]], %[[DW]], %[[DX]], %[[DB]]

// CHECK-LABEL: func.func @main
// CHECK:         func.call @loss_grad_wrt_0_2(%W, %x, %b)
// CHECK:         func.call @batch_loss_value_and_grad(%W, %xs, %b)
// CHECK-NOT:     raster.grad
// CHECK-NOT:     raster.value_and_grad
