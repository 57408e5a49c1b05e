// RUN: raster-opt %s | filecheck %s
// The seed's 784 -> 128 -> 10 SGD train step as traced by rm.compile_train_step,
// through the default pipeline. dW1 (128x784) and dW2 (10x128) are never
// allocated: their outer products are fused into the in-place updates of W1 and
// W2 (the results alias the parameters), and only vectors remain as temporaries.

builtin.module {
  func.func private @mlp_loss(%W1: tensor<128x784xf64>, %b1: tensor<128xf64>, %W2: tensor<10x128xf64>, %b2: tensor<10xf64>, %x: tensor<784xf64>, %y: tensor<10xf64>) -> tensor<f64> {
    %0 = raster.dense %W1, %x, %b1 : (tensor<128x784xf64>, tensor<784xf64>, tensor<128xf64>) -> tensor<128xf64>
    %1 = raster.relu %0 : tensor<128xf64>
    %2 = raster.dense %W2, %1, %b2 : (tensor<10x128xf64>, tensor<128xf64>, tensor<10xf64>) -> tensor<10xf64>
    %3 = raster.softmax %2 : tensor<10xf64>
    %4 = raster.cross_entropy %3, %y : (tensor<10xf64>, tensor<10xf64>) -> tensor<f64>
    func.return %4 : tensor<f64>
  }
  func.func private @value_and_grad_mlp_loss(%0: tensor<128x784xf64>, %1: tensor<128xf64>, %2: tensor<10x128xf64>, %3: tensor<10xf64>, %4: tensor<784xf64>, %5: tensor<10xf64>) -> (tensor<f64>, tensor<128x784xf64>, tensor<128xf64>, tensor<10x128xf64>, tensor<10xf64>) {
    %6, %7, %8, %9, %10 = raster.value_and_grad @mlp_loss(%0, %1, %2, %3, %4, %5) argnums = [0, 1, 2, 3] : (tensor<128x784xf64>, tensor<128xf64>, tensor<10x128xf64>, tensor<10xf64>, tensor<784xf64>, tensor<10xf64>) -> (tensor<f64>, tensor<128x784xf64>, tensor<128xf64>, tensor<10x128xf64>, tensor<10xf64>)
    func.return %6, %7, %8, %9, %10 : tensor<f64>, tensor<128x784xf64>, tensor<128xf64>, tensor<10x128xf64>, tensor<10xf64>
  }
  func.func @mlp_loss_train_step(%W1: tensor<128x784xf64>, %b1: tensor<128xf64>, %W2: tensor<10x128xf64>, %b2: tensor<10xf64>, %x: tensor<784xf64>, %y: tensor<10xf64>) -> (tensor<f64>, tensor<128x784xf64>, tensor<128xf64>, tensor<10x128xf64>, tensor<10xf64>) attributes {raster.result_aliases = array<i64: -1, 0, 1, 2, 3>} {
    %0, %1, %2, %3, %4 = func.call @value_and_grad_mlp_loss(%W1, %b1, %W2, %b2, %x, %y) : (tensor<128x784xf64>, tensor<128xf64>, tensor<10x128xf64>, tensor<10xf64>, tensor<784xf64>, tensor<10xf64>) -> (tensor<f64>, tensor<128x784xf64>, tensor<128xf64>, tensor<10x128xf64>, tensor<10xf64>)
    %5 = raster.fill 1.000000e-02 : f64 : tensor<f64>
    %6 = raster.mul %5, %1 : tensor<f64>, tensor<128x784xf64> -> tensor<128x784xf64>
    %7 = raster.sub %W1, %6 : tensor<128x784xf64>, tensor<128x784xf64> -> tensor<128x784xf64>
    %8 = raster.fill 1.000000e-02 : f64 : tensor<f64>
    %9 = raster.mul %8, %2 : tensor<f64>, tensor<128xf64> -> tensor<128xf64>
    %10 = raster.sub %b1, %9 : tensor<128xf64>, tensor<128xf64> -> tensor<128xf64>
    %11 = raster.fill 1.000000e-02 : f64 : tensor<f64>
    %12 = raster.mul %11, %3 : tensor<f64>, tensor<10x128xf64> -> tensor<10x128xf64>
    %13 = raster.sub %W2, %12 : tensor<10x128xf64>, tensor<10x128xf64> -> tensor<10x128xf64>
    %14 = raster.fill 1.000000e-02 : f64 : tensor<f64>
    %15 = raster.mul %14, %4 : tensor<f64>, tensor<10xf64> -> tensor<10xf64>
    %16 = raster.sub %b2, %15 : tensor<10xf64>, tensor<10xf64> -> tensor<10xf64>
    func.return %0, %7, %10, %13, %16 : tensor<f64>, tensor<128x784xf64>, tensor<128xf64>, tensor<10x128xf64>, tensor<10xf64>
  }
}

