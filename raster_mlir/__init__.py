"""raster_mlir: a compiler for differentiable array programs.

Write plain Python over numpy arrays with `nn.*` and `rm.*` primitives; `@rm.jit`
traces it into the `raster` xDSL dialect, differentiates it with a reverse-mode
pass, lowers it to loops and compiles it to native code.
"""

from . import abc_shortcut

abc_shortcut.install()  # isinstance checks against op/attribute classes without ABCMeta's subclass walk

from .errors import (
    AliasingError, AlignmentError, CompileError, DTypeError, GradientError, NotContiguousError, RasterError,
    ReadOnlyError, ShapeError, TraceError,
)  # fmt: skip
from .ops import (
    add, broadcast_to, divide, dot, equal, exp, greater, log, matmul, max, maximum, mean, minimum,
    multiply, negative, power, relu, reshape, sigmoid, sqrt, subtract, sum, tanh, transpose,
)  # fmt: skip
from .ops import (
    abs, absolute, arctan2, clip, cos, cumsum, erf, exp2, expm1, greater_equal, less, less_equal,
    log1p, logsumexp, min, norm, not_equal, prod, reciprocal, sign, sin, softplus, square, tan, where,
)  # fmt: skip
from .ops import around, ceil, floor, rint, round, trunc  # noqa: A004 - numpy's names
from .array_ops import (
    concatenate, diff, expand_dims, flip, full_like, ones_like, outer, pad, ravel, roll, squeeze, stack,
    zeros_like,
)  # fmt: skip
from .logical_ops import logical_and, logical_not, logical_or, logical_xor
from .moments import std, var
from .jit import CompiledFunction, JitFunction, compile, jit
from .compiler import DEFAULT_PIPELINE, STRICT_PIPELINE
from .control import checkpoint, cond, fori_loop, scan, while_loop
from .indexing import at_add, at_set
from .autodiff_api import grad, value_and_grad
from .forward_api import hessian, hvp, jacfwd, jacrev, jvp, linearize, vjp
from .custom_rule import CustomRuleFunction, custom_rule
from .check_grads import GradCheckReport, check_grads
from .train import TrainStep, compile_train_step
from .backend.arrays import aligned_copy as aligned, aligned_empty, aligned_zeros
from .runtime.threads import get_deterministic, get_num_threads, set_deterministic, set_num_threads
from .compile_cache import cache_info, clear_cache
from .backend.fp_mode import get_flush_denormal, set_flush_denormal
from . import nn, optim

__version__ = "0.1.0"

__all__ = [
    "RasterError", "ShapeError", "DTypeError", "TraceError", "GradientError", "CompileError",
    "NotContiguousError", "ReadOnlyError", "AliasingError", "AlignmentError",
    "jit", "compile", "DEFAULT_PIPELINE", "STRICT_PIPELINE", "grad", "value_and_grad", "jvp", "vjp", "linearize", "hvp", "jacfwd", "jacrev", "hessian", "JitFunction", "CompiledFunction", "nn",
    "custom_rule", "CustomRuleFunction", "check_grads", "GradCheckReport",
    "compile_train_step", "TrainStep", "optim", "aligned", "aligned_empty", "aligned_zeros",
    "set_num_threads", "get_num_threads", "set_deterministic", "get_deterministic", "clear_cache", "cache_info",
    "set_flush_denormal", "get_flush_denormal",
    "add", "subtract", "multiply", "divide", "power", "negative", "exp", "log", "tanh", "sigmoid",
    "sqrt", "relu", "maximum", "minimum", "greater", "equal", "sum", "mean", "max", "matmul", "dot",
    "transpose", "reshape", "broadcast_to",
    "sin", "cos", "tan", "exp2", "log1p", "expm1", "abs", "absolute", "sign", "erf", "softplus",
    "square", "reciprocal", "arctan2", "clip", "less", "less_equal", "greater_equal", "not_equal",
    "where", "min", "prod", "logsumexp", "cumsum", "norm", "floor", "ceil", "trunc", "rint", "round", "around",
    "concatenate", "stack", "pad", "roll", "flip", "squeeze", "expand_dims", "ravel", "diff",
    "zeros_like", "ones_like", "full_like", "outer", "var", "std",
    "logical_and", "logical_or", "logical_xor", "logical_not",
    "fori_loop", "scan", "while_loop", "cond", "checkpoint", "at_set", "at_add",
]  # fmt: skip
