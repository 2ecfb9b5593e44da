"""``magan tune``: a result's eigentunes as files a simulation job can read."""

from __future__ import annotations

import argparse

from ..core.comparison import load_run
from ..core.results import format_eigentunes, write_tunes


def cmd_tune(args: argparse.Namespace) -> int:
    result = load_run(args.result).result
    paths = write_tunes(args.output, result, overwrite=args.force)
    print(format_eigentunes(result))
    print(f"wrote {len(paths)} files to {args.output}: eigentunes.json, best_match.txt and "
          f"{len(paths) - 2} variations (axis<k>_plus.txt / axis<k>_minus.txt, one 'name value' line per parameter)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``tune`` subcommand."""
    p = sub.add_parser("tune", help="write a result's best match and its eigentunes (±1σ along the principal "
                                    "axes of the best-match covariance) as files for re-simulation")
    p.add_argument("result", help="result .json from `magan calibrate` (or a project file, .magan)")
    p.add_argument("-o", "--output", required=True, help="folder for the files (made if missing)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(func=cmd_tune)
