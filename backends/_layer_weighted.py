"""``layer-sa`` on problems with one ``H_i`` per neuron (:mod:`qannealq.weighted`): one small run per neuron.

A per-neuron problem has no shared matrix, so each neuron is its own :class:`._layer_dense.DenseQubos` with
``n = 1`` and ``M = H_i`` restricted to the neuron's variables (fixed coordinates have ``v = 0`` and only
enter through the linear terms and the offset, as in its BQM), solved by the same run objects as a whole
layer (:func:`._layer_run.make_run`: numba or torch) and the same search (``layer_sa``'s, passed in as
``solve``: polish the starts, anneal from the best, keep the best row). Neuron i gets the i-th seed drawn from
the layer's seed and neurons run in ``num_threads`` threads (numba device; each run on one thread), so a seed
gives the same result whatever the thread count; the final energies are recomputed
in float64 from the samples (``problem.qubo_energies``) and a neuron never ends worse than its warm start.
``time_limit`` does not apply here (each neuron's run has no clock).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from qannealq._pool import thread_count
from qannealq.contract import LayerSample
from qannealq.formulation import submatrix

from ._layer_dense import DenseQubos
from ._layer_run import make_run, resolve_device

__all__ = ["neuron_qubo", "sample_per_neuron"]


def neuron_qubo(problem: Any, i: int) -> tuple[DenseQubos, np.ndarray]:
    """Neuron ``i``'s QUBO over its variables as a one-problem :class:`DenseQubos`, and those variables."""
    idx = problem.variables(i)
    mat = submatrix(problem.neuron_hessian(i), idx)
    return DenseQubos(mat, np.ascontiguousarray(problem.linear[i, idx][None, :]),
                      np.ascontiguousarray(problem.steps[i, idx][None, :]), np.ones((1, idx.size), np.bool_),
                      np.array([problem.offsets[i]], np.float64), layer_neurons=problem.num_neurons), idx


def sample_per_neuron(problem: Any, warm: np.ndarray, starts: list[np.ndarray], params: dict[str, Any], seed: int,
                      solve: Callable[[Any, list[np.ndarray], int], tuple[np.ndarray, dict]],
                      t0: int | None = None) -> LayerSample:
    """``layer-sa``'s :class:`LayerSample` of a per-neuron problem.

    Args:
        problem: a problem with ``per_neuron`` true (``neuron_hessian(i)``).
        warm: the warm assignments ``(n, m)`` (fixed entries zero); ``starts``: warm first, then the others.
        params: the checked ``layer-sa`` parameters.
        seed: the layer's seed.
        solve: ``layer-sa``'s search, ``solve(run, starts, seed) -> (best rows, stats)``, run on each neuron.
        t0: ``perf_counter_ns`` when the call began (for the timing; default now).
    """
    t0 = time.perf_counter_ns() if t0 is None else t0
    n = problem.num_neurons
    seeds = np.random.SeedSequence(seed).generate_state(n) & 0x7FFFFFFF
    device = resolve_device(params["device"])
    threads = thread_count(params["num_threads"]) if device == "cpu" else 1
    single = {**params, "num_threads": 1} if threads > 1 else params  # neurons in parallel, each run on one

    def solve_one(i: int) -> tuple[np.ndarray, np.ndarray | None, dict | None]:
        dense, idx = neuron_qubo(problem, i)
        if idx.size == 0:
            return idx, None, None
        row, stats = solve(make_run(dense, single)[0], [s[i, idx][None, :] for s in starts], int(seeds[i]))
        return idx, row[0], stats

    best = warm.copy()
    start_energies, chosen = np.zeros(len(starts)), np.zeros(len(starts), np.int64)
    problem.linear, problem.offsets  # formed once, before the threads
    t1 = time.perf_counter_ns()
    with ThreadPoolExecutor(threads) as pool:
        for i, (idx, row, stats) in enumerate(pool.map(solve_one, range(n))):
            if row is not None:
                best[i, idx] = row
                start_energies += stats["polished_start_energies"]
                chosen += stats["starts_chosen"]
    t2 = time.perf_counter_ns()
    energies = problem.qubo_energies(best)
    warm_energies = problem.qubo_energies(warm)
    worse = energies > warm_energies
    best[worse], energies[worse] = warm[worse], warm_energies[worse]  # float ties only
    info = {"timing": {"preprocessing_ns": t1 - t0, "sampling_ns": t2 - t1,
                       "postprocessing_ns": time.perf_counter_ns() - t2},
            "seed": seed, "device": device, "params": params,
            "per_neuron": True, "polished_start_energies": start_energies.tolist(), "starts_chosen": chosen.tolist()}
    return LayerSample(best, energies, info)
