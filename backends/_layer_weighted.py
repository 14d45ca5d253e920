"""``layer-sa`` on problems with one ``H_i`` per neuron (:mod:`qannealq.weighted`): one small run per neuron.

A per-neuron problem has no shared matrix, so each neuron is its own :class:`._layer_dense.DenseQubos` with
``n = 1`` and ``M = H_i`` restricted to the neuron's variables (fixed coordinates have ``v = 0`` and only
enter through the linear terms and the offset, as in its BQM), solved by the same run objects as a whole
layer (:func:`._layer_run.make_run`: numba or torch) and the same search (``layer_sa``'s, passed in as
``solve``: polish the starts, anneal from the best, keep the best row). Neuron i gets the i-th seed drawn from
the layer's seed and neurons run in ``num_threads`` threads (numba device; each run on one thread), so a seed
gives the same result whatever the thread count; the final energies are recomputed
in float64 from the samples (``problem.qubo_energies``) and a neuron never ends worse than its warm start.
Under ``time_limit`` each neuron's run gets an even share of the time the layer has left when it begins (the
neurons still to begin share it, ``num_threads`` at a time), so the layer ends near its limit; the layer's
trace is its summed energy after each neuron, and ``time_limited`` says whether the limit shortened any.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from qannealq._pool import thread_count
from qannealq.contract import LayerSample
from qannealq.formulation import submatrix

from ._layer_dense import DenseQubos
from ._layer_run import make_run, resolve_device
from ._layer_schedule import Clock

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
                      t0: int | None = None, clock: Clock | None = None, late: bool = False) -> LayerSample:
    """``layer-sa``'s :class:`LayerSample` of a per-neuron problem.

    Args:
        problem: a problem with ``per_neuron`` true (``neuron_hessian(i)``).
        warm: the warm assignments ``(n, m)`` (fixed entries zero); ``starts``: warm first, then the others.
        params: the checked ``layer-sa`` parameters.
        seed: the layer's seed.
        solve: ``layer-sa``'s search, ``solve(run, starts, seed) -> (best rows, stats)``, run on each neuron.
        t0: ``perf_counter_ns`` when the call began (for the timing; default now).
        clock: the layer's time limit and trace (default: no limit); ``late``: the limit left the search the
            polish alone (``params`` say so too), recorded in ``info``.
    """
    t0 = time.perf_counter_ns() if t0 is None else t0
    n = problem.num_neurons
    seeds = np.random.SeedSequence(seed).generate_state(n) & 0x7FFFFFFF
    device = resolve_device(params["device"])
    threads = thread_count(params["num_threads"]) if device == "cpu" else 1
    single = {**params, "num_threads": 1} if threads > 1 else params  # neurons in parallel, each run on one
    clock = Clock() if clock is None else clock
    begun, lock = [0], threading.Lock()

    def own_clock() -> Clock | None:
        """The next neuron's share of the time left: that time over the neurons still to begin, ``threads`` of
        them running at once."""
        if clock.limit is None:
            return None
        with lock:
            left = n - begun[0]
            begun[0] += 1
        return Clock(max(clock.remaining(), 0.0) * min(threads, left) / left)

    def solve_one(i: int) -> tuple[np.ndarray, np.ndarray | None, dict | None, float, bool]:
        dense, idx = neuron_qubo(problem, i)
        own = own_clock()
        if idx.size == 0:
            return idx, None, None, 0.0, False
        run = make_run(dense, single, own)[0]
        row, stats = solve(run, [s[i, idx][None, :] for s in starts], int(seeds[i]))
        return idx, row[0], stats, float(dense.energies(row[:1])[0]), run.clock.cut

    best = warm.copy()
    start_energies, chosen = np.zeros(len(starts)), np.zeros(len(starts), np.int64)
    problem.linear, problem.offsets  # formed once, before the threads
    warm_energies = problem.qubo_energies(warm)
    current = warm_energies.copy()  # each neuron's energy so far, for the layer's trace
    clock.record(float(current.sum()))
    t1 = time.perf_counter_ns()
    with ThreadPoolExecutor(threads) as pool:
        for i, (idx, row, stats, energy, cut) in enumerate(pool.map(solve_one, range(n))):
            if row is not None:
                best[i, idx] = row
                start_energies += stats["polished_start_energies"]
                chosen += stats["starts_chosen"]
                current[i] = min(current[i], energy)
                clock.record(float(current.sum()))
                clock.cut |= cut
    t2 = time.perf_counter_ns()
    energies = problem.qubo_energies(best)
    worse = energies > warm_energies
    best[worse], energies[worse] = warm[worse], warm_energies[worse]  # float ties only
    clock.finish(float(energies.sum()))
    info = {"timing": {"preprocessing_ns": t1 - t0, "sampling_ns": t2 - t1,
                       "postprocessing_ns": time.perf_counter_ns() - t2},
            "seed": seed, "device": device, "params": params, "effort": params["effort"],
            "per_neuron": True, "polished_start_energies": start_energies.tolist(), "starts_chosen": chosen.tolist(),
            "time_limited": clock.cut, "late": late,
            "trace": {"seconds": [t for t, _ in clock.trace], "energy": [e for _, e in clock.trace]}}
    return LayerSample(best, energies, info)
