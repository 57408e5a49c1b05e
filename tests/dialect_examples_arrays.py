"""IR examples of the ops in raster_maths.py / raster_array.py / raster_rounding.py for test_dialect_roundtrip.py.

DOC_ARGS: the function arguments the op's docstring example uses;
EXTRA_EXAMPLES: a second example (f32, other ranks, optional properties).
"""

_UNARY = ("sin", "cos", "tan", "exp2", "log1p", "expm1", "abs", "sign", "erf", "softplus", "floor", "ceil", "trunc", "rint")

DOC_ARGS = {f"raster.{name}": "%x: tensor<4xf64>" for name in _UNARY}
DOC_ARGS.update(
    {
        "raster.minimum": "%x: tensor<4xf64>, %y: tensor<f64>",
        "raster.atan2": "%y: tensor<4xf64>, %x: tensor<4xf64>",
        "raster.less": "%x: tensor<4xf64>, %y: tensor<f64>",
        "raster.less_equal": "%x: tensor<4xf64>, %y: tensor<f64>",
        "raster.greater_equal": "%x: tensor<4xf64>, %y: tensor<f64>",
        "raster.not_equal": "%x: tensor<4xf64>, %y: tensor<4xf64>",
        "raster.where": "%m: tensor<4xf64>, %x: tensor<4xf64>, %y: tensor<f64>",
        "raster.min": "%x: tensor<3x4xf64>",
        "raster.prod": "%x: tensor<3x4xf64>",
        "raster.logsumexp": "%x: tensor<3x4xf64>",
        "raster.cumsum": "%x: tensor<3x4xf64>",
        "raster.slice": "%u: tensor<10xf64>",
        "raster.insert_slice": "%s: tensor<8xf64>, %z: tensor<10xf64>",
        "raster.concatenate": "%a: tensor<1xf64>, %b: tensor<8xf64>",
    }
)

EXTRA_EXAMPLES = {f"raster.{name}": ("%x: tensor<2x3xf32>", f"%y = raster.{name} %x : tensor<2x3xf32>") for name in _UNARY}
EXTRA_EXAMPLES.update(
    {
        "raster.minimum": ("%a: tensor<3x1xf32>, %b: tensor<4xf32>", "%z = raster.minimum %a, %b : tensor<3x1xf32>, tensor<4xf32> -> tensor<3x4xf32>"),
        "raster.atan2": ("%a: tensor<f32>, %b: tensor<5xf32>", "%z = raster.atan2 %a, %b : tensor<f32>, tensor<5xf32> -> tensor<5xf32>"),
        "raster.less": ("%a: tensor<2xf32>, %b: tensor<2xf32>", "%z = raster.less %a, %b : tensor<2xf32>, tensor<2xf32> -> tensor<2xf32>"),
        "raster.less_equal": ("%a: tensor<2x1xf32>, %b: tensor<3xf32>", "%z = raster.less_equal %a, %b : tensor<2x1xf32>, tensor<3xf32> -> tensor<2x3xf32>"),
        "raster.greater_equal": ("%a: tensor<f64>, %b: tensor<f64>", "%z = raster.greater_equal %a, %b : tensor<f64>, tensor<f64> -> tensor<f64>"),
        "raster.not_equal": ("%a: tensor<7xf32>, %b: tensor<f32>", "%z = raster.not_equal %a, %b : tensor<7xf32>, tensor<f32> -> tensor<7xf32>"),
        "raster.where": ("%m: tensor<3x1xf32>, %a: tensor<4xf32>, %b: tensor<f32>", "%z = raster.where %m, %a, %b : tensor<3x1xf32>, tensor<4xf32>, tensor<f32> -> tensor<3x4xf32>"),
        "raster.min": ("%x: tensor<3x4xf32>", "%m = raster.min %x keepdims : tensor<3x4xf32> -> tensor<1x1xf32>"),
        "raster.prod": ("%x: tensor<3x4xf32>", "%p = raster.prod %x axis = 0 : i64 : tensor<3x4xf32> -> tensor<4xf32>"),
        "raster.logsumexp": ("%x: tensor<5xf32>", "%l = raster.logsumexp %x : tensor<5xf32> -> tensor<f32>"),
        "raster.cumsum": ("%x: tensor<2x3x4xf32>", "%y = raster.cumsum %x axis = 0 : i64 reverse : tensor<2x3x4xf32>"),
        "raster.slice": ("%x: tensor<4x5xf32>", "%s = raster.slice %x start = [3, 0] step = [-2, 2] : tensor<4x5xf32> -> tensor<2x3xf32>"),
        "raster.insert_slice": ("%s: tensor<2x3xf32>, %x: tensor<4x5xf32>", "%r = raster.insert_slice %s into %x start = [3, 0] step = [-2, 2] : tensor<2x3xf32> into tensor<4x5xf32>"),
        "raster.concatenate": ("%a: tensor<2x3xf32>, %b: tensor<2x1xf32>, %c: tensor<2x2xf32>", "%r = raster.concatenate %a, %b, %c axis = 1 : i64 : (tensor<2x3xf32>, tensor<2x1xf32>, tensor<2x2xf32>) -> tensor<2x6xf32>"),
    }
)  # fmt: skip
