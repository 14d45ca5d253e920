"""How wide ``layer-sa``'s warm-start beam should be: start and end error against time, per effort.

On the first layer of the MNIST (784-128-10) and, with ``--datasets cifar10``, CIFAR-10 (3072-512-10) MLPs (the
models and 1024-image float calibration of ``benchmarks/frontier.py``), at int4 and int2, every run goes through
:func:`qannealq.solve.quantize_layer` in this one process with ``layer-sa`` at each ``--efforts`` level and
``warm_start_beam`` = each value of ``--widths`` (0: GPTQ-restricted in pivot order alone, the start before the
beam; the width of the beam's last block), each ``--growths`` (``warm_start_growth``: the last block's width over
the first's; ``preset``: the effort's), each ``--reads``, ``--sweeps``, ``--recombine`` (rounds of recombination,
the population of wide layers) and
``--cycles`` (populations in a row), over ``--seeds`` seeds of the anneal (the beam has no randomness). It prints,
side by side, the warm start's error and the error the anneal ends at, both above the best-known energy that
``benchmarks/frontier.py`` stored in ``--frontier`` (its JSON of the same problem: the script checks the
fingerprint), and the run's time in GPTQ (index order) times, GPTQ timed in the same process (best of 3 on each
of 1 and 2 BLAS threads: its fastest, as in the frontier).

Run: ``.venv/bin/python benchmarks/warm_beam.py`` (about 2 min on MNIST; CIFAR-10 about 20 min).
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import qannealq  # noqa: F401  (first: it shortens OpenBLAS's spin before numpy loads it, qannealq.BLAS_SPIN)
import numpy as np

from frontier import first_layer, fingerprint, timed  # benchmarks/ is the script's folder
from _threads import count, pinned  # benchmarks/_threads.py, beside this script


def gptq_seconds(problem, blas: int) -> float:
    """GPTQ's wall time on ``blas`` BLAS threads (the frontier's reference is its fastest of 1 and 2)."""
    with pinned(blas, torch_threads=blas):
        return timed(problem, "gptq", None, 0)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="mnist")
    parser.add_argument("--bits", type=lambda t: [int(b) for b in t.split(",")], default=[4, 2])
    parser.add_argument("--widths", type=lambda t: [int(p) for p in t.split(",")],
                        default=[0, 8, 32, 64, 128, 157, 256, 512])
    parser.add_argument("--efforts", type=lambda t: t.split(","), default=["fast", "default"])
    parser.add_argument("--sweeps", type=lambda t: [None if p == "preset" else int(p) for p in t.split(",")],
                        default=[None], help="num_sweeps of the anneal ('preset': the effort's), e.g. preset,8,16")
    parser.add_argument("--reads", type=lambda t: [None if p == "preset" else int(p) for p in t.split(",")],
                        default=[None], help="num_reads of the anneal ('preset': the effort's), e.g. preset,1,8")
    parser.add_argument("--recombine", type=lambda t: [None if p == "preset" else int(p) for p in t.split(",")],
                        default=[None], help="rounds of recombination ('preset': the effort's), e.g. preset,0")
    parser.add_argument("--growths", type=lambda t: [None if p == "preset" else float(p) for p in t.split(",")],
                        default=[None], help="warm_start_growth values (preset: the effort's)")
    parser.add_argument("--cycles", type=lambda t: [None if p == "preset" else int(p) for p in t.split(",")],
                        default=[None], help="populations in a row ('preset': the effort's), e.g. preset,1")
    parser.add_argument("--seeds", type=count, default=2, help="seeds of the anneal per point (>= 1)")
    parser.add_argument("--threads", type=count, default=2, help="layer-sa threads (the beam runs one per CPU)")
    parser.add_argument("--blas-threads", type=count, default=1, help="BLAS threads of layer-sa's runs (GPTQ is "
                        "timed at its fastest of 1 and 2)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--frontier", type=Path, default=Path("runs/frontier"),
                        help="folder of benchmarks/frontier.py's JSON (the best-known energies)")
    args = parser.parse_args()
    missing = [f"{d} int{b}" for d in args.datasets.split(",") for b in args.bits
               if not (args.frontier / f"frontier_{d}_int{b}.json").is_file()]
    if missing:  # the best-known energies every row is measured against
        parser.error(f"--frontier {args.frontier}: no frontier_<dataset>_int<bits>.json for {', '.join(missing)}; run "
                     f"benchmarks/frontier.py --datasets {args.datasets} --bits {','.join(map(str, args.bits))} "
                     f"--out {args.frontier} first (or give --frontier its folder)")
    with pinned(args.blas_threads, torch_threads=args.blas_threads) as threads:
        print(f"threads: layer-sa {args.threads}; {threads}")
        for dataset in args.datasets.split(","):
            problems = first_layer(dataset, args.bits, args.data_dir, 0)
            for bits, problem in problems.items():
                stored = json.loads((args.frontier / f"frontier_{dataset}_int{bits}.json").read_text())
                if stored["problem"] != fingerprint(problem):
                    raise SystemExit(f"{dataset} int{bits}: the stored frontier is of another problem; rerun "
                                     "benchmarks/frontier.py first")
                best = stored["best_known"]
                gptq = min(gptq_seconds(problem, blas) for blas in (1, 2) for _ in range(3))  # its fastest here
                print(f"\n### {dataset} first layer, int{bits}: best known {best:.6g}, GPTQ {gptq:.3g} s (its "
                      "fastest of 1 and 2 BLAS threads)")
                print("| beam | growth | effort | reads | sweeps | recombination rounds | cycles | "
                      "warm start above best | anneal ends above best | time / GPTQ |")
                print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
                for width, growth, level, reads, sweeps, rounds, cycles in itertools.product(
                        args.widths, args.growths, args.efforts, args.reads, args.sweeps, args.recombine,
                        args.cycles):
                    starts, ends, seconds = [], [], []
                    for seed in range(args.seeds):
                        # frontier.timed: a fresh copy of the problem (no products remembered from an earlier
                        # seed) and the warm-up left out (once per new set of options: it was in seed 0's time)
                        result, dt = timed(problem, "qubo", "layer-sa", seed, effort=level, warm_start_beam=width,
                                           warm_start_growth=growth, num_reads=reads, num_sweeps=sweeps,
                                           recombine=rounds, cycles=cycles, num_threads=args.threads, device="cpu")
                        starts.append(result.warm_start_errors.sum() / best - 1)
                        ends.append(result.errors.sum() / best - 1)
                        seconds.append(dt)
                    print(f"| {width} | {growth or 'preset'} | {level} | {reads or 'preset'} | {sweeps or 'preset'} | "
                          f"{'preset' if rounds is None else rounds} | {cycles or 'preset'} | "
                          f"{100 * np.mean(starts):.2f} % | "
                          f"{100 * np.mean(ends):.2f} ± {100 * np.std(ends):.2f} % | "
                          f"{np.median(seconds) / gptq:.2f} |", flush=True)

if __name__ == "__main__":
    main()
