"""The raster ops' canonicalization patterns (dialects/raster_canonicalize.py) and the bounded driver.

- The exact rewrites change no bit: programs compiled with and without
  `canonicalize` agree bit for bit on -0.0, +-inf, NaN and ordinary values.
- Constant folding computes what the compiled op computes: every exact op
  on every pair of special values, folded vs run natively, in f64 and f32.
- log(exp x) gives x (also where exp overflows); fuse-softmax-cross-entropy
  gives the stable loss and softmax_cross_entropy's gradient.
- A rewrite that does not converge stops with a CompileError naming the
  pass and the patterns (canonicalize, a pattern pass, raster-opt), quickly.
The IR each pattern produces is checked by tests/filecheck/canonicalize/.
"""

from __future__ import annotations

import textwrap
import time
from dataclasses import dataclass

import numpy as np
import pytest
from xdsl.parser import Parser
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern

import raster_mlir as rm
from raster_mlir import backend, nn
from raster_mlir.apps.raster_opt import raster_opt_main
from raster_mlir.compiler import DEFAULT_PIPELINE, StagedPipeline, make_context
from raster_mlir.dialects import raster as R
from raster_mlir.dialects import raster_canonicalize as C
from raster_mlir.passes import registry
from raster_mlir.passes.greedy import apply_patterns

WITHOUT_CANONICALIZE = DEFAULT_PIPELINE.replace("canonicalize,", "")
SPECIAL = [-0.0, 0.0, 1.0, -2.5, np.inf, -np.inf, np.nan, 1e-300]
NP = {"f64": np.float64, "f32": np.float32}


