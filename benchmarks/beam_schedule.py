"""Prototype: does a beam that widens along pivot order beat a constant width? (start energies only, no anneal)

Runs the compiled kernel of :mod:`qannealq._gptq_beam` at the largest width of a schedule and, at each block of
64 inputs, drops the survivors beyond that block's width (cost = inf), the width growing geometrically from K0 to
K1 along pivot order (``K0:K1``; a single number: a constant width). It prints each schedule's start error above
the best-known energy of ``benchmarks/frontier.py`` (its JSON in ``--frontier``; 1.0 when absent: then compare
the energies), its mean width (the selection's cost) and its work (sum over blocks of width x inputs left, the
row updates' and products' cost). It measures quality, not time: the dropped survivors are still carried.

Run: ``.venv/bin/python benchmarks/beam_schedule.py --dataset mnist --bits 4 64 128 8:256 4:1024``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from frontier import first_layer  # benchmarks/ is the script's folder
from _threads import pinned  # benchmarks/_threads.py, beside this script
from qannealq import baselines
from qannealq import _gptq_beam


def widened(problem, rows, percdamp, schedule, block=64):
    """Each neuron's ``E(q) − E(w)`` at the end of a beam of per-block widths ``schedule``."""
    dead = problem.dead
    perm, factor = baselines._ordered_factor(problem.hessian, dead, percdamp, "pivot", baselines._inverse_cholesky)
    grad = (np.where(dead, 0.0, problem.weights) @ problem.hessian - problem.stats.cross)[rows][:, perm]
    n, m, width = len(rows), problem.weights.shape[1], max(schedule)
    w0 = np.ascontiguousarray(np.where(dead[perm], 0.0, problem.weights[rows][:, perm]))
    steps = np.ascontiguousarray(np.where(dead[perm], 0.0, problem.steps[rows][:, perm]))
    base = np.ascontiguousarray(problem.base[rows][:, perm], dtype=np.float64)
    up = np.ascontiguousarray(problem.free[rows][:, perm] & ~dead[perm], dtype=np.uint8)
    u = np.ascontiguousarray(factor, dtype=np.float32)
    inv_diag = 1.0 / np.diag(factor)
    cost = np.full((n, width), np.inf)
    cost[:, 0] = 0.0
    pos = np.repeat(w0[:, None, :].astype(np.float32), width, axis=1)
    back = np.empty((n, m, width), np.int16 if 2 * width < 2 ** 15 else np.int32)
    for index, a in enumerate(range(0, m, block)):
        b = min(a + block, m)
        if schedule[index] < width:
            order = np.argsort(cost, axis=1, kind="stable")
            np.put_along_axis(cost, order[:, schedule[index]:], np.inf, axis=1)
        errors, ancestor = np.empty((n, width, b - a), np.float32), np.empty((n, width), np.int64)
        _gptq_beam._beam_block(pos, w0, steps, base, up, float(problem.grid.offset), u, inv_diag, grad,
                               baselines._damping(problem.hessian, dead, percdamp), a, b, cost, back, errors,
                               ancestor, 0)
        if b < m:
            _gptq_beam._inherit(pos, ancestor, b)
            pos[:, :, b:] -= (errors.reshape(-1, b - a) @ u[a:b, b:]).reshape(n, width, m - b)
    return cost.min(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("schedules", nargs="+", help="K (constant) or K0:K1 (geometric from K0 to K1)")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--neurons", type=int, default=0, help="neurons spread over the layer (0: all)")
    parser.add_argument("--percdamp", type=float, default=None, help="default: 0.01 (MNIST), 0.001 (others)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--frontier", type=Path, default=Path("runs/frontier"))
    args = parser.parse_args()
    percdamp = args.percdamp or (0.01 if args.dataset == "mnist" else 0.001)
    with pinned(1, torch_threads=1) as threads:
        print(f"threads: {threads}")
        problem = first_layer(args.dataset, [args.bits], args.data_dir, 0)[args.bits]
        n, m = problem.weights.shape
        rows = np.arange(n) if not args.neurons else np.unique(np.linspace(0, n - 1, args.neurons).round()
                                                                 .astype(np.int64))
        stored = args.frontier / f"frontier_{args.dataset}_int{args.bits}.json"
        reference = json.loads(stored.read_text())["best_known"] * len(rows) / n if stored.exists() else 1.0
        floor = problem.errors(np.where(problem.dead, 0.0, problem.weights))[rows].sum()
        blocks = -(-m // 64)
        print("| schedule | start energy | above best known | mean width | work |\n| --- | --- | --- | --- | --- |")
        for spec in args.schedules:
            k0, k1 = (int(k) for k in spec.split(":")) if ":" in spec else (int(spec), int(spec))
            schedule = [int(round(k0 * (k1 / k0) ** (i / max(1, blocks - 1)))) for i in range(blocks)]
            energy = floor + widened(problem, rows, percdamp, schedule).sum()
            work = sum(k * min(64, m - 64 * i) * (m - 64 * i) for i, k in enumerate(schedule))
            print(f"| {spec} | {energy:.6g} | {100 * (energy / reference - 1):.2f} % | {np.mean(schedule):.1f} | "
                  f"{work / 1e6:.1f}M |", flush=True)


if __name__ == "__main__":
    main()