// CHECK-LABEL: func.func @mlp_loss_train_step(%W1: memref<128x784xf64>, %b1: memref<128xf64>, %W2: memref<10x128xf64>, %b2: memref<10xf64>, %x: memref<784xf64>, %y: memref<10xf64>, %out0: memref<f64>)
// CHECK-NOT:   memref.alloc() {{.*}} : memref<128x784xf64>
// CHECK-NOT:   memref.alloc() {{.*}} : memref<10x128xf64>
// No loop writes a 2-D temporary: the only 2-D stores go to W1 and W2 themselves.
// CHECK-NOT:   memref.store {{.*}}, %{{[0-9]+}}[%{{.*}}, %{{.*}}] : memref<{{[0-9]+}}x{{[0-9]+}}xf64>
// skip-zero-chunks: one scan of x lists its non-zero 64-byte chunks (from W1's rows' first 64-byte
// boundary), for the forward and the update.
// CHECK:       %[[LIST:.*]] = memref.alloc() {{.*}} : memref<98xi64>
// CHECK:       %[[COUNT:.*]] = scf.for {{.*}} -> (index) {
// CHECK:         vector.load %x[{{.*}}] : memref<784xf64>, vector<8xf64>
// CHECK:         vector.reduction <or>
// CHECK:       }
// The first layer's dot products, one vector of W1's row per non-zero chunk of x:
// CHECK:       scf.for {{.*}} to %[[COUNT]] {{.*}} -> (vector<8xf64>) {
// CHECK:         vector.load %W1[{{.*}}] : memref<128x784xf64>, vector<8xf64>
// CHECK:       vector.reduction <add>
// The W2 row update, skipped when the row's gradient factor is zero:
// CHECK:       scf.if
// CHECK:         memref.store {{.*}}, %W2[{{.*}}] : memref<10x128xf64>
// The W1 update: per row o, in place, skipped for inactive ReLU units, and only
// on the chunks where x is non-zero:
// CHECK:       scf.for %[[O:.*]] = {{.*}} {
// CHECK:         %[[NZ:.*]] = arith.cmpf une
// CHECK-NEXT:    scf.if %[[NZ]] {
// CHECK:           scf.for %[[Q:.*]] = {{.*}} to %[[COUNT]] {{.*}} {
// CHECK-NEXT:        %[[START:.*]] = memref.load %[[LIST]][%[[Q]]]
// CHECK-NEXT:        %[[C:.*]] = arith.index_cast %[[START]]
// x's chunk is read from the scan's copy of x (at W1's alignment, passes/chunk_frame.py):
// CHECK:             %[[XC:.*]] = vector.load %{{.*}}[%{{.*}}] : memref<792xf64>, vector<8xf64>
// CHECK:             %[[WC:.*]] = vector.load %W1[%[[O]], %[[C]]]
// CHECK-NEXT:        %[[NEW:.*]] = math.fma %{{.*}}, %[[XC]], %[[WC]] {raster.exact}
// CHECK-NEXT:        vector.store %[[NEW]], %W1[%[[O]], %[[C]]] : memref<128x784xf64>, vector<8xf64>
// CHECK:           }
// CHECK:         }
// CHECK:         memref.store {{.*}}, %b1[%[[O]]] : memref<128xf64>
// CHECK:       func.return
