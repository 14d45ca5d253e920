"""The beam's input order on full-rank first layers: pivot order against V-BLAST's, and the pilot that chooses.

For each dataset's first layer (``benchmarks/frontier.py``'s models and calibration: 1024 images, per-tensor
grid) at each bit width, in one process:

* the beam alone (:func:`qannealq._gptq_beam.beam_search`, at the default's width for the layer and at the
  order pilot's, :data:`qannealq.baselines.ORDER_PILOT_WIDTH`, on the pilot's neurons) in pivot order and in
  V-BLAST order (:func:`qannealq.baselines._blast_factor`): each one's summed start energy ``E(q) − E(w)``,
  the V-BLAST order's against the pivot order's, and which order the pilot chooses;
* ``layer-sa``'s whole solve without a limit (``--effort``, default ``default``), as it now runs (the pilot
  choosing the order) and with the beam held to pivot order, interleaved ``--rounds`` times on fresh copies of
  the problem: the layer error of each and the time (best of the rounds; 2 threads, as the frontier runs).

On a rank-deficient layer (CIFAR-10's first layer) the beam runs in both orders at the damping its pilot chose
and each neuron keeps the lower (:data:`qannealq.baselines.BOTH_ORDERS_WIDTH`): there the whole solve is
compared with pivot order alone (the beam-alone columns are left empty). Takes about 2 min for the three
default datasets, about 5 min more with ``cifar10`` (``--rounds 1``).

With ``--limits`` (in GPTQ times, GPTQ's best of ``--gptq-runs`` on the layer), a second table: the default under
each ``time_limit``, as it now runs (the order pilot where the limit leaves it room,
:data:`qannealq.baselines.ORDER_PILOT_ROOM`; a rank-deficient layer's second beam likewise,
:data:`qannealq.baselines.BOTH_ORDERS_ROOM`) against pivot order forced, ``--rounds`` interleaved rounds, the
medians' errors and times, and in how many of the rounds the V-BLAST order ran. CIFAR-10 under 10, 15, 20 and 30
GPTQ times with 3 rounds: about 12 min.

Run: ``.venv/bin/python benchmarks/beam_order.py --datasets mnist fashion-mnist emnist-letters``;
``.venv/bin/python benchmarks/beam_order.py --datasets cifar10 --rounds 3 --limits 10 15 20 30 --skip-unbounded``
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from unittest import mock

import qannealq  # noqa: F401  (first: it shortens OpenBLAS's spin before numpy loads it, qannealq.BLAS_SPIN)
import numpy as np

from frontier import first_layer, timed  # benchmarks/ is the script's folder
from _threads import pinned  # benchmarks/_threads.py, beside this script
from qannealq import baselines
from qannealq._gptq_beam import beam_search
from qannealq.backends import get_sampler
from qannealq.contract import warm_start_beam


def beam_energies(problem, percdamp: float, ordered: tuple, width: int, rows: np.ndarray) -> float:
    """The summed ``E(q) − E(w)`` of the beam's best on ``rows`` in the order and factor ``ordered``."""
    perm, factor = ordered
    _, score = beam_search(*baselines._beam_arguments(problem, rows, perm, factor, percdamp), width, threads=2)
    return float(score.sum())


def solve(problem, effort: str, pivot_only: bool, limit: float | None = None) -> tuple[float, float, bool]:
    """One ``layer-sa`` solve through the solve loop on a fresh copy (``frontier.timed``), under ``limit``
    seconds (None: unbounded): (layer error, seconds, whether the V-BLAST order ran on the layer)."""
    forced = mock.patch.multiple(baselines, _order_pilot=lambda search, live, percdamp, *a, **k: live[percdamp],
                                 BOTH_ORDERS_WIDTH=1 << 62)
    live = int((~problem.dead).sum())
    blasts = []
    blast = baselines._blast_factor

    def counted(order, *args, **kwargs):  # the layer's V-BLAST factors (not a warm-up's)
        blasts.append(len(order) == live)
        return blast(order, *args, **kwargs)

    with forced if pivot_only else nullcontext(), mock.patch.object(baselines, "_blast_factor", counted):
        result, seconds = timed(problem, "qubo", "layer-sa", 0, effort=effort, num_threads=2, time_limit=limit)
        return float(result.errors.sum()), seconds, any(blasts)


def paired(problem, effort: str, rounds: int, limit: float | None = None) -> dict[bool, list]:
    """``rounds`` interleaved solves as the code now runs (key False) and with pivot order forced (True), each
    :func:`solve`'s (error, seconds, V-BLAST ran)."""
    runs = {False: [], True: []}
    for _ in range(rounds):
        for pivot_only in (False, True):
            runs[pivot_only].append(solve(problem, effort, pivot_only, limit))
    return runs


