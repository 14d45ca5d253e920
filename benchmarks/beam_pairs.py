"""Two inputs a step against one: the beam's time and start energy at each width, side by side in one run.

Runs :func:`qannealq._gptq_beam.beam_search` on the first layer of ``benchmarks/frontier.py``'s model at each
width, with ``pairs`` (two free inputs a step where the beam is full: each survivor's four grandchildren, the
``width`` lowest kept; the default) and without (one input a step, the plain K-best), the two alternating in
each round so that the machine's load falls on both alike. It prints each one's time (the fastest and the
median of ``--repeats`` runs, on ``--threads`` threads, BLAS on 1), its start energy (the beam's best per
neuron, before any anneal) and its error above the best-known energy (``--best-known``, or that of
``benchmarks/frontier.py``'s JSON in ``--frontier``; without either the energies alone), and the ratio of the
times.

Run: ``.venv/bin/python benchmarks/beam_pairs.py --dataset mnist --bits 4 --order blast 32 64 128 196``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import qannealq  # noqa: F401  (first: it shortens OpenBLAS's spin before numpy loads it, qannealq.BLAS_SPIN)
import numpy as np

from frontier import first_layer, subset_reference  # benchmarks/ is the script's folder
from _threads import pinned  # benchmarks/_threads.py, beside this script
from qannealq import baselines
from qannealq._gptq_beam import beam_search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("widths", nargs="+", type=int, help="beam widths (survivors per neuron)")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--neurons", type=int, default=0, help="neurons spread over the layer (0: all)")
    parser.add_argument("--order", choices=("pivot", "blast"), default="pivot",
                        help="the beam's input order: pivot (default) or V-BLAST (the default's on MNIST's first "
                             "layer)")
    parser.add_argument("--percdamp", type=float, default=None,
                        help="default: the warm start's beam's (0.001 on a rank-deficient H, 0.003 on a full-rank one "
                             "from int4 on, else GPTQ's 0.01)")
    parser.add_argument("--threads", type=int, default=2, help="threads of the beam (default 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each per width (default 5)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--frontier", type=Path, default=Path("runs/frontier"))
    parser.add_argument("--best-known", type=float, default=None,
                        help="the layer's best-known energy (default: the frontier run's, where its JSON is there)")
    args = parser.parse_args()
    for name, value in (("widths", min(args.widths)), ("--threads", args.threads), ("--repeats", args.repeats)):
        if value < 1:
            parser.error(f"{name} must be >= 1 (got {value})")
    with pinned(1, torch_threads=1) as threads:
        print(f"{threads}; beam threads {args.threads}")
        problem = first_layer(args.dataset, [args.bits], args.data_dir, 0)[args.bits]
        n, m = problem.weights.shape
        # the warm start's beam's damping (a rank-deficient layer's lower one)
        percdamp = args.percdamp or baselines._beam_damping(problem) or baselines.RANK_DEFICIENT_PERCDAMP
        rows = np.arange(n) if not args.neurons else np.unique(np.linspace(0, n - 1, args.neurons).round()
                                                                 .astype(np.int64))
        stored = args.frontier / f"frontier_{args.dataset}_int{args.bits}.json"
        if args.best_known and len(rows) < n:
            parser.error("--best-known is the whole layer's: give it without --neurons (a subset's reference is "
                         "its own neurons' bests, read from the frontier run's JSON)")
        reference = args.best_known or subset_reference(stored, rows, n)
        dead = problem.dead
        perm, factor = baselines._pivot_live_factor(problem.hessian, dead, percdamp)[:2]  # the live inputs alone
        if args.order == "blast":
            perm, factor = baselines._blast_factor(perm, factor, percdamp)
        arrays = baselines._beam_arguments(problem, rows, perm, factor, percdamp)
        floor = problem.errors(np.where(dead, 0.0, problem.weights))[rows].sum()
        print(f"\n{args.dataset} first layer int{args.bits}, {len(rows)} neurons x {perm.size} live inputs "
              f"({args.order} order, damping {percdamp})\n\n"
              "| width | one a step: time (s), fastest / median | above best known | pairs: time (s) | "
              "above best known | time, pairs / one |\n| --- | --- | --- | --- | --- | --- |")
        for width in args.widths:
            seconds: dict[bool, list[float]] = {False: [], True: []}
            energy = {}
            for pairs in (False, True):
                beam_search(*arrays, width, threads=args.threads, pairs=pairs)  # compiled, warm
            for _ in range(args.repeats):
                for pairs in (False, True):
                    t0 = time.perf_counter()
                    _, score = beam_search(*arrays, width, threads=args.threads, pairs=pairs)
                    seconds[pairs].append(time.perf_counter() - t0)
                    energy[pairs] = floor + score.sum()

            def above(pairs: bool) -> str:
                return f"{100 * (energy[pairs] / reference - 1):.2f} %" if reference else f"{energy[pairs]:.6g}"

            cells = [f"{min(seconds[p]):.3f} / {np.median(seconds[p]):.3f} | {above(p)}" for p in (False, True)]
            ratio = min(seconds[True]) / min(seconds[False])
            print(f"| {width} | {cells[0]} | {cells[1]} | {ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
