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

Run: ``.venv/bin/python benchmarks/beam_order.py --datasets mnist fashion-mnist emnist-letters``
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
    dead = problem.dead
    grad = (problem.products(np.where(dead, 0.0, problem.weights)) - problem.stats.cross)[rows][:, perm]
    _, score = beam_search(problem.weights[rows][:, perm], problem.steps[rows][:, perm], problem.base[rows][:, perm],
                           problem.free[rows][:, perm], float(problem.grid.offset), dead[perm], factor,
                           baselines._damping(problem.hessian, dead, percdamp), grad, width, threads=2)
    return float(score.sum())


def solve(problem, effort: str, pivot_only: bool) -> tuple[float, float]:
    """One unbounded ``layer-sa`` solve through the solve loop on a fresh copy (``frontier.timed``): (layer
    error, seconds)."""
    forced = mock.patch.multiple(baselines, _order_pilot=lambda search, live, percdamp, *a, **k: live[percdamp],
                                 BOTH_ORDERS_WIDTH=1 << 62)
    with forced if pivot_only else nullcontext():
        result, seconds = timed(problem, "qubo", "layer-sa", 0, effort=effort, num_threads=2)
        return float(result.errors.sum()), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist", "emnist-letters"])
    parser.add_argument("--bits", type=int, nargs="+", default=[4, 2])
    parser.add_argument("--effort", default="default", choices=["default", "thorough"])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timed solves of each kind")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    with pinned(2) as threads:
        print(f"{threads}\n\n| layer | width | V-BLAST vs pivot (beam alone) | pilot (width "
              f"{baselines.ORDER_PILOT_WIDTH}, {baselines.PILOT_NEURONS} neurons): V-BLAST vs pivot, choice | "
              f"{args.effort}: error, pilot-chosen vs pivot | time (s), pilot-chosen vs pivot |\n"
              "| --- | --- | --- | --- | --- | --- |", flush=True)
        for dataset in args.datasets:
            for bits, problem in first_layer(dataset, args.bits, args.data_dir, 0).items():
                label = f"{dataset} int{bits} ({problem.num_neurons} x {problem.num_coordinates})"
                deficient = baselines.rank_deficient(problem)
                percdamp = (baselines.FULL_RANK_BEAM_PERCDAMP if bits >= baselines.FULL_RANK_BEAM_BITS
                            else baselines.GPTQ_PERCDAMP)
                width = warm_start_beam(get_sampler("layer-sa"), {"effort": args.effort}, problem.num_coordinates)
                if deficient:  # both orders at the damping the pilot chose, each neuron's lower
                    alone, choice = "—", "—, both orders (rank-deficient)"
                else:
                    pivot = baselines._pivot_live_factor(problem.hessian, problem.dead, percdamp)[:2]
                    blast = baselines._blast_factor(*pivot, percdamp)
                    everyone = np.arange(problem.num_neurons)
                    full = [beam_energies(problem, percdamp, o, width, everyone) for o in (pivot, blast)]
                    alone = f"{100 * (full[1] / full[0] - 1):+.2f} %"
                    pilot = baselines._pilot_neurons(problem.num_neurons)
                    narrow = [beam_energies(problem, percdamp, o, baselines.ORDER_PILOT_WIDTH, pilot)
                              for o in (pivot, blast)]
                    choice = (f"{100 * (narrow[1] / narrow[0] - 1):+.2f} %, "
                              + ("V-BLAST" if narrow[1] < narrow[0] else "pivot"))
                    if problem.num_neurons <= 2 * baselines.PILOT_NEURONS:
                        choice += " (no pilot: too few neurons)"
                solve(problem, args.effort, False)  # compiled code loaded, not timed
                runs = {False: [], True: []}
                for _ in range(args.rounds):
                    for pivot_only in (False, True):
                        runs[pivot_only].append(solve(problem, args.effort, pivot_only))
                error, pivot_error = runs[False][0][0], runs[True][0][0]
                seconds, pivot_seconds = (min(s for _, s in runs[k]) for k in (False, True))
                print(f"| {label} | {width} | {alone} | {choice} | {error:.6g} vs {pivot_error:.6g} "
                      f"({100 * (error / pivot_error - 1):+.2f} %) | {seconds:.3f} vs {pivot_seconds:.3f} "
                      f"({seconds / pivot_seconds:.2f}x) |", flush=True)


if __name__ == "__main__":
    main()
