"""Run samplers on the same neuron QUBOs and compare solution quality and time-to-solution (TTS99).

Per backend x neuron x repeat: every read's energy, the timing and the seed (compare.csv, compare.json);
the reference optimum of each neuron (proven by exact or Gurobi, else best-known); residual gaps, success
probabilities and TTS99 in solver and wall time; a summary table and plots (gap_vs_tts.png,
success_probability.png, energy_distribution.png; scaling.png where the neurons come from several layers or
models). Backends with a capacity limit solve larger neurons by
capacity-aware decomposition; backends that are not ready are skipped with their reason.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Mapping

from qannealq._defaults import DEFAULT_NEURONS, EVERY, GRANULARITIES, INT1_SCHEMES, OFFLINE_BACKENDS
from qannealq.cli._args import (MODEL_OPTIONS, add_model_arguments, add_qpu_arguments, given_options, model_config,
                                option, str_list)
from qannealq.errors import InvalidArgumentError

HELP = "compare backends on the same neuron QUBOs: residual gap, success probability, TTS99, plots"


def backend_option(text: str) -> tuple[str, str, object]:
    """``BACKEND:KEY=VALUE`` -> ``(backend, key, value)`` (the value read as a Python literal when it is one);
    ``KEY=VALUE`` -> ``("*", key, value)``, for every compared backend that takes the key."""
    if ":" not in text.partition("=")[0]:
        return (EVERY, *option(text))
    backend, sep, rest = text.partition(":")
    if not backend:
        raise argparse.ArgumentTypeError(f"expected BACKEND:KEY=VALUE (e.g. qaoa:maxiter=20), got {text!r}")
    key, value = option(rest)
    return backend, key, value


def capacity_option(text: str) -> tuple[str, int]:
    """``BACKEND=N`` -> ``(backend, N)``."""
    backend, sep, value = text.partition("=")
    try:
        return backend, int(value) if sep and backend else int("x")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected BACKEND=N (e.g. qaoa=16), got {text!r}") from None


def add_selection_arguments(parser: argparse.ArgumentParser, neurons: str | None = DEFAULT_NEURONS) -> None:
    """The model (or instances folder), layer, neurons, bits and grid options shared with ``export``."""
    add_model_arguments(parser)
    group = parser.add_argument_group("neurons")
    group.add_argument("--layer", default="0", help="Linear layer: position (0 = first, -1 = last) or module name")
    group.add_argument("--neurons", default=neurons, help="neurons of that layer: 0:16, 0:16:4, 3 or 0,4,7; a "
                       "range past the layer's end is refused (default " + (f"{neurons}, fewer on a smaller layer)"
                                                                            if neurons else "all)"))
    group.add_argument("--bits", type=int, default=2, help="grid bit width (1..8)")
    group.add_argument("--granularity", default="tensor", choices=GRANULARITIES)
    group.add_argument("--int1", default="sign", choices=INT1_SCHEMES)


def layer(text: str | int) -> int | str:
    """``--layer``: a position (an int) or a module name."""
    return int(text) if str(text).lstrip("-").isdigit() else text


#: The options that choose a model's neurons (:func:`add_selection_arguments`; ``data_dir`` apart).
CHOOSING = tuple(name for name in (*MODEL_OPTIONS, "layer", "bits", "neurons", "granularity", "int1")
                 if name != "data_dir")


def check_unused_selection(args: argparse.Namespace, instead: str, also: tuple[str, ...] = ()) -> None:
    """Refuse the model and neuron options given on the command line where ``instead`` (``--instances``,
    ``--library``) chooses the neurons: they were ignored without a word. ``also``: further options it makes
    pointless (``data_dir`` beside ``--instances``)."""
    explicit = getattr(args, "explicit", None) or ()
    given = [f"--{name.replace('_', '-')}" for name in (*CHOOSING, *also) if name in explicit]
    if given:
        raise InvalidArgumentError(f"{', '.join(given)}: {instead} chooses the neurons, so these are not used; "
                                   f"leave them out, or leave out {instead.split()[0]} to choose a model's neurons")


def selection(args: argparse.Namespace, instances: Path | None = None):
    from qannealq._compare_command import Selection

    return Selection(model_config(args), layer(args.layer), args.bits, args.neurons, args.granularity, args.int1,
                     instances)


def add_reference_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reference optimum")
    group.add_argument("--proof-time", type=float, default=10.0,
                       help="seconds Gurobi may take per neuron above 24 variables to prove the optimum (0: skip)")
    group.add_argument("--long-reads", type=int, default=64, help="reads of the long layer-sa runs")
    group.add_argument("--long-sweeps", type=int, default=2000, help="sweeps of the long layer-sa runs")


#: The options of :func:`add_reference_arguments`, and the ``ReferenceOptions`` field each sets.
_REFERENCE = {"proof_time": "proof_seconds", "long_reads": "long_reads", "long_sweeps": "long_sweeps"}


def reference_options(args: argparse.Namespace):
    from qannealq._compare_reference import ReferenceOptions

    return ReferenceOptions(**{field: getattr(args, name) for name, field in _REFERENCE.items()})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_selection_arguments(parser)
    parser.add_argument("--instances", type=Path, default=None, metavar="DIR",
                        help="compare on instances exported by `qannealq export` instead of a model")
    group = parser.add_argument_group("comparison")
    group.add_argument("--backends", type=str_list, default=list(OFFLINE_BACKENDS),
                       help=f"comma list (default: every offline backend, {','.join(OFFLINE_BACKENDS)})")
    group.add_argument("--reads", type=int, default=10, help="num_reads per call (exact and gurobi: 1)")
    group.add_argument("--repeats", type=int, default=3, help="calls per backend and neuron, seeds differ")
    group.add_argument("--eps", type=float, default=1e-9, help="success: E <= E_ref + eps |E_ref| (relative)")
    group.add_argument("--loose-eps", type=float, default=None,
                       help="a second, looser success target, at least --eps (default 0.01, or --eps if larger)")
    group.add_argument("--solver-seed", type=int, default=0, help="base seed of every call")
    group.add_argument("--warm-start", default="gptq-restricted", choices=("gptq-restricted", "none"),
                       help="initial state given to backends that take one")
    group.add_argument("--sampler-option", type=backend_option, action="append", default=[],
                       dest="backend_option", metavar="[BACKEND:]KEY=VALUE",
                       help="passed to that backend's calls, e.g. qaoa:maxiter=20, or without BACKEND: to every "
                       "compared backend that takes KEY, e.g. num_sweeps=100 (repeatable)")
    group.add_argument("--capacity", type=capacity_option, action="append", default=[], metavar="BACKEND=N",
                       help="decomposition sub-problem size for a backend (default: its capacity; a backend "
                            "without one is decomposed too)")
    group.add_argument("--max-calls", type=int, default=100, help="decomposition: backend calls per neuron")
    add_reference_arguments(parser)
    add_qpu_arguments(parser)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, default=None, help="results folder (default: a new folder in runs/)")
    where.add_argument("--resume", type=Path, default=None, metavar="DIR",
                       help="continue the comparison stored in DIR with its stored options (an option given too "
                       "must equal the stored one; a secret sampler option must be given again); finished calls "
                       "are kept, not recomputed")


#: The options of the comparison, and the ``CompareSettings`` field each sets.
_SETTINGS = {"reads": "reads", "repeats": "repeats", "eps": "eps", "loose_eps": "loose_eps", "solver_seed": "seed",
             "warm_start": "warm_start", "backend_option": "sampler_options", "capacity": "capacity",
             "max_calls": "max_calls"}
_SELECTION = ("layer", "bits", "neurons", "granularity", "int1", "instances")


def settings_fields(options: Mapping[str, Any]) -> dict:
    """The ``CompareSettings`` fields set by those of the parsed ``options`` (option name -> value) it holds;
    ``reference`` is a dict of ``ReferenceOptions`` fields, ``sampler_options`` a dict per backend."""
    out = {field: options[name] for name, field in _SETTINGS.items() if name in options}
    if "warm_start" in out:
        out["warm_start"] = out["warm_start"] != "none"
    if "capacity" in out:
        out["capacity"] = dict(out["capacity"])
    if "sampler_options" in out:
        grouped: dict[str, dict] = {}
        for backend, key, value in out["sampler_options"]:
            grouped.setdefault(backend, {})[key] = value
        out["sampler_options"] = grouped
    reference = {field: options[name] for name, field in _REFERENCE.items() if name in options}
    return {**out, "reference": reference} if reference else out


def _resumed(args: argparse.Namespace, **options: Any):
    """``--resume DIR``: the stored comparison's options, with those given on the command line in their place
    (a given option that differs from the stored one is refused, with the differences listed)."""
    from qannealq._compare_command import CompareJob
    from qannealq.store import ResultStore

    chosen = {**given_options(args, _SELECTION), "model": given_options(args, MODEL_OPTIONS)}
    if "layer" in chosen:
        chosen["layer"] = layer(chosen["layer"])
    given = given_options(args, ("backends", *_SETTINGS, *_REFERENCE))
    return CompareJob.from_stored(ResultStore.stored_settings(args.resume, "compare"), args.resume, chosen,
                                  given.pop("backends", None), settings_fields(given), **options)


def main(args: argparse.Namespace) -> int:
    from qannealq._compare_command import CompareJob, run_compare
    from qannealq.compare import CompareSettings
    from qannealq.cli._console import ConsoleReporter

    options = {"dry_run": args.dry_run, "qpu_budget": args.qpu_budget}
    if args.resume is not None:
        job = _resumed(args, **options)
    else:
        if args.instances is not None:
            check_unused_selection(args, f"--instances {args.instances}", ("data_dir",))
        fields = settings_fields(vars(args))
        fields["reference"] = reference_options(args)
        job = CompareJob(selection(args, args.instances), tuple(args.backends), CompareSettings(**fields), args.out,
                         **options)
    run_compare(job, ConsoleReporter())
    return 0
