"""Capacity-aware decomposition: sub-problems within capacity, never worse than the warm start, reaches the
optimum on easy instances, works with qaoa and dwave-mock, and ``run`` uses it on neurons above capacity."""

from __future__ import annotations

import json

import dimod
import numpy as np
import pytest

from helpers import random_layer
from qannealq.backends import auto_decompose, decomposed, get_sampler
from qannealq.baselines import gptq_restricted
from qannealq.errors import InvalidArgumentError
from qannealq.formulation import LayerStats, build_problem
from qannealq.grid import make_grid


class Recording(dimod.Sampler):
    """``exact`` that records the size of every BQM it is given."""

    properties = {"max_variables": 24}

    def __init__(self) -> None:
        self.inner = get_sampler("exact")
        self.sizes: list[int] = []

    @property
    def parameters(self) -> dict:
        return self.inner.parameters

    def sample(self, bqm, **kwargs):
        self.sizes.append(bqm.num_variables)
        return self.inner.sample(bqm, **kwargs)


def _warm(problem, i):
    """Neuron ``i``'s GPTQ-restricted state as ``initial_states``, and its energy."""
    warm = problem.encode(gptq_restricted(problem))
    idx = problem.variables(i)
    states = (warm[i, idx][None, :].astype(np.int8), idx.tolist())
    return states, float(problem.neuron_bqm(i).energy(dict(zip(idx.tolist(), warm[i, idx].tolist()))))


def grouped_layer(seed: int, bits: int, groups: int = 10, size: int = 6, n: int = 4, samples: int = 2000):
    """An easy layer: 60 inputs in 10 groups of 6 strongly correlated ones, groups independent, no bias."""
    rng = np.random.default_rng(seed)
    x = np.repeat(rng.normal(size=(samples, groups)), size, axis=1) + 0.5 * rng.normal(size=(samples, groups * size))
    w = rng.normal(size=(n, groups * size))
    y = x @ w.T + 0.05 * rng.normal(size=(samples, n))
    return build_problem(LayerStats.from_arrays(x, y, bias=False), w, None, make_grid(w, None, bits))


@pytest.fixture(scope="module")
def easy():
    problem = grouped_layer(0, 4)
    assert problem.free.sum(axis=1).min() >= 55
    return problem


def test_sub_problems_within_capacity_never_worse_than_the_warm_start(easy):
    child = Recording()
    sampler = decomposed(child, capacity=12)
    for i in range(2):
        states, warm_energy = _warm(easy, i)
        bqm = easy.neuron_bqm(i)
        ss = sampler.sample(bqm, initial_states=states, seed=i)
        info = ss.info
        assert info["decomposed"] and info["start"] == "initial_states"
        assert ss.first.energy <= warm_energy * (1 + 1e-12)
        assert ss.first.energy == pytest.approx(bqm.energy(ss.first.sample), rel=1e-12)
        assert info["energies"][0] == pytest.approx(warm_energy, rel=1e-12)
        assert np.all(np.diff(info["energies"]) <= 1e-15)  # accepted only when the energy drops
        assert info["backend_calls"] == len(info["sub_sizes"]) and info["timing"]["sampling_ns"] > 0
    assert child.sizes and max(child.sizes) <= 12


def test_reaches_the_optimum_on_easy_instances(easy):
    """Long layer-sa runs (from the warm start and from random states) give the optimum of these neurons."""
    layer_sa = get_sampler("layer-sa")
    reached = 0
    for i in range(4):
        states, _ = _warm(easy, i)
        bqm = easy.neuron_bqm(i)
        best = min(layer_sa.sample(bqm, num_reads=64, num_sweeps=1000, initial_states=s, seed=0).first.energy
                   for s in (states, None))
        found = decomposed("exact", capacity=12, patience=30, max_calls=200).sample(
            bqm, initial_states=states, seed=1).first.energy
        assert found >= best * (1 - 1e-9)
        reached += found <= best * (1 + 1e-9)
    assert reached >= 3


