"""The relu-aware objective (qannealq.weighted): the weighted energy identity against raw data, m = 1 giving the
plain problem exactly, which layers are weighted, per-neuron GPTQ and layer-sa, the memory ceiling, the pipeline."""

from __future__ import annotations

import logging
import re

from dataclasses import replace

import dimod
import numpy as np
import pytest
import torch

from backend_fixtures import optimum, tiny_digits
from helpers import GRIDS, random_layer
from qannealq import InvalidArgumentError, LayerStats, build_problem, make_grid, quantize_layer
from qannealq.backends import get_sampler
from qannealq.baselines import ORDERS, _pivot_factor, gptq, gptq_restricted, warm_start_integers
from qannealq.calibration import as_calibration_tensor
from qannealq.pipeline import quantize_model
from qannealq.weighted import (Objective, WeightedLayerProblem, WeightedLayerStats, build_weighted_problem,
                               make_objective)
from qannealq.weighted_calibration import collect_weighted_stats, relu_fed_layers


def _weighted(seed: int, f: int = 20, n: int = 5, bias: bool = True, binary: bool = True):
    """A random layer, sample weights (ReLU masks, or fractional with an inactive weight) and its stats."""
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, f, n, bias=bias)
    weights = np.where(layer.y > 0, 1.0, 0.0 if binary else 0.25)
    weights[:, -1] = rng.random(len(weights))  # one neuron with arbitrary weights >= 0
    return layer, weights, WeightedLayerStats.from_arrays(layer.x, layer.y, weights, bias)


def _direct(layer, weights, values: np.ndarray) -> np.ndarray:
    """Σ_s m_si (y_si − x̃_sᵀ q_i)² / N per neuron, straight from the data."""
    return np.sum(weights * (layer.y - layer.x_aug @ values.T) ** 2, axis=0) / len(layer.y)


