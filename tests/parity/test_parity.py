"""Every registered parity case (``python -m parity``) as a pytest test."""

import pytest

from parity import setup
from parity.harness import all_cases, compare

setup.configure()
CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.full_name for c in CASES])
def test_parity_case(case):
    result = compare(case, case.run())
    assert result.passed, (
        f"{case.full_name}: max_abs_err={result.max_abs_err:.3e} max_rel_err={result.max_rel_err:.3e}"
        f" > {result.tolerance} (worst: {result.worst})"
    )
