"""A small seeded budget of the differential fuzzer (program_fuzz.py) in the suite.

Each seed is one random program of array ops and loops, run eagerly, compiled and
differentiated, and compared with JAX. The seeds that found bugs come first (the
bugs themselves are pinned down in tests/test_fuzz_regressions.py); then a few
fresh ones. For a longer hunt: `python tests/fuzz/program_fuzz.py --programs 300`.
"""

from __future__ import annotations

import pytest

pytest.importorskip("jax")

from program_fuzz import check_program, describe, jax_namespace  # noqa: E402

FOUND_BUGS = [17, 30, 129]  # while_loop one-element carry; cumsum of empty; scan over no elements
FRESH = [1000 + k for k in range(6)]


@pytest.fixture(scope="module")
def jax_ops():
    return jax_namespace()


@pytest.mark.slow
@pytest.mark.parametrize("seed", FOUND_BUGS + FRESH)
def test_random_program_matches_jax(seed, jax_ops):
    outcome = check_program(seed, jax_ops)
    assert outcome.problem is None or outcome.problem.startswith("skip"), describe(outcome)
