"""Chain strength on the mock QPU: chain-break fraction and energy against ``chain_strength_scale``.

Every neuron of a layer gets its own chain strength, dwave-system's ``uniform_torque_compensation`` of its
BQM, times ``chain_strength_scale``. This script sweeps the scale over ``--scales`` on the first layer of the
digits 4x4 model (16 neurons of up to 17 variables: cliques of 17, chains of 2-3 qubits) and of the digits 8x8
model (32 neurons of up to 61 variables: chains of 6-7 qubits), at int4, with ``dwave-mock`` (Pegasus P16,
many neurons per call), ``--reads`` reads, forward anneal and no warm start (so that only the sampler's own
reads count), over ``--seeds`` seeds, and prints side by side: the mean chain-break fraction, the mean energy
of all reads (summed over neurons) and the layer error of the best reads (sum of neuron errors), each also as a
ratio to the scale-1 run (to the first of --scales where 1 is not among them; the header says which).
Run: ``.venv/bin/python benchmarks/chain_strength.py``.
"""

from __future__ import annotations

import argparse
import time

from qpu_quality import MODELS, run  # benchmarks/qpu_quality.py, beside this script

from qannealq.backends import get_sampler
from qannealq.experiment import formulate, prepare
from _threads import count, pinned, scales  # benchmarks/_threads.py, beside this script


def measure(problem, sampler, scale: float, reads: int, seeds: int) -> tuple[float, float, float]:
    """Mean chain-break fraction, summed mean read energy and layer error, averaged over the seeds."""
    totals = run([problem], sampler, None, reads, seeds, chain_strength_scale=scale)
    return totals["breaks"], totals["reads"], totals["error"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=scales, default=[0.25, 0.5, 1, 2, 4])
    parser.add_argument("--reads", type=count, default=50)
    parser.add_argument("--seeds", type=count, default=2)
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--threads", type=count, default=1)
    args = parser.parse_args()
    with pinned(args.threads) as threads:
        print(f"threads: {threads}; dwave-mock (Pegasus P16), int{args.bits}, {args.reads} reads, "
              f"forward anneal, no warm start, {args.seeds} seeds")
        sampler = get_sampler("dwave-mock")
        for name, options in MODELS:
            exp = prepare(dataset="digits", seed=0, **options)
            problem = formulate(exp, args.bits)[0]
            start = time.perf_counter()
            rows = {scale: measure(problem, sampler, scale, args.reads, args.seeds) for scale in args.scales}
            base_scale = 1.0 if 1.0 in rows else args.scales[0]
            base = rows[base_scale]
            print(f"\n{name} {exp.sizes}, first layer: {problem.num_neurons} neurons of up to "
                  f"{int(problem.free.sum(axis=1).max())} variables ({time.perf_counter() - start:.0f} s); "
                  f"ratios to scale {base_scale:g}")
            print(f"  {'scale':>6}{'chain breaks':>14}{'mean read energy':>18}{'ratio':>7}{'layer error':>13}{'ratio':>7}")
            for scale, (breaks, energy, error) in rows.items():
                print(f"  {scale:>6g}{breaks:>14.2%}{energy:>18.4f}{energy / base[1]:>7.2f}{error:>13.4f}"
                      f"{error / base[2]:>7.2f}")


if __name__ == "__main__":
    main()
