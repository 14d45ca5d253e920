"""Export neuron QUBOs as files other solvers read without qannealq (dimod .bqm, plain-text .coo, .json
metadata with the best known solution), or the whole benchmark library with --library."""

from __future__ import annotations

import argparse
from pathlib import Path

from qannealq.cli.compare import (add_reference_arguments, add_selection_arguments, check_unused_selection,
                                  reference_options, selection)

HELP = "export neuron QUBO instances (dimod, COO text, metadata, best known solution); --library: the benchmark set"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_selection_arguments(parser, neurons=None)
    parser.add_argument("--library", action="store_true",
                        help="export the fixed benchmark library (digits 4x4, digits 8x8, MNIST first layer) "
                        "instead of one selection")
    add_reference_arguments(parser)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="folder for the instance files")
    where.add_argument("--resume", type=Path, default=None, metavar="DIR",
                       help="continue the export stored in DIR after an interruption, with its stored options; "
                       "finished instances are kept, not computed again")


def main(args: argparse.Namespace) -> int:
    from qannealq._compare_command import ExportJob, run_export
    from qannealq.cli._console import ConsoleReporter
    from qannealq.errors import InvalidArgumentError

    if args.resume is not None:
        given = sorted(set(getattr(args, "explicit", ()) or ()) - {"resume", "data_dir", "verbose"})
        if given:
            raise InvalidArgumentError(f"--resume {args.resume} takes the stored export's options: leave out "
                                       + ", ".join(f"--{name.replace('_', '-')}" for name in given))
        run_export(ExportJob.resumed(args.resume, args.data_dir), ConsoleReporter())
        return 0
    if args.library:
        check_unused_selection(args, "--library")
    job = ExportJob(args.out, None if args.library else selection(args), args.library, args.data_dir,
                    reference_options(args))
    run_export(job, ConsoleReporter())
    return 0
