"""Randomized GPTQ passes (qannealq._gptq_sampling) and the warm start that keeps each neuron's best of them."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import GRIDS, random_layer
from qannealq import InvalidArgumentError
from qannealq._gptq_sampling import sample_passes
from qannealq.baselines import (BASELINES, GPTQ_PERCDAMP, RANK_DEFICIENT_PERCDAMP, _pivot_factor, rank_deficient,
                                warm_start_integers)


def _passes(problem, k, noise, seed, threads=None, percdamp=GPTQ_PERCDAMP):
    """``k`` passes of ``sample_passes`` at one noise on the pivot-order factor, back in input order:
    ``(v (k, n, m), score (k, n))``."""
    perm, factor = _pivot_factor(problem.hessian, problem.dead, percdamp)
    dead = problem.dead
    damp = percdamp * float(np.mean(np.where(dead, 1.0, np.diag(problem.hessian))))
    grad = np.where(dead, 0.0, problem.weights) @ problem.hessian - problem.stats.cross
    v, score = sample_passes(problem.weights[:, perm], problem.steps[:, perm], problem.base[:, perm],
                             problem.free[:, perm], float(problem.grid.offset), dead[perm], factor, damp,
                             grad[:, perm], np.full(k, noise), seed, block=8, threads=threads)
    out = np.empty_like(v)
    out[:, :, perm] = v
    return out, score


@pytest.mark.parametrize("bits", [2, 4])
def test_a_pass_without_noise_is_gptq_restricted_and_its_score_is_the_energy(bits):
    """Noise 0: every pass is GPTQ-restricted in pivot order (float32 lazy updates included); the score each pass
    accumulates, plus ``E(w)``, is the QUBO energy of its state (targets with noise: ``c != H w``)."""
    problem = random_layer(np.random.default_rng(bits), 30, 6, samples=200).problem(bits)
    v, score = _passes(problem, 2, 0.0, seed=1)
    reference = problem.encode(BASELINES["gptq-restricted-pivot"](problem))
    np.testing.assert_array_equal(v[0], reference)
    np.testing.assert_array_equal(v[1], reference)
    w0 = np.where(problem.dead, 0.0, problem.weights)
    np.testing.assert_allclose(score + problem.errors(w0), [problem.qubo_energies(s) for s in v], rtol=1e-5)


@pytest.mark.parametrize("bits,granularity,int1", GRIDS)
def test_passes_on_every_grid_reproduce_gptq_and_score_their_energy(bits, granularity, int1):
    """Every grid (per-tensor and per-channel steps, both int1 grids, clipped weights): the unrandomized pass is
    GPTQ-restricted, and every pass's score plus ``E(w)`` is its QUBO energy (to float32 updates: at int8 the
    error is small against the weights, 1e-5 relative)."""
    problem = random_layer(np.random.default_rng(bits), 24, 5, samples=150).problem(bits, granularity, int1)
    v, score = _passes(problem, 1, 0.0, seed=0)
    np.testing.assert_array_equal(v[0], problem.encode(BASELINES["gptq-restricted-pivot"](problem)))
    noisy, noisy_score = _passes(problem, 3, 0.05, seed=1)
    w0 = np.where(problem.dead, 0.0, problem.weights)
    for states, scores in ((v, score), (noisy, noisy_score)):
        np.testing.assert_allclose(scores + problem.errors(w0), [problem.qubo_energies(s) for s in states],
                                   rtol=1e-4 if bits == 8 else 1e-5)


def test_noisy_passes_differ_score_exactly_and_do_not_depend_on_threads():
    problem = random_layer(np.random.default_rng(7), 40, 8, samples=300).problem(3)
    v, score = _passes(problem, 6, 0.05, seed=3, threads=1)
    assert np.all(v[:, ~problem.free] == 0), "a fixed coordinate was rounded up"
    assert len({s.tobytes() for s in v}) > 1, "the passes are all alike"
    w0 = np.where(problem.dead, 0.0, problem.weights)
    np.testing.assert_allclose(score + problem.errors(w0), [problem.qubo_energies(s) for s in v], rtol=1e-5)
    again, again_score = _passes(problem, 6, 0.05, seed=3, threads=2)
    np.testing.assert_array_equal(again, v)
    np.testing.assert_array_equal(again_score, score)
    other, _ = _passes(problem, 6, 0.05, seed=4)
    assert not np.array_equal(other, v)


@pytest.mark.parametrize("name", ["gptq-restricted-pivot", "gptq-restricted", "gptq-act"])
def test_warm_start_passes_keep_each_neurons_best_and_never_lose_to_gptq(name):
    """With passes, each neuron's warm start is the lowest-energy state of GPTQ's start and the passes: never
    above GPTQ's, below it on some neurons, the same for the same seed; on a rank-deficient ``H`` each of the
    two dampings gets its passes."""
    rng = np.random.default_rng(11)
    for problem in (random_layer(rng, 40, 10, samples=300).problem(3),
                    random_layer(rng, 40, 10, samples=25).problem(3)):
        plain = warm_start_integers(problem, name)
        warm = warm_start_integers(problem, name, passes=8, seed=5)
        e_plain, e_warm = (problem.qubo_energies(problem.encode(ints)) for ints in (plain, warm))
        assert np.all(e_warm <= e_plain)
        assert np.any(e_warm < e_plain)
        np.testing.assert_array_equal(warm_start_integers(problem, name, passes=8, seed=5), warm)
    assert rank_deficient(problem)
    restricted = name != "gptq-act"
    best = np.min([problem.qubo_energies(problem.encode(ints if restricted else problem.restrict(ints)))
                   for ints in (BASELINES[name](problem, percdamp=d) for d in (GPTQ_PERCDAMP,
                                                                               RANK_DEFICIENT_PERCDAMP))], axis=0)
    assert np.all(e_warm <= best + 1e-12)


def test_warm_start_passes_refuse_bad_counts_and_skip_rtn():
    problem = random_layer(np.random.default_rng(2), 12, 3).problem(4)
    for bad in (-1, 1.5, True, "4"):
        with pytest.raises(InvalidArgumentError, match="passes"):
            warm_start_integers(problem, passes=bad)
    with pytest.raises(InvalidArgumentError, match="unknown"):
        warm_start_integers(problem, "gptq-sideways")
    np.testing.assert_array_equal(warm_start_integers(problem, "rtn", passes=4),
                                  warm_start_integers(problem, "rtn"))
