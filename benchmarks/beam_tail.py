"""Where the beam's warm start loses on a layer: its energy split along pivot order, before and after the anneal.

On the first layer of ``benchmarks/frontier.py``'s model (``--dataset``, ``--bits``), the solve loop's warm start
(a beam of ``--width``, :func:`qannealq.baselines.warm_start_integers`) and the state ``layer-sa``'s default
effort ends at from it are each split by GPTQ's identity (:mod:`qannealq._gptq_beam`): with ``U`` the upper
factor of the damped ``H⁻¹`` in pivot order and ``e = U⁻ᵀ (w − q)``, ``E(q) − E(w) = Σ_j (e_j² − λ d_j² +
2 d_j (H w − c)_j)``. It prints each sixth of the order's share of that energy and its ``e_j²``, how far the
path's positions (before each rounding) lie outside their floor/ceil, and which bits the anneal changed. Then,
on ``--neurons`` neurons, the start energy and time of a constant beam against beams widened over their last
blocks (``--tails``: ``WIDTH:BLOCKS``, the width of the last BLOCKS blocks of 64 inputs).

Run: ``.venv/bin/python benchmarks/beam_tail.py --dataset cifar10 --bits 4 --width 615`` (about 2 min here).
"""

from __future__ import annotations

import argparse
import time

import qannealq  # noqa: F401  (first: it shortens OpenBLAS's spin before numpy loads it, qannealq.BLAS_SPIN)
import numpy as np
from scipy.linalg import solve_triangular

import qannealq._gptq_beam as gptq_beam
from frontier import first_layer  # benchmarks/ is the script's folder
from layer_solver import subset
from _threads import count, pinned  # benchmarks/_threads.py, beside this script
from qannealq.backends import get_sampler
from qannealq.baselines import (GPTQ_PERCDAMP, RANK_DEFICIENT_PERCDAMP, _damping, _pivot_factor, rank_deficient,
                                warm_start_integers)
from qannealq.solve import quantize_layer


def split(problem, ints, perm, u, lam, parts: int = 6) -> None:
    """Print the state's ``E(q) − E(w)`` per part of the order (GPTQ's identity), checked against the QUBO."""
    dead = problem.dead
    w0 = np.where(dead, 0.0, problem.weights)
    q = np.where(dead, 0.0, problem.grid.dequantize(ints, problem.steps))
    d = (q - w0)[:, perm]
    e = solve_triangular(u, -d.T, trans="T", lower=False).T
    terms = e ** 2 - lam * d ** 2 + 2 * d * (w0 @ problem.hessian - problem.stats.cross)[:, perm]
    total = terms.sum()
    exact = problem.errors(q).sum() - problem.errors(w0).sum()
    sixths = np.array_split(np.arange(perm.size), parts)
    x = w0[:, perm] - e @ np.triu(u, 1)  # each input's position before it is rounded
    steps = problem.steps[:, perm]
    lo = (problem.base[:, perm] + problem.grid.offset) * steps
    hi = lo + steps * problem.free[:, perm]
    out = (np.maximum(lo - x, 0) + np.maximum(x - hi, 0)) / np.where(steps > 0, steps, 1)
    print(f"  E(q) {problem.errors(q).sum():.6g} (identity / QUBO: {total / exact:.9f})")
    print("  share of E(q) − E(w) per part:", [round(float(terms[:, s].sum() / total), 3) for s in sixths])
    print("  Σ e_j² per part:", [round(float((e[:, s] ** 2).sum()), 5) for s in sixths])
    print("  positions outside floor/ceil, mean in steps:", [round(float(out[:, s].mean()), 3) for s in sixths])
    print("  share of positions outside:", [round(float((out[:, s] > 1e-9).mean()), 3) for s in sixths])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--width", type=int, default=615, help="the beam's width (the default's on CIFAR-10)")
    parser.add_argument("--neurons", type=int, default=64, help="neurons of the tail comparison")
    parser.add_argument("--tails", default="2048:16,4096:4", help="WIDTH:BLOCKS beams widened over their end")
    parser.add_argument("--compare", type=int, default=1024, help="a constant width to compare (0: none)")
    parser.add_argument("--threads", type=count, default=2, help="layer-sa threads")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    tails = [tuple(int(t) for t in item.split(":")) for item in args.tails.split(",") if item]
    with pinned(1, torch_threads=1) as threads:
        print(f"threads: {threads}; layer-sa {args.threads}")
        problem = first_layer(args.dataset, [args.bits], args.data_dir, 0)[args.bits]
        percdamp = RANK_DEFICIENT_PERCDAMP if rank_deficient(problem) else GPTQ_PERCDAMP
        perm, u = _pivot_factor(problem.hessian, problem.dead, percdamp)
        lam = _damping(problem.hessian, problem.dead, percdamp)
        start = warm_start_integers(problem, beam=args.width)
        end = quantize_layer(problem, "qubo", get_sampler("layer-sa"), "layer-sa", seed=0,
                             warm_start_beam=args.width, num_threads=args.threads).integers
        print(f"\n{args.dataset} int{args.bits}, {problem.num_neurons} neurons x {perm.size} inputs, damping "
              f"{percdamp} (in sixths of pivot order, first to last)")
        for name, ints in (("beam start", start), ("after the default anneal", end)):
            print(f"{name}:")
            split(problem, ints, perm, u, lam)
        changed = (start != end)[:, perm]
        print("bits the anneal changed per part:",
              [round(float(changed[:, s].mean()), 3) for s in np.array_split(np.arange(perm.size), 6)])

        part = subset(problem, np.linspace(0, problem.num_neurons - 1, args.neurons).astype(int))
        plain = gptq_beam.beam_widths
        print(f"\nstart energies on {part.num_neurons} neurons (the solve loop's warm start, one BLAS thread):")
        warm_start_integers(part, beam=8)  # compiles the kernels before any timing
        runs = [(args.width, None)] + ([(args.compare, None)] if args.compare else []) + \
            [(args.width, tail) for tail in tails]
        for width, tail in runs:
            def widths(w, growth, m, block=64, tail=tail):
                out = plain(w, growth, m, block)
                if tail:
                    out[-tail[1]:] = tail[0]
                return out
            gptq_beam.beam_widths = widths
            try:
                t0 = time.perf_counter()
                ints = warm_start_integers(part, beam=width)
                seconds = time.perf_counter() - t0
            finally:
                gptq_beam.beam_widths = plain
            energy = part.errors(part.grid.dequantize(ints, part.steps)).sum()
            shown = f"{width}, last {tail[1]} blocks {tail[0]}" if tail else f"{width}"
            print(f"  beam {shown}: start {energy:.6g} in {seconds:.2f} s")


if __name__ == "__main__":
    main()
