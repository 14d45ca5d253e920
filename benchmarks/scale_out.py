"""Scale-out of per-neuron ``sa`` on the MNIST first layer (784 -> 128): 1 and 2 local workers side by side.

The MNIST model and its calibration draw come from :func:`qannealq.experiment.prepare` (recipe MLP 784-128-10,
seed 0, cached); the first layer is formulated on an int4 grid (:func:`qannealq.experiment.formulate`, float
calibration) and its first ``--neurons`` neurons (a subset, printed) are solved by dwave-samplers' simulated
annealing (``sa``, its defaults: 1 read, 1000 sweeps per neuron, no warm start) through
``quantize_layer(..., executor=...)``:

* serial (no executor, this process), for reference;
* ``processes:1`` and ``processes:2`` (:class:`qannealq.executors.ProcessExecutor`), and with ``--dask`` a
  ``dask.distributed.LocalCluster`` of 1 and 2 worker processes reached through ``dask://127.0.0.1:PORT``.

Every worker runs with ``--threads`` BLAS/OpenMP threads (default 1, printed), and so does this process.
Workers are started and warmed up (one neuron) before timing, so pool start-up is reported apart. The
load average is printed at the start and the end: on a shared machine it bounds the speed-up. Each
configuration runs ``--repeats`` times, interleaved, and the best time is kept; the script checks that every
run gives the serial run's integers and prints the speed-up of 2 workers over 1 worker (and over serial).
Run: ``.venv/bin/python benchmarks/scale_out.py`` (``--dask`` needs ``pip install 'qannealq[dask]'``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import ExitStack

import qannealq  # noqa: F401  (first: it shortens OpenBLAS's spin before numpy loads it, qannealq.BLAS_SPIN)
import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _threads import count  # noqa: E402
from layer_solver import subset  # noqa: E402

from qannealq.backends import get_sampler  # noqa: E402
from qannealq.executors import describe_executor, make_executor  # noqa: E402
from qannealq.experiment import formulate, prepare  # noqa: E402
from qannealq.solve import quantize_layer  # noqa: E402


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=count, default=32, help="first N neurons of the 128 (default 32)")
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--threads", type=count, default=1, help="BLAS/OpenMP threads per worker and here")
    parser.add_argument("--repeats", type=count, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dask", action="store_true", help="also a Dask LocalCluster of 1 and 2 workers")
    parser.add_argument("--data-dir", default=None)
    return parser.parse_args()


def _solve(problem, executor, seed: int):
    t0 = time.perf_counter()
    result = quantize_layer(problem, "qubo", get_sampler("sa"), "sa", warm_start=None, seed=seed,
                            executor=executor)
    return time.perf_counter() - t0, result


def _executors(stack: ExitStack, args: argparse.Namespace) -> dict[str, object]:
    """Every executor to time, started: name -> executor (None: serial)."""
    pools: dict[str, object] = {"serial": None}
    for workers in (1, 2):
        pools[f"processes:{workers}"] = stack.enter_context(make_executor(f"processes:{workers}",
                                                                         threads_per_worker=args.threads))
    if args.dask:
        from distributed import LocalCluster

        for workers in (1, 2):
            cluster = stack.enter_context(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                       host="127.0.0.1", dashboard_address=":0",
                                                       env={"OMP_NUM_THREADS": str(args.threads),
                                                            "OPENBLAS_NUM_THREADS": str(args.threads)}))
            address = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
            pools[f"dask x{workers}"] = stack.enter_context(make_executor(address))
    return pools


def main() -> None:
    args = _args()
    threadpool_limits(args.threads)
    exp = prepare(dataset="mnist", seed=args.seed, data_dir=args.data_dir)
    layer = formulate(exp, args.bits)[0]
    problem = subset(layer, np.arange(min(args.neurons, layer.num_neurons)))
    print(f"MNIST MLP {exp.sizes}, first layer {layer.num_neurons} neurons x {layer.num_coordinates} coordinates, "
          f"int{args.bits}; solving the first {problem.num_neurons} neurons (a subset) with per-neuron sa "
          f"(1 read, 1000 sweeps, no warm start), seed {args.seed}; {os.cpu_count()} cores on this machine; "
          f"{args.threads} BLAS/OpenMP thread(s) per worker and in this process; OPENBLAS_THREAD_TIMEOUT "
          f"{os.environ.get('OPENBLAS_THREAD_TIMEOUT', 'OpenBLAS default')}; load average "
          + ", ".join(f"{v:.1f}" for v in os.getloadavg()))
    with ExitStack() as stack:
        t0 = time.perf_counter()
        pools = _executors(stack, args)
        warm = subset(layer, np.arange(1))
        for executor in pools.values():
            _solve(warm, executor, args.seed)
        print(f"started and warmed up {len(pools) - 1} pool(s) in {time.perf_counter() - t0:.1f} s (not timed below)")
        best: dict[str, float] = {}
        reference = None
        for _ in range(args.repeats):
            for name, executor in pools.items():
                seconds, result = _solve(problem, executor, args.seed)
                best[name] = min(best.get(name, np.inf), seconds)
                reference = result.integers if reference is None else reference
                assert np.array_equal(result.integers, reference), f"{name} differs from the serial run"
        for name, executor in pools.items():
            print(f"{name:>12}: {best[name]:7.2f} s  ({describe_executor(executor)})")
    print("every run gave the serial run's integers; load average (1, 5, 15 min) at the end: "
          + ", ".join(f"{v:.1f}" for v in os.getloadavg()))
    for kind in ("processes", "dask x") if args.dask else ("processes",):
        one, two = (f"processes:{w}" if kind == "processes" else f"dask x{w}" for w in (1, 2))
        print(f"speed-up {kind.strip(' x')}: 2 workers / 1 worker = {best[one] / best[two]:.2f}x; "
              f"2 workers / serial = {best['serial'] / best[two]:.2f}x")


if __name__ == "__main__":
    main()
