"""Argument types and argument groups shared by the subcommands, and the configs built from them."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path
from typing import TYPE_CHECKING

from qannealq._defaults import (CALIBRATION_MODES, DEFAULT_INACTIVE_WEIGHT, DEFAULT_MEMORY_LIMIT, DEFAULT_WARM_START,
                                GRANULARITY_CHOICES, INT1_SCHEMES, OBJECTIVES)
from qannealq.errors import InvalidArgumentError

if TYPE_CHECKING:  # the configs load numpy and torch: imported where built, after the arguments are parsed
    from qannealq.config import ModelConfig, QuantizeConfig

__all__ = ["int_list", "str_list", "option", "check_options_apply", "MODEL_OPTIONS", "given_options",
           "add_model_arguments", "model_config", "add_quantize_arguments", "quantize_config", "add_executor_argument",
           "add_objective_arguments", "add_qpu_arguments", "qpu_budget", "memory_limit_bytes"]


def int_list(text: str) -> list[int]:
    """``"8,4,2"`` -> ``[8, 4, 2]``."""
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def str_list(text: str) -> list[str]:
    """``"rtn, gptq"`` -> ``["rtn", "gptq"]``."""
    return [t.strip() for t in text.split(",") if t.strip()]


def option(text: str) -> tuple[str, object]:
    """``key=value`` with the value read as a Python literal when it is one (``num_reads=10`` -> 10)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"sampler options look like key=value, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


#: ``layer-sa``'s effort presets (``backends/_layer_schedule.EFFORTS``, not imported here: it loads numba; a test
#: keeps the two equal)
EFFORTS = ("fast", "default", "thorough")


def effort_option(text: str) -> tuple[str, str]:
    """``--effort NAME`` as the sampler option ``("effort", NAME)``."""
    if text not in EFFORTS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(EFFORTS)}, got {text!r}")
    return "effort", text


