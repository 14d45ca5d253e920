"""Importing qannealq shortens OpenBLAS's spin (``OPENBLAS_THREAD_TIMEOUT``) unless the user set it, before numpy
loads OpenBLAS: each benchmark imports it first."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import qannealq

PROBE = ("import os, sys, qannealq; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'), 'numpy' in sys.modules); "
         "qannealq.quantize_model; print('numpy' in sys.modules)")


def _probe(env: dict) -> list[str]:
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                          check=True).stdout.split()


def test_importing_qannealq_sets_a_short_spin_unless_set():
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    assert _probe(env) == [qannealq.BLAS_SPIN, "False", "True"]  # numpy loads with the first public name used
    assert _probe({**env, "OPENBLAS_THREAD_TIMEOUT": "12"}) == ["12", "False", "True"]


def test_every_timing_benchmark_imports_qannealq_before_numpy():
    """Where numpy (or numba, torch, scipy, which load it) came first, OpenBLAS would keep its default spin."""
    first_heavy = re.compile(r"^(import|from) (numpy|numba|torch|scipy|sklearn)\b", re.M)
    ours = re.compile(r"^(import|from) (qannealq|qpu_quality)\b", re.M)
    for path in sorted(Path(__file__).resolve().parents[1].joinpath("benchmarks").glob("*.py")):
        text = path.read_text()
        heavy = first_heavy.search(text)
        if heavy is None or path.name in ("_threads.py", "results_tables.py"):  # no timings there
            continue
        mine = ours.search(text)
        assert mine is not None and mine.start() < heavy.start(), f"{path.name} loads numpy before qannealq"


def test_blas_threads_limits_numpy_and_scipy_blas_and_restores_them():
    """``qannealq._pool.blas_threads`` (one kept threadpoolctl controller) limits both BLAS libraries the solvers
    call, numpy's and scipy's, inside its block and restores their counts after; None leaves them alone."""
    import numpy  # noqa: F401
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_info, threadpool_limits

    from qannealq._pool import blas_threads

    def counts() -> dict[str, int]:  # numpy's and scipy's own OpenBLAS (others, e.g. qiskit-aer's, may be loaded)
        return {lib["filepath"]: lib["num_threads"] for lib in threadpool_info()
                if lib["user_api"] == "blas" and re.search(r"[/\\](numpy|scipy)\.libs[/\\]", lib["filepath"])}

    with threadpool_limits(2, user_api="blas"):
        before = counts()
        assert len(before) == 2 and set(before.values()) == {2}
        with blas_threads(1):
            assert set(counts().values()) == {1}
            with blas_threads(None):
                assert set(counts().values()) == {1}
        assert counts() == before


def test_a_whole_layer_solve_of_a_small_layer_runs_on_one_blas_thread(monkeypatch, no_warm_up):
    """``quantize_layer`` runs a whole-layer solver's warm start and search (``layer-sa``) on one BLAS thread per
    library below :data:`qannealq.baselines.ONE_BLAS_INPUTS` inputs, whatever the caller set, and restores the
    caller's counts after; so does ``layer-sa``'s ``sample_layer`` called directly (its own warm start and search);
    ``fast`` (no beam), a layer of that many inputs, a per-neuron sampler and per-neuron ``H_i`` (the relu-aware
    objective) keep the caller's."""
    import numpy as np
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_info, threadpool_limits

    from helpers import random_layer
    from qannealq import baselines, quantize_layer, solve
    from qannealq.backends import get_sampler, layer_sa
    from qannealq.grid import make_grid
    from qannealq.weighted import WeightedLayerStats, build_weighted_problem

    def counts() -> set[int]:
        return {lib["num_threads"] for lib in threadpool_info()
                if lib["user_api"] == "blas" and re.search(r"[/\\](numpy|scipy)\.libs[/\\]", lib["filepath"])}

    seen: list[tuple[str, set[int]]] = []

    def spy(name: str, fn):
        def wrapped(*args, **kwargs):
            seen.append((name, counts()))
            return fn(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(solve, "warm_start_integers", spy("start", solve.warm_start_integers))
    monkeypatch.setattr(solve, "_solve_qubo", spy("search", solve._solve_qubo))
    monkeypatch.setattr(layer_sa, "warm_start_integers", spy("own start", layer_sa.warm_start_integers))
    monkeypatch.setattr(layer_sa, "_solve", spy("own search", layer_sa._solve))
    problem = random_layer(np.random.default_rng(3), 12, 4, samples=100).problem(3)
    assert problem.num_coordinates < baselines.ONE_BLAS_INPUTS
    with threadpool_limits(2, user_api="blas"):
        quantize_layer(problem, "qubo", get_sampler("layer-sa"), seed=0)
        assert seen == [("start", {1}), ("search", {1}), ("own search", {1})] and counts() == {2}
        seen.clear()
        get_sampler("layer-sa").sample_layer(problem, seed=0)  # directly: its own warm start
        assert seen == [("own start", {1}), ("own search", {1})] and counts() == {2}
        seen.clear()
        quantize_layer(problem, "qubo", get_sampler("layer-sa"), seed=0, effort="fast")  # no beam: the caller's
        assert seen == [("start", {2}), ("search", {2}), ("own search", {2})]
        seen.clear()
        quantize_layer(problem, "qubo", get_sampler("exact"), seed=0)  # per neuron: the caller's
        assert seen == [("start", {2}), ("search", {2})]
        seen.clear()
        layer = random_layer(np.random.default_rng(4), 12, 4, samples=100)  # per-neuron H_i: the caller's
        stats = WeightedLayerStats.from_arrays(layer.x, layer.y, np.where(layer.y > 0, 1.0, 0.0), True)
        weighted = build_weighted_problem(stats, layer.weight, layer.bias, make_grid(layer.weight, layer.bias, 3))
        assert weighted.per_neuron
        get_sampler("layer-sa").sample_layer(weighted, seed=0)
        assert seen[0] == ("own start", {2}) and {name for name, _ in seen[1:]} == {"own search"}  # per neuron
        assert all(c == {2} for _, c in seen) and counts() == {2}
        seen.clear()
        monkeypatch.setattr(baselines, "ONE_BLAS_INPUTS", problem.num_coordinates)  # a layer this wide
        quantize_layer(problem, "qubo", get_sampler("layer-sa"), seed=0)
        assert seen == [("start", {2}), ("search", {2}), ("own search", {2})] and counts() == {2}
