// RUN: raster-opt %s -p canonicalize | filecheck %s
// Algebraic identities that hold bit for bit in IEEE arithmetic, and the
// look-alikes that do not (left alone).

// CHECK-LABEL: func.func @involutions(%x: tensor<3x4xf64>) -> tensor<3x4xf64> {
// CHECK-NEXT:    %r = raster.relu %x : tensor<3x4xf64>
// CHECK-NEXT:    func.return %r : tensor<3x4xf64>
func.func @involutions(%x: tensor<3x4xf64>) -> tensor<3x4xf64> {
  %n = raster.neg %x : tensor<3x4xf64>
  %m = raster.neg %n : tensor<3x4xf64>
  %r = raster.relu %m : tensor<3x4xf64>
  %rr = raster.relu %r : tensor<3x4xf64>
  func.return %rr : tensor<3x4xf64>
}

// CHECK-LABEL: func.func @units(%x: tensor<3xf64>) -> (tensor<3xf64>, tensor<3xf64>, tensor<3xf64>, tensor<3xf64>, tensor<3xf64>) {
// CHECK-NEXT:    func.return %x, %x, %x, %x, %x :
func.func @units(%x: tensor<3xf64>) -> (tensor<3xf64>, tensor<3xf64>, tensor<3xf64>, tensor<3xf64>, tensor<3xf64>) {
  %one = raster.fill 1.000000e+00 : f64 : tensor<f64>
  %ones = raster.fill 1.000000e+00 : f64 : tensor<3xf64>
  %pzero = raster.fill 0.000000e+00 : f64 : tensor<f64>
  %nzero = raster.fill -0.000000e+00 : f64 : tensor<3xf64>
  %a = raster.mul %x, %one : tensor<3xf64>, tensor<f64> -> tensor<3xf64>
  %b = raster.mul %ones, %x : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
  %c = raster.div %x, %one : tensor<3xf64>, tensor<f64> -> tensor<3xf64>
  %d = raster.add %nzero, %x : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
  %e = raster.sub %x, %pzero : tensor<3xf64>, tensor<f64> -> tensor<3xf64>
  func.return %a, %b, %c, %d, %e : tensor<3xf64>, tensor<3xf64>, tensor<3xf64>, tensor<3xf64>, tensor<3xf64>
}

// x + (+0.0) turns -0.0 into +0.0, x - (-0.0) too; ones that broadcast x make a
// bigger tensor than x; 1 / x is not x.
// CHECK-LABEL: func.func @not_identities(
// CHECK:         raster.add %x, %{{.*}} : tensor<3xf64>, tensor<f64> -> tensor<3xf64>
// CHECK:         raster.sub %x, %{{.*}} : tensor<3xf64>, tensor<f64> -> tensor<3xf64>
// CHECK:         raster.mul %x, %{{.*}} : tensor<3xf64>, tensor<2x3xf64> -> tensor<2x3xf64>
// CHECK:         raster.div %{{.*}}, %x : tensor<f64>, tensor<3xf64> -> tensor<3xf64>
func.func @not_identities(%x: tensor<3xf64>) -> (tensor<3xf64>, tensor<3xf64>, tensor<2x3xf64>, tensor<3xf64>) {
  %pzero = raster.fill 0.000000e+00 : f64 : tensor<f64>
  %nzero = raster.fill -0.000000e+00 : f64 : tensor<f64>
  %ones = raster.fill 1.000000e+00 : f64 : tensor<2x3xf64>
  %one = raster.fill 1.000000e+00 : f64 : tensor<f64>
  %a = raster.add %x, %pzero : tensor<3xf64>, tensor<f64> -> tensor<3xf64>
  %b = raster.sub %x, %nzero : tensor<3xf64>, tensor<f64> -> tensor<3xf64>
  %c = raster.mul %x, %ones : tensor<3xf64>, tensor<2x3xf64> -> tensor<2x3xf64>
  %d = raster.div %one, %x : tensor<f64>, tensor<3xf64> -> tensor<3xf64>
  func.return %a, %b, %c, %d : tensor<3xf64>, tensor<3xf64>, tensor<2x3xf64>, tensor<3xf64>
}

// log(exp x) is x (exact in real arithmetic; the exp stays for its other user).
// CHECK-LABEL: func.func @log_of_exp(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
// CHECK-NEXT:    %e = raster.exp %x : tensor<4xf32>
// CHECK-NEXT:    func.return %x, %e : tensor<4xf32>, tensor<4xf32>
func.func @log_of_exp(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %e = raster.exp %x : tensor<4xf32>
  %l = raster.log %e : tensor<4xf32>
  func.return %l, %e : tensor<4xf32>, tensor<4xf32>
}
