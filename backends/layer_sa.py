"""``layer-sa``: simulated annealing of all neurons of a layer at once over the shared Hessian.

Every neuron's rounding QUBO has the quadratic matrix ``2 d_j d_l H_jl`` with the layer's one ``H``
(ARCHITECTURE.md §1), so the solver keeps ``H`` once and, per neuron and read, only a state row and its field
``H (d ∘ v)`` (one GEMM for all rows at the start, one row of ``H`` per accepted flip after). Algorithm:

1. **Starts**: the warm start (GPTQ restricted to floor/ceil, or ``initial_states``) and RTN (clipped to
   floor/ceil), each polished by greedy descent; each neuron keeps the better of the two.
2. **Reheat anneal**: ``num_reads`` rows per neuron start from that local minimum and run ``num_sweeps``
   Metropolis sweeps of single flips and *pair flips* (each coordinate with its ``pairs`` most correlated
   inputs: rounding one pixel up and its neighbour down crosses the ridges single flips cannot), under a
   geometric schedule derived from each neuron's single-flip costs at the start (:func:`beta_schedule`).
3. **Polish** each read greedily, recompute the energies in float64 and keep each neuron's best (never worse
   than the warm start).

Runs in a numba kernel, rows in parallel threads, each with its own seeded generator (deterministic for a
seed, whatever the thread count); with a GPU (``device``), in torch on CUDA (:mod:`._layer_torch`: the same
starts, schedule and polish, all rows updated in parallel one coordinate at a time). It is also a plain
``dimod.Sampler`` for single BQMs.
"""

from __future__ import annotations

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dimod
import numpy as np

from qannealq.baselines import gptq_restricted, rtn
from qannealq.errors import BackendUnavailableError, InvalidArgumentError
from qannealq.formulation import LayerProblem
from qannealq.contract import LayerSample, draw_seed

from ._layer_dense import DenseQubos, beta_schedule, pair_partners
from ._layer_kernel import anneal_rows

__all__ = ["LayerSASampler"]

_DEFAULTS = {"num_reads": None, "num_sweeps": None, "pairs": 4, "hot_acceptance": 1e-9, "ladder_acceptance": 0.3,
             "cold_acceptance": 1e-3, "beta_range": None, "polish_sweeps": 200, "rtn_start": True,
             "num_threads": None, "device": "auto"}
_DEVICES = ("auto", "cpu", "cuda", "torch-cpu")


def _check(params: dict[str, Any]) -> None:
    for name in ("num_reads", "num_sweeps", "pairs", "polish_sweeps", "num_threads"):
        value = params[name]
        low = 1 if name in ("num_reads", "num_threads") else 0
        if value is None and name in ("num_reads", "num_sweeps", "num_threads"):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InvalidArgumentError(f"{name}={value!r} must be an integer >= {low}")
    device = params["device"]
    if not isinstance(device, str) or not (device in _DEVICES or re.fullmatch(r"cuda:\d+", device)):
        raise InvalidArgumentError(f"device={device!r} must be one of {list(_DEVICES)} or 'cuda:<index>'")
    for name in ("hot_acceptance", "ladder_acceptance", "cold_acceptance"):
        if not 0 < params[name] < 1:
            raise InvalidArgumentError(f"{name}={params[name]!r} must be a probability within (0, 1)")


