"""Case registry, comparison and report of the parity harness.

A case builds the torch module with the real reference library under a fixed seed, exports its
``state_dict`` through a safetensors file, loads it with ``jaxlinear.interop.from_torch``, runs both
sides on the same inputs and returns the arrays to compare (outputs and gradients). Errors:

- ``max_abs_err``: ``max |got - want|`` over every compared array;
- ``max_rel_err``: ``max |got - want| / |want|`` over the elements with ``|want| > atol`` (smaller
  elements are judged by the absolute term alone);
- a case passes when every element satisfies ``|got - want| <= atol + rtol * |want|`` (numpy's
  ``isclose``), shapes are equal and NaNs sit in the same places. ``rtol = atol = 0`` is bit-exact.

Each check is judged by its own tolerance (the case's when it names none), and a row reports the
tolerances its checks were actually judged by (every distinct one, loosest first), never only the
case's default.
"""

import fnmatch
import importlib
import pkgutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Case",
    "Check",
    "Result",
    "SkipCase",
    "Tolerance",
    "all_cases",
    "compare",
    "describe_tolerances",
    "format_table",
    "register",
    "run_cases",
    "select",
    "used_tolerances",
]


@dataclass(frozen=True)
class Tolerance:
    """``|got - want| <= atol + rtol * |want|`` elementwise; ``Tolerance(0, 0)`` is bit-exact."""

    rtol: float
    atol: float

    def __str__(self) -> str:
        if self.rtol == 0 and self.atol == 0:
            return "exact"
        return f"rtol={self.rtol:.0e} atol={self.atol:.0e}"


FP32 = Tolerance(rtol=1e-5, atol=1e-6)
EXACT = Tolerance(rtol=0.0, atol=0.0)


@dataclass(frozen=True)
class Check:
    """One compared array: jaxlinear's value (``got``) and the torch reference's (``want``)."""

    name: str
    got: np.ndarray
    want: np.ndarray
    tolerance: Tolerance | None = None  # None: the case's tolerance


@dataclass(frozen=True)
class Case:
    """A registered parity case. ``run`` returns the checks; it does all torch and JAX work."""

    group: str  # what --only selects, e.g. "linear"
    reference: str  # the reference's public name, e.g. "torch.nn.Linear"
    name: str  # unique within the group, e.g. "fp32 x(2,3,5) 5->7 bias"
    tolerance: Tolerance  # the default of the checks that name none
    run: Callable[[], list[Check]] = field(repr=False)

    @property
    def full_name(self) -> str:
        return f"{self.group}/{self.name}"


@dataclass(frozen=True)
class Result:
    reference: str
    case: str
    max_abs_err: float
    max_rel_err: float
    tolerance: str  # the tolerances the checks were judged by (``describe_tolerances``)
    passed: bool
    worst: str = ""  # the check with the largest violation, or the error raised
    seconds: float = 0.0
    tolerances: tuple[Tolerance, ...] = ()  # the distinct tolerances used, loosest first
    skipped: bool = False  # the case raised SkipCase (``worst`` holds the reason)

    def as_json(self) -> dict:
        return {
            "reference": self.reference,
            "case": self.case,
            "max_abs_err": self.max_abs_err,
            "max_rel_err": self.max_rel_err,
            "tolerance": self.tolerance,
            "passed": self.passed,
        } | ({"skipped": True} if self.skipped else {})


class SkipCase(Exception):
    """Raised by a case whose reference is not installed (an optional package): the row says SKIP and
    the reason, and does not fail the run."""


_REGISTRY: dict[str, Case] = {}


def register(case: Case) -> Case:
    """Add ``case`` to the registry (names must be unique)."""
    if case.full_name in _REGISTRY:
        raise ValueError(f"parity case {case.full_name!r} is registered twice.")
    _REGISTRY[case.full_name] = case
    return case


def all_cases() -> list[Case]:
    """Every registered case, after importing each module of ``parity.cases``."""
    import parity.cases as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg.__name__}.{info.name}")
    return list(_REGISTRY.values())


def select(cases: Sequence[Case], only: Iterable[str] | None) -> list[Case]:
    """Cases whose group, reference or full name matches one of ``only`` (glob patterns allowed).

    ``only`` items may hold comma-separated names (``"linear,nlinear"``). Unknown names raise.
    """
    if not only:
        return list(cases)
    patterns = [p.strip() for item in only for p in item.split(",") if p.strip()]
    chosen, unmatched = [], []
    for pattern in patterns:
        hits = [
            c
            for c in cases
            if any(fnmatch.fnmatchcase(s, pattern) for s in (c.group, c.reference, c.full_name))
        ]
        if not hits:
            unmatched.append(pattern)
        chosen.extend(h for h in hits if h not in chosen)
    if unmatched:
        groups = sorted({c.group for c in cases})
        raise ValueError(f"`--only` must name a group in {groups} or a case, got {unmatched}.")
    return chosen


