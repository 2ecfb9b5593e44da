"""``magan compare``: several calibration results side by side, differences in units of their uncertainty."""

from __future__ import annotations

import argparse

from ..core.comparison import compare_runs, format_comparison, load_runs


def cmd_compare(args: argparse.Namespace) -> int:
    """Print the comparison table of the result files (the first is the reference)."""
    runs = load_runs([args.reference, *args.results])
    print(format_comparison(compare_runs(runs)))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``magan compare`` to the ``magan`` parser."""
    p = sub.add_parser(
        "compare", help="compare calibration results: means and stds, and their differences",
        description="Print each result's best-match mean and std per parameter (± their uncertainty when an "
                    "ensemble ran) and, for every result after the first, the differences from the first in "
                    "units of the combined uncertainty.")
    p.add_argument("reference", help="the result JSON (magan calibrate -o) the others are compared with; "
                                     "a project file (.magan) works too")
    p.add_argument("results", nargs="+", metavar="result", help="one or more results to compare with it")
    p.set_defaults(func=cmd_compare)