def assert_same_bits(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    same = (got == want) & (np.signbit(got) == np.signbit(want)) | (np.isnan(got) & np.isnan(want))
    assert same.all(), f"differ at {np.argwhere(~same)[:5].tolist()}: {got[~same][:5]} vs {want[~same][:5]}"


# --- exact rewrites change no bit ----------------------------------------------------------------


def identities(x, y):
    a = -(-x) * 1.0 / 1.0  # neg(neg x), x * 1, x / 1
    b = nn.relu(nn.relu(y)) + (-0.0)  # relu(relu y), y + (-0.0)
    c = (x.T).T - 0.0  # transpose(transpose x), x - (+0.0)
    return a + b * c


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exact_rewrites_change_no_bit(dtype):
    x = np.array([SPECIAL, SPECIAL[::-1]], dtype=dtype)
    y = np.array([SPECIAL[3:] + SPECIAL[:3], SPECIAL[5:] + SPECIAL[:5]], dtype=dtype)
    canonical = rm.compile(identities, x, y)
    plain = rm.compile(identities, x, y, pipeline=WITHOUT_CANONICALIZE)
    ir = canonical.ir("after:canonicalize")
    assert "raster.neg" not in ir and "raster.transpose" not in ir and ir.count("raster.relu") == 1
    assert ir.count("raster.mul") == 1 and "raster.div" not in ir and "raster.sub" not in ir
    assert_same_bits(canonical(x, y), plain(x, y))


def test_plus_zero_is_not_folded_because_of_negative_zero():
    x = np.array([-0.0, 1.0])
    f = rm.compile(lambda x: x + 0.0, x)
    assert "raster.add" in f.ir("after:canonicalize")
    assert not np.signbit(f(x)[0])  # -0.0 + 0.0 is +0.0


# --- constant folding computes what the compiled op computes -------------------------------------

EXACT_BINARY = ["add", "sub", "mul", "div", "maximum", "greater", "equal"]
EXACT_UNARY = ["neg", "relu", "sqrt"]


def fold_program(T: str) -> str:
    """Every exact op on every pair of SPECIAL values (a column against a row), from one constant."""
    n = len(SPECIAL)
    # The dense literal spells each value by its bits in the type (-0.0, inf and NaN included).
    bits = {"f64": ("0x{:016X}", np.float64, np.uint64), "f32": ("0x{:08X}", np.float32, np.uint32)}[T]
    lits = ", ".join(bits[0].format(int(np.array(v, bits[1]).view(bits[2]))) for v in SPECIAL)
    ops = []
    results = []
    for name in EXACT_BINARY:
        ops.append(f"%{name} = raster.{name} %col, %row : tensor<{n}x1x{T}>, tensor<1x{n}x{T}> -> tensor<{n}x{n}x{T}>")
        results.append(f"%{name}")
    for name in EXACT_UNARY:
        ops.append(f"%{name} = raster.{name} %col : tensor<{n}x1x{T}>")
        results.append(f"%{name}")
    types = [f"tensor<{n}x{n}x{T}>"] * len(EXACT_BINARY) + [f"tensor<{n}x1x{T}>"] * len(EXACT_UNARY)
    body = "\n  ".join(ops)
    return textwrap.dedent(
        f"""\
        func.func @f() -> ({", ".join(types)}) {{
          %flat = raster.constant dense<[{lits}]> : tensor<{n}x{T}> : tensor<{n}x{T}>
          %col = raster.reshape %flat : tensor<{n}x{T}> -> tensor<{n}x1x{T}>
          %row = raster.reshape %flat : tensor<{n}x{T}> -> tensor<1x{n}x{T}>
          {body}
          func.return {", ".join(results)} : {", ".join(types)}
        }}
        """
    )


def run_ir(text: str, pipeline: str) -> tuple[list[np.ndarray], str]:
    """Run `pipeline` (ending in lower-to-loops) on `text`, compile @f natively, call it: (outputs, tensor IR)."""
    module = Parser(make_context(), text).parse_module()
    staged = StagedPipeline(pipeline, record=True)
    staged.run(module)
    fn = backend.compile_module(module, "f")
    (function,) = module.ops
    constants = function.attributes.get("raster.constants")  # lower-to-loops' hidden trailing arguments
    constants = [np.array(c.get_values(), NP[R.dtype_of(c.type)]).reshape(R.shape_of(c.type))
                 for c in (constants.data if constants is not None else ())]  # fmt: skip
    outs = [np.empty(s.shape, s.dtype) for s in fn.arg_specs[: len(fn.arg_specs) - len(constants)]]
    fn(*outs, *constants)
    return outs, staged.stages[list(staged.stages)[-2]]


@pytest.mark.parametrize("T", ["f64", "f32"])
def test_folded_constants_equal_the_compiled_ops_bit_for_bit(T):
    program = fold_program(T)
    folded, folded_ir = run_ir(program, "canonicalize,lower-to-loops")
    computed, computed_ir = run_ir(program, "lower-to-loops")
    assert "raster.add" in computed_ir and "= raster.add" not in folded_ir  # it did fold
    assert folded_ir.count("raster.constant") == len(EXACT_BINARY) + len(EXACT_UNARY)
    for got, want in zip(folded, computed):
        assert_same_bits(got, want)


def test_splat_folds_at_any_size_and_large_constants_are_not_copied():
    (p,) = registry.parse_pipeline("canonicalize").passes
    module = Parser(make_context(), textwrap.dedent(
        """\
        func.func @f(%big: tensor<100xf64>) -> (tensor<100000xf64>, tensor<100xf64>) {
          %a = raster.fill 3.000000e+00 : f64 : tensor<100000xf64>
          %b = raster.fill 2.000000e+00 : f64 : tensor<f64>
          %c = raster.mul %a, %b : tensor<100000xf64>, tensor<f64> -> tensor<100000xf64>
          %d = raster.add %big, %b : tensor<100xf64>, tensor<f64> -> tensor<100xf64>
          func.return %c, %d : tensor<100000xf64>, tensor<100xf64>
        }
        """)).parse_module()  # fmt: skip
    p.apply(make_context(), module)
    ops = [op.name for op in module.walk()]
    assert ops.count("raster.fill") == 2 and "raster.mul" not in ops and "raster.add" in ops


# --- rewrites that change rounding, for the better ----------------------------------------------


def test_log_of_exp_is_x_even_where_exp_overflows():
    x = np.array([-1000.0, -0.5, 0.0, 0.1, 700.0, 1000.0, np.inf, -np.inf, np.nan])
    f = rm.jit(lambda x: rm.log(rm.exp(x)))
    assert_same_bits(f(x), x)


def test_fuse_softmax_cross_entropy_gives_the_stable_loss_and_its_gradient():
    z = np.array([[0.0, 1000.0, -3.0], [1.0, 2.0, 3.0]])
    y = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])

    def loss(z, y):
        return nn.cross_entropy(nn.softmax(z), y)

    logp = z - z.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    exact = -(y * logp).sum() / 2  # 500.2...; cross_entropy's clamp gives 354.1...
    pipeline = "inline,fuse-softmax-cross-entropy," + DEFAULT_PIPELINE.removeprefix("inline,")
    c = rm.compile(rm.value_and_grad(loss, argnums=0), z, y, pipeline=pipeline)
    assert "raster.softmax_cross_entropy" in c.ir("after:fuse-softmax-cross-entropy")
    value, dz = c(z, y)
    np.testing.assert_allclose(value, exact, rtol=1e-14)
    np.testing.assert_allclose(dz, (np.exp(logp) - y) / 2, rtol=1e-14, atol=1e-300)
    # Not a canonicalization: the default pipeline keeps cross_entropy's clamp, as eager mode does.
    clamped = rm.jit(loss)(z, y)
    np.testing.assert_allclose(clamped, loss(z, y), rtol=1e-14)
    assert clamped < exact