def _errors(got: np.ndarray, want: np.ndarray, tol: Tolerance) -> tuple[float, float, bool]:
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    if got.shape != want.shape:
        return float("inf"), float("inf"), False
    if got.size == 0:
        return 0.0, 0.0, True
    nan_got, nan_want = np.isnan(got), np.isnan(want)
    if (nan_got != nan_want).any():
        return float("inf"), float("inf"), False
    ok = ~nan_want
    got, want = got[ok], want[ok]
    if got.size == 0:
        return 0.0, 0.0, True
    with np.errstate(invalid="ignore"):  # inf - inf
        diff = np.where(got == want, 0.0, np.abs(got - want))
    big = np.abs(want) > tol.atol
    max_rel = float((diff[big] / np.abs(want[big])).max()) if big.any() else 0.0
    passed = bool((diff <= tol.atol + tol.rtol * np.abs(want)).all())
    return float(diff.max()), max_rel, passed


def used_tolerances(case: Case, checks: Sequence[Check]) -> tuple[Tolerance, ...]:
    """The distinct tolerances ``checks`` are judged by (the case's for those naming none), loosest
    first."""
    used = {check.tolerance or case.tolerance for check in checks}
    return tuple(sorted(used, key=lambda t: (t.rtol, t.atol), reverse=True))


def describe_tolerances(tolerances: Sequence[Tolerance]) -> str:
    """What a report row prints: the tolerances its checks were judged by, loosest first.

    Tolerances sharing an ``rtol`` print as one item with the range of their ``atol``s
    (``rtol=1e-04 atol=1e-05..7e-04``); ``exact`` is always its own item.
    """
    items = []
    inexact = [t for t in tolerances if t != EXACT]
    for rtol in sorted({t.rtol for t in inexact}, reverse=True):
        atols = sorted({t.atol for t in inexact if t.rtol == rtol})
        if len(atols) == 1:
            items.append(str(Tolerance(rtol, atols[0])))
        else:
            items.append(f"rtol={rtol:.0e} atol={atols[0]:.0e}..{atols[-1]:.0e}")
    if EXACT in tolerances:
        items.append(str(EXACT))
    return ", ".join(items)


def compare(case: Case, checks: Sequence[Check], seconds: float = 0.0) -> Result:
    """Fold the checks of one case into a ``Result`` that names the tolerances actually used."""
    if not checks:
        raise ValueError(f"parity case {case.full_name!r} returned no checks.")
    max_abs, max_rel, passed, worst, worst_score = 0.0, 0.0, True, "", -1.0
    tolerances = used_tolerances(case, checks)
    for check in checks:
        tol = check.tolerance or case.tolerance
        a, r, ok = _errors(check.got, check.want, tol)
        if np.shape(check.got) != np.shape(check.want):
            worst, worst_score = (
                f"{check.name}: shape {np.shape(check.got)} != {np.shape(check.want)}",
                1e300,
            )
        score = a / (tol.atol + tol.rtol + 1e-300)
        if score > worst_score:
            worst, worst_score = check.name, score
        max_abs, max_rel, passed = max(max_abs, a), max(max_rel, r), passed and ok
    return Result(
        case.reference,
        case.full_name,
        max_abs,
        max_rel,
        describe_tolerances(tolerances),
        passed,
        worst,
        seconds,
        tolerances,
    )


def run_cases(
    cases: Sequence[Case], progress: Callable[[Result], None] | None = None
) -> list[Result]:
    """Run each case; an exception inside a case is a failure that names the error."""
    results = []
    for case in cases:
        start = time.perf_counter()
        try:
            result = compare(case, case.run(), time.perf_counter() - start)
        except SkipCase as reason:
            nan = float("nan")
            result = Result(case.reference, case.full_name, nan, nan, "-", True, str(reason),
                            time.perf_counter() - start, skipped=True)  # fmt: skip
        except Exception as err:  # noqa: BLE001 - reported as a failed row
            result = Result(
                case.reference,
                case.full_name,
                float("nan"),
                float("nan"),
                "-",  # the case raised: no check was judged
                False,
                f"{type(err).__name__}: {err}",
                time.perf_counter() - start,
            )
        results.append(result)
        if progress is not None:
            progress(result)
    return results


def format_row(r: Result) -> str:
    """One report row; its last column lists every tolerance the row's checks were judged by."""
    status = "SKIP" if r.skipped else "PASS" if r.passed else "FAIL"
    line = (
        f"{r.reference:<28} {r.case:<52} {r.max_abs_err:>10.3e} {r.max_rel_err:>10.3e} "
        f"{status:<6} {r.tolerance}"
    )
    if not r.passed or r.skipped:
        line += f"  ({r.worst})"
    return line


def format_header() -> str:
    return (
        f"{'reference':<28} {'case':<52} {'max_abs':>10} {'max_rel':>10} {'result':<6} "
        "tolerances judged by (loosest first)\n" + "-" * 140
    )


def format_table(results: Sequence[Result]) -> str:
    """The report: one row per case and a summary line."""
    lines = [format_header(), *map(format_row, results)]
    failed = sum(not r.passed for r in results)
    skipped = sum(r.skipped for r in results)
    lines.append(
        f"{len(results) - failed}/{len(results)} cases passed"
        + (f" ({skipped} skipped)" if skipped else "")
    )
    return "\n".join(lines)
