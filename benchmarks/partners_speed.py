"""``layer-sa``'s fixed costs before and after the compiled partner ranking, side by side, against GPTQ.

On the first layers of the MNIST (784-128-10) and, with ``--datasets mnist,cifar10``, CIFAR-10 (3072-512-10) MLPs
(the models and 1024-image float calibration of ``benchmarks/frontier.py``), at ``--bits``, in this one process:

* the partner lists of the pair flips (4 per input) and chain moves (8): before, the strength matrix
  ``|H_jl| / sqrt(H_jj H_ll)`` (:func:`qannealq.backends._layer_dense.coupling_strength`) and one partition of it
  per list (``numpy.argpartition``, written out here as it ran); now one compiled pass over ``H`` in the run's
  threads (:func:`qannealq.backends._layer_dense.ranked_partners`), both lists its first columns;
* ``--efforts`` (``fast`` by default, where these costs weigh most) end to end through the solve loop, with the
  partners found as before and as now, beside GPTQ's whole ``quantize_layer`` call. The partners are the same up
  to the order of equally strong ones (the lists are sorted either way); the layer errors are printed.

Each best of ``--repeats``, the repeats alternating the BLAS thread counts ``--blas-threads`` (each printed) and
the variants interleaved; ratios printed beside the times. Run: ``.venv/bin/python benchmarks/partners_speed.py``
(about 30 s; with ``--datasets mnist,cifar10`` about 3 min).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from contextlib import ExitStack
from unittest import mock

import qannealq  # noqa: F401  (first: it shortens OpenBLAS's spin before numpy loads it, qannealq.BLAS_SPIN)
import numpy as np

from frontier import first_layer, thread_counts  # benchmarks/ is the script's folder
from gptq_speed import best
from qannealq.backends import _layer_dense, get_sampler
from qannealq.backends._layer_dense import coupling_strength, ranked_partners
from qannealq.solve import quantize_layer
from _threads import count, pinned  # benchmarks/_threads.py, beside this script

#: Pair partners per input (``layer-sa``'s ``pairs``): before, a partition of its own.
PAIRS = 4


def ranked_before(mat: np.ndarray, k: int, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The partners as ``layer-sa`` found them before: the strength matrix, then one partition per list (the
    pair flips' :data:`PAIRS`, and the chain moves' ``k`` where it asks for more), the lists sorted here
    (``m · k`` entries) so that the run takes the same partners as now."""
    strength = coupling_strength(mat)
    m = mat.shape[0]
    part = np.zeros((m, 0), np.int64)
    for kk in sorted({min(PAIRS, k, m - 1), min(k, m - 1)}):
        part = np.argpartition(-strength, kk - 1, axis=1)[:, :kk]
    value = np.take_along_axis(strength, part, axis=1)
    order = np.lexsort((part, -value), axis=1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(value, order, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="mnist")
    parser.add_argument("--bits", type=lambda t: [int(b) for b in t.split(",")], default=[4])
    parser.add_argument("--efforts", default="fast")
    parser.add_argument("--blas-threads", type=thread_counts, default=[1, 2])
    parser.add_argument("--threads", type=count, default=2, help="layer-sa's num_threads")
    parser.add_argument("--repeats", type=count, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sampler = get_sampler("layer-sa")
    for dataset in args.datasets.split(","):
        for bits, problem in first_layer(dataset, args.bits, None, args.seed).items():
            n, m = problem.weights.shape
            h = problem.hessian
            print(f"{dataset} first layer int{bits}, {n} x {m}", flush=True)
            for blas in args.blas_threads:
                with pinned(blas, torch_threads=blas) as threads:
                    ranked_partners(h, 8, args.threads)  # the compiled pass's first load is not timed
                    old, (p_old, v_old) = best(lambda: ranked_before(h, 8), args.repeats)
                    new, (p_new, v_new) = best(lambda: ranked_partners(h, 8, args.threads), args.repeats)
                    same = np.allclose(v_old, v_new, rtol=1e-12, atol=0)
                    print(f"  {threads}\n  partner lists (4 and 8 per input): before {old:.4f} s, now {new:.4f} s; "
                          f"{old / new:.1f}x; the same strengths: {same}", flush=True)
            opts = {"num_threads": args.threads, "device": "cpu", "seed": args.seed}
            for effort in args.efforts.split(","):
                quantize_layer(dataclasses.replace(problem), "qubo", sampler=sampler, backend="layer-sa",
                               effort=effort, **opts)
                times: dict[str, list[float]] = {"gptq": [], "before": [], "now": []}
                errors: dict[str, float] = {}
                for rep in range(args.repeats):
                    blas = args.blas_threads[rep % len(args.blas_threads)]
                    with pinned(blas, torch_threads=blas):
                        for label in times:
                            with ExitStack() as stack:
                                if label == "before":
                                    # where run_ranking looks it up (the run calls run_ranking since 24a87a2)
                                    stack.enter_context(mock.patch.object(_layer_dense, "ranked_partners",
                                                                          ranked_before))
                                fresh = dataclasses.replace(problem)  # no earlier run's cached products
                                t0 = time.perf_counter()
                                if label == "gptq":
                                    result = quantize_layer(fresh, "gptq", seed=args.seed)
                                else:
                                    result = quantize_layer(fresh, "qubo", sampler=sampler, backend="layer-sa",
                                                            effort=effort, **opts)
                                times[label].append(time.perf_counter() - t0)
                                errors[label] = result.error
                gptq, old, new = (min(times[k]) for k in ("gptq", "before", "now"))
                print(f"  {effort} end to end (best of {args.repeats}, BLAS threads {args.blas_threads}): GPTQ "
                      f"{gptq:.4f} s; before {old:.4f} s ({old / gptq:.2f}x GPTQ), now {new:.4f} s "
                      f"({new / gptq:.2f}x GPTQ); before / now {old / new:.2f}x; layer error before "
                      f"{errors['before']:.6g}, now {errors['now']:.6g}, GPTQ {errors['gptq']:.6g}", flush=True)


if __name__ == "__main__":
    main()