@pytest.mark.parametrize("bits, granularity, int1", GRIDS)
@pytest.mark.parametrize("binary, bias", [(True, True), (False, False)])
def test_weighted_energy_identity_against_raw_data(bits, granularity, int1, binary, bias):
    layer, weights, stats = _weighted(bits + 100 * binary, bias=bias, binary=binary)
    problem = build_weighted_problem(stats, layer.weight, layer.bias, make_grid(layer.weight, layer.bias, bits,
                                                                                  granularity, int1))
    assert isinstance(problem, WeightedLayerProblem) and problem.per_neuron
    rng = np.random.default_rng(7)
    v = np.where(problem.free, rng.integers(0, 2, problem.free.shape), 0)
    _, values = problem.decode_layer(v)
    direct = _direct(layer, weights, values)
    np.testing.assert_allclose(problem.qubo_energies(v), direct, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(problem.errors(values), direct, rtol=1e-12, atol=1e-14)
    for i in range(problem.num_neurons):
        idx = problem.variables(i)
        energy = problem.neuron_bqm(i).energy(dict(zip(idx.tolist(), v[i, idx].tolist())))
        assert energy == pytest.approx(direct[i], rel=1e-9, abs=1e-12)


def test_per_neuron_terms_equal_the_plain_formulation_on_reweighted_data():
    """Neuron i's BQM equals the plain BQM built from the data scaled by sqrt(m_i) (an independent route)."""
    layer, weights, stats = _weighted(3, f=15, n=4)
    grid = make_grid(layer.weight, layer.bias, 2, "tensor", "sign")
    problem = build_weighted_problem(stats, layer.weight, layer.bias, grid)
    for i in range(problem.num_neurons):
        root = np.sqrt(weights[:, i])[:, None]
        plain = build_problem(LayerStats.from_arrays(root * layer.x_aug, root * layer.y, bias=False), layer.weight,
                              layer.bias, grid)
        np.testing.assert_array_equal(problem.free[i], plain.free[i])
        np.testing.assert_allclose(problem.neuron_hessian(i), plain.hessian, rtol=1e-12, atol=1e-15)
        a, b = problem.neuron_bqm(i), plain.neuron_bqm(i)
        assert a.variables == b.variables and a.offset == pytest.approx(b.offset, rel=1e-10)
        for v, bias in b.linear.items():
            assert a.linear[v] == pytest.approx(bias, rel=1e-9, abs=1e-12)
        for (u, v), bias in b.quadratic.items():
            assert a.quadratic[u, v] == pytest.approx(bias, rel=1e-9, abs=1e-12)
        for method in (gptq, gptq_restricted):  # the per-neuron baseline runs on this neuron's H_i
            np.testing.assert_array_equal(method(problem)[i], method(plain)[i])


def test_unit_weights_give_the_plain_problem_exactly():
    layer, _, _ = _weighted(5)
    ones = WeightedLayerStats.from_arrays(layer.x, layer.y, np.ones_like(layer.y))
    grid = make_grid(layer.weight, layer.bias, 2, "tensor", "sign")
    plain = build_problem(LayerStats.from_arrays(layer.x, layer.y), layer.weight, layer.bias, grid)
    same = build_weighted_problem(ones, layer.weight, layer.bias, grid)
    assert not same.per_neuron
    for i in range(plain.num_neurons):
        assert same.neuron_bqm(i) == plain.neuron_bqm(i)
    sampler = get_sampler("layer-sa")
    a = quantize_layer(same, "qubo", sampler, seed=3)
    b = quantize_layer(plain, "qubo", sampler, seed=3)
    np.testing.assert_array_equal(a.integers, b.integers)
    np.testing.assert_array_equal(a.errors, b.errors)
    # forced through the per-neuron formulation, m = 1 still gives the plain BQMs and baselines
    forced = WeightedLayerProblem(ones, grid, plain.weights, plain.steps, plain.base, plain.free, True)
    for i in range(plain.num_neurons):
        np.testing.assert_allclose(forced.neuron_hessian(i), plain.hessian, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(forced.linear[i], plain.linear[i], rtol=1e-9, atol=1e-12)
    for order in ORDERS:
        np.testing.assert_array_equal(gptq_restricted(forced, order=order), gptq_restricted(plain, order=order))


@pytest.mark.parametrize("order", ["index", "act", "pivot"])
def test_each_neurons_inputs_are_taken_in_the_order_of_its_own_hessian(order):
    """Per-neuron ``H_i``: act- and pivot-order GPTQ take neuron ``i``'s inputs in the order of its own ``H_i``
    (by decreasing ``diag(H_i)``; by the pivoted factorization of ``H_i``), so each row equals GPTQ of a
    one-neuron plain problem on ``H_i`` in that order; the orders differ between neurons. In index order too,
    each row is GPTQ of its one-neuron problem (on its own factor)."""
    layer, weights, stats = _weighted(7, f=16, n=4, binary=False)
    grid = make_grid(layer.weight, layer.bias, 3, "tensor", "sign")
    problem = build_weighted_problem(stats, layer.weight, layer.bias, grid)
    assert problem.per_neuron
    if order != "index":
        orders = [np.argsort(-np.diag(problem.neuron_hessian(i)), kind="stable") if order == "act" else
                  _pivot_factor(problem.neuron_hessian(i), problem.dead[i], 0.01)[0]
                  for i in range(problem.num_neurons)]
        assert len({tuple(o) for o in orders}) > 1  # the test means something
    for fn in (gptq, gptq_restricted):
        ordered = fn(problem, order=order)
        assert order == "index" or not np.array_equal(ordered, fn(problem))
        for i in range(problem.num_neurons):
            h = problem.neuron_hessian(i)
            one = replace(build_problem(LayerStats.from_arrays(layer.x, layer.y), layer.weight, layer.bias, grid),
                          stats=LayerStats(h, np.zeros((1, h.shape[0])), np.zeros(1), len(layer.y)),
                          weights=problem.weights[i:i + 1], steps=problem.steps[i:i + 1],
                          base=problem.base[i:i + 1], free=problem.free[i:i + 1])
            np.testing.assert_array_equal(ordered[i], fn(one, order=order)[0])
    problem.encode(gptq_restricted(problem, order=order))  # floor/ceil only: raises otherwise


def _one_neuron(layer, problem, i: int):
    """Neuron ``i`` of a per-neuron ``problem`` as a one-neuron plain problem on its ``H_i`` (and its ``g_i``)."""
    h = problem.neuron_hessian(i)
    one = replace(build_problem(LayerStats.from_arrays(layer.x, layer.y), layer.weight, layer.bias, problem.grid),
                  stats=LayerStats(h, problem.stats.cross[i:i + 1], np.zeros(1), len(layer.y)),
                  weights=problem.weights[i:i + 1], steps=problem.steps[i:i + 1], base=problem.base[i:i + 1],
                  free=problem.free[i:i + 1])
    assert one.dead.tolist() == problem.dead[i].tolist() and not one.per_neuron
    return one


@pytest.mark.parametrize("name", ["gptq-restricted", "gptq-restricted-pivot"])
def test_each_neurons_beam_runs_on_its_own_hessian(name):
    """Per-neuron ``H_i`` get the warm-start beam: each row is the beam start of a one-neuron plain problem on
    ``H_i`` (GPTQ's damping below int4, where the plain beam takes it too, and GPTQ-restricted's start competing),
    so never worse than that start; the optimum at a width of ``2^free``; with several paths, copies of the
    start (the growth passed on)."""
    small_layer, _, small_stats = _weighted(11, f=16, n=4, binary=False)
    small = build_weighted_problem(small_stats, small_layer.weight, small_layer.bias,
                                   make_grid(small_layer.weight, small_layer.bias, 3, "tensor", "sign"))
    wide_layer, _, wide_stats = _weighted(12, f=150, n=4, binary=False)  # three blocks of the beam
    wide = build_weighted_problem(wide_stats, wide_layer.weight, wide_layer.bias,
                                  make_grid(wide_layer.weight, wide_layer.bias, 2, "tensor", "sign"))
    won = set()
    for layer, problem in ((small_layer, small), (wide_layer, wide)):
        assert problem.per_neuron
        plain = warm_start_integers(problem, name)
        for width in (1, 4):
            start = warm_start_integers(problem, name, beam=width)
            assert width == 1 or not np.array_equal(start, plain)  # the beam changed something
            energy = problem.qubo_energies(problem.encode(start))
            assert np.all(energy <= problem.qubo_energies(problem.encode(plain)))
            won |= {(width, problem.weights.shape[1]) for i in range(problem.num_neurons)
                    if np.array_equal(start[i], plain[i])}
            for i in range(problem.num_neurons):
                np.testing.assert_array_equal(start[i], warm_start_integers(_one_neuron(layer, problem, i), name,
                                                                            beam=width)[0])
    assert won  # somewhere the start is GPTQ-restricted's own (where it competes), and the rows still matched
    full = warm_start_integers(small, name, beam=2 ** 16)
    exact = small.qubo_energies(small.encode(full))
    for i in range(small.num_neurons):
        assert exact[i] == pytest.approx(optimum(small.neuron_bqm(i)), rel=1e-9, abs=1e-12)
    grown = warm_start_integers(wide, name, beam=8, growth=8.0)
    assert not np.array_equal(grown, warm_start_integers(wide, name, beam=8))
    np.testing.assert_array_equal(warm_start_integers(wide, name, beam=8, paths=3, growth=8.0),
                                  np.repeat(grown[:, None], 3, axis=1))


def test_the_beam_forms_no_factor_of_its_own_where_none_is_kept(monkeypatch):
    """Where ``memory_limit`` keeps no factor, the per-neuron beam start still forms each neuron's factor once
    (GPTQ-restricted's own start and the beam share it), and its result does not depend on what was kept."""
    from qannealq import baselines

    layer, _, stats = _weighted(13, f=40, n=6, binary=False)
    tight = replace(stats, objective=Objective("relu-aware", 0.0, stats.nbytes + 100), _kept=type(stats._kept)())
    grid = make_grid(layer.weight, layer.bias, 2, "tensor", "sign")
    roomy, starved = (build_weighted_problem(s, layer.weight, layer.bias, grid) for s in (stats, tight))
    calls = []
    real = baselines._ordered_factor
    monkeypatch.setattr(baselines, "_ordered_factor", lambda *a, **k: calls.append(1) or real(*a, **k))
    start = warm_start_integers(starved, "gptq-restricted-pivot", beam=8)
    assert len(calls) == starved.num_neurons  # one factorization per neuron, none kept
    assert not any(key[0][0].startswith("gptq") for key in tight._kept)
    np.testing.assert_array_equal(start, warm_start_integers(roomy, "gptq-restricted-pivot", beam=8))


@pytest.mark.parametrize("room", [3.5, 9.2])  # some H_i and no factor; every H_i and some factors
def test_per_neuron_factors_formed_in_threads_keep_what_one_at_a_time_keeps(monkeypatch, room):
    """The per-neuron factors are formed several at a time in threads, and kept in this thread in the order one
    at a time would keep them: the same matrices kept under a ``memory_limit`` that keeps some, the same
    integers."""
    import os

    from qannealq import baselines

    layer, _, stats = _weighted(17, f=40, n=6, binary=False)
    m = stats.inputs.shape[1]
    grid = make_grid(layer.weight, layer.bias, 2, "tensor", "sign")
    results = []
    for cores in (1, 4):
        monkeypatch.setattr(os, "cpu_count", lambda: cores)
        limit = stats.nbytes + int(room * 8 * m * m)
        tight = replace(stats, objective=Objective("relu-aware", 0.0, limit), _kept=type(stats._kept)())
        problem = build_weighted_problem(tight, layer.weight, layer.bias, grid)
        ints = gptq_restricted(problem, order="pivot")
        results.append((ints, set(tight._kept), gptq_restricted(problem, order="pivot")))
    (one, kept_one, again_one), (many, kept_many, again_many) = results
    np.testing.assert_array_equal(one, many)
    np.testing.assert_array_equal(again_one, one)  # from what was kept the second time
    np.testing.assert_array_equal(again_many, one)
    assert kept_one == kept_many
    hessians = sum(key[0] == "hessian" for key in kept_one)
    factors = len(kept_one) - hessians
    assert (hessians, factors) == ((3, 0) if room == 3.5 else (6, 3))  # the test means something


def test_model_with_inactive_weight_one_reproduces_the_paper_objective():
    exp = tiny_digits()
    for calibration in ("float", "sequential"):
        runs = [quantize_model(exp.model, exp.calibration, 2, calibration=calibration, seed=4, **kw)
                for kw in ({}, {"objective": "relu-aware", "inactive_weight": 1.0})]
        assert runs[1].settings["objective"] == "relu-aware" and runs[1].settings["inactive_weight"] == 1.0
        assert runs[1].settings["weighted_layers"] == ["0"] and runs[0].settings["weighted_layers"] == []
        for a, b in zip(*(r.layers for r in runs)):
            np.testing.assert_array_equal(a.integers, b.integers)
            np.testing.assert_array_equal(a.errors, b.errors)


def test_model_errors_are_the_weighted_errors_of_the_activations():
    exp = tiny_digits()
    x = as_calibration_tensor(exp.calibration)
    result = quantize_model(exp.model, exp.calibration, 2, seed=1, objective="relu-aware", inactive_weight=0.0)
    with torch.no_grad():
        y = exp.model[0](x).double()
        y_hat = result.model[0](x).double()
    direct = (((y > 0) * (y - y_hat) ** 2).sum(0) / len(x)).numpy()
    np.testing.assert_allclose(result.layers[0].errors, direct, rtol=1e-5, atol=1e-9)  # float32 forward


def test_inverse_cholesky_is_the_textbook_gptq_factor():
    """GPTQ's factor by one Cholesky and one triangular inverse in reversed order equals the GPTQ paper's form,
    the upper Cholesky factor of the damped ``H⁻¹`` (dead inputs given a unit diagonal)."""
    from qannealq.baselines import _inverse_cholesky

    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 30))
    x[:, [0, 7]] = 0.0
    h = x.T @ x / 200
    dead = np.diag(h) <= 0
    damped = h.copy()
    damped[dead, dead] = 1.0
    damped[np.diag_indices_from(damped)] += 0.01 * np.mean(np.where(dead, 1.0, np.diag(h)))
    textbook = np.linalg.cholesky(np.linalg.inv(damped)).T
    np.testing.assert_allclose(_inverse_cholesky(h, dead, 0.01), textbook, rtol=1e-10, atol=1e-12)


