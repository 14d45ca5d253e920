"""Does a beam whose width changes along pivot order beat a constant width for the same time? (start energies)

Runs :func:`qannealq._gptq_beam.beam_search` on the first layer of ``benchmarks/frontier.py``'s model at each
schedule: ``K`` (a constant width) or ``K:G`` (``growth`` G: the width in the last block K, in the first K / G,
geometric in between; G < 1 narrows). It prints each schedule's time (best of ``--repeats``, on ``--threads``
threads, BLAS on 1), its start energy (the beam's best per neuron, before any anneal) and its error above the
best-known energy of ``benchmarks/frontier.py`` (its JSON in ``--frontier``; without it the energies alone).

Run: ``.venv/bin/python benchmarks/beam_schedule.py --dataset mnist --bits 4 64 96 128 384:64 32:0.125``
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
from qannealq._gptq_beam import beam_search, beam_widths, check_growth
from qannealq.checks import check_positive


def schedule(text: str) -> tuple[str, int, float]:
    """``"384:64"`` -> ``("384:64", 384, 64.0)``, ``"64"`` -> ``("64", 64, 1.0)``: a width and a growth as the beam
    takes them (the library's checks: an InvalidArgumentError is a ValueError)."""
    width, _, growth = text.partition(":")
    try:
        parsed = check_positive("width", int(width)), float(growth or 1.0)
        check_growth(parsed[1])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give K (a constant width, a whole number >= 1) or K:G (growth G > 0: the width from K / G in "
            "the first block to K in the last), e.g. 384:64") from None
    return (text, *parsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("schedules", nargs="+", type=schedule,
                        help="K (a constant width) or K:G (growth G from K / G to K)")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--neurons", type=int, default=0, help="neurons spread over the layer (0: all)")
    parser.add_argument("--percdamp", type=float, default=None,
                        help="default: 0.001 on a rank-deficient H, else GPTQ's 0.01 (those of the runs in "
                             "docs/layer-sa.md; the warm start's beam now runs at 0.003 from int4 on a full-rank H, "
                             "baselines._beam_damping)")
    parser.add_argument("--threads", type=int, default=1, help="threads of the beam (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per schedule (best kept)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--frontier", type=Path, default=Path("runs/frontier"))
    args = parser.parse_args()
    for name, value, least in (("--threads", args.threads, 1), ("--repeats", args.repeats, 1),
                               ("--neurons", args.neurons, 0)):  # 0 threads ran every core's, printed as 0
        if value < least:
            parser.error(f"{name} must be >= {least} (got {value})")
    with pinned(1, torch_threads=1) as threads:
        print(f"{threads}; beam threads {args.threads}")
        problem = first_layer(args.dataset, [args.bits], args.data_dir, 0)[args.bits]
        n, m = problem.weights.shape
        percdamp = args.percdamp or (baselines.RANK_DEFICIENT_PERCDAMP if baselines.rank_deficient(problem)
                                     else baselines.GPTQ_PERCDAMP)
        rows = np.arange(n) if not args.neurons else np.unique(np.linspace(0, n - 1, args.neurons).round()
                                                                 .astype(np.int64))
        stored = args.frontier / f"frontier_{args.dataset}_int{args.bits}.json"
        reference = subset_reference(stored, rows, n)
        dead = problem.dead
        perm, factor = baselines._ordered_factor(problem.hessian, dead, percdamp, "pivot",
                                                 baselines._inverse_cholesky)
        arrays = baselines._beam_arguments(problem, rows, perm, factor, percdamp)
        floor = problem.errors(np.where(dead, 0.0, problem.weights))[rows].sum()
        print(f"\n{args.dataset} first layer int{args.bits}, {len(rows)} neurons x {m} inputs\n\n"
              "| schedule | widths (first, mean, last) | time (s) | start energy | above best known |\n"
              "| --- | --- | --- | --- | --- |")
        for spec, width, growth in args.schedules:
            beam_search(*arrays, width, threads=args.threads, growth=growth)  # compiled, warm
            seconds = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                _, score = beam_search(*arrays, width, threads=args.threads, growth=growth)
                seconds.append(time.perf_counter() - t0)
            widths = beam_widths(width, growth, m)
            energy = floor + score.sum()
            above = f"{100 * (energy / reference - 1):.2f} %" if reference else "(no frontier run)"
            print(f"| {spec} | {widths[0]}, {widths.mean():.0f}, {widths[-1]} | {min(seconds):.3f} | {energy:.6g} | "
                  f"{above} |", flush=True)


if __name__ == "__main__":
    main()
