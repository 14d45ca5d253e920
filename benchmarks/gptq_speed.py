"""GPTQ's own time, before and after ``e569389``, side by side: its factor and its in-block steps.

On the first layers of the MNIST (784-128-10) and, with ``--datasets cifar10``, CIFAR-10 (3072-512-10) MLPs (the
models and 1024-image float calibration of ``benchmarks/frontier.py``), at ``--bits``, in this one process:

* the factor (the upper Cholesky factor of the damped ``H⁻¹``) as GPTQ formed it until ``e569389`` (a Cholesky, a
  general solve against the identity, a product and a second Cholesky: about 5m³ flops; written out here), as
  the GPTQ paper's code forms it (``cholesky``, ``cholesky_inverse``, ``cholesky`` upper: about 4m³/3) and as
  :func:`qannealq.baselines._inverse_cholesky` forms it now (one Cholesky and one triangular inverse in reversed
  order: 2m³/3);
* GPTQ's in-block steps as the numpy loop over the inputs (:func:`qannealq.baselines._gptq_rows`, the path
  before) and compiled (:func:`qannealq._gptq_beam.gptq_path`, now), on the same factor: the same integers;
* GPTQ's whole ``quantize_layer`` call now;
* the pivoted factorization of pivot order (``gptq-pivot``, ``layer-sa``'s start) with its trailing updates over
  the whole trailing block (as before, and now below 1024 trailing rows) and over its lower triangle in panels
  of 128 rows (now from 1024 trailing rows on).

Each best of ``--repeats`` on each BLAS thread count of ``--blas-threads``; the ratios old / new are printed beside
the times. Run: ``.venv/bin/python benchmarks/gptq_speed.py`` (about 30 s; with ``--datasets mnist,cifar10``
about 3 min).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from frontier import first_layer  # benchmarks/ is the script's folder
from qannealq import baselines
from qannealq._gptq_beam import gptq_path
from qannealq.solve import quantize_layer
from _threads import pinned  # benchmarks/_threads.py, beside this script


def solve_factor(hessian: np.ndarray, dead: np.ndarray, percdamp: float) -> np.ndarray:
    """GPTQ's factor as this code formed it until ``e569389``: about 5m³ flops."""
    h = baselines._damped(hessian, dead, percdamp)
    lower = np.linalg.cholesky(h)
    inv_lower = np.linalg.solve(lower, np.eye(h.shape[0]))
    return np.linalg.cholesky(inv_lower.T @ inv_lower).T


def paper_factor(hessian: np.ndarray, dead: np.ndarray, percdamp: float) -> np.ndarray:
    """GPTQ's factor as the GPTQ paper's code forms it (torch): about 4m³/3 flops."""
    h = torch.from_numpy(baselines._damped(hessian, dead, percdamp))
    inverse = torch.cholesky_inverse(torch.linalg.cholesky(h))
    return torch.linalg.cholesky(inverse, upper=True).numpy()


def best(fn, repeats: int) -> tuple[float, object]:
    """The best wall time of ``repeats`` calls of ``fn`` and its last result."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="mnist")
    parser.add_argument("--bits", type=lambda t: [int(b) for b in t.split(",")], default=[4])
    parser.add_argument("--blas-threads", type=lambda t: [int(b) for b in t.split(",")], default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for dataset in args.datasets.split(","):
        for bits, problem in first_layer(dataset, args.bits, None, args.seed).items():
            n, m = problem.weights.shape
            perm = np.arange(m)
            h, dead, damp = problem.hessian, problem.dead, baselines.GPTQ_PERCDAMP
            quantize_layer(problem, "gptq", seed=0)  # the compiled steps' first load is not timed
            for blas in args.blas_threads:
                with pinned(blas, torch_threads=blas) as threads:
                    print(f"{dataset} first layer int{bits}, {n} x {m}; {threads}", flush=True)
                    old, reference = best(lambda: solve_factor(h, dead, damp), args.repeats)
                    paper, paper_u = best(lambda: paper_factor(h, dead, damp), args.repeats)
                    new, u = best(lambda: baselines._inverse_cholesky(h, dead, damp), args.repeats)
                    scale = np.abs(reference).max()
                    ours, theirs = (np.abs(x - reference).max() / scale for x in (u, paper_u))
                    print(f"  factor: before {old:.4f} s, GPTQ paper's {paper:.4f} s, now {new:.4f} s; "
                          f"before / now {old / new:.1f}x, paper's / now {paper / new:.1f}x; largest difference "
                          f"{ours:.1e}, paper's {theirs:.1e} (relative)")
                    loop, rows = best(lambda: baselines._gptq_rows(problem, np.broadcast_to(perm, (n, m)), u, dead,
                                                                   False, 128), max(1, args.repeats // 2))
                    compiled, ints = best(lambda: gptq_path(problem.weights, problem.steps, problem.grid.lo,
                                                            problem.grid.hi, float(problem.grid.offset), dead, u),
                                          args.repeats)
                    same = np.array_equal(np.where(dead, problem.base, ints), rows)
                    print(f"  in-block steps: numpy loop {loop:.4f} s, compiled {compiled:.4f} s; "
                          f"{loop / compiled:.1f}x; the same integers: {same}")
                    whole, _ = best(lambda: quantize_layer(problem, "gptq", seed=0), args.repeats)
                    print(f"  GPTQ's whole quantize_layer call now: {whole:.4f} s; the factor and steps before "
                          f"cost {old + loop:.4f} s where they cost {new + compiled:.4f} s now "
                          f"({(old + loop) / (new + compiled):.1f}x)", flush=True)
                    full, (order, factor) = best(lambda: baselines._pivot_factor(h, dead, damp, panels_from=m + 1),
                                                 max(1, args.repeats // 2))
                    panels, (order2, factor2) = best(lambda: baselines._pivot_factor(h, dead, damp, panels_from=0),
                                                     args.repeats)
                    print(f"  pivot order's factorization: whole trailing block {full:.4f} s, its lower triangle "
                          f"in panels {panels:.4f} s; {full / panels:.2f}x; the same order: "
                          f"{np.array_equal(order, order2)}", flush=True)


if __name__ == "__main__":
    main()
