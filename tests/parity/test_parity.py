"""Every registered parity case (``python -m parity``) as a pytest test."""

import pytest

from parity import setup
from parity.harness import SkipCase, all_cases, compare

setup.configure()
CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.full_name for c in CASES])
def test_parity_case(case):
    try:
        checks = case.run()
    except SkipCase as reason:  # an optional reference package is not installed
        pytest.skip(str(reason))
    result = compare(case, checks)
    assert result.passed, (
        f"{case.full_name}: max_abs_err={result.max_abs_err:.3e} max_rel_err={result.max_rel_err:.3e}"
        f" > {result.tolerance} (worst: {result.worst})"
    )
