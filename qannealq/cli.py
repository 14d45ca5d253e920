"""The ``qannealq`` command: ``qannealq run`` and ``qannealq backends``."""

from __future__ import annotations

import argparse
import ast
import logging
import sys
import time
from pathlib import Path
from typing import Sequence

from qannealq.errors import QannealqError

__all__ = ["main", "build_parser"]

logger = logging.getLogger("qannealq")

DEFAULT_HIDDEN = {"digits": (32,), "mnist": (128,), "fashion-mnist": (128,), "emnist-letters": (256,)}
DEFAULT_EPOCHS = {"digits": 60, "mnist": 3, "fashion-mnist": 5, "emnist-letters": 5}
TINY_HIDDEN = (16,)  # digits at --input-size 4 or less: 16-16-10, at most 17 variables per neuron


def default_hidden(dataset: str, input_size: int | None = None) -> tuple[int, ...]:
    """Hidden sizes when ``--hidden`` is not given: the tiny classroom model for pooled digits (<= 4x4).

    Every neuron of the tiny model has at most 17 variables, so every backend (qaoa and exact included)
    can quantize the whole network.
    """
    if dataset == "digits" and input_size is not None and input_size <= 4:
        return TINY_HIDDEN
    return DEFAULT_HIDDEN[dataset]


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


def _out_dir(out: Path | None, dataset: str) -> Path:
    if out is not None:
        return out
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path("runs") / f"{dataset}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path("runs") / f"{dataset}-{stamp}-{suffix}"
    return path


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
        from qannealq.runner import run_experiment

        return run_experiment(args, _out_dir(args.out, args.dataset))
    except QannealqError as exc:
        print(f"qannealq: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qannealq: interrupted; rows finished so far are in the results folder", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
