// RUN: raster-opt %s -p canonicalize | filecheck %s
// Constant folding of exactly rounded ops, in the operands' precision: splats
// fold to a fill at any size, small constants to a constant; splat constants
// become fills; exp is not folded (libm may round differently from numpy).

// CHECK-LABEL: func.func @splats() -> (tensor<f64>, tensor<1000xf32>, tensor<2x3xf64>, tensor<f64>) {
// CHECK-NEXT:    %[[ONE:.*]] = raster.fill 1.000000e+00 : f64 : tensor<f64>
// CHECK-NEXT:    %[[Q:.*]] = raster.fill 2.000000e-01 : f64 : tensor<f64>
// CHECK-NEXT:    %[[T:.*]] = raster.fill 0.333333343 : f32 : tensor<1000xf32>
// CHECK-NEXT:    %[[Z:.*]] = raster.fill 0.000000e+00 : f64 : tensor<2x3xf64>
// CHECK-NEXT:    %[[E:.*]] = raster.exp %[[ONE]]
// CHECK-NEXT:    func.return %[[Q]], %[[T]], %[[Z]], %[[E]]
func.func @splats() -> (tensor<f64>, tensor<1000xf32>, tensor<2x3xf64>, tensor<f64>) {
  %one = raster.fill 1.000000e+00 : f64 : tensor<f64>
  %five = raster.fill 5.000000e+00 : f64 : tensor<f64>
  %q = raster.div %one, %five : tensor<f64>, tensor<f64> -> tensor<f64>
  %a = raster.fill 1.000000e+00 : f32 : tensor<f32>
  %b = raster.fill 3.000000e+00 : f32 : tensor<1000xf32>
  %t = raster.div %a, %b : tensor<f32>, tensor<1000xf32> -> tensor<1000xf32>
  %nz = raster.fill -0.000000e+00 : f64 : tensor<3xf64>
  %pz = raster.fill 0.000000e+00 : f64 : tensor<2x1xf64>
  %z = raster.maximum %nz, %pz : tensor<3xf64>, tensor<2x1xf64> -> tensor<2x3xf64>
  %e = raster.exp %one : tensor<f64>
  func.return %q, %t, %z, %e : tensor<f64>, tensor<1000xf32>, tensor<2x3xf64>, tensor<f64>
}

// CHECK-LABEL: func.func @small_constants() -> (tensor<2x3xf64>, tensor<3x2xf64>, tensor<4xf64>) {
// CHECK-NEXT:    %[[S:.*]] = raster.constant dense<{{\[\[}}1.500000e+00, 2.500000e+00, 3.500000e+00], [4.500000e+00, 5.500000e+00, 6.500000e+00]]> : tensor<2x3xf64> : tensor<2x3xf64>
// CHECK-NEXT:    %[[T:.*]] = raster.constant dense<{{\[\[}}1.000000e+00, 4.000000e+00], [2.000000e+00, 5.000000e+00], [3.000000e+00, 6.000000e+00]]> : tensor<3x2xf64> : tensor<3x2xf64>
// CHECK-NEXT:    %[[F:.*]] = raster.fill 7.000000e+00 : f64 : tensor<4xf64>
// CHECK-NEXT:    func.return %[[S]], %[[T]], %[[F]]
func.func @small_constants() -> (tensor<2x3xf64>, tensor<3x2xf64>, tensor<4xf64>) {
  %c = raster.constant dense<[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]> : tensor<2x3xf64> : tensor<2x3xf64>
  %half = raster.fill 5.000000e-01 : f64 : tensor<f64>
  %s = raster.add %c, %half : tensor<2x3xf64>, tensor<f64> -> tensor<2x3xf64>
  %t = raster.transpose %c perm = [1, 0] : tensor<2x3xf64> -> tensor<3x2xf64>
  %splat = raster.constant dense<7.0> : tensor<4xf64> : tensor<4xf64>
  func.return %s, %t, %splat : tensor<2x3xf64>, tensor<3x2xf64>, tensor<4xf64>
}

// A constant above MAX_FOLDED_ELEMENTS (64) is not copied into a new constant.
// CHECK-LABEL: func.func @large_constant(
// CHECK:         raster.add
func.func @large_constant(%c: tensor<f64>) -> tensor<100xf64> {
  %big = raster.constant dense<[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0, 21.0, 22.0, 23.0, 24.0, 25.0, 26.0, 27.0, 28.0, 29.0, 30.0, 31.0, 32.0, 33.0, 34.0, 35.0, 36.0, 37.0, 38.0, 39.0, 40.0, 41.0, 42.0, 43.0, 44.0, 45.0, 46.0, 47.0, 48.0, 49.0, 50.0, 51.0, 52.0, 53.0, 54.0, 55.0, 56.0, 57.0, 58.0, 59.0, 60.0, 61.0, 62.0, 63.0, 64.0, 65.0, 66.0, 67.0, 68.0, 69.0, 70.0, 71.0, 72.0, 73.0, 74.0, 75.0, 76.0, 77.0, 78.0, 79.0, 80.0, 81.0, 82.0, 83.0, 84.0, 85.0, 86.0, 87.0, 88.0, 89.0, 90.0, 91.0, 92.0, 93.0, 94.0, 95.0, 96.0, 97.0, 98.0, 99.0]> : tensor<100xf64> : tensor<100xf64>
  %one = raster.fill 1.000000e+00 : f64 : tensor<f64>
  %s = raster.add %big, %one : tensor<100xf64>, tensor<f64> -> tensor<100xf64>
  func.return %s : tensor<100xf64>
}
