"""QPU calls and estimated QPU access time per layer: one neuron per call versus many per call (parallel).

For the digits 4x4 model (16-16-10), the digits 8x8 model (64-32-10) and the MNIST model's first layer
(784 -> 128), all from :mod:`qannealq.experiment` (seed 0, float calibration, per-tensor grid), this script
plans every layer with ``dwave-mock`` (Pegasus P16, the Advantage timing model of dwave-cloud-client's mocks,
the clique embeddings of :mod:`qannealq.backends._dwave_cliques`) at ``--bits`` and ``--reads`` reads per call,
once with ``parallel=False`` (one neuron per call) and once with many neurons per call, and prints calls and
estimated QPU access time side by side with their ratio. No QPU is sampled: this is what ``qannealq run
--dry-run`` prints, for both settings.

A layer whose neurons have more variables than the largest clique (180 on P16) does not fit a clique: MNIST's
first layer. A run decomposes such neurons (``backends/decompose.py``: several sweeps of sub-problems, one
per call), which a plan cannot count in advance. For it the script plans one *sweep of a decomposition*: each
neuron split into sub-problems of at most ``--sub-size`` variables (each variable in one sub-problem), the
sub-problems planned like neurons; batching sub-problems of many neurons per call is not built, so the
parallel column is what such batching would save per sweep. Run: ``.venv/bin/python benchmarks/qpu_plan.py`` (MNIST needs ``mnist.npz`` in
``--data-dir``; the model is trained once and cached).
"""

from __future__ import annotations

import argparse
import math
import time
from types import SimpleNamespace

import qannealq  # noqa: F401  (first: it shortens OpenBLAS's spin before numpy loads it, qannealq.BLAS_SPIN)
import numpy as np

from qannealq.backends import get_sampler
from qannealq.experiment import formulate, prepare
from _threads import count, pinned  # benchmarks/_threads.py, beside this script

MODELS = (("digits 4x4", {"dataset": "digits", "input_size": 4}, None),
          ("digits 8x8", {"dataset": "digits"}, None),
          ("MNIST", {"dataset": "mnist"}, 1))


def sweep_of(problem, sub_size: int) -> SimpleNamespace:
    """One decomposition sweep of ``problem`` as a layer of sub-problems (each neuron cut into equal parts)."""
    sizes = [part for size in problem.free.sum(axis=1) if size
             for part in np.diff(np.linspace(0, size, math.ceil(size / sub_size) + 1).round().astype(int))]
    free = np.zeros((len(sizes), max(sizes)), dtype=bool)
    for row, size in enumerate(sizes):
        free[row, :size] = True
    return SimpleNamespace(name=f"{problem.name}/sweep", grid=problem.grid, free=free)


def plan_rows(name: str, problems, sampler, reads: int, sub_size: int) -> list[tuple]:
    rows = []
    for problem in problems:
        single = sampler.plan([problem], warm_start=True, num_reads=reads, parallel=False).layers[0]
        layer = problem if not single.decomposed else sweep_of(problem, sub_size)
        if single.decomposed:
            single = sampler.plan([layer], warm_start=True, num_reads=reads, parallel=False).layers[0]
        many = sampler.plan([layer], warm_start=True, num_reads=reads).layers[0]
        rows.append((name, layer.name, problem.free.shape[0], int(problem.free.sum(axis=1).max()), single, many))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--reads", type=count, default=100, help="reads per call")
    parser.add_argument("--sub-size", type=count, default=65,
                        help="MNIST: variables per decomposition sub-problem (at most the largest clique)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", type=count, default=1)
    args = parser.parse_args()
    with pinned(args.threads) as threads:
        print(f"threads: {threads}")
        sampler = get_sampler("dwave-mock")
        if args.sub_size > sampler.max_variables:  # no call fits it: the sweep's plan had none, its ratio 0/0
            parser.error(f"--sub-size {args.sub_size}: a sub-problem must fit the largest clique, at most "
                         f"{sampler.max_variables} variables")
        start = time.perf_counter()
        print(f"solver: {sampler.solver}, largest clique {sampler.max_variables}; int{args.bits}, {args.reads} reads "
              "per call, reverse anneal from the warm start (the default)")
        rows = []
        for name, options, layers in MODELS:
            exp = prepare(data_dir=args.data_dir, seed=0, **options)
            problems = formulate(exp, args.bits)[:layers]
            rows += plan_rows(f"{name} {exp.sizes}", problems, sampler, args.reads, args.sub_size)
        print(f"(planned in {time.perf_counter() - start:.1f} s, clique embedding searches included)\n")
    head = (f"{'model':<28}{'layer':<10}{'neurons':>8}{'vars':>6}{'calls 1/call':>13}{'est. s':>9}"
            f"{'calls parallel':>15}{'per call':>9}{'est. s':>9}{'time ratio':>11}")
    print(head + "\n" + "-" * len(head))
    for model, layer, neurons, size, single, many in rows:
        ratio = single.estimate_us / many.estimate_us
        print(f"{model:<28}{layer:<10}{neurons:>8}{size:>6}{len(single.calls):>13}{single.estimate_us / 1e6:>9.3f}"
              f"{len(many.calls):>15}{many.per_call:>9}{many.estimate_us / 1e6:>9.3f}{ratio:>11.1f}")
    print("\n'/sweep': the layer does not fit a clique; one decomposition sweep (sub-problems of at most "
          f"{args.sub_size} variables, each variable once) planned as neurons.")


if __name__ == "__main__":
    main()
