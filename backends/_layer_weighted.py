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
neurons still to begin share it, ``num_threads`` at a time), so the layer ends near its limit. The neurons'
needs differ (by their live inputs and how their anneals go), and a share is set before the later neurons
show what they leave: so the neurons whose share cut their search run again once every neuron has had its
turn, from the same start and seed, sharing the time left in the same way (where it is more than their first
share). A run again that the limit does not cut returns what the run without a limit returns; else the lower
of the two. ``time_limited`` is true only where a returned row comes from a search the limit cut (or the
limit cut the layer's warm start): a limit that the layer meets returns its states without a limit, whatever
the timing; ``descended`` where any neuron's search was the tight path's greedy descent, as on a whole layer.
The layer's trace is its summed energy after each neuron's run.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class _Result:
    """One neuron's run: its variables, best row, search stats and energy, whether the limit cut it, its share."""

    idx: np.ndarray
    row: np.ndarray
    stats: dict
    energy: float
    cut: bool
    share: float


class _Shares:
    """The clocks of ``count`` neuron runs under the layer's ``clock``: each the time the layer has left when it
    begins over the runs still to begin, ``threads`` of them running at once (no limit where the layer has
    none)."""

    def __init__(self, clock: Clock, count: int, threads: int) -> None:
        self.clock, self.count, self.threads = clock, count, threads
        self.begun, self.lock = 0, threading.Lock()

    def next(self) -> Clock:
        if self.clock.limit is None:
            return Clock()
        with self.lock:
            left = self.count - self.begun
            self.begun += 1
        return Clock(max(self.clock.remaining(), 0.0) * min(self.threads, left) / left)


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

    def solve_one(i: int, shares: _Shares, before: "_Result | None" = None) -> "_Result | None":
        dense, idx = neuron_qubo(problem, i)
        own = shares.next()
        if idx.size == 0 or (before is not None and own.limit <= before.share):
            return None  # no variables; or run again with no more time than it had: cut again
        run = make_run(dense, single, own)[0]
        row, stats = solve(run, [s[i, idx][None, :] for s in starts], int(seeds[i]))
        return _Result(idx, row[0], stats, float(dense.energies(row[:1])[0]), run.clock.cut, own.limit)

    results: list[_Result | None] = [None] * n
    problem.linear, problem.offsets  # formed once, before the threads
    warm_energies = problem.qubo_energies(warm)
    current = warm_energies.copy()  # each neuron's lowest energy so far, for the layer's trace
    clock.record(float(current.sum()))

    def keep(i: int, result: "_Result | None") -> int:
        """A run not cut is the unlimited run's result: it replaces a cut one; of two cut ones, the lower. 1 where
        a run was kept or not, else 0."""
        if result is None:
            return 0
        if results[i] is None or not result.cut or result.energy < results[i].energy:
            results[i] = result
        current[i] = min(current[i], result.energy)
        clock.record(float(current.sum()))
        return 1

    t1 = time.perf_counter_ns()
    with ThreadPoolExecutor(threads) as pool:
        first = _Shares(clock, n, threads)
        for i, result in enumerate(pool.map(lambda i: solve_one(i, first), range(n))):
            keep(i, result)
        again = [i for i, r in enumerate(results) if r is not None and r.cut] if clock.limit is not None else []
        retry, before = _Shares(clock, len(again), threads), [results[i] for i in again]
        retried = sum(keep(i, result) for i, result in zip(again, pool.map(solve_one, again, [retry] * len(again),
                                                                             before)))
    best = warm.copy()
    start_energies, chosen = np.zeros(len(starts)), np.zeros(len(starts), np.int64)
    descended = False
    for i, result in enumerate(results):
        if result is not None:
            best[i, result.idx] = result.row
            start_energies += result.stats["polished_start_energies"]
            chosen += result.stats["starts_chosen"]
            descended |= bool(result.stats.get("descended", False))
            clock.cut |= result.cut
    t2 = time.perf_counter_ns()
    energies = problem.qubo_energies(best)
    worse = energies > warm_energies
    best[worse], energies[worse] = warm[worse], warm_energies[worse]  # float ties only
    clock.finish(float(energies.sum()))
    info = {"timing": {"preprocessing_ns": t1 - t0, "sampling_ns": t2 - t1,
                       "postprocessing_ns": time.perf_counter_ns() - t2},
            "seed": seed, "device": device, "params": params, "effort": params["effort"],
            "per_neuron": True, "polished_start_energies": start_energies.tolist(), "starts_chosen": chosen.tolist(),
            "time_limited": clock.cut, "late": late, "descended": descended, "retried": retried,
            "trace": {"seconds": [t for t, _ in clock.trace], "energy": [e for _, e in clock.trace]}}
    return LayerSample(best, energies, info)