def test_only_linear_layers_feeding_a_relu_are_weighted():
    net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 5), torch.nn.Tanh(),
                              torch.nn.Linear(5, 4), torch.nn.ReLU(inplace=True), torch.nn.Linear(4, 3))
    x = torch.randn(40, 6)
    names = ["0", "2", "4", "6"]
    assert relu_fed_layers(net, x, names) == ["0", "4"]

    class Functional(torch.nn.Module):  # a ReLU called as a function is not seen: plain objective
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(6, 5), torch.nn.Linear(5, 2)

        def forward(self, z):
            return self.b(torch.relu(self.a(z)))

    assert relu_fed_layers(Functional(), x, ["a", "b"]) == []
    result = quantize_model(net, x.numpy(), 3, "gptq", objective="relu-aware")
    assert result.settings["weighted_layers"] == ["0", "4"]
    assert [type(layer).__name__ for layer in result.layers]  # every layer quantized


def test_weights_come_from_the_float_network_in_sequential_mode():
    exp = tiny_digits()
    x = as_calibration_tensor(exp.calibration)
    other = quantize_model(exp.model, exp.calibration, 1, "rtn").model
    objective = Objective("relu-aware", 0.5)
    stats = collect_weighted_stats(other, exp.model, ["0"], x, objective)["0"]
    with torch.no_grad():
        float_pre = exp.model[0](x).double().numpy()
        inputs = x.double().numpy()
    np.testing.assert_array_equal(stats.weights, np.where(float_pre > 0, 1.0, 0.5))
    np.testing.assert_allclose(stats.targets, float_pre, rtol=1e-6)
    np.testing.assert_allclose(stats.inputs[:, :-1], inputs)  # the first layer sees the data either way


