"""Load the hand-written loop-level `.mlir` corpus (corpus/*.mlir) as xDSL modules.

The files are `string.Template`s: `${N}`, `${M}`, `${K}` are sizes, `${T}` the
element type (f64 or f32) and `${NEG_INF}` the matching -inf literal, so one
program serves every size (remainders included) and both precisions. The
single-op programs also take `${OP}` (an op name) or `${PRED}`/`${IPRED}`
(comparison predicates).
"""

from __future__ import annotations

import string
from pathlib import Path

from xdsl.context import Context
from xdsl.dialects import arith, builtin, func, math, memref, scf
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser

CORPUS = Path(__file__).parent / "corpus"
NEG_INF = {"f64": "0xFFF0000000000000", "f32": "0xFF800000"}
NP_DTYPE = {"f64": "float64", "f32": "float32"}


def context() -> Context:
    ctx = Context()
    for dialect in (builtin.Builtin, func.Func, scf.Scf, arith.Arith, math.Math, memref.MemRef):
        ctx.load_dialect(dialect)
    return ctx


def source(name: str, T: str = "f64", **params) -> str:
    text = (CORPUS / f"{name}.mlir").read_text()
    return string.Template(text).substitute(T=T, NEG_INF=NEG_INF[T], **{k: str(v) for k, v in params.items()})


def parse(text: str) -> ModuleOp:
    return Parser(context(), text).parse_module()


def load(name: str, T: str = "f64", **params) -> ModuleOp:
    return parse(source(name, T, **params))
