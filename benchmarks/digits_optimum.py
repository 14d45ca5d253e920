"""How often ``layer-sa`` (default settings) reaches the proven optimum of small neuron QUBOs.

* digits 8x8 (64-32-10 MLP): the first layer's neurons have 65 variables. Gurobi (pip licence) does not prove
  these optima within minutes (its gap stays ~30% after 30 s), so the reference is the best of three long
  ``layer-sa`` runs (other seeds, 256 reads x 400 sweeps) and of Gurobi warm-started from it with a time limit
  (``--gurobi-seconds``; skipped when gurobipy is missing); the output counts the neurons Gurobi proved.
* digits pooled to 4x4 (16-16-10): every neuron has 17 variables; the reference is the ``exact`` backend.

Bits 4, 3 and 2, float calibration on 1024 training images (as ``qannealq run``). Run:
``.venv/bin/python benchmarks/digits_optimum.py``.
"""

from __future__ import annotations

import argparse
import time

import qannealq  # noqa: F401  (first: it shortens OpenBLAS's spin before numpy loads it, qannealq.BLAS_SPIN)
import numpy as np

from qannealq.backends import get_sampler
from qannealq.errors import QannealqError
from qannealq.experiment import formulate, prepare
from _threads import count, pinned  # benchmarks/_threads.py, beside this script

BITS = (4, 3, 2)


def layer_problems(input_size: int, bits: int, seed: int) -> list:
    """The CLI's digits model (qannealq.experiment's recipe and calibration draw), every layer formulated."""
    return formulate(prepare(dataset="digits", input_size=None if input_size == 8 else input_size, seed=seed), bits)


def long_runs(problem) -> np.ndarray:
    """Best energy per neuron over three long layer-sa runs with seeds other than the tested one."""
    sampler = get_sampler("layer-sa", num_reads=256, num_sweeps=400, ladder_acceptance=0.5)
    runs = [sampler.sample_layer(problem, seed=1000 + k) for k in range(3)]
    best = np.argmin(np.stack([r.energies for r in runs]), axis=0)
    return np.stack([r.assignments for r in runs])[best, np.arange(problem.num_neurons)]


def reference_energies(problem, reference: str, seconds: float) -> tuple[np.ndarray, int]:
    """Per-neuron reference energies and how many of them the reference proved optimal."""
    if reference == "exact":
        sampler = get_sampler("exact")
        return np.array([sampler.sample(problem.neuron_bqm(i)).first.energy
                         for i in range(problem.num_neurons)]), problem.num_neurons
    start = long_runs(problem)
    best = problem.qubo_energies(start)
    try:
        sampler = get_sampler("gurobi", time_limit=seconds)
    except QannealqError:
        return best, 0
    proved = 0
    for i in range(problem.num_neurons):
        idx = problem.variables(i)
        if idx.size == 0:
            continue
        ss = sampler.sample(problem.neuron_bqm(i), initial_states=(start[i, idx][None, :], idx.tolist()))
        best[i] = min(best[i], ss.first.energy)
        proved += bool(ss.info.get("proved_optimal"))
    return best, proved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gurobi-seconds", type=float, default=2.0, help="Gurobi time limit per neuron")
    parser.add_argument("--threads", type=count, default=2, help="BLAS, torch and layer-sa threads (default 2)")
    args = parser.parse_args()
    with pinned(args.threads, torch_threads=args.threads) as threads:
        print(f"{threads}; layer-sa threads {args.threads}", flush=True)
        run(args)


def run(args: argparse.Namespace) -> None:
    solver = get_sampler("layer-sa", num_threads=args.threads)
    cases = [("digits 8x8, 65 variables", 8, 65, "long runs + gurobi", 0.95),
             ("digits 4x4, 17 variables", 4, 17, "exact", 0.99)]
    for title, size, width, reference, target in cases:
        hits = total = proved = 0
        t_solver = t_ref = 0.0
        for bits in BITS:
            for problem in layer_problems(size, bits, args.seed):
                if problem.num_coordinates != width:
                    continue
                t0 = time.perf_counter()
                sample = solver.sample_layer(problem, seed=args.seed)
                t1 = time.perf_counter()
                best, n_proved = reference_energies(problem, reference, args.gurobi_seconds)
                proved += n_proved
                t_ref += time.perf_counter() - t1
                t_solver += t1 - t0
                ok = sample.energies <= best + 1e-9 * np.abs(best) + 1e-12
                hits, total = hits + int(ok.sum()), total + ok.size
                print(f"  {title} int{bits} {problem.name}: optimum on {int(ok.sum())}/{ok.size} neurons; "
                      f"worst gap {float(np.max(sample.energies - best)):.3g}")
        if total:
            rate = hits / total
            what = "exact optimum" if reference == "exact" else "best known (long runs + Gurobi)"
            print(f"{title}: layer-sa (defaults, seed {args.seed}) reaches the {what} on {hits}/{total} neurons "
                  f"= {rate:.1%} (target >= {target:.0%}: {'met' if rate >= target else 'NOT met'}); "
                  f"{proved}/{total} references proven optimal; time layer-sa {t_solver:.2f} s, "
                  f"reference {t_ref:.1f} s")


if __name__ == "__main__":
    main()
