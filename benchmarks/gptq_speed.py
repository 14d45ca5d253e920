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
* GPTQ's whole ``quantize_layer`` call now (each call on a fresh copy of the problem, no earlier call's cached
  products);
* the pivoted factorization of pivot order (``gptq-pivot``, ``layer-sa``'s start) as it ran until the compiled
  LAPACK-layout kernel (in-block steps compiled on a row-major lower triangle, trailing updates by numpy products
  with a temporary, over the whole trailing block below 1024 rows and in panels of 128 rows from there: written
  out here as :func:`panels_factor`) and as :func:`qannealq.baselines._pivot_factor` runs it now (one compiled
  call, each trailing update one BLAS ``dsyrk`` in place), with the parts of now (the factorization, L⁻¹).

Each best of ``--repeats`` on each BLAS thread count of ``--blas-threads``; the ratios old / new are printed beside
the times. Run: ``.venv/bin/python benchmarks/gptq_speed.py`` (about 30 s; with ``--datasets mnist,cifar10``
about 3 min).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import qannealq  # noqa: F401  (first: it shortens OpenBLAS's spin before numpy loads it, qannealq.BLAS_SPIN)
import numba
import numpy as np
import torch
from scipy.linalg.lapack import dtrtri

from frontier import first_layer, thread_counts  # benchmarks/ is the script's folder
from qannealq import baselines
from qannealq._gptq_beam import gptq_path
from qannealq._lapack import invert_lower
from qannealq._pivot import pivoted_cholesky
from qannealq.solve import quantize_layer
from _threads import count, pinned  # benchmarks/_threads.py, beside this script


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



@numba.njit(cache=True, nogil=True)
def pivot_block(h: np.ndarray, lower: np.ndarray, diagonal: np.ndarray, pivots: np.ndarray, start: int,
                stop: int) -> int:
    """The in-block steps before (row-major lower storage). Pivots ``start .. stop − 1`` in place: each on the
    smallest remaining ``diagonal`` (ties to the lowest input index in ``pivots``), swapped into place in ``h``,
    ``lower`` and ``diagonal``; its column of ``lower`` is the trailing column of ``h`` less the block's earlier
    columns, scaled, and the diagonal is updated.

    Only ``h``'s lower triangle from ``start`` on is read and kept (the trailing updates write no more): a swap
    of ``t < k`` exchanges ``h[c, t]`` with ``h[k, c]`` for ``t < c < k``, ``h[r, t]`` with ``h[r, k]`` below
    ``k`` and the two diagonal entries (LAPACK's ``?pstrf`` on lower storage); the block's earlier columns
    of ``h`` are not read again.

    Returns:
        -1 when all pivots are placed, else the position whose pivot is not positive (``H`` singular).
    """
    m = h.shape[0]
    column = np.empty(m)
    for t in range(start, stop):
        k = t
        for s in range(t + 1, m):
            if diagonal[s] < diagonal[k] or (diagonal[s] == diagonal[k] and pivots[s] < pivots[k]):
                k = s
        if k != t:
            for c in range(t + 1, k):
                h[c, t], h[k, c] = h[k, c], h[c, t]
            for r in range(k + 1, m):
                h[r, t], h[r, k] = h[r, k], h[r, t]
            h[t, t], h[k, k] = h[k, k], h[t, t]
            for c in range(t):
                lower[t, c], lower[k, c] = lower[k, c], lower[t, c]
            diagonal[t], diagonal[k] = diagonal[k], diagonal[t]
            pivots[t], pivots[k] = pivots[k], pivots[t]
        for r in range(t, m):
            total = 0.0
            for c in range(start, t):
                total += lower[r, c] * lower[t, c]
            column[r] = h[r, t] - total
        head = column[t]
        if not head > 0.0:
            return t
        scale = np.sqrt(head)
        for r in range(t, m):
            value = column[r] / scale
            lower[r, t] = value
            diagonal[r] -= value * value
    return -1


def panels_factor(hessian: np.ndarray, dead: np.ndarray, percdamp: float, block: int = 64, panel: int = 128,
                  panels_from: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """The pivoted factorization as it ran before the compiled LAPACK-layout kernel (same order and factor)."""
    h = baselines._damped(hessian, dead, percdamp)
    m = h.shape[0]
    lower = np.zeros((m, m))
    diagonal = np.diag(h).copy()
    pivots = np.arange(m)  # position -> input
    for start in range(0, m, block):
        stop = min(start + block, m)
        if pivot_block(h, lower, diagonal, pivots, start, stop) >= 0:  # the in-block steps, compiled
            raise ValueError(
                f"percdamp={percdamp!r} leaves the layer's H singular for GPTQ's pivot order: give percdamp > 0 "
                f"(GPTQ uses {baselines.GPTQ_PERCDAMP})")
        trailing = lower[stop:, start:stop]
        step = panel if m - stop >= panels_from else m - stop
        for top in range(stop, m, max(step, 1)):  # by panels: the lower triangle (and diagonal blocks) only
            bottom = min(top + step, m)
            h[top:bottom, stop:bottom] -= trailing[top - stop:bottom - stop] @ trailing[:bottom - stop].T
    # L⁻¹ by LAPACK's triangular inverse (a third of the flops of solving L X = I: CIFAR-10's 3073 inputs in
    # 0.24 s instead of 0.83 s), on Lᵀ, which is L's memory read in Fortran order: no copy
    transposed_inverse, info = dtrtri(lower.T, lower=0, overwrite_c=1)
    if info != 0:  # pragma: no cover - every pivot was checked positive above
        raise ValueError(f"percdamp={percdamp!r}: the pivoted factor of H is singular (LAPACK info {info})")
    return pivots[::-1].copy(), np.ascontiguousarray(transposed_inverse.T[::-1, ::-1])


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
    parser.add_argument("--blas-threads", type=thread_counts, default=[1, 2])
    parser.add_argument("--repeats", type=count, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for dataset in args.datasets.split(","):
        for bits, problem in first_layer(dataset, args.bits, None, args.seed).items():
            n, m = problem.weights.shape
            perm = np.arange(m)
            h, dead, damp = problem.hessian, problem.dead, baselines.GPTQ_PERCDAMP
            quantize_layer(dataclasses.replace(problem), "gptq", seed=0)  # the compiled steps' first load untimed
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
                    # each call on a fresh copy (frontier.timed): on one problem a call found the products and
                    # errors the warm-up cached on it (MNIST's layer 0.10 s against 0.20 s fresh)
                    whole, _ = best(lambda: quantize_layer(dataclasses.replace(problem), "gptq", seed=0),
                                    args.repeats)
                    print(f"  GPTQ's whole quantize_layer call now: {whole:.4f} s; the factor and steps before "
                          f"cost {old + loop:.4f} s where they cost {new + compiled:.4f} s now "
                          f"({(old + loop) / (new + compiled):.1f}x)", flush=True)
                    before, (order, factor) = best(lambda: panels_factor(h, dead, damp), args.repeats)
                    now, (order2, factor2) = best(lambda: baselines._pivot_factor(h, dead, damp), args.repeats)
                    work = np.ascontiguousarray(baselines._damped(h, dead, damp))
                    kernel, _ = best(lambda: pivoted_cholesky(work.copy(), np.arange(m), 64), args.repeats)
                    pivoted_cholesky(work, np.arange(m), 64)
                    inverse, _ = best(lambda: invert_lower(work.copy()), args.repeats)
                    scale = np.abs(factor).max()
                    print(f"  pivot order's factorization: before {before:.4f} s, now {now:.4f} s; before / now "
                          f"{before / now:.2f}x (now: the factorization {kernel:.4f} s, L⁻¹ {inverse:.4f} s); "
                          f"the same order: {np.array_equal(order, order2)}, largest factor difference "
                          f"{np.abs(factor - factor2).max() / scale:.1e} (relative)", flush=True)

if __name__ == "__main__":
    main()
