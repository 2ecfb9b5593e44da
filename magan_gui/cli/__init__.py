"""The ``magan`` command: simulate true images, pretrain an emulator, calibrate, emulate, benchmark.

Every subcommand runs the same engine as the app (``core.workflow``).  Bad input ends with one
line on stderr and exit status 2, never a traceback; existing outputs are kept unless --force is
given.  An error that is not the user's (a bug) keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..core.errors import MaganError
from . import bench, compare, runs, tune
from .common import EXIT_BAD_INPUT

COMMAND_GROUPS = (runs, tune, bench, compare)  # each module's register() adds its subcommands


def build_parser() -> argparse.ArgumentParser:
    """The ``magan`` argument parser, with every group's subcommands."""
    parser = argparse.ArgumentParser(prog="magan", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``magan``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MaganError as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"magan {args.command}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"magan {args.command}: aborted", file=sys.stderr)
        return 130
