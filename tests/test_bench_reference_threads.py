"""The harness's float64 reference runs numpy's BLAS on one thread (bench/workloads/model.py).

With more, OpenBLAS's idle workers poll for work for tens of milliseconds after
the reference's last product and take a core from the next timed row.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.workloads import model

threadpoolctl = pytest.importorskip("threadpoolctl")


def blas_threads() -> list[int]:
    return [info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]


def test_references_run_blas_on_one_thread_and_restore_the_setting():
    before = blas_threads()
    seen = model._one_blas_thread(blas_threads)()
    assert seen and all(n == 1 for n in seen)
    assert blas_threads() == before


def test_nested_references_keep_one_thread_and_give_the_same_numbers():
    spec = model.Spec((7, 5, 3), "f64")
    params = model.init_params(spec)
    rng = np.random.default_rng(0)
    xs, ys = rng.random((4, 7)), np.eye(3)[rng.integers(0, 3, 4)]
    replayed = model.reference_replay(params, xs, ys, 4)  # calls reference_step inside
    _, stepped = model.reference_run(params, xs, ys)
    for a, b in zip(replayed, stepped):
        np.testing.assert_array_equal(a, b)
