"""Many neurons per QPU call versus one, on the mock QPU with the same reads: quality, calls, QPU time.

For every layer of the digits 4x4 (16-16-10) and 8x8 (64-32-10) models at ``--bits``, ``dwave-mock``
(Pegasus P16) solves the layer three ways, over ``--seeds`` seeds, with ``--reads`` reads per call:

* ``one/call``: ``parallel=False``, one neuron per call (the per-neuron path), forward anneal, no warm start;
* ``parallel``: many neurons per call on disjoint clique embeddings, forward anneal, no warm start;
* ``parallel+RA``: many per call, reverse anneal from the GPTQ-restricted warm start (the default run).

It prints per model and bit width: the layer error (sum of neuron errors, mean over seeds), the mean energy of
all reads (summed over neurons), the mean chain-break fraction, the QPU calls and the modelled QPU access
time (the mock reports the solver's timing model for the problems it was sent), with parallel/one ratios.
The mock anneals each neuron's piece of a call on its own (:mod:`qannealq.backends._dwave_mock`), so the
ratios show what the code path (embeddings, scaling, unembedding) costs in quality, not QPU physics.
Run: ``.venv/bin/python benchmarks/qpu_quality.py``.
"""

from __future__ import annotations

import argparse

import qannealq  # noqa: F401  (first: it shortens OpenBLAS's spin before numpy loads it, qannealq.BLAS_SPIN)
import numpy as np

from qannealq.backends import get_sampler
from qannealq.experiment import formulate, prepare
from qannealq.metrics import read_energies
from qannealq.solve import quantize_layer
from _threads import count, pinned, scale  # benchmarks/_threads.py, beside this script

MODELS = (("digits 4x4", {"input_size": 4}), ("digits 8x8", {}))
WAYS = (("one/call", {"parallel": False}, None), ("parallel", {}, None), ("parallel+RA", {}, "gptq-restricted"))


def run(problems, sampler, warm, reads: int, seeds: int, **options) -> dict[str, float]:
    """Layer error, mean read energy, chain breaks, calls and QPU seconds, summed over layers, mean over seeds."""
    totals = {"error": 0.0, "reads": 0.0, "breaks": [], "calls": 0, "qpu_s": 0.0, "warm": 0.0}
    if not warm and sampler.parallel:
        options["anneal"] = "forward"
    for seed in range(seeds):
        for problem in problems:
            result = quantize_layer(problem, "qubo", sampler, "dwave-mock", seed=seed, warm_start=warm, num_reads=reads,
                                    **options)
            sets = [ss for ss in result.samplesets if "chain_break_fraction" in ss.info]
            totals["error"] += result.error / seeds
            totals["warm"] += 0.0 if result.warm_start_errors is None else result.warm_start_errors.sum() / seeds
            totals["reads"] += sum(float(np.mean(read_energies(ss))) for ss in sets) / seeds
            totals["breaks"] += [ss.info["chain_break_fraction"] for ss in sets]
            calls = {ss.info.get("problem_id") for ss in sets}
            totals["calls"] += len(calls) / seeds
            totals["qpu_s"] += sum(ss.info["timing"]["qpu_access_time_share"] for ss in sets) / 1e6 / seeds
    totals["breaks"] = float(np.mean(totals["breaks"]))
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=lambda t: [int(x) for x in t.split(",")], default=[4, 2])
    parser.add_argument("--reads", type=count, default=50)
    parser.add_argument("--seeds", type=count, default=2)
    parser.add_argument("--chain-strength-scale", type=scale, default=1.0)
    parser.add_argument("--threads", type=count, default=1)
    args = parser.parse_args()
    with pinned(args.threads) as threads:
        print(f"threads: {threads}; dwave-mock (Pegasus P16), {args.reads} reads per call, "
              f"{args.seeds} seeds, chain_strength_scale {args.chain_strength_scale:g}")
        samplers = {False: get_sampler("dwave-mock", parallel=False), True: get_sampler("dwave-mock")}
        head = (f"{'model':<12}{'bits':>5}  {'way':<12}{'layer error':>12}{'ratio':>7}{'mean read E':>12}{'ratio':>7}"
                f"{'chain brk':>10}{'calls':>7}{'QPU s':>8}{'ratio':>7}")
        print(head + "\n" + "-" * len(head))
        for name, options in MODELS:
            exp = prepare(dataset="digits", seed=0, **options)
            for bits in args.bits:
                problems = formulate(exp, bits)
                rows = {way: run(problems, samplers[opts.get("parallel", True)], warm, args.reads, args.seeds,
                                 chain_strength_scale=args.chain_strength_scale) for way, opts, warm in WAYS}
                one = rows["one/call"]
                for way, r in rows.items():
                    print(f"{name:<12}{bits:>5}  {way:<12}{r['error']:>12.4f}{r['error'] / one['error']:>7.3f}"
                          f"{r['reads']:>12.4f}{r['reads'] / one['reads']:>7.3f}{r['breaks']:>10.2%}"
                          f"{r['calls']:>7.0f}{r['qpu_s']:>8.3f}{r['qpu_s'] / one['qpu_s']:>7.3f}")
                print(f"{'':<19}(warm start GPTQ-restricted: layer error {rows['parallel+RA']['warm']:.4f})")


if __name__ == "__main__":
    main()