# --- the bound ----------------------------------------------------------------------------------


class RebuildNeg(RewritePattern):
    """Replaces every neg by a fresh copy: matches its own output forever."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: R.NegOp, rewriter: PatternRewriter, /) -> None:
        rewriter.replace(op, R.NegOp.make([op.input]))


NEG_PROGRAM = textwrap.dedent(
    """\
    func.func @f(%x: tensor<3xf64>) -> tensor<3xf64> {
      %n = raster.neg %x : tensor<3xf64>
      func.return %n : tensor<3xf64>
    }
    """
)


def test_canonicalize_that_does_not_converge_is_a_compile_error(monkeypatch):
    monkeypatch.setitem(C.PATTERNS, R.NegOp, (RebuildNeg(),))
    module = Parser(make_context(), NEG_PROGRAM).parse_module()
    start = time.perf_counter()
    with pytest.raises(rm.CompileError, match=r"canonicalize: the greedy rewrite did not converge.*RebuildNeg \d+"):
        StagedPipeline("canonicalize").run(module)
    assert time.perf_counter() - start < 10


def test_max_rewrites_option():
    module = Parser(make_context(), textwrap.dedent(
        """\
        func.func @f(%x: tensor<3xf64>) -> tensor<3xf64> {
          %a = raster.neg %x : tensor<3xf64>
          %b = raster.neg %a : tensor<3xf64>
          %c = raster.neg %b : tensor<3xf64>
          %d = raster.neg %c : tensor<3xf64>
          func.return %d : tensor<3xf64>
        }
        """)).parse_module()  # fmt: skip
    with pytest.raises(rm.CompileError, match="after 1 rewrites.*InvolutionPattern"):
        StagedPipeline("canonicalize{max-rewrites=1}").run(module.clone())
    StagedPipeline("canonicalize{max-rewrites=2}").run(module)
    assert [op.name for op in module.walk()].count("raster.neg") == 0


@dataclass(frozen=True)
class LoopingPass(ModulePass):
    """A pattern pass whose pattern never converges, driven by raster_mlir's bounded driver."""

    name = "looping-pass"

    def apply(self, ctx, op):
        apply_patterns(op, [RebuildNeg()], self.name)


def test_raster_opt_stops_a_looping_pattern_pass_with_one_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(registry, "_PASSES", dict(registry._PASSES))
    registry.register_pass(LoopingPass)
    path = tmp_path / "neg.mlir"
    path.write_text(NEG_PROGRAM)
    code = raster_opt_main([str(path), "-p", "looping-pass"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.startswith("raster-opt: error: looping-pass: the greedy rewrite did not converge after 1000 rewrites")
    assert "RebuildNeg 1001; last: RebuildNeg on raster.neg" in err