def test_a_bqm_within_capacity_goes_straight_to_the_backend():
    problem = random_layer(np.random.default_rng(1), 15, 1, dead=0).problem(4)
    bqm = problem.neuron_bqm(0)
    child = Recording()
    ss = decomposed(child, capacity=24).sample(bqm)
    assert child.sizes == [bqm.num_variables] and ss.info["decomposed"] is False
    assert ss.first.energy == pytest.approx(get_sampler("exact").sample(bqm).first.energy, rel=1e-12)


def test_a_random_start_without_initial_states_and_the_seed_makes_it_deterministic(easy):
    bqm = easy.neuron_bqm(1)
    a = decomposed("exact", capacity=10).sample(bqm, seed=5)
    b = decomposed("exact", capacity=10).sample(bqm, seed=5)
    assert a.info["start"] == "greedy" and a.info["energies"] == b.info["energies"]


@pytest.mark.parametrize("vartype, start, same", [("BINARY", -1, 0), ("SPIN", 0, -1)])
def test_initial_states_of_the_other_vartype_are_read_as_dwave_samplers_read_them(vartype, start, same):
    """A SPIN start for a BINARY BQM was once read as binary (samples holding -1), then refused; ``sa`` (dwave-samplers)
    reads -1 as 0 on a BINARY BQM and 0 as -1 on a SPIN one, and so does the decomposition now: the same samples as
    from the start in the BQM's own values. A start mixing 0 and -1, or holding 2, is refused."""
    rng = np.random.default_rng(0)
    bqm = dimod.BinaryQuadraticModel({i: rng.normal() for i in range(12)},
                                     {(i, j): rng.normal() for i in range(12) for j in range(i + 1, 12)}, 0.0, vartype)
    sampler = decomposed("exact", capacity=3, max_calls=1)
    other = sampler.sample(bqm, initial_states={v: start for v in bqm.variables}, seed=0)
    own = sampler.sample(bqm, initial_states={v: same for v in bqm.variables}, seed=0)
    np.testing.assert_array_equal(other.record.sample, own.record.sample)
    assert set(np.unique(other.record.sample)) <= set(bqm.vartype.value)
    with pytest.raises(InvalidArgumentError, match=r"initial_states holds values \[-1.0, 0.0\]"):
        sampler.sample(bqm, initial_states={v: (-1, 0, 1)[v % 3] for v in bqm.variables}, seed=0)