def limited(label: str, problem, limits: list[float], rounds: int, gptq_runs: int) -> None:
    """The default under each of ``limits`` (GPTQ times), as it now runs and with pivot order forced, one row
    per limit: the medians of ``rounds`` interleaved rounds."""
    gptq = min(timed(problem, "gptq", None, 0)[1] for _ in range(gptq_runs))
    for multiple in limits:
        runs = paired(problem, "default", rounds, multiple * gptq)
        error, pivot_error = (float(np.median([e for e, _, _ in runs[k]])) for k in (False, True))
        seconds, pivot_seconds = (float(np.median([s for _, s, _ in runs[k]])) for k in (False, True))
        print(f"| {label} | {multiple:g}x ({gptq:.3f} s) | {error:.6g} vs {pivot_error:.6g} "
              f"({100 * (error / pivot_error - 1):+.2f} %) | {seconds / gptq:.2f}x vs {pivot_seconds / gptq:.2f}x | "
              f"{sum(b for _, _, b in runs[False])} / {rounds} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist", "emnist-letters"])
    parser.add_argument("--bits", type=int, nargs="+", default=[4, 2])
    parser.add_argument("--effort", default="default", choices=["default", "thorough"])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timed solves of each kind")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--limits", type=float, nargs="*", default=[],
                        help="the default's time limits, in GPTQ times (a second table)")
    parser.add_argument("--gptq-runs", type=int, default=5, help="GPTQ's timed runs (its best sets the limits)")
    parser.add_argument("--skip-unbounded", action="store_true", help="only the time-limited table")
    args = parser.parse_args()
    for name in ("rounds", "gptq_runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if any(not np.isfinite(x) or x <= 0 for x in args.limits):
        parser.error(f"--limits {args.limits}: each limit must be a positive number of GPTQ times")
    if args.skip_unbounded and not args.limits:
        parser.error("--skip-unbounded leaves nothing to run: give --limits too")
    with pinned(2) as threads:
        print(threads, flush=True)
        layers = [(f"{dataset} int{bits} ({problem.num_neurons} x {problem.num_coordinates})", bits, problem)
                  for dataset in args.datasets
                  for bits, problem in first_layer(dataset, args.bits, args.data_dir, 0).items()]
        if not args.skip_unbounded:
            print(f"\n| layer | width | V-BLAST vs pivot (beam alone) | pilot (width "
                  f"{baselines.ORDER_PILOT_WIDTH}, {baselines.PILOT_NEURONS} neurons): V-BLAST vs pivot, choice | "
                  f"{args.effort}: error, pilot-chosen vs pivot | time (s), pilot-chosen vs pivot |\n"
                  "| --- | --- | --- | --- | --- | --- |", flush=True)
        for label, _, problem in [] if args.skip_unbounded else layers:
            unbounded(label, problem, args.effort, args.rounds)
        if args.limits:
            print("\n| layer | limit (GPTQ's time) | default: error, as now vs pivot forced (medians) | "
                  "time in GPTQ times, as now vs pivot | rounds in which the V-BLAST order ran |\n"
                  "| --- | --- | --- | --- | --- |", flush=True)
        for label, _, problem in layers if args.limits else []:
            solve(problem, "default", False, 1.0)  # compiled code loaded, not timed
            limited(label, problem, args.limits, args.rounds, args.gptq_runs)


def unbounded(label: str, problem, effort: str, rounds: int) -> None:
    """The first table's row for one layer: the beam alone in both orders, the pilot's choice, and ``effort``'s
    whole unbounded solve as it now runs against pivot order forced (best time of ``rounds`` interleaved)."""
    percdamp = baselines._beam_damping(problem)  # None: rank-deficient
    width = warm_start_beam(get_sampler("layer-sa"), {"effort": effort}, problem.num_coordinates)
    if percdamp is None:  # both orders at the damping the pilot chose, each neuron's lower
        alone, choice = "—", "—, both orders (rank-deficient)"
    else:
        pivot = baselines._pivot_live_factor(problem.hessian, problem.dead, percdamp)[:2]
        blast = baselines._blast_factor(*pivot, percdamp)
        everyone = np.arange(problem.num_neurons)
        full = [beam_energies(problem, percdamp, o, width, everyone) for o in (pivot, blast)]
        alone = f"{100 * (full[1] / full[0] - 1):+.2f} %"
        pilot = baselines._pilot_neurons(problem.num_neurons)
        narrow = [beam_energies(problem, percdamp, o, baselines.ORDER_PILOT_WIDTH, pilot) for o in (pivot, blast)]
        choice = f"{100 * (narrow[1] / narrow[0] - 1):+.2f} %, " + ("V-BLAST" if narrow[1] < narrow[0] else "pivot")
        if problem.num_neurons <= 2 * baselines.PILOT_NEURONS:
            choice += " (no pilot: too few neurons)"
    solve(problem, effort, False)  # compiled code loaded, not timed
    runs = paired(problem, effort, rounds)
    error, pivot_error = runs[False][0][0], runs[True][0][0]
    seconds, pivot_seconds = (min(s for _, s, _ in runs[k]) for k in (False, True))
    print(f"| {label} | {width} | {alone} | {choice} | {error:.6g} vs {pivot_error:.6g} "
          f"({100 * (error / pivot_error - 1):+.2f} %) | {seconds:.3f} vs {pivot_seconds:.3f} "
          f"({seconds / pivot_seconds:.2f}x) |", flush=True)


if __name__ == "__main__":
    main()
