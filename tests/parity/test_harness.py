"""The harness itself: comparison semantics, selection, the CLI's exit status and JSON."""

import json

import numpy as np
import pytest

from parity.__main__ import main
from parity.harness import (
    EXACT,
    FP32,
    Case,
    Check,
    SkipCase,
    Tolerance,
    all_cases,
    compare,
    format_row,
    run_cases,
    select,
)


def _case(checks, tol=FP32):
    return Case("g", "ref", "c", tol, lambda: checks)


def test_compare_passes_within_tolerance():
    want = np.array([1.0, 2.0, 0.0])
    got = want + np.array([1e-5, -2e-5, 5e-7])
    result = compare(_case([]), [Check("y", got, want)])
    assert result.passed
    assert result.max_abs_err == pytest.approx(2e-5)
    assert result.max_rel_err == pytest.approx(1e-5)


@pytest.mark.parametrize(
    "got, want",
    [
        (np.array([1.0 + 2e-5]), np.array([1.0])),  # outside rtol
        (np.array([3e-6]), np.array([0.0])),  # outside atol
        (np.array([np.nan]), np.array([1.0])),  # NaN where the reference has none
        (np.zeros((2, 3)), np.zeros((3, 2))),  # shape mismatch
    ],
)
def test_compare_fails(got, want):
    assert not compare(_case([]), [Check("y", got, want)]).passed


def test_exact_tolerance_is_bit_exact():
    tol = Tolerance(0.0, 0.0)
    assert compare(_case([], tol), [Check("q", np.array([3, 4]), np.array([3, 4]))]).passed
    assert not compare(_case([], tol), [Check("q", np.array([3, 5]), np.array([3, 4]))]).passed


def test_compare_requires_checks():
    with pytest.raises(ValueError, match="returned no checks"):
        compare(_case([]), [])


def test_select_by_group_glob_and_commas():
    cases = all_cases()
    linear = select(cases, ["linear"])
    assert linear and all(c.group == "linear" for c in linear)
    both = select(cases, ["linear,nlinear"])
    assert {c.group for c in both} == {"linear", "nlinear"}
    assert select(cases, ["nlinear/fp32*"]) and all(
        c.full_name.startswith("nlinear/fp32") for c in select(cases, ["nlinear/fp32*"])
    )
    with pytest.raises(ValueError, match="`--only` must name a group"):
        select(cases, ["no-such-group"])


def test_cli_json_and_exit_status(tmp_path, capsys):
    path = tmp_path / "report.json"
    assert main(["--only", "linear/fp32 x(3x5)*", "--json", str(path)]) == 0
    rows = json.loads(path.read_text())
    assert len(rows) == 2
    assert set(rows[0]) == {
        "reference",
        "case",
        "max_abs_err",
        "max_rel_err",
        "tolerance",
        "passed",
    }
    assert "2/2 cases passed" in capsys.readouterr().out


def test_cli_exits_nonzero_on_failure(monkeypatch):
    import parity.__main__ as cli

    failing = Case("zz", "ref", "fails", FP32, lambda: [Check("y", np.ones(1), np.zeros(1))])
    monkeypatch.setattr(cli, "all_cases", lambda: [failing])
    assert cli.main([]) == 1


def _printed_tolerance(row: str) -> str:
    """The tolerance column of a passing report row (everything after the status)."""
    return row.split(" PASS ", 1)[1].strip() if " PASS " in row else row.split(" FAIL ", 1)[1]


def test_row_prints_the_tolerances_its_checks_were_judged_by():
    loose = Tolerance(rtol=1e-4, atol=1e-5)
    checks = [
        Check("a", np.ones(2), np.ones(2)),  # the case's default (FP32)
        Check("b", np.ones(2) + 5e-5, np.ones(2), loose),  # passes only under `loose`
        Check("c", np.array([3]), np.array([3]), EXACT),
    ]
    result = compare(_case(checks), checks)
    assert result.passed
    assert result.tolerances == (loose, FP32, EXACT)  # loosest first
    assert _printed_tolerance(format_row(result)) == f"{loose}, {FP32}, exact"


def test_row_prints_the_range_of_atols_sharing_an_rtol():
    # per-quantity tolerances derived from conditioning (gromo): one rtol, several atols
    checks = [
        Check("a", np.ones(2) + 5e-4, np.ones(2), Tolerance(1e-4, 7e-4)),
        Check("b", np.ones(2), np.ones(2), Tolerance(1e-4, 1e-5)),
        Check("c", np.ones(2), np.ones(2), Tolerance(1e-4, 3e-5)),
        Check("d", np.array([3]), np.array([3]), EXACT),
    ]
    result = compare(_case(checks), checks)
    assert result.passed
    assert _printed_tolerance(format_row(result)) == "rtol=1e-04 atol=1e-05..7e-04, exact"


def test_row_does_not_print_an_unused_default():
    # a case registered exact whose only check is statistical (a bound on a sample std)
    stat = Tolerance(0.0, 0.1)
    checks = [Check("std / scale", np.array([1.04]), np.array([1.0]), stat)]
    result = compare(_case(checks, EXACT), checks)
    assert result.passed and result.tolerances == (stat,)
    assert _printed_tolerance(format_row(result)) == str(stat)
    assert "exact" not in format_row(result)


def test_rows_of_real_cases_print_what_their_checks_used():
    cases = select(all_cases(), ["linear/fp32 x(3x5)*"])
    for case, result in zip(cases, run_cases(cases), strict=True):
        checks = case.run()
        used = sorted(
            {c.tolerance or case.tolerance for c in checks},
            key=lambda t: (t.rtol, t.atol),
            reverse=True,
        )
        assert _printed_tolerance(format_row(result)) == ", ".join(map(str, used))


def test_a_case_that_skips_says_why_and_does_not_fail(capsys):
    def missing():
        raise SkipCase("somepackage is not installed")

    (result,) = run_cases([Case("g", "ref", "skips", FP32, missing)])
    assert result.passed and result.skipped
    assert " SKIP " in format_row(result) and "(somepackage is not installed)" in format_row(result)
