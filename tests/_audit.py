"""The audit of nonsense and unusual inputs across the public API: one table row per input.

Each row (:class:`Case`) is a call and what it must do:

- a bad input must raise the expected error type (``TypeError``, ``ValueError``, ``OSError``...) before
  any compute, with a message that names the argument (``name``, e.g. ``"`factors`"``);
- a valid but unusual input must return the exact expected value (``expect``: a value compared exactly,
  or a predicate).

:func:`classify` sorts an outcome into the audit's classes: ``clear`` (the expected error, naming the
argument), ``cryptic`` (another error type, or a message that does not name the argument), ``silent``
(no error where one was due, or a wrong value), ``ok`` (a valid input's exact value) and ``crash`` (the
process would die: anything that is not an ``Exception``). The tables live in ``tests/test_audit_*.py``;
``python -m tests._audit`` prints the counts of every table (the before/after numbers of issue 21).

Measured on the 486 rows: before the fixes of issue 21, 61 ok + 271 clear, 97 silent, 58 cryptic, 0
crashes; after them, 81 ok + 405 clear, 0 silent, 0 cryptic, 0 crashes.
"""

import dataclasses
import importlib
import sys
import traceback
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

_MISSING = object()
OUTCOMES = ("ok", "clear", "cryptic", "silent", "crash")


@dataclasses.dataclass(frozen=True)
class Case:
    """One audited input.

    Attributes:
        id: a short unique name (the pytest id).
        call: the call, with no arguments (shared set-ups come from cached helpers).
        error: the expected exception type, or None for a valid input.
        name: the text the error message must contain (the argument's name).
        expect: for a valid input, the exact expected value or a predicate ``value -> bool``.
    """

    id: str
    call: Callable[[], Any]
    error: type[BaseException] | tuple[type[BaseException], ...] | None = None
    name: str = ""
    expect: Any = _MISSING


def bad(id: str, call: Callable[[], Any], error: Any, name: str) -> Case:
    """A row for a rejected input: ``call()`` must raise ``error`` naming ``name``."""
    return Case(id, call, error, name)


def good(id: str, call: Callable[[], Any], expect: Any) -> Case:
    """A row for a valid input: ``call()`` must return exactly ``expect`` (or satisfy it, if callable)."""
    return Case(id, call, None, "", expect)


def _equal(value: Any, expect: Any) -> bool:
    if type(expect).__name__ == "ApproxScalar" or type(expect).__name__.startswith("Approx"):
        return bool(value == expect)
    if callable(expect) and not isinstance(expect, type):
        return bool(expect(value))
    if isinstance(expect, dict):
        return (
            isinstance(value, dict)
            and set(value) == set(expect)
            and all(_equal(value[k], v) for k, v in expect.items())
        )
    if isinstance(expect, tuple | list) and not hasattr(value, "shape"):
        return (
            isinstance(value, tuple | list)
            and len(value) == len(expect)
            and all(_equal(a, b) for a, b in zip(value, expect, strict=True))
        )
    try:
        a, b = np.asarray(value), np.asarray(expect)
    except Exception:  # noqa: BLE001
        return value == expect
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        return bool(np.array_equal(a.astype(np.float64), b.astype(np.float64), equal_nan=True))
    return bool(np.array_equal(a, b))


def classify(case: Case) -> tuple[str, str]:
    """(outcome, detail) of running ``case``: one of :data:`OUTCOMES` and a one-line explanation."""
    try:
        value = case.call()
    except Exception as e:  # noqa: BLE001
        msg = f"{type(e).__name__}: {e}".replace("\n", " ")[:300]
        if case.error is None:
            return "cryptic", f"valid input rejected: {msg}"
        if isinstance(e, case.error) and case.name in str(e):
            return "clear", msg
        return "cryptic", msg
    except BaseException as e:  # noqa: BLE001  (SystemExit, KeyboardInterrupt: never expected)
        if isinstance(e, KeyboardInterrupt):
            raise
        return "crash", f"{type(e).__name__}: {e}"
    if case.error is not None:
        return "silent", f"no error; returned {_short(value)}"
    if case.expect is _MISSING or _equal(value, case.expect):
        return "ok", _short(value)
    return "silent", f"returned {_short(value)}, expected {_short(case.expect)}"


def _short(value: Any) -> str:
    text = repr(value).replace("\n", " ")
    return text if len(text) < 160 else text[:157] + "..."


def check(case: Case) -> None:
    """The test body of every row: the outcome must be ``clear`` (bad input) or ``ok`` (valid)."""
    outcome, detail = classify(case)
    want = "ok" if case.error is None else "clear"
    assert outcome == want, f"{case.id}: {outcome} ({detail}); expected " + (
        f"{getattr(case.error, '__name__', case.error)} naming {case.name!r}"
        if case.error is not None
        else f"the value {_short(case.expect)}"
    )


MODULES = (
    "tests.test_audit_layers",
    "tests.test_audit_quantization",
    "tests.test_audit_scaling",
    "tests.test_audit_optim",
    "tests.test_audit_interop",
    "tests.test_audit_misc",
)


def main(argv: list[str]) -> int:
    """Print every non-passing row and the counts per table (``-v``: every row)."""
    verbose = "-v" in argv
    total: Counter[str] = Counter()
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        counts: Counter[str] = Counter()
        for case in module.CASES:
            try:
                outcome, detail = classify(case)
            except Exception:  # noqa: BLE001  (a bug in the table itself)
                outcome, detail = "crash", traceback.format_exc(limit=1)
            counts[outcome] += 1
            if verbose or outcome not in ("ok", "clear"):
                print(f"  {outcome:8} {name.rsplit('.', 1)[-1]}::{case.id}: {detail}")
        total.update(counts)
        print(
            f"{name}: {len(module.CASES)} cases, " + ", ".join(f"{k} {counts[k]}" for k in OUTCOMES)
        )
    n = sum(total.values())
    print(f"TOTAL {n} cases: " + ", ".join(f"{k} {total[k]}" for k in OUTCOMES))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
