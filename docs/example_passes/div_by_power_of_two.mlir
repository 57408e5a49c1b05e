// RUN: raster-opt %s -p div-by-power-of-two | filecheck %s
// Divisions by a power of two become multiplications; by anything else, or where
// 1/c overflows (2^-130 in f32), they stay.

func.func @f(%x: tensor<4xf64>, %y: tensor<4xf32>) -> (tensor<4xf64>, tensor<4xf64>, tensor<4xf32>, tensor<4xf32>) {
  %two = raster.fill 2.000000e+00 : f64 : tensor<f64>
  %three = raster.fill 3.000000e+00 : f64 : tensor<f64>
  %quarter = raster.fill -2.500000e-01 : f32 : tensor<f32>
  %tiny = raster.fill 7.34683969e-40 : f32 : tensor<f32>
  %a = raster.div %x, %two : tensor<4xf64>, tensor<f64> -> tensor<4xf64>
  %b = raster.div %x, %three : tensor<4xf64>, tensor<f64> -> tensor<4xf64>
  %c = raster.div %y, %quarter : tensor<4xf32>, tensor<f32> -> tensor<4xf32>
  %d = raster.div %y, %tiny : tensor<4xf32>, tensor<f32> -> tensor<4xf32>
  func.return %a, %b, %c, %d : tensor<4xf64>, tensor<4xf64>, tensor<4xf32>, tensor<4xf32>
}

// CHECK:      %[[HALF:.*]] = raster.fill 5.000000e-01 : f64 : tensor<f64>
// CHECK-NEXT: %{{.*}} = raster.mul %x, %[[HALF]] : tensor<4xf64>, tensor<f64> -> tensor<4xf64>
// CHECK-NEXT: %b = raster.div %x, %three
// CHECK-NEXT: %[[M4:.*]] = raster.fill -4.000000e+00 : f32 : tensor<f32>
// CHECK-NEXT: %{{.*}} = raster.mul %y, %[[M4]] : tensor<4xf32>, tensor<f32> -> tensor<4xf32>
// CHECK-NEXT: %d = raster.div %y, %tiny