def test_sub_calls_bound_the_backend_calls_a_call_makes(easy):
    """``compare`` says how long a decomposed backend may take from these bounds: one call where the BQM fits,
    else from ``patience`` rounds without a gain to ``max_calls``, as :meth:`sample` stops."""
    bqm = easy.neuron_bqm(1)
    sampler = decomposed("exact", capacity=10)
    m = bqm.num_variables
    assert sampler.sub_calls(m) == (min(100, -(-2 * m // 10)), 100)
    assert sampler.sub_calls(m, capacity=m) == (1, 1) and sampler.sub_calls(10) == (1, 1)
    assert sampler.sub_calls(m, patience=2, max_calls=3) == (2, 3)
    for options in ({}, {"patience": 2, "max_calls": 3}, {"max_calls": 4}):
        calls = sampler.sample(bqm, seed=5, **options).info["backend_calls"]
        least, most = sampler.sub_calls(m, **options)
        assert least <= calls <= most, (options, calls)


@pytest.fixture(scope="module")
def forty():
    layer = random_layer(np.random.default_rng(3), 39, 2, samples=400, dead=0)
    problem = layer.problem(4)
    i = int(np.argmax(problem.free.sum(axis=1)))
    assert 36 <= problem.free[i].sum() <= 40
    return problem, i


def test_works_with_dwave_mock(forty):
    from backend_fixtures import mock_qpu

    problem, i = forty
    states, warm_energy = _warm(problem, i)
    ss = decomposed(mock_qpu(), capacity=16, max_calls=6).sample(problem.neuron_bqm(i), initial_states=states,
                                                                  seed=2, num_reads=20)
    assert ss.info["decomposed"] and max(ss.info["sub_sizes"]) <= 16 and ss.info["backend_calls"] <= 6
    assert ss.first.energy <= warm_energy * (1 + 1e-12)
    assert "qpu_access_time" in ss.info["timing"] and 0 <= ss.info["chain_break_fraction"] <= 1


def test_works_with_qaoa(forty):
    pytest.importorskip("qiskit_optimization")
    problem, i = forty
    states, warm_energy = _warm(problem, i)
    qaoa = get_sampler("qaoa", maxiter=5, shots=256)
    ss = decomposed(qaoa, capacity=8, max_calls=3).sample(problem.neuron_bqm(i), initial_states=states, seed=4)
    assert ss.info["decomposed"] and 1 <= ss.info["backend_calls"] <= 3 and max(ss.info["sub_sizes"]) <= 8
    assert ss.first.energy <= warm_energy * (1 + 1e-12)
    # QAOA's details over the calls (compare's columns were blank for a decomposed qaoa): 5 evaluations a call
    assert ss.info["optimizer_evals"] == 5 * ss.info["backend_calls"] and ss.info["optimizer_time_s"] > 0
    assert ss.info["circuit_depth"] > 0 and ss.info["reps"] == 1 and ss.info["shots"] == 256


def test_a_capacity_above_the_backends_own_limit_is_refused_before_any_call():
    """``run --backend qaoa --sampler-option capacity=25`` trained, then failed at the first neuron with qaoa's own
    refusal of 25 variables (naming ``max_qubits``, not the option): the decomposition's sub-problems must fit its
    backend. Refused now by the option check and by ``sample`` before any backend call; at the limit it is taken."""
    from qannealq.contract import check_options

    child = get_sampler("exact")
    sampler = decomposed(child)
    with pytest.raises(InvalidArgumentError, match=r"capacity=30 is above the 24 variables that backend 'exact' "
                                                   r"takes: .* give at most 24"):
        check_options(sampler, {"capacity": 30})
    check_options(sampler, {"capacity": 24})
    bqm = random_layer(np.random.default_rng(1), 40, 1, dead=0).problem(4).neuron_bqm(0)
    with pytest.raises(InvalidArgumentError, match=r"capacity=30 is above the 24 variables"):
        sampler.sample(bqm, capacity=30)
    with pytest.raises(InvalidArgumentError, match=r"capacity=26 is above the 24 variables"):
        decomposed(child, capacity=26).sample(bqm)
    pytest.importorskip("qiskit_optimization")
    small = decomposed(get_sampler("qaoa", max_qubits=5), capacity=8)
    with pytest.raises(InvalidArgumentError, match=r"capacity=8 is above the 5 variables that backend 'qaoa'"):
        check_options(small, {})
    with pytest.raises(InvalidArgumentError, match=r"capacity=8 is above the 5 variables"):
        small.sample(bqm)


def test_a_capacity_above_the_limit_a_sampler_of_yours_states_is_refused():
    """A sampler of yours states its capacity as ``properties["max_variables"]`` (the backend contract), not as a
    class's ``default_max_variables``: ``run --backend mine --sampler-option capacity=20`` with 8 there was taken,
    and the decomposition handed it whole 17-variable neurons, which it failed on after training. Refused now, as
    a built-in backend's; a capacity within it is taken."""
    from qannealq.contract import check_options

    class EightAtMost(Recording):
        properties = {"max_variables": 8}

    child = EightAtMost()
    with pytest.raises(InvalidArgumentError, match=r"capacity=20 is above the 8 variables that backend "
                                                   r"'EightAtMost' takes: .* give at most 8"):
        check_options(decomposed(child), {"capacity": 20})
    bqm = random_layer(np.random.default_rng(1), 16, 1, dead=0).problem(4).neuron_bqm(0)
    with pytest.raises(InvalidArgumentError, match=r"capacity=20 is above the 8 variables"):
        decomposed(child, capacity=20).sample(bqm)
    assert child.sizes == []
    check_options(decomposed(child), {"capacity": 8})
    decomposed(child, capacity=8).sample(bqm, seed=2)
    assert child.sizes and max(child.sizes) <= 8


def test_auto_decompose_wraps_capacity_limited_backends_only():
    assert auto_decompose(get_sampler("exact")).decomposes_above_capacity
    for name in ("sa", "layer-sa"):
        sampler = get_sampler(name)
        assert auto_decompose(sampler) is sampler


def test_auto_decompose_honours_a_given_capacity():
    """``compare --capacity steepest=5`` was ignored: a backend that states no limit was returned bare, its
    neurons sent whole. A given capacity now decomposes any backend, without reading its solver's limit."""
    import dimod

    from qannealq.backends.decompose import DecomposingSampler

    steepest = get_sampler("steepest")
    wrapped = auto_decompose(steepest, capacity=5, max_calls=100)
    assert isinstance(wrapped, DecomposingSampler) and wrapped.capacity == 5
    bqm = dimod.generators.gnp_random_bqm(12, 0.5, "BINARY", random_state=1)
    ss = wrapped.sample(bqm, seed=1)
    assert ss.info["decomposed"] and max(ss.info["sub_sizes"]) <= 5
    assert auto_decompose(wrapped, capacity=5, max_calls=100) is wrapped  # not wrapped twice
    with pytest.raises(InvalidArgumentError, match=r"decomposed already, with other capacity: pass its child"):
        auto_decompose(wrapped, capacity=7)  # it was returned as it was, its capacity of 5 kept without a word
    down = _CloudSampler(ConnectionError("SAPI unreachable"))  # a given capacity needs no read of the solver
    assert auto_decompose(down, capacity=8).capacity == 8
    assert auto_decompose(steepest, capacity=None) is steepest


class _CloudSampler(dimod.Sampler):
    """A third-party cloud sampler (no ``default_max_variables``) whose ``max_variables`` is read from its solver
    when asked (:class:`~qannealq.contract.LazyProperties`), like a Leap client: ``error`` raised by the read."""

    parameters: dict = {}

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    @property
    def properties(self):
        from qannealq.contract import LazyProperties

        def read():
            if self.error is not None:
                raise self.error
            return 20

        return LazyProperties({"max_variables": read})

    def sample(self, bqm, **kwargs):
        return dimod.ExactSolver().sample(bqm)


def test_an_unreachable_solver_is_reported_not_taken_for_unlimited():
    """``contract.max_variables`` turned any failure into "no limit": ``capacity_limited`` of a sampler whose
    solver was down said False and ``auto_decompose`` sent it whole BQMs, while the decomposer (with a copy of
    its own) said the solver was unreachable. One read now tells "states none" from "could not be read"."""
    from qannealq.backends.decompose import DecomposingSampler, capacity_limited
    from qannealq.contract import max_variables
    from qannealq.errors import BackendError, CredentialsError

    down = _CloudSampler(ConnectionError("SAPI unreachable"))
    said = r"_CloudSampler could not give its capacity \(max_variables\): ConnectionError: SAPI unreachable; " \
           r"the solver may be unreachable: run again later"
    for call in (lambda: max_variables(down), lambda: capacity_limited(down), lambda: auto_decompose(down)):
        with pytest.raises(BackendError, match=said + "$"):
            call()
    with pytest.raises(BackendError, match=said + ", or give the decomposition a capacity"):
        DecomposingSampler(down).capacity
    assert DecomposingSampler(down, capacity=8).capacity == 8
    with pytest.raises(CredentialsError, match="no token"):  # our own error as raised: a worker without a token
        capacity_limited(_CloudSampler(CredentialsError("no token")))
    up = _CloudSampler()
    assert max_variables(up) == 20 and capacity_limited(up) and DecomposingSampler(up).capacity == 20
    unstated = dimod.ExactSolver()  # states no max_variables: any size as far as it says
    assert max_variables(unstated) is None and not capacity_limited(unstated)
    with pytest.raises(InvalidArgumentError, match="ExactSolver states no max_variables"):
        DecomposingSampler(unstated).capacity


def test_run_decomposes_neurons_above_capacity_and_says_so(tmp_path, capsys):
    from qannealq.cli import main

    out = tmp_path / "run"
    code = main(["run", "--dataset", "digits", "--input-size", "4", "--bits", "2", "--methods", "qubo", "--backend",
                 "exact", "--sampler-option", "capacity=12", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "capacity-aware decomposition" in printed and "solved by decomposition" in printed
    layers = json.loads((out / "results.json").read_text())["results"][0]["layers"]
    assert layers[0]["decomposed"] and layers[0]["decomposed_neurons"] == 16  # all have 14-17 variables


def test_exact_decomposes_above_its_capacity_into_sub_problems_of_16():
    small = random_layer(np.random.default_rng(4), 19, 1, dead=0).problem(4).neuron_bqm(0)
    large = random_layer(np.random.default_rng(4), 29, 1, dead=0).problem(4).neuron_bqm(0)
    assert 16 < small.num_variables <= 24 < large.num_variables
    sampler = decomposed("exact", max_calls=2)
    assert sampler.sample(small).info["decomposed"] is False  # within exact's 24 variables: solved directly
    info = sampler.sample(large, seed=0).info
    assert info["decomposed"] and info["sub_sizes"] == [16, 16]


def test_of_several_initial_states_it_starts_from_the_lowest_and_checks_them_all():
    """Only the first of several ``initial_states`` was read: from ``[bad, optimum]`` a sub-solver that returns its
    start (dimod's IdentitySampler) ended at bad's energy (10.08 here), above the optimum it was given (-12.2), and
    a later state of 2s was not refused. It now starts from the lowest given state, and refuses any bad one."""
    rng = np.random.default_rng(0)
    bqm = dimod.BinaryQuadraticModel({i: rng.normal() for i in range(12)},
                                     {(i, j): rng.normal() for i in range(12) for j in range(i + 1, 12)}, 0.0, "BINARY")
    best = dimod.ExactSolver().sample(bqm).first
    bad = {v: 1 - best.sample[v] for v in bqm.variables}
    ss = decomposed(dimod.IdentitySampler(), capacity=4).sample(bqm, initial_states=[bad, best.sample], seed=0)
    assert ss.first.energy == pytest.approx(best.energy, rel=1e-12)
    assert ss.info["energies"][0] == pytest.approx(best.energy, rel=1e-12) and ss.info["start"] == "initial_states"
    with pytest.raises(InvalidArgumentError, match=r"initial_states holds values \[2.0\]"):
        decomposed("exact", capacity=4).sample(bqm, initial_states=[best.sample, {v: 2 for v in bqm.variables}])


class _NoSamples(dimod.Sampler):
    """A sub-solver that returns an empty SampleSet."""

    properties: dict = {}
    parameters: dict = {}

    def sample(self, bqm, **kwargs):
        return dimod.SampleSet.from_samples(([], list(bqm.variables)), bqm.vartype, energy=[])


def test_a_sub_solver_that_returns_no_sample_is_named():
    """An empty answer from the sub-solver failed inside numpy: ``ValueError: attempt to get argmin of an empty
    sequence``, naming neither the backend nor the decomposition. It is a BackendError saying which."""
    from qannealq.errors import BackendError

    bqm = dimod.generators.gnp_random_bqm(12, 0.5, "BINARY", random_state=1)
    with pytest.raises(BackendError, match=r"_NoSamples returned no sample for the decomposition's sub-problem 1 "
                                           r"\(4 of 12 variables\)"):
        decomposed(_NoSamples(), capacity=4).sample(bqm, seed=0)


def test_a_constant_added_to_the_energy_changes_no_step(easy):
    """The rounds compare energies less the offset: with 1e10 times the largest coefficient added (energies still
    resolved to ~1e-6 of it), gains below 1e-12 of the energy (0.01 of it) had been refused: 2 of 5 accepted, and
    the search ended 0.0115 higher (0.41 without the constant)."""
    bqm = easy.neuron_bqm(0)
    lin, (_, _, quad), _ = bqm.to_numpy_vectors()
    largest = max(np.abs(lin).max(), np.abs(quad).max())
    shifted = bqm.copy()
    shifted.offset += 1e10 * largest
    sampler = decomposed("exact", capacity=12, patience=30)
    plain, high = sampler.sample(bqm, seed=2), sampler.sample(shifted, seed=2)
    assert high.info["accepted"] == plain.info["accepted"] and high.info["rounds"] == plain.info["rounds"]
    assert high.first.sample == plain.first.sample
    assert high.first.energy - shifted.offset == pytest.approx(plain.first.energy - bqm.offset, abs=1e-4 * largest)
