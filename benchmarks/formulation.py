"""Formulation speed: all neuron BQMs of MNIST's first layer (784 -> 128, 1024 calibration samples).

Side by side in one process:
  * qannealq: H accumulated once by the calibration hooks, linear terms for all neurons as matrix
    products, then 128 dense `dimod.BinaryQuadraticModel`s;
  * naive: the seed code's pattern, per neuron H recomputed from the samples and the BQM built from
    Python dicts (timed on a few neurons and scaled to the layer; printed as such).

Usage: python benchmarks/formulation.py [--threads 1] [--naive-neurons 4] [--data-dir ../shared/datasets]
"""

from __future__ import annotations

import argparse
import time

import qannealq  # noqa: F401  (first: it shortens OpenBLAS's spin before numpy loads it, qannealq.BLAS_SPIN)
import numpy as np
import torch

from qannealq.calibration import collect_stats
from qannealq.experiment import prepare
from qannealq.pipeline import formulate_layer
from _threads import count, pinned  # benchmarks/_threads.py, beside this script


def naive_neuron_bqm(x_aug: np.ndarray, y: np.ndarray, problem, i: int):
    import dimod

    n_s = len(x_aug)
    h = x_aug.T @ x_aug / n_s  # recomputed for every neuron
    g = x_aug.T @ y[:, i] / n_s
    idx = problem.variables(i)
    d, u = problem.steps[i], problem.base_values[i]
    hu = h @ u
    linear = {int(j): d[j] ** 2 * h[j, j] + 2 * d[j] * hu[j] - 2 * d[j] * g[j] for j in idx}
    quadratic = {}
    for a, j in enumerate(idx):
        for l in idx[a + 1:]:
            if h[j, l] != 0.0:
                quadratic[(int(j), int(l))] = 2 * d[j] * d[l] * h[j, l]
    offset = u @ h @ u - 2 * u @ g + np.mean(y[:, i] ** 2)
    return dimod.BinaryQuadraticModel(linear, quadratic, offset, "BINARY")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=count, default=1)
    parser.add_argument("--naive-neurons", type=int, default=4)
    parser.add_argument("--num-calibration", type=int, default=1024)
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    with pinned(args.threads, torch_threads=args.threads) as threads:
        print(f"threads: {threads}")
        exp = prepare(dataset="mnist", data_dir=args.data_dir, seed=0, num_calibration=args.num_calibration)
        model = exp.model
        calib = torch.as_tensor(exp.calibration)
        print(f"threads={args.threads}  layer 784->128 (qannealq.experiment's MNIST model, seed 0)  "
              f"calibration samples={len(calib)}  int{args.bits}")

        t0 = time.perf_counter()
        stats = collect_stats(model, model, ["0"], calib)["0"]
        problem = formulate_layer(model[0], stats, args.bits, "tensor", "sign", "0")
        t1 = time.perf_counter()
        bqms = [problem.neuron_bqm(i) for i in range(problem.num_neurons)]
        t_ours = time.perf_counter() - t0
        terms = sum(b.num_interactions for b in bqms)
        print(f"qannealq: stats+formulation {t1 - t0:.3f} s, 128 BQMs {t_ours - (t1 - t0):.3f} s, "
              f"total {t_ours:.3f} s ({sum(b.num_variables for b in bqms)} variables, {terms} interactions)")

        with torch.no_grad():
            y = model[0](calib).double().numpy()
        x_aug = np.concatenate([calib.double().numpy(), np.ones((len(calib), 1))], axis=1)
        k = max(1, min(args.naive_neurons, problem.num_neurons))
        t0 = time.perf_counter()
        naive = [naive_neuron_bqm(x_aug, y, problem, i) for i in range(k)]
        t_naive = (time.perf_counter() - t0) / k * problem.num_neurons
        for i, b in enumerate(naive):
            assert abs(b.energy({v: 1 for v in b.variables}) - bqms[i].energy({v: 1 for v in bqms[i].variables})) \
                <= 1e-9 * abs(bqms[i].offset) + 1e-12, "naive and vectorised BQMs disagree"
        print(f"naive (timed on {k} neurons, scaled to {problem.num_neurons}): {t_naive:.2f} s")
        print(f"ratio naive/qannealq: {t_naive / t_ours:.1f}x")


if __name__ == "__main__":
    main()