def test_layer_sa_reaches_the_exact_optimum_on_17_variable_weighted_neurons():
    exp = tiny_digits()
    stats = collect_weighted_stats(exp.model, exp.model, ["0"], as_calibration_tensor(exp.calibration),
                                   Objective("relu-aware", 0.0))["0"]
    weight, bias = (t.detach().double().numpy() for t in (exp.model[0].weight, exp.model[0].bias))
    problem = build_weighted_problem(stats, weight, bias, make_grid(weight, bias, 3, "tensor", "sign"))
    assert problem.per_neuron and problem.free.sum(axis=1).max() == 17
    sampler = get_sampler("layer-sa")
    sample = sampler.sample_layer(problem, seed=11)
    again = sampler.sample_layer(problem, seed=11, num_threads=1)
    np.testing.assert_array_equal(sample.assignments, again.assignments)  # deterministic, any thread count
    warm = problem.qubo_energies(problem.encode(gptq_restricted(problem)))
    assert np.all(sample.energies <= warm)
    big = [i for i in range(problem.num_neurons) if problem.free[i].sum() == 17][:6]
    for i in big:
        assert sample.energies[i] == pytest.approx(optimum(problem.neuron_bqm(i)), rel=1e-9, abs=1e-12)


def _per_neuron_problem(seed: int = 40, n: int = 8):
    layer = random_layer(np.random.default_rng(seed), 40, n, samples=200)
    stats = WeightedLayerStats.from_arrays(layer.x, layer.y, np.where(layer.y > 0, 1.0, 0.1), True)
    return build_weighted_problem(stats, layer.weight, layer.bias, make_grid(layer.weight, layer.bias, 3))


def test_a_neuron_its_share_cut_runs_again_in_the_time_the_others_left(monkeypatch):
    """Under ``time_limit`` each neuron had an even share of the time left, and one that needed more than its
    share was cut even where the neurons after it left the time: on a 16-neuron layer a 1.5 s limit ended at
    0.84 s, ``time_limited`` and not the states without a limit. Here neuron 0 "needs" 40 % of a generous limit
    (a search that reads its clock instead of taking the time, so nothing depends on the machine's speed)."""
    from qannealq.backends import layer_sa

    problem, limit = _per_neuron_problem(), 600.0
    seeds = list(np.random.SeedSequence(5).generate_state(problem.num_neurons) & 0x7FFFFFFF)
    real = layer_sa._solve

    def search(run, starts, seed, *args):
        rows, stats = real(run, starts, seed, *args)
        if seeds.index(seed) == 0 and run.clock.limit is not None and run.clock.remaining() < 0.4 * limit:
            run.clock.cut = True  # the search it would have run under a share too small: cut, another row
            rows = 1 - rows
        return rows, stats

    monkeypatch.setattr(layer_sa, "_solve", search)
    sampler = get_sampler("layer-sa")
    free = sampler.sample_layer(problem, seed=5, num_threads=1)
    limited = sampler.sample_layer(problem, seed=5, num_threads=1, time_limit=limit)
    assert limited.info["time_limited"] is False and limited.info["retried"] == 1
    np.testing.assert_array_equal(limited.assignments, free.assignments)
    assert limited.info["polished_start_energies"] == free.info["polished_start_energies"]
    energy = limited.info["trace"]["energy"]
    assert len(energy) == problem.num_neurons + 3 and np.all(np.diff(energy) <= 0)  # the run again traced too


