"""``python -m parity [--only NAME ...] [--json PATH]``: run the parity cases, print the table.

Exits 1 if any case fails, 2 on bad arguments.
"""

import argparse
import json
import sys

from parity.harness import all_cases, format_header, format_row, run_cases, select


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parity", description=__doc__)
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="groups, references or case names (globs; comma-separated allowed)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON to PATH")
    parser.add_argument("--list", action="store_true", help="list the selected cases and exit")
    args = parser.parse_args(argv)

    from parity import setup

    setup.configure()
    try:
        cases = select(all_cases(), args.only)
    except ValueError as err:
        parser.error(str(err))
    if args.list:
        print("\n".join(c.full_name for c in cases))
        return 0
    print(format_header(), flush=True)
    results = run_cases(cases, progress=lambda r: print(format_row(r), flush=True))
    failed = sum(not r.passed for r in results)
    skipped = sum(r.skipped for r in results)
    print(
        f"{len(results) - failed}/{len(results)} cases passed"
        + (f" ({skipped} skipped)" if skipped else "")
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump([r.as_json() for r in results], f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
