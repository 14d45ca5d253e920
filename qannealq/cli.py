"""The ``qannealq`` command: ``qannealq run`` and ``qannealq backends``.

The command line only parses: it builds a frozen config per command (:mod:`qannealq.config`), calls the
library (:mod:`qannealq.runner`) with a console reporter, and turns a :class:`QannealqError` into exit 2.
"""

from __future__ import annotations

import argparse
import ast
import logging
import sys
from pathlib import Path
from typing import Sequence

from qannealq.config import ModelConfig, QuantizeConfig, RunConfig
from qannealq.errors import QannealqError
from qannealq.report import ConsoleReporter

__all__ = ["main", "build_parser"]

logger = logging.getLogger("qannealq")

def _int_list(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _str_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"sampler options look like key=value, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    from qannealq.data import DATASETS

    parser = argparse.ArgumentParser(prog="qannealq", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train or load a model, quantize it with each method and bit width")
    run.add_argument("--dataset", default="digits", choices=DATASETS)
    run.add_argument("--input-size", type=int, default=None,
                     help="digits only: pool the 8x8 images to NxN; 4 gives the tiny 16-16-10 model that every "
                     "backend (qaoa, dwave-mock...) can quantize")
    run.add_argument("--data-dir", default=None, help="folder with the npz datasets (default ../shared/datasets)")
    run.add_argument("--bits", type=_int_list, default=[8, 4, 3, 2, 1], help="comma list, e.g. 8,4,2")
    run.add_argument("--methods", type=_str_list, default=["rtn", "gptq", "qubo"],
                     help="comma list of rtn, gptq, gptq-restricted, qubo")
    run.add_argument("--backend", default="layer-sa",
                     help="sampler for the qubo method (see `qannealq backends`); default: the whole-layer "
                          "solver layer-sa (use sa for the paper's per-neuron annealing)")
    run.add_argument("--sampler-option", type=_option, action="append", default=[], metavar="KEY=VALUE",
                     help="passed to the sampler, e.g. num_reads=10 (repeatable)")
    run.add_argument("--calibration", default="float", choices=("float", "sequential"))
    run.add_argument("--granularity", default="tensor", choices=("tensor", "channel"))
    run.add_argument("--int1", default="sign", choices=("sign", "paper"), help="int1 grid: ±alpha or {-1,0}")
    run.add_argument("--warm-start", default="gptq-restricted",
                     help="initial state for samplers that take one: gptq-restricted, gptq, rtn or none")
    run.add_argument("--num-calibration", type=int, default=1024, help="calibration samples from train")
    run.add_argument("--hidden", type=_int_list, default=None, help="hidden layer sizes, e.g. 128")
    run.add_argument("--epochs", type=int, default=None)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--out", type=Path, default=None, help="results folder (default: a new folder in runs/)")
    run.add_argument("-v", "--verbose", action="store_true")
    sub.add_parser("backends", help="list the backends and whether they are ready")
    return parser


def _run_config(args: argparse.Namespace) -> RunConfig:
    """The frozen, validated settings of ``qannealq run``."""
    model = ModelConfig(dataset=args.dataset, input_size=args.input_size, data_dir=args.data_dir,
                        hidden=None if args.hidden is None else tuple(args.hidden), epochs=args.epochs,
                        seed=args.seed, num_calibration=args.num_calibration)
    quantize = QuantizeConfig(bits=tuple(args.bits), methods=tuple(args.methods), backend=args.backend,
                              sampler_options=dict(args.sampler_option), calibration=args.calibration,
                              granularity=args.granularity, int1=args.int1, warm_start=args.warm_start)
    return RunConfig(model, quantize, args.out)


def _cmd_backends() -> int:
    from qannealq.backends import ALIASES, available_backends

    rows = available_backends()
    width = max(len(r.name) for r in rows) + 2
    print(f"{'backend':<{width}}{'status':<17}{'capacity':<28}summary")
    for r in rows:
        capacity = r.spec.capacity if r.spec is not None else ""
        print(f"{r.name:<{width}}{r.status:<17}{capacity:<28}{r.summary}")
        if r.hint:
            print(f"{'':<{width}}  -> {r.hint}")
    print("aliases: " + ", ".join(f"{a} = {t}" for a, t in sorted(ALIASES.items())))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "backends":
            return _cmd_backends()
        from qannealq.runner import run

        run(_run_config(args), ConsoleReporter())
        return 0
    except QannealqError as exc:
        print(f"qannealq: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qannealq: interrupted; rows finished so far are in the results folder", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