def test_a_generous_limit_on_per_neuron_hessians_changes_nothing_and_a_tiny_one_is_reported():
    problem = _per_neuron_problem(41)
    sampler = get_sampler("layer-sa")
    free = sampler.sample_layer(problem, seed=2)
    generous = sampler.sample_layer(problem, seed=2, time_limit=600)
    assert free.info["time_limited"] is False and generous.info["time_limited"] is False
    np.testing.assert_array_equal(generous.assignments, free.assignments)
    tiny = sampler.sample_layer(problem, seed=2, time_limit=1e-6)
    assert tiny.info["time_limited"] is True
    np.testing.assert_allclose(tiny.energies, problem.qubo_energies(tiny.assignments), rtol=1e-12)


def test_every_backend_gets_ordinary_bqms():
    layer, weights, stats = _weighted(9, f=8, n=3)
    problem = build_weighted_problem(stats, layer.weight, layer.bias,
                                     make_grid(layer.weight, layer.bias, 2, "tensor", "sign"))
    assert all(isinstance(problem.neuron_bqm(i), dimod.BinaryQuadraticModel) for i in range(3))
    result = quantize_layer(problem, "qubo", dimod.ExactSolver())
    np.testing.assert_allclose(result.errors, [optimum(problem.neuron_bqm(i)) for i in range(3)], rtol=1e-9)
    np.testing.assert_allclose(result.errors, _direct(layer, weights, result.values), rtol=1e-9)


def test_memory_ceiling_is_a_clear_error_and_hessians_are_kept_only_when_they_fit(caplog):
    exp = tiny_digits()
    x = as_calibration_tensor(exp.calibration)
    # the larger limit was named as Objective(memory_limit=...) alone, which a command's user cannot give
    with pytest.raises(InvalidArgumentError, match="memory_limit=1000 bytes.*--num-calibration.*--memory-limit GIB"):
        collect_weighted_stats(exp.model, exp.model, ["0"], x, Objective("relu-aware", 0.0, 1000))
    stats = collect_weighted_stats(exp.model, exp.model, ["0"], x, Objective("relu-aware", 0.0, 10 ** 6))["0"]
    assert stats.hessian(0) is stats.hessian(0)  # 16 x 17² numbers fit: formed once
    tight = replace(stats, objective=Objective("relu-aware", 0.0, stats.nbytes + 100), _kept=type(stats._kept)())
    with caplog.at_level(logging.WARNING, logger="qannealq"):
        assert tight.hessian(0) is not tight.hessian(0)  # they do not: formed at each use
        tight.hessian(1)
    warned = [r.getMessage() for r in caplog.records if "do not all fit in memory_limit" in r.getMessage()]
    assert len(warned) == 1 and "16 neurons x 17 inputs: its per-neuron H_i" in warned[0]  # once per kind
    np.testing.assert_array_equal(tight.hessian(0), stats.hessian(0))
    weight, bias = (t.detach().double().numpy() for t in (exp.model[0].weight, exp.model[0].bias))
    grid = make_grid(weight, bias, 2, "tensor", "sign")
    kept, formed = (build_weighted_problem(s, weight, bias, grid) for s in (stats, tight))
    np.testing.assert_array_equal(gptq(kept), gptq(formed))  # GPTQ's factors kept beside the H_i, same result
    assert ("gptq", 0.01) in stats._kept.kinds and (("gptq", 0.01), 0) in stats._kept
    assert not any(key[0] == ("gptq", 0.01) for key in tight._kept)
    sizes = [stats.hessian(i).nbytes for i in range(16)]  # room for the first 5 H_i: those 5 are kept, no more
    part = replace(stats, objective=Objective("relu-aware", 0.0, stats.nbytes + sum(sizes[:5])),
                   _kept=type(stats._kept)())
    assert [part.hessian(i) is part.hessian(i) for i in range(16)] == [True] * 5 + [False] * 11
    for i in range(16):
        np.testing.assert_array_equal(part.hessian(i), stats.hessian(i))


def test_objective_options_are_checked():
    assert make_objective().describe() == {"objective": "preact", "inactive_weight": None}
    assert make_objective("relu-aware", 0).describe() == {"objective": "relu-aware", "inactive_weight": 0.0}
    for bad in ({"objective": "relu"}, {"objective": "relu-aware", "inactive_weight": -0.1},
                {"objective": "relu-aware", "inactive_weight": 2}, {"objective": "preact", "inactive_weight": 0.5}):
        with pytest.raises(InvalidArgumentError):
            make_objective(**bad)
    # the commands refused --memory-limit with preact, the API took it and ignored it (a preact layer keeps no samples)
    with pytest.raises(InvalidArgumentError, match=r"memory_limit=1048576 applies to objective='relu-aware' only, not "
                                                   "'preact'"):
        make_objective("preact", memory_limit=2 ** 20)
    with pytest.raises(InvalidArgumentError, match="objective='relu'"):
        quantize_model(torch.nn.Sequential(torch.nn.Linear(3, 2)), np.ones((4, 3)), 2, objective="relu")
    # a misspelt objective with a weight was "inactive_weight=0.5 applies to objective='relu-aware' only, not 'relu'"
    with pytest.raises(InvalidArgumentError, match="objective='relu' is unknown: choose one of preact, relu-aware"):
        quantize_model(torch.nn.Sequential(torch.nn.Linear(3, 2)), np.ones((4, 3)), 2, objective="relu",
                       inactive_weight=0.5)