def time_limit_option(text: str) -> tuple[str, float]:
    """``--time-limit SECONDS`` as the sampler option ``("time_limit", SECONDS)``."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds per layer, e.g. 30, got {text!r}")
    return "time_limit", seconds


def add_layer_sa_arguments(group: argparse._ArgumentGroup) -> None:
    """``--effort`` and ``--time-limit``: ``layer-sa``'s two most used options, as sampler options (the same as
    ``--sampler-option effort=...`` and ``--sampler-option time_limit=...``; add after ``--sampler-option``)."""
    group.add_argument("--effort", dest="sampler_option", type=effort_option, action="append",
                       default=argparse.SUPPRESS, metavar="{fast,default,thorough}",
                       help="layer-sa's effort preset (the same as --sampler-option effort=...)")
    group.add_argument("--time-limit", dest="sampler_option", type=time_limit_option, action="append",
                       default=argparse.SUPPRESS, metavar="SECONDS",
                       help="layer-sa's time limit per layer, warm start included (the same as --sampler-option "
                       "time_limit=...)")


def sampler_options(pairs) -> dict:
    """The ``(key, value)`` pairs of ``--sampler-option``, ``--effort`` and ``--time-limit`` as a dict; a key given
    twice with two values is refused (``--effort fast --sampler-option effort=thorough``)."""
    out: dict = {}
    for key, value in pairs:
        if key in out and out[key] != value:
            raise InvalidArgumentError(f"sampler option {key} is given twice, as {out[key]!r} and {value!r} "
                                       "(--sampler-option, --effort or --time-limit): give it once")
        out[key] = value
    return out


#: The qubo method's flags that ``check_options_apply`` refuses without it: the option, what it is to the method,
#: and whether it needs a plain ``qubo`` (``--backend``: a ``qubo:NAME`` method names its own sampler).
_QUBO_FLAGS = (("backend", "is the sampler of the qubo method", True),
               ("warm_start", "is the qubo method's initial state", False),
               ("executor", "runs the qubo method's neuron solves", False),
               ("retries", "retries the qubo method's cloud backend", False))


def check_options_apply(args: argparse.Namespace, options) -> None:
    """Options of the ``qubo`` method given with ``--methods`` that have none would be ignored, so they are
    refused: sampler options (``--sampler-option``, ``--effort``, ``--time-limit``; ``options``, the parsed dict),
    and ``--backend`` (of a plain ``qubo``), ``--warm-start``, ``--executor`` and ``--retries`` (``run``'s) where
    given on the command line; so is ``--objective relu-aware`` with RTN alone."""
    methods = [str(m) for m in args.methods]
    kinds = [m.partition(":") for m in methods]
    shown = ",".join(methods)
    if options and not any(kind == "qubo" for kind, _, _ in kinds):
        raise InvalidArgumentError(f"--sampler-option {', '.join(options)}: sampler options (--effort and "
                                   f"--time-limit too) are the qubo method's, and --methods {shown} has no qubo: add "
                                   "qubo to --methods or leave them out")
    explicit = getattr(args, "explicit", None) or ()
    for key, role, plain in _QUBO_FLAGS:
        if key in explicit and getattr(args, key) is not None and not any(
                kind == "qubo" and not (plain and name) for kind, _, name in kinds):
            flag, qubo = "--" + key.replace("_", "-"), "plain qubo" if plain else "qubo"
            raise InvalidArgumentError(f"{flag} {getattr(args, key)} {role}, and --methods {shown} has no {qubo}: "
                                       f"add qubo to --methods or leave {flag} out")
    if "objective" in explicit and args.objective != "preact" and all(kind == "rtn" for kind, _, _ in kinds):
        raise InvalidArgumentError(f"--objective {args.objective} is the error that GPTQ and the QUBOs minimise, and "
                                   f"--methods {shown} has RTN alone, which does not depend on it: add a method or "
                                   "leave --objective out")


#: The options of :func:`add_model_arguments`, as ``ModelConfig`` fields.
MODEL_OPTIONS = ("dataset", "input_size", "data_dir", "hidden", "epochs", "seed", "num_calibration")


def given_options(args: argparse.Namespace, names) -> dict:
    """Those of the options ``names`` given on the command line (``args.explicit``, set by the entry point;
    all of them when it is absent), lists as tuples; ``sampler_option`` comes back as ``sampler_options``."""
    explicit = getattr(args, "explicit", None)
    chosen = set(vars(args)) if explicit is None else set(explicit)
    out = {name: getattr(args, name) for name in names if name in chosen}
    out = {name: tuple(value) if isinstance(value, list) else value for name, value in out.items()}
    if "sampler_option" in out:
        options = out.pop("sampler_option")
        if options is not None:
            out["sampler_options"] = sampler_options(options)
    return out


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose a dataset, its trained MLP and the calibration draw (:class:`ModelConfig`)."""
    from qannealq.data.sources import DATASETS

    group = parser.add_argument_group("model and data")
    group.add_argument("--dataset", default="digits", choices=DATASETS)
    group.add_argument("--input-size", type=int, default=None,
                       help="digits only: pool the 8x8 images to NxN; 4 gives the tiny 16-16-10 model that every "
                       "backend (qaoa, dwave-mock...) can quantize")
    group.add_argument("--data-dir", type=Path, default=None,
                       help="folder with the datasets (default: $QANNEALQ_DATA, else ./datasets and "
                       "../shared/datasets)")
    group.add_argument("--hidden", type=int_list, default=None, help="hidden layer sizes, e.g. 128 or 256,128")
    group.add_argument("--epochs", type=int, default=None, help="training epochs (default: the dataset's recipe)")
    group.add_argument("--seed", type=int, default=0, help="training and calibration-draw seed")
    group.add_argument("--num-calibration", type=int, default=1024, help="calibration samples from train")


def model_config(args: argparse.Namespace) -> ModelConfig:
    """The validated :class:`ModelConfig` of the parsed options."""
    from qannealq.config import ModelConfig

    return ModelConfig(dataset=args.dataset, input_size=args.input_size, data_dir=args.data_dir,
                       hidden=None if args.hidden is None else tuple(args.hidden), epochs=args.epochs,
                       seed=args.seed, num_calibration=args.num_calibration)


def add_quantize_arguments(parser: argparse.ArgumentParser) -> None:
    """Bits, methods, backend and its options, grid and calibration (:class:`QuantizeConfig`)."""
    group = parser.add_argument_group("quantization")
    group.add_argument("--bits", type=int_list, default=[8, 4, 3, 2, 1], help="comma list, e.g. 8,4,2")
    group.add_argument("--methods", type=str_list, default=["rtn", "gptq", "qubo"],
                       help="comma list of rtn, gptq, gptq-restricted, gptq-act, gptq-restricted-act, gptq-pivot, "
                       "gptq-restricted-pivot, qubo")
    group.add_argument("--backend", default="layer-sa",
                       help="sampler for the qubo method (see `qannealq backends`); default: the whole-layer "
                       "solver layer-sa (use sa for the paper's per-neuron annealing)")
    group.add_argument("--sampler-option", type=option, action="append", default=[], metavar="KEY=VALUE",
                       help="passed to the qubo method's sampler, e.g. num_reads=10 (repeatable; refused without qubo "
                       "in --methods)")
    add_layer_sa_arguments(group)
    group.add_argument("--calibration", default="float", choices=CALIBRATION_MODES)
    group.add_argument("--granularity", default="tensor", choices=GRANULARITY_CHOICES,
                       help="the grid's step per tensor or per output channel; best: both solved per row, the lower "
                       "summed layer error on the calibration data kept")
    group.add_argument("--int1", default="sign", choices=INT1_SCHEMES,
                       help="int1 grid: ±alpha (sign) or the paper's {-max|w|, 0}")
    group.add_argument("--warm-start", default=DEFAULT_WARM_START,
                       help="initial state for samplers that take one: gptq-restricted-pivot (the default: "
                       "GPTQ-restricted with the inputs in pivot order), gptq-restricted-act (act order: "
                       "decreasing H_jj), gptq-restricted, gptq-pivot, gptq-act, gptq, rtn or none; on a "
                       "rank-deficient H (fewer calibration samples than live inputs) a GPTQ start is also taken "
                       "at a tenth of GPTQ's damping, and each neuron keeps the better")
    add_objective_arguments(group)
    group.add_argument("--retries", type=int, default=None,
                       help="retries of a cloud backend's transient failures (network, timeouts, solver-side), "
                       "with exponential backoff and jitter (default 3)")


def add_objective_arguments(group: argparse._ArgumentGroup) -> None:
    """``--objective`` and ``--inactive-weight`` (:func:`qannealq.weighted.make_objective`)."""
    group.add_argument("--objective", default="preact", choices=OBJECTIVES,
                       help="per-neuron error the QUBOs minimise: the paper's pre-activation error, or relu-aware "
                       "(layers followed by a ReLU weight each sample by whether the float neuron is active)")
    group.add_argument("--inactive-weight", type=float, default=None, metavar="W",
                       help="relu-aware: weight of samples where the float neuron is off, in [0, 1] (default "
                       f"{DEFAULT_INACTIVE_WEIGHT}; 0 ignores them)")
    group.add_argument("--memory-limit", type=float, default=None, metavar="GIB",
                       help=f"relu-aware: GiB a layer's samples and per-neuron H_i may hold (default "
                       f"{DEFAULT_MEMORY_LIMIT / 2 ** 30:g}); matrices beyond it are formed again at each use, which "
                       "is slower, not different")


def memory_limit_bytes(args: argparse.Namespace) -> int | None:
    """``--memory-limit`` GiB in bytes (None when not given)."""
    gib = args.memory_limit
    if gib is None:
        return None
    if not gib > 0 or gib * 2 ** 30 == float("inf"):  # 1e300 GiB is infinite bytes: int() raised OverflowError
        raise InvalidArgumentError(f"--memory-limit={gib:g} must be a positive number of GiB, e.g. 16")
    return max(1, int(gib * 2 ** 30))


def quantize_config(args: argparse.Namespace) -> QuantizeConfig:
    """The validated :class:`QuantizeConfig` of the parsed options (the qubo method's options only with it)."""
    from qannealq.config import QuantizeConfig

    config = QuantizeConfig(bits=tuple(args.bits), methods=tuple(args.methods), backend=args.backend,
                            sampler_options=sampler_options(args.sampler_option), calibration=args.calibration,
                            granularity=args.granularity, int1=args.int1, warm_start=args.warm_start,
                            retries=args.retries, objective=args.objective, inactive_weight=args.inactive_weight,
                            memory_limit=memory_limit_bytes(args))
    check_options_apply(args, config.sampler_options)
    return config


def add_executor_argument(parser: argparse.ArgumentParser, what: str = "per-neuron QUBO solves") -> None:
    """``--executor``: where work runs (:func:`qannealq.executors.make_executor`); the value is the text."""
    parser.add_argument("--executor", default=None, metavar="SPEC",
                        help=f"where the {what} run: serial (default), threads:N, processes:N, or "
                        "dask://HOST:PORT for an existing Dask scheduler (pip install 'qannealq[dask]'); results "
                        "equal the serial run's")


def qpu_budget(text: str) -> float:
    """``--qpu-budget`` seconds (a positive number)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds of QPU access time, e.g. 0.5, got {text!r}") from None


def add_qpu_arguments(parser: argparse.ArgumentParser) -> None:
    """``--dry-run`` and ``--qpu-budget``: the QPU plan before any QPU time is spent (dwave, dwave-mock)."""
    group = parser.add_argument_group("QPU time")
    group.add_argument("--dry-run", action="store_true",
                       help="print the QPU plan (calls, neurons per call, reads, estimated QPU access time per call "
                       "and in total, from the solver's timing model) and stop before any solve (QPU backends: "
                       "dwave, dwave-mock)")
    group.add_argument("--qpu-budget", type=qpu_budget, default=None, metavar="SECONDS",
                       help="refuse the run, before the first QPU call, when its estimated QPU access time exceeds "
                       "SECONDS")