def effort(params: dict[str, Any], m: int) -> tuple[int, int]:
    """``(num_reads, num_sweeps)``; where None, scaled to the size ``m`` (small problems are cheap and rugged).

    ``num_reads = clip(2^25 / m³, 2, 128)``, ``num_sweeps = clip(2^32 / m⁴, 8, 256)``: 2 x 8 on a 785-input
    MNIST layer, 15 x 15 at m = 129, 122 x 240 on 65-variable digits neurons, 128 x 256 below that.
    """
    m = max(int(m), 1)
    reads = params["num_reads"] if params["num_reads"] is not None else np.clip(2**25 // m**3, 2, 128)
    sweeps = params["num_sweeps"] if params["num_sweeps"] is not None else np.clip(2**32 // m**4, 8, 256)
    return int(reads), int(sweeps)


def hot_ladder(params: dict[str, Any], reads: int) -> np.ndarray:
    """Hot-end acceptance of each read: the first two reheat cold, the others climb to ``ladder_acceptance``."""
    lo, hi = float(params["hot_acceptance"]), float(params["ladder_acceptance"])
    ladder = np.geomspace(lo, max(hi, lo), max(reads - 1, 2))[1:]
    return np.concatenate([[lo, lo], ladder])[:reads] if reads > 2 else np.full(reads, lo)


def anneal_schedule(dense: DenseQubos, params: dict[str, Any], v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the reheat anneal from the polished states ``v`` ``(n, m)``: ``(owner (R,), betas (R, S))``.

    ``num_reads`` rows per problem (problem-major), each with the geometric schedule of :func:`beta_schedule`
    from its problem's single-flip costs at ``v`` and its rung of :func:`hot_ladder`.
    """
    n = v.shape[0]
    reads, sweeps = effort(params, dense.mat.shape[0])
    owner = np.repeat(np.arange(n), reads)
    hot = np.tile(hot_ladder(params, reads), n)
    betas = beta_schedule(dense.single_flip_costs(v)[owner], sweeps, hot, params["cold_acceptance"],
                          params["beta_range"])
    return owner, betas


def resolve_device(device: str) -> str:
    """The device a run uses: ``"cpu"`` (the numba kernel), ``"torch-cpu"`` or a CUDA device (torch).

    ``"auto"`` is CUDA when ``torch.cuda.is_available()``, else ``"cpu"``.

    Raises:
        BackendUnavailableError: ``device`` asks for CUDA and torch sees no CUDA device.
    """
    if device in ("cpu", "torch-cpu"):
        return device
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise BackendUnavailableError(f"device={device!r}: torch {torch.__version__} sees no CUDA device; use "
                                      "device='auto' or 'cpu' (numba), or install a CUDA build of torch")
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise BackendUnavailableError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s)")
    return device


def make_run(dense: DenseQubos, params: dict[str, Any]) -> tuple["_Run | Any", str]:
    """The run object for ``params["device"]`` (numba :class:`_Run` or torch ``TorchRun``) and the device used."""
    device = resolve_device(params["device"])
    if device == "cpu":
        return _Run(dense, params), device
    from ._layer_torch import TorchRun

    return TorchRun(dense, params, "cpu" if device == "torch-cpu" else device), device


def _row_seeds(seed: int, rows: int) -> np.ndarray:
    return np.random.SeedSequence(seed).generate_state(rows, np.uint64) | np.uint64(1)


class _Run:
    """One solve of a :class:`DenseQubos`: the shared inputs of both kernel calls."""

    def __init__(self, dense: DenseQubos, params: dict[str, Any]) -> None:
        self.dense, self.params = dense, params
        self.diag = dense.diag
        self.partners, self.couplings = pair_partners(dense.mat, params["pairs"])
        counts = dense.free.sum(axis=1)
        self.indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.indices = np.nonzero(dense.free)[1].astype(np.int64)
        # Greedy moves must gain more than this (incremental fields drift by rounding; no cycles).
        self.tol = 1e-10 * (np.max(np.abs(dense.lin), axis=1, initial=0.0) + 1e-300)

    def kernel(self, owner: np.ndarray, v: np.ndarray, u: np.ndarray, g: np.ndarray, betas: np.ndarray,
               seeds: np.ndarray) -> np.ndarray:
        """Run :func:`anneal_rows` on row ranges in ``num_threads`` threads; returns the best row states."""
        d = self.dense
        best = v.copy()
        args = (d.mat, self.diag, d.lin, d.steps, d.free, self.partners, self.couplings, self.indptr,
                self.indices, owner, v, u, g, betas, self.tol[owner], seeds.copy(),
                int(self.params["polish_sweeps"]), best)
        threads = max(1, min(int(self.params["num_threads"] or os.cpu_count() or 1), owner.size))
        bounds = np.linspace(0, owner.size, threads + 1).astype(int)
        if threads == 1:
            anneal_rows(*args, 0, owner.size)
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(lambda k: anneal_rows(*args, bounds[k], bounds[k + 1]), range(threads)))
        return best

    def polish(self, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Greedy descent from every start ``(n, m)``; returns the states, ``d ∘ v`` and fields."""
        n = starts.shape[0]
        v = np.where(self.dense.free, starts, 0).astype(np.uint8)
        u = self.dense.steps * v
        g = u @ self.dense.mat
        v = self.kernel(np.arange(n), v, u, g, np.empty((n, 0)), np.ones(n, np.uint64))
        return v, u, g

    def anneal(self, v: np.ndarray, u: np.ndarray, g: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """``num_reads`` reheat anneals per problem from the polished states; returns rows and owners."""
        owner, betas = anneal_schedule(self.dense, self.params, v)
        rows = self.kernel(owner, v[owner], u[owner], g[owner], betas, _row_seeds(seed, owner.size))
        return rows, owner


def _best_per_problem(energies: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Index of the lowest-energy row of each problem (first on ties)."""
    order = np.lexsort((np.arange(owner.size), energies, owner))
    first = np.ones(order.size, bool)
    first[1:] = owner[order][1:] != owner[order][:-1]
    picked = order[first]
    return picked[np.argsort(owner[picked])][:n]


class LayerSASampler(dimod.Sampler):
    """Whole-layer simulated annealing over the shared Hessian (see the module docstring).

    Args:
        **defaults: override the defaults of ``num_reads`` and ``num_sweeps`` (None: scaled to the size, see
            :func:`effort`; 2 reads x 8 sweeps on a 785-input layer), ``pairs`` (4), ``hot_acceptance`` (1e-9),
            ``ladder_acceptance`` (0.3), ``cold_acceptance`` (1e-3), ``beta_range`` (None),
            ``polish_sweeps`` (200), ``rtn_start`` (True), ``num_threads`` (None: one per CPU core) and
            ``device`` ("auto": torch on CUDA when ``torch.cuda.is_available()``, else the numba kernel;
            "cpu": numba; "cuda" or "cuda:<index>": torch on that GPU, required; "torch-cpu": the torch
            implementation on the CPU). ``info["device"]`` records the device used.
    """

    def __init__(self, **defaults: Any) -> None:
        unknown = set(defaults) - set(_DEFAULTS)
        if unknown:
            raise InvalidArgumentError(f"unknown layer-sa options {sorted(unknown)}; known: {sorted(_DEFAULTS)}")
        self.defaults = {**_DEFAULTS, **defaults}
        _check(self.defaults)

    @property
    def parameters(self) -> dict:
        return {**{name: [] for name in _DEFAULTS}, "seed": [], "initial_states": []}

    @property
    def properties(self) -> dict:
        return {"defaults": dict(self.defaults), "whole_layer": True}

    def _params(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        params = {**self.defaults, **{k: v for k, v in kwargs.items() if k in _DEFAULTS and v is not None}}
        _check(params)
        return params

    def sample_layer(self, problem: LayerProblem, initial_states: np.ndarray | None = None,
                     seed: int | None = None, **kwargs: Any) -> LayerSample:
        """Solve every neuron of ``problem``; best assignment ``(n, m)`` and its energy per neuron.

        Args:
            problem: the layer's QUBOs.
            initial_states: warm assignments ``(n, m)`` (default: GPTQ restricted to floor/ceil).
            seed: seed of the anneal (drawn and recorded when None).
            **kwargs: any default named in the class docstring.
        """
        self.remove_unknown_kwargs(**kwargs)
        params = self._params(kwargs)
        seed = draw_seed(seed)
        t0 = time.perf_counter_ns()
        warm = problem.encode(gptq_restricted(problem)) if initial_states is None else np.asarray(initial_states)
        if warm.shape != problem.free.shape or np.any((warm != 0) & (warm != 1)):
            raise InvalidArgumentError(f"initial_states must be a binary array of shape {problem.free.shape} "
                                       f"(problem.encode of grid integers); got shape {warm.shape}")
        warm = np.where(problem.free, warm, 0).astype(np.uint8)
        starts = [warm]
        if params["rtn_start"]:
            starts.append(problem.encode(problem.restrict(rtn(problem))))
        run, device = make_run(DenseQubos.from_problem(problem), params)
        t1 = time.perf_counter_ns()
        best, stats = _solve(run, starts, seed)
        t2 = time.perf_counter_ns()
        energies = problem.qubo_energies(best)
        warm_energies = problem.qubo_energies(warm)
        worse = energies > warm_energies
        best[worse], energies[worse] = warm[worse], warm_energies[worse]  # float ties only
        info = {"timing": {"preprocessing_ns": t1 - t0, "sampling_ns": t2 - t1,
                           "postprocessing_ns": time.perf_counter_ns() - t2},
                "seed": seed, "device": device, "params": params, **stats}
        return LayerSample(best, energies, info)

    def sample(self, bqm: dimod.BinaryQuadraticModel, initial_states: Any = None, seed: int | None = None,
               **kwargs: Any) -> dimod.SampleSet:
        """Anneal one BQM; returns ``num_reads`` samples (the best of each read)."""
        self.remove_unknown_kwargs(**kwargs)
        from ._layer_single import sample_bqm

        seed = draw_seed(seed)
        return sample_bqm(bqm, self._params(kwargs), initial_states, seed)


def _solve(run: _Run, starts: list[np.ndarray], seed: int) -> tuple[np.ndarray, dict]:
    """Polish each start, anneal from each problem's best polished start, return the best row per problem."""
    n = starts[0].shape[0]
    polished = [run.polish(s) for s in starts]
    start_e = np.stack([run.dense.energies(p[0]) for p in polished])
    which = np.argmin(start_e, axis=0)
    chosen = [np.stack([p[k] for p in polished])[which, np.arange(n)] for k in range(3)]
    rows, owner = run.anneal(*chosen, seed)
    all_rows = np.concatenate([chosen[0], rows])
    all_owner = np.concatenate([np.arange(n), owner])
    pick = _best_per_problem(run.dense.energies(all_rows, all_owner), all_owner, n)
    stats = {"polished_start_energies": start_e.sum(axis=1).tolist(),
             "starts_chosen": np.bincount(which, minlength=len(starts)).tolist()}
    return all_rows[pick].copy(), stats
