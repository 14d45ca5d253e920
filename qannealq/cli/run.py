"""Train (or load) a model and quantize it with each method at each bit width; results into --out."""

from __future__ import annotations

import argparse
from pathlib import Path

from qannealq.cli._args import (MODEL_OPTIONS, add_executor_argument, add_model_arguments, add_qpu_arguments,
                                add_quantize_arguments, given_options, memory_limit_bytes, model_config,
                                quantize_config)
from qannealq.cli._console import ConsoleReporter

HELP = "train or load a model, quantize it with each method and bit width"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    add_quantize_arguments(parser)
    add_executor_argument(parser, "per-neuron QUBO solves (--backend sa, tabu...; layer-sa ignores it)")
    add_qpu_arguments(parser)
    parser.add_argument("--save-model", action="store_true",
                        help="save every quantized model (integer weights, steps, checksum) into OUT/models/ "
                        "(load with qannealq.load_quantized)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, default=None, help="results folder (default: a new folder in runs/)")
    where.add_argument("--resume", type=Path, default=None, metavar="DIR",
                       help="continue the run stored in DIR after an interruption, with its stored options (an "
                       "option given too must equal the stored one); finished rows are kept, not recomputed")


_QUANTIZE = ("bits", "methods", "backend", "sampler_option", "calibration", "granularity", "int1", "warm_start",
             "objective", "inactive_weight")


def main(args: argparse.Namespace) -> int:
    from qannealq.config import RunConfig
    from qannealq.runner import run

    options = {"executor": args.executor, "save_model": args.save_model, "dry_run": args.dry_run,
               "qpu_budget": args.qpu_budget}
    if args.resume is not None:  # the stored options, with those given here in their place
        from qannealq.store import ResultStore

        config = RunConfig.from_stored(ResultStore.stored_settings(args.resume, "run"), args.resume,
                                       given_options(args, MODEL_OPTIONS),
                                       {**given_options(args, _QUANTIZE), "retries": args.retries,
                                        "memory_limit": memory_limit_bytes(args)}, **options)
    else:
        config = RunConfig(model_config(args), quantize_config(args), args.out, **options)
    run(config, ConsoleReporter())
    return 0