def test_quantize_model_takes_memory_limit():
    """``memory_limit=`` (``--memory-limit`` in bytes) was taken as a sampler option and refused with "backend
    'layer-sa' does not take this option" (or "method 'gptq' takes no sampler options"), although
    :func:`make_objective` takes it beside ``inactive_weight``; now it limits the layer like the flag."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    x = torch.randn(200, 6)
    plain = quantize_model(model, x, 2, "gptq", objective="relu-aware")
    limited = quantize_model(model, x, 2, "gptq", objective="relu-aware", memory_limit=10 ** 6)
    np.testing.assert_array_equal(limited.layers[0].integers, plain.layers[0].integers)
    assert "memory_limit" not in limited.settings
    with pytest.raises(InvalidArgumentError, match="layer '0' keeps its calibration samples.*memory_limit=1000 bytes"):
        quantize_model(model, x, 2, "qubo", "layer-sa", objective="relu-aware", memory_limit=1000)
    with pytest.raises(InvalidArgumentError, match="memory_limit=1000 applies to objective='relu-aware' only"):
        quantize_model(model, x, 2, "gptq", memory_limit=1000)
    with pytest.raises(InvalidArgumentError, match="memory_limit is given twice"):
        quantize_model(model, x, 2, "gptq", objective=Objective("relu-aware"), memory_limit=1000)


def test_preact_objective_refuses_relu_aware_options():
    """``Objective("preact", 0.5)`` (or with a ``memory_limit``) was taken and its option ignored: a preact run
    weighs every sample alike and keeps no samples, and the results recorded ``inactive_weight: None``; the same
    options through :func:`make_objective` were refused."""
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    with pytest.raises(InvalidArgumentError, match=r"inactive_weight=0.5 applies to objective='relu-aware' only"):
        quantize_model(model, np.ones((4, 3)), 2, "gptq", objective=Objective("preact", 0.5))
    with pytest.raises(InvalidArgumentError, match=r"memory_limit=1048576 applies to objective='relu-aware' only"):
        Objective("preact", memory_limit=2 ** 20)
    assert Objective("preact").describe() == Objective("preact", 0, 2 ** 32).describe()


def test_objective_takes_numpy_numbers():
    """A numpy integer weight or byte count (as an array's entry gives it) was refused: ``inactive_weight=np.int64(0)
    must be a number in [0, 1]``, ``memory_limit=np.int64(1073741824) must be a positive number of bytes``."""
    goal = Objective("relu-aware", np.int64(0), np.int64(2 ** 30))
    assert (goal.inactive_weight, goal.memory_limit) == (0.0, 2 ** 30)
    assert type(goal.inactive_weight) is float and type(goal.memory_limit) is int
    assert make_objective("relu-aware", np.float32(0.5)).inactive_weight == 0.5
    for bad, shown in ((True, "True"), (1.5e9, "1500000000.0"), (np.int64(0), "np.int64(0)")):
        with pytest.raises(InvalidArgumentError, match=rf"memory_limit={re.escape(shown)} must be a positive integer"):
            Objective("relu-aware", 0.0, bad)
    with pytest.raises(InvalidArgumentError, match="inactive_weight=True must be a number"):
        Objective("relu-aware", True)


def test_sample_weights_are_checked_naming_the_bad_entry():
    """An infinite weight was taken (its neuron's offset inf, its linear terms NaN), and a NaN one was refused as
    of the wrong shape, naming the targets' shape and its own, the same."""
    layer, weights, _ = _weighted(2, f=6, n=3)
    for bad, shown in ((np.inf, "inf"), (np.nan, "nan"), (-0.5, "-0.5")):
        given = weights.copy()
        given[4, 1] = bad
        with pytest.raises(InvalidArgumentError, match=rf"finite and >= 0, got weights\[4, 1\]={shown}"):
            WeightedLayerStats.from_arrays(layer.x, layer.y, given)
    with pytest.raises(InvalidArgumentError, match=r"targets' shape \(300, 3\), got \(300, 2\)"):
        WeightedLayerStats.from_arrays(layer.x, layer.y, weights[:, :2])


def test_run_command_records_the_objective(tmp_path, capsys):
    import json

    from qannealq.cli import main

    tiny_digits()  # the session's cached model: the command loads it
    out = tmp_path / "run"
    assert main(["run", "--dataset", "digits", "--input-size", "4", "--bits", "2", "--methods", "gptq,qubo",
                 "--objective", "relu-aware", "--inactive-weight", "0.25", "--out", str(out)]) == 0
    settings = json.loads((out / "results.json").read_text())["settings"]
    assert settings["objective"] == "relu-aware" and settings["inactive_weight"] == 0.25
    assert settings["skipped_layers"] == {}  # an MLP: every weight is in a Linear


def test_memory_limit_changes_what_is_kept_not_the_results(tmp_path, capsys, caplog):
    """``--memory-limit`` below the first layer's 16 ``H_i`` (but above its samples) forms them again at each use,
    with one warning per kind of matrix, and gives the rows of a run with the default limit; a resumed run may
    change it (it is not a setting of the results)."""
    import json

    from qannealq.cli import main

    tiny_digits()
    argv = ["run", "--dataset", "digits", "--input-size", "4", "--bits", "2", "--methods", "gptq,qubo",
            "--objective", "relu-aware"]
    rows = {}
    for name, extra in (("roomy", []), ("tight", ["--memory-limit", "0.0004"])):  # 419 KB: the samples fit
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="qannealq"):
            assert main([*argv, *extra, "--out", str(tmp_path / name)]) == 0
        rows[name] = [(r["method"], r["accuracy"], r["layer_error"], [layer["error"] for layer in r["layers"]])
                      for r in json.loads((tmp_path / name / "results.json").read_text())["results"]]
        warned = [r.getMessage() for r in caplog.records if "do not all fit in memory_limit=0.41 MiB" in r.getMessage()]
        assert len(warned) == (3 if name == "tight" else 0), warned  # H_i, GPTQ's two factors: once each
    import re

    kept = [int(re.search(r": (\d+) are kept", w).group(1)) for w in warned if "per-neuron H_i" in w]
    assert len(kept) == 1 and 0 < kept[0] < 16 and all("--memory-limit GIB" in w for w in warned)  # some fit
    assert rows["tight"] == rows["roomy"]
    settings = json.loads((tmp_path / "tight" / "results.json").read_text())["settings"]
    assert "memory_limit" not in settings and "memory_limit" not in json.dumps(settings)
    assert main(["run", "--resume", str(tmp_path / "tight"), "--memory-limit", "2"]) == 0


def test_run_command_in_sequential_mode_equals_quantize_model(tmp_path):
    """The run command hands the first layer's float statistics to sequential calibration: same errors as a
    quantize_model call that collects every statistic itself."""
    import json

    from qannealq.cli import main

    exp = tiny_digits()
    out = tmp_path / "run"
    assert main(["run", "--dataset", "digits", "--input-size", "4", "--bits", "2", "--methods", "gptq",
                 "--calibration", "sequential", "--objective", "relu-aware", "--out", str(out)]) == 0
    row = json.loads((out / "results.json").read_text())["results"][0]
    direct = quantize_model(exp.model, exp.calibration, 2, "gptq", calibration="sequential", objective="relu-aware")
    assert row["layer_error"] == pytest.approx(direct.layer_error, rel=1e-12)


@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.parametrize("argv, message", [
    # the weight out of range was "inactive_weight=2.0 ...", and sweep's without relu-aware "inactive_weight=0.5
    # applies to objective='relu-aware' only": the Python arguments' names, not the flag's
    (["--objective", "relu-aware", "--inactive-weight", "2"], "--inactive-weight=2.0 must be a number in [0, 1]"),
    (["--objective", "relu-aware", "--inactive-weight", "nan"], "--inactive-weight=nan must be a number in [0, 1]"),
    (["--inactive-weight", "0.5"], "--inactive-weight applies to --objective relu-aware"),
    (["--memory-limit", "8"], "--memory-limit applies to --objective relu-aware"),
    (["--objective", "relu-aware", "--memory-limit", "0"], "--memory-limit=0 must be a positive number of GiB"),
    (["--objective", "relu-aware", "--memory-limit", "-2"], "--memory-limit=-2 must be a positive number of GiB"),
    # GiB finite but bytes not: int(inf) raised an OverflowError traceback
    (["--objective", "relu-aware", "--memory-limit", "1e300"], "--memory-limit=1e+300 must be a positive number of "),
])
def test_bad_objective_options_exit_2_before_training(command, argv, message, tmp_path, monkeypatch, capsys):
    import qannealq.experiment
    from qannealq.cli import main

    monkeypatch.setattr(qannealq.experiment, "train_mlp", lambda *a, **k: pytest.fail("trained a model"))
    assert main([command, "--methods", "gptq", *argv, "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.startswith(f"qannealq: error: {message}")


@pytest.mark.parametrize("objective", ["preact", "relu-aware"])
def test_sequential_first_layer_reuses_the_float_statistics_with_the_same_result(objective):
    from qannealq.experiment import calibrate
    from qannealq.weighted_calibration import with_weighted_stats

    exp = tiny_digits()
    goal = make_objective(objective)
    stats = with_weighted_stats(exp.model, exp.calibration, goal, calibrate(exp))
    kw = {"calibration": "sequential", "objective": goal, "seed": 3, "num_reads": 2, "num_sweeps": 16}
    fresh = quantize_model(exp.model, exp.calibration, 2, "qubo", **kw)
    reused = quantize_model(exp.model, exp.calibration, 2, "qubo", float_stats=stats, **kw)
    assert [r.errors.tolist() for r in reused.layers] == [r.errors.tolist() for r in fresh.layers]
    for a, b in zip(fresh.model.parameters(), reused.model.parameters()):
        assert torch.equal(a, b)
    assert reused.layers[1].errors.sum() != float_layer_error(exp, stats, goal)  # the second layer: sequential


def float_layer_error(exp, stats, goal) -> float:
    """The second layer's error under float calibration (differs from sequential's, which sees int2 inputs)."""
    return quantize_model(exp.model, exp.calibration, 2, "qubo", objective=goal, float_stats=stats, seed=3,
                          num_reads=2, num_sweeps=16).layers[1].errors.sum()


def test_sweep_takes_memory_limit_without_storing_it(tmp_path, caplog):
    import json

    from qannealq.cli import main

    tiny_digits()
    out = tmp_path / "sweep"
    with caplog.at_level(logging.WARNING, logger="qannealq"):
        assert main(["sweep", "--dataset", "digits", "--input-size", "4", "--bits", "2", "--methods", "gptq",
                     "--seeds", "1", "--objective", "relu-aware", "--memory-limit", "0.0004", "--out", str(out)]) == 0
    assert any("do not all fit in memory_limit=0.41 MiB" in r.getMessage() for r in caplog.records)
    for name in ("store.json", "sweep.json"):  # the settings stored and reported: the objective, not the limit
        text = (out / name).read_text()
        assert "inactive_weight" in text and "memory_limit" not in text
    assert main(["sweep", "--resume", str(out), "--memory-limit", "1"]) == 0  # not a setting: may change
    assert main(["sweep", "--dataset", "digits", "--memory-limit", "1", "--out", str(tmp_path / "x")]) == 2


def test_neuron_errors_of_some_rows_are_the_weighted_errors_straight_from_the_data():
    """The solve loop's check of a neuron's reads takes their energies here (it had built the neuron's BQM again,
    a fifth of steepest's time per neuron on MNIST's first layer); a product of a shared H is refused."""
    layer, weights, stats = _weighted(33)
    problem = build_weighted_problem(stats, layer.weight, layer.bias, make_grid(layer.weight, layer.bias, 3,
                                                                                "channel", "sign"))
    rng = np.random.default_rng(4)
    rows = np.array([4, 0, 4, 2])  # the last neuron's weights are fractional, the others 0 or 1
    v = np.where(problem.free[rows], rng.integers(0, 2, (len(rows), problem.num_coordinates)), 0)
    values = problem.grid.dequantize(problem.base[rows] + v, problem.steps[rows])
    direct = np.sum(weights[:, rows] * (layer.y[:, rows] - layer.x_aug @ values.T) ** 2, axis=0) / len(layer.y)
    np.testing.assert_allclose(problem.neuron_errors(values, rows), direct, rtol=1e-12, atol=1e-14)
    for k, i in enumerate(rows):
        idx = problem.variables(i)
        assert problem.neuron_bqm(i).energy(dict(zip(idx.tolist(), v[k, idx].tolist()))) == pytest.approx(
            direct[k], rel=1e-9, abs=1e-12)
    with pytest.raises(InvalidArgumentError, match="products of a shared H mean nothing"):
        problem.neuron_errors(values, rows, np.zeros_like(values))


def test_errors_from_products_is_refused_on_per_neuron_hessians():
    """A product with one shared ``H`` means nothing for per-neuron ``H_i``: refused by name."""
    layer, weights, stats = _weighted(31)
    problem = build_weighted_problem(stats, layer.weight, layer.bias, make_grid(layer.weight, layer.bias, 3,
                                                                                "channel", "sign"))
    values = problem.base_values
    with pytest.raises(InvalidArgumentError, match="errors_from_products needs a shared H"):
        problem.errors_from_products(values, np.zeros_like(values))


def test_threads_keeping_matrices_at_once_count_every_byte():
    """layer-sa's relu-aware threads form and keep ``H_i`` at once: two could read a kind's byte count before
    either added to it, and the count lost a matrix (more kept than ``memory_limit`` allows). A count slowed
    between its read and its write (as a thread switch there would) now still adds up."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    _, _, stats = _weighted(3, f=6, n=16)

    class Slow(dict):
        def get(self, key, default=None):
            value = super().get(key, default)
            time.sleep(0.002)  # a thread switch between reading the count and writing it
            return value

    stats._kept.bytes = Slow()
    start = threading.Barrier(4)

    def keep(i: int) -> None:
        start.wait() if i < 4 else None
        stats.kept("probe", i, lambda: np.zeros((7, 7)))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(keep, range(16)))
    kept = [key for key in stats._kept if key[0] == "probe"]
    assert len(kept) == 16 and stats._kept.bytes["probe"] == 16 * 7 * 7 * 8


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_resume_with_another_objective_names_the_difference(command, tmp_path, capsys):
    """``--resume DIR --objective preact`` on a relu-aware folder took the stored weight as given: "--inactive-weight
    applies to --objective relu-aware, not 'preact'", a flag the user had not given."""
    from qannealq.cli import main

    tiny_digits()
    out = tmp_path / command
    assert main([command, "--dataset", "digits", "--input-size", "4", "--bits", "2", "--methods", "gptq",
                 *(["--seeds", "1"] if command == "sweep" else []), "--objective", "relu-aware",
                 "--inactive-weight", "0.1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main([command, "--resume", str(out), "--objective", "preact"]) == 2
    err = capsys.readouterr().err
    assert "differ from the stored" in err and "'relu-aware' -> 'preact'" in err and "applies to" not in err
    assert main([command, "--resume", str(out), "--objective", "preact", "--inactive-weight", "0.1"]) == 2
    assert "--inactive-weight applies to --objective relu-aware, not 'preact'" in capsys.readouterr().err
