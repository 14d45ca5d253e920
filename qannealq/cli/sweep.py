"""Methods x bit widths x seeds on one dataset (mean ± std over seeds), each finished cell stored; --resume.

Presets: ``--preset paper`` (float calibration, per-tensor max-scale grid, int1 = {-max|w|, 0}, per-neuron
``sa`` with 1 read, no warm start) and ``--preset best`` (sequential calibration, the better of the tensor and
channel grids per cell by calibration error, int1 = ±mean|w|, ``layer-sa``). Options given explicitly
override the preset's. Seeds 0..N-1 vary the calibration draw (and, with --train-seeds, the training).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from qannealq._defaults import CALIBRATION_MODES, GRANULARITY_CHOICES, INT1_SCHEMES
from qannealq.cli._args import (MODEL_OPTIONS, add_layer_sa_arguments, add_model_arguments, add_objective_arguments,
                                add_qpu_arguments, check_options_apply, given_options, int_list, memory_limit_bytes,
                                model_config, option, sampler_options, str_list)
from qannealq.cli._console import ConsoleReporter
from qannealq.errors import InvalidArgumentError

HELP = "sweep methods x bits x seeds on one dataset; resumable; tables and plots with mean ± std"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    group = parser.add_argument_group("sweep")
    group.add_argument("--preset", choices=("paper", "best"), default=None,
                       help="paper: the paper's set-up; best: this project's improvements (see the README)")
    group.add_argument("--bits", type=int_list, default=[8, 6, 4, 3, 2, 1], help="comma list, e.g. 8,4,2")
    group.add_argument("--methods", type=str_list, default=["rtn", "gptq", "qubo"],
                       help="comma list of rtn, gptq, gptq-restricted, gptq-act, gptq-restricted-act, gptq-pivot, "
                       "gptq-restricted-pivot, qubo or qubo:BACKEND (e.g. qubo:sa)")
    group.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1: calibration draws (default 3)")
    group.add_argument("--train-seeds", action="store_true",
                       help="also train one network per seed (default: one network, the --seed one)")
    group.add_argument("--backend", default=None, help="sampler of a plain `qubo` (preset's, else layer-sa)")
    group.add_argument("--sampler-option", type=option, action="append", default=None, metavar="KEY=VALUE",
                       help="passed to every qubo sampler that takes it, e.g. num_reads=1, or as BACKEND:KEY=VALUE "
                       "to one of them, e.g. sa:num_reads=10 (repeatable; refused without qubo in --methods)")
    add_layer_sa_arguments(group)
    group.add_argument("--calibration", default=None, choices=CALIBRATION_MODES)
    group.add_argument("--granularity", default=None, choices=GRANULARITY_CHOICES,
                       help="best: per cell the grid with the lower summed layer error on the calibration data")
    group.add_argument("--int1", default=None, choices=INT1_SCHEMES)
    group.add_argument("--warm-start", default=None,
                       help="gptq-restricted-pivot (the qubo start of --preset best and without a preset; --preset "
                       "paper: none), gptq-restricted-act, gptq-restricted, gptq-pivot, gptq-act, gptq, rtn or none")
    add_objective_arguments(group)
    group.add_argument("--download", action="store_true",
                       help="fetch the dataset from its canonical location if it is found nowhere (SHA-256 checked)")
    group.add_argument("--keep-going", action="store_true",
                       help="a cell that fails is recorded (summary.md, sweep.json) and the sweep goes on with the "
                       "others; the exit is non-zero, naming the failed cells, which --resume computes again "
                       "(default: the first failed cell stops the sweep)")
    add_qpu_arguments(parser)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, default=None, help="results folder (default: a new folder in runs/)")
    where.add_argument("--resume", type=Path, default=None, metavar="DIR",
                       help="continue the sweep stored in DIR with its stored options (finished cells are not recomputed; an "
                       "option given too must equal the stored one)")


_SWEEP = ("bits", "methods", "seeds", "train_seeds", "preset", "backend", "calibration", "granularity", "int1",
          "warm_start", "objective", "inactive_weight", "sampler_option")


def _resumed(args: argparse.Namespace):
    """``--resume DIR``: the stored sweep's settings, with the options given on the command line in their place
    (a given option that differs from the stored one is refused, with the differences listed)."""
    from qannealq.store import ResultStore
    from qannealq.sweep import SweepConfig

    return SweepConfig.from_stored(ResultStore.stored_settings(args.resume, "sweep"), args.resume,
                                   download=args.download, memory_limit=memory_limit_bytes(args),
                                   keep_going=args.keep_going,
                                   dry_run=args.dry_run, qpu_budget=args.qpu_budget,
                                   model=given_options(args, MODEL_OPTIONS), **given_options(args, _SWEEP))


def main(args: argparse.Namespace) -> int:
    from qannealq.sweep import SweepCellsFailedError, SweepConfig, sweep

    if args.train_seeds and "seed" in args.explicit:  # each network is trained with its cell's seed 0..N-1
        raise InvalidArgumentError(f"--seed={args.seed} has no effect with --train-seeds, which trains one network "
                                   "per seed 0..N-1 of --seeds: drop one of them")
    if args.resume is not None:
        config = _resumed(args)
    else:
        config = SweepConfig.from_preset(
            args.preset, model=model_config(args), bits=tuple(args.bits), methods=tuple(args.methods),
            seeds=args.seeds, train_seeds=args.train_seeds, backend=args.backend,
            sampler_options=None if args.sampler_option is None else sampler_options(args.sampler_option),
            calibration=args.calibration, granularity=args.granularity, int1=args.int1,
            warm_start=args.warm_start, objective=args.objective, inactive_weight=args.inactive_weight,
            memory_limit=memory_limit_bytes(args), out=args.out, download=args.download, dry_run=args.dry_run,
            qpu_budget=args.qpu_budget, keep_going=args.keep_going)
        check_options_apply(args, {} if args.sampler_option is None else sampler_options(args.sampler_option))
    reporter = ConsoleReporter()
    try:
        summary = sweep(config, reporter)
    except SweepCellsFailedError as exc:  # --keep-going: the tables of the others, then the failed cells (exit 2)
        reporter.message((exc.summary.out / "summary.md").read_text())
        raise
    if not config.dry_run:
        reporter.message((summary.out / "summary.md").read_text())
    return 0
