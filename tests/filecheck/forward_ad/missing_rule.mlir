// RUN: not raster-opt %s -p forward-ad{rules=test-no-such-set} 2>&1 | filecheck %s --check-prefix=NOSET
// RUN: not raster-opt %s -p forward-ad 2>&1 | filecheck %s
// An unknown rule set is an error listing the registered ones. A function
// with a custom reverse rule (raster.rrule) but no tangent rule cannot be
// differentiated in forward mode: the error names it and says how to fix it.

func.func private @f(%x: tensor<3xf64>) -> tensor<3xf64> attributes {raster.rrule = @f_rule, raster.rrule_inputs = array<i64: 0>} {
  %y = raster.exp %x : tensor<3xf64>
  func.return %y : tensor<3xf64>
}

func.func private @f_rule(%x: tensor<3xf64>, %y: tensor<3xf64>, %ct: tensor<3xf64>) -> tensor<3xf64> {
  %d = raster.mul %ct, %y : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
  func.return %d : tensor<3xf64>
}

func.func @main(%x: tensor<3xf64>, %v: tensor<3xf64>) -> tensor<3xf64> {
  %y, %dy = raster.jvp @f(%x) tangents(%v) argnums = [0] : (tensor<3xf64>), (tensor<3xf64>) -> (tensor<3xf64>, tensor<3xf64>)
  func.return %dy : tensor<3xf64>
}

// NOSET: error: no rule set named 'test-no-such-set'; registered rule sets:
// CHECK: @f has a custom reverse rule but no tangent rule; forward mode (jvp, jacfwd, hessian, hvp) needs one: define it with @f.tangent
